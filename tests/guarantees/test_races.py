"""A kernel uses only the values it checked (docs/GUARANTEES.md).

* Races: another Python thread rewrites the class labels while a loss kernel runs on them
  (a loader thread refilling a shared batch). The kernel checks the labels while it holds the
  GIL and computes without it, so it must index with the values it checked: each call returns
  the result of labels that passed the check (bit for bit the result of the valid labels the
  writer puts back) or raises the clean ``ValueError`` of a bad label, and never reads or
  writes out of bounds. The writer alternates the shared array between valid labels and bad
  ones (one past the last class, -1, 2**40), with a short switch interval so that the threads
  interleave often. Before the kernels copied the labels, these tests crashed (segmentation
  fault) or returned rows that no valid label gives, and AddressSanitizer reported a
  heap-buffer-overflow (tools/asan_check.sh runs this file).
* Values read twice: an ndarray subclass may answer ``shape``, ``argmax``, ``astype`` or
  ``copy`` with anything; a kernel takes its sizes from the array it actually reads, so such an
  array is refused instead of being read past its end.
"""
import sys
import threading
import time

import numpy as np
import pytest

from nnfs_fast import Activation_Softmax_Loss_CategoricalCrossentropy, Loss_CategoricalCrossentropy
from nnfs_fast.kernels import losses as _losses

N, C = 2000, 5          # rows enough that the writer often runs during a kernel's nogil part
DURATION = 0.3          # seconds of racing per test
BAD_LABELS = {"one past the last class": C, "negative": -1, "huge": 1 << 40}
LABEL_ERROR = "y_true: class indices must be in [0, 5)"


def cce_forward(X, P, y):
    return Loss_CategoricalCrossentropy().forward(P, y)


def cce_backward(X, P, y):
    loss = Loss_CategoricalCrossentropy()
    loss.backward(P, y)
    return loss.dinputs


def fused_forward(X, P, y):
    combined = Activation_Softmax_Loss_CategoricalCrossentropy()
    mean = combined.forward(X, y)
    return np.append(combined.output.ravel(), mean)


def fused_backward(X, P, y):
    combined = Activation_Softmax_Loss_CategoricalCrossentropy()
    combined.backward(P, y)
    return combined.dinputs


ENTRY_POINTS = {"Loss_CategoricalCrossentropy.forward": cce_forward,
                "Loss_CategoricalCrossentropy.backward": cce_backward,
                "Activation_Softmax_Loss_CategoricalCrossentropy.forward": fused_forward,
                "Activation_Softmax_Loss_CategoricalCrossentropy.backward": fused_backward}


@pytest.fixture
def fast_switching():
    """Let the interpreter switch threads every microsecond (default 5 ms)."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


@pytest.mark.parametrize("bad", BAD_LABELS.values(), ids=BAD_LABELS.keys())
@pytest.mark.parametrize("call", ENTRY_POINTS.values(), ids=ENTRY_POINTS.keys())
def test_labels_rewritten_during_the_call(call, bad, fast_switching):
    rng = np.random.default_rng(16)
    X = rng.standard_normal((N, C)).astype(np.float32)
    P = _losses.softmax_crossentropy_forward(X, rng.integers(0, C, N))[0]
    good = rng.integers(0, C, N)
    bad_labels = good.copy()
    bad_labels[::7] = bad
    bad_labels[-1] = bad        # the last row: its write would land past the end of dinputs
    want = call(X, P, good.copy())
    shared = good.copy()
    stop = threading.Event()

    def rewrite():
        while not stop.is_set():
            shared[:] = bad_labels
            shared[:] = good

    writer = threading.Thread(target=rewrite, daemon=True)
    writer.start()
    results = refusals = 0
    try:
        end = time.perf_counter() + DURATION
        while time.perf_counter() < end:
            try:
                got = call(X, P, shared)
            except ValueError as exc:
                assert LABEL_ERROR in str(exc)
                refusals += 1
            else:
                np.testing.assert_array_equal(got, want)
                results += 1
    finally:
        stop.set()
        writer.join()
    assert results and refusals, f"no interleaving: {results} results, {refusals} refusals"


# ------------------------------------------------------------------------- values read twice

class LyingShape(np.ndarray):
    """An ndarray whose ``shape`` attribute reports ``claimed`` (its data has another shape)."""

    claimed = None

    @property
    def shape(self):
        return self.claimed


def lying_shape(a, claimed):
    out = a.view(LyingShape)
    out.claimed = claimed
    return out


class ShortArgmax(np.ndarray):
    def argmax(self, *args, **kwargs):
        return np.zeros(1, np.int64)


class ShortAstype(np.ndarray):
    def astype(self, *args, **kwargs):
        return np.zeros(1, np.int64)


class ShortCopy(np.ndarray):
    def copy(self, *args, **kwargs):
        return np.zeros((1, 1), np.float32)


@pytest.mark.parametrize("call", ENTRY_POINTS.values(), ids=ENTRY_POINTS.keys())
def test_one_hot_labels_with_a_false_shape_are_refused(call):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((N, C)).astype(np.float32)
    P = _losses.softmax_crossentropy_forward(X, rng.integers(0, C, N))[0]
    y = lying_shape(np.eye(C, dtype=np.float32)[:1], (N, C))    # 1 row of data, claims N
    with pytest.raises(ValueError, match=r"y_true: expected one-hot labels of shape "
                                         r"\(2000, 5\), got \(1, 5\)"):
        call(X, P, y)


SHORT_LABELS = r"y_true: expected 2000 class indices \(one per sample\), got shape \(1,\)"


@pytest.mark.parametrize("call", ENTRY_POINTS.values(), ids=ENTRY_POINTS.keys())
def test_labels_whose_native_copy_is_short_are_refused(call):
    rng = np.random.default_rng(4)
    X = rng.standard_normal((N, C)).astype(np.float32)
    P = _losses.softmax_crossentropy_forward(X, rng.integers(0, C, N))[0]
    y = rng.integers(0, C, N).astype(">i8").view(ShortAstype)   # byte-swapped: converted
    with pytest.raises(ValueError, match=SHORT_LABELS):
        call(X, P, y)


def test_one_hot_labels_whose_argmax_is_short_are_refused():
    rng = np.random.default_rng(4)
    P = _losses.softmax_crossentropy_forward(rng.standard_normal((N, C)), np.zeros(N, int))[0]
    y = np.eye(C, dtype=np.float32)[rng.integers(0, C, N)].view(ShortArgmax)
    with pytest.raises(ValueError, match=SHORT_LABELS):
        fused_backward(None, P, y)     # the combined backward takes the argmax of one-hot labels


def test_dense_biases_whose_copy_has_another_shape_are_refused(kernels):
    rng = np.random.default_rng(5)
    X = rng.standard_normal((N, 3)).astype(np.float32)
    W = rng.standard_normal((3, 64)).astype(np.float32)
    b = np.zeros((1, 128), np.float32)[:, ::2].view(ShortCopy)   # column stride 2: copied
    with pytest.raises(ValueError, match=r"biases: expected shape \(1, 64\), got \(1, 1\)"):
        kernels.dense_forward(X, W, b)


def test_dropout_arrays_with_a_false_shape_are_refused():
    """dropout_forward/backward compare the dimensions they loop over (C level), not the
    ``shape`` attributes: a 1-element mask claiming (2000, 64) used to be read past its end."""
    from nnfs_fast.kernels import dropout
    inputs = np.ones((2000, 64), dtype=np.float32)
    draws = lying_shape(np.ones(1, dtype=np.int64), inputs.shape)
    with pytest.raises(ValueError, match=r"draws: expected an array of shape"):
        dropout.dropout_forward(draws, inputs, 0.5)
    mask = lying_shape(np.ones((1, 1), dtype=np.float32), inputs.shape)
    with pytest.raises(ValueError, match=r"dvalues: expected shape"):
        dropout.dropout_backward(inputs, mask)
