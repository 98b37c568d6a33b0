"""Losses (Loss base, CCE, the combined softmax/CCE class, BCE, MSE, MAE) against the float64
oracle (nnfs_fast.reference), the book's float32 NumPy expressions, finite differences, and
across label dtypes, layouts and thread counts.

Tolerances (float32 kernel vs float64 reference fed the *same* float32 numbers):
* -log(clip(p)): the log is correctly rounded (0.5 ulp; libm's logf is within 1 ulp), so
  2 ulp = 2**-22 relative to the loss is generous; one-hot labels first sum C clipped
  products pairwise (~log2(C) ulp of the sum), which log turns into an absolute error of that
  size: + 2**-23 * (log2(C) + 1).
* gradients are a few float32 roundings of one expression (no sums): 2**-23 * n_ops relative.
* per-sample means over K outputs of non-negative terms (a few ulp each): pairwise sum
  (~log2(K) ulp) and one division, relative to the mean itself; BCE also rounds 1 - p in
  float32, an absolute error up to 2**-25 / (1 - p) <= 2**-24 in log(1 - p) where p < 1/2
  (exact above, by Sterbenz).
The book's float32 expressions without transcendental functions (all the backward passes, MSE
and MAE forward) are reproduced bit for bit.
"""
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from threadpoolctl import threadpool_limits

import nnfs_fast
from conftest import LAYOUTS, THREAD_COUNTS, layout
from nnfs_fast import reference
from nnfs_fast.activations import Activation_Softmax
from nnfs_fast.kernels import losses as _losses
from nnfs_fast.layers import Layer_Dense
from nnfs_fast.losses import (
    Activation_Softmax_Loss_CategoricalCrossentropy,
    Loss,
    Loss_BinaryCrossentropy,
    Loss_CategoricalCrossentropy,
    Loss_MeanAbsoluteError,
    Loss_MeanSquaredError,
    softmax_crossentropy_forward,
)

ULP = 2.0 ** -23
TINY = 1e-37
# the clip bounds are float32 (the book's after nnfs.init()), the oracle's float64: -log of
# the clipped value differs by up to |log(float32(1 - 1e-7)) - log(1 - 1e-7)| = 1.9e-8
CLIP = 2e-8
SHAPES = [(1, 1), (1, 5), (7, 1), (2, 3), (13, 5), (31, 17), (300, 3), (128, 10), (97, 129),
          (5003, 1), (1000, 100)]
REGRESSION = {"BinaryCrossentropy": Loss_BinaryCrossentropy,
              "MeanSquaredError": Loss_MeanSquaredError,
              "MeanAbsoluteError": Loss_MeanAbsoluteError}


def probabilities(rng, shape):
    """Softmax rows of random logits (some near 0 and 1), float32."""
    sm = Activation_Softmax()
    sm.forward((4 * rng.standard_normal(shape)).astype(np.float32))
    return sm.output


def labels(rng, n_samples, n_classes, dtype=np.int64):
    return rng.integers(0, n_classes, n_samples).astype(dtype)


def one_hot(y, n_classes, dtype=np.float32):
    return np.eye(n_classes, dtype=dtype)[y]


def ref_loss(name):
    return getattr(reference, f"Loss_{name}")()


def assert_close(got, want, bound, what):
    assert got.dtype == np.float32 and got.flags.c_contiguous, what
    err = np.abs(got.astype(np.float64) - want)
    bad = ~(err <= bound)
    assert not bad.any(), (f"{what}: {bad.sum()} elements off; worst error "
                           f"{np.nanmax(err - bound):.3g} over the bound")


def book_cce_backward(dvalues, y):
    """The book's float32 expression (np.eye one-hot, then two divisions)."""
    y = one_hot(y, dvalues.shape[1]) if y.ndim == 1 else y.astype(np.float32)
    return (-y / dvalues) / np.float32(len(dvalues))


# ----------------------------------------------------------------------- categorical CCE

@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("sparse", [True, False])
def test_crossentropy_matches_reference(rng, shape, sparse):
    N, C = shape
    P = probabilities(rng, shape)
    P[0, 0] = 0.0  # clipped to 1e-7 in forward
    y = labels(rng, N, C)
    y_true = y if sparse else one_hot(y, C)
    loss, ref = Loss_CategoricalCrossentropy(), ref_loss("CategoricalCrossentropy")
    got, want = loss.forward(P, y_true), ref.forward(P, y_true)
    assert got.shape == (N,)
    extra = 0 if sparse else ULP * (np.log2(C) + 1)
    assert_close(got, want, 2 * ULP * np.abs(want) + extra + CLIP, "sample losses")
    P[0, 0] = 0.5  # the backward divides by p unclipped
    loss.backward(P, y_true)
    ref.backward(P, y_true)
    assert_close(loss.dinputs, ref.dinputs, 2 * ULP * np.abs(ref.dinputs) + TINY, "dinputs")
    np.testing.assert_array_equal(loss.dinputs, book_cce_backward(P, y_true))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("sparse", [True, False])
def test_softmax_crossentropy_matches_reference(rng, shape, sparse):
    N, C = shape
    X = (5 * rng.standard_normal(shape)).astype(np.float32)
    y = labels(rng, N, C)
    y_true = y if sparse else one_hot(y, C)
    combo = Activation_Softmax_Loss_CategoricalCrossentropy()
    ref = reference.Activation_Softmax_Loss_CategoricalCrossentropy()
    got, want = combo.forward(X, y_true), ref.forward(X, y_true)
    assert isinstance(got, np.float32)
    # softmax error (see test_activations) turns into an absolute error of the same size in
    # -log; the mean adds log2(N) ulp
    span = float(X.max() - X.min()) + 4 + np.log2(C) + np.log2(N)
    assert abs(got - want) <= ULP * span * max(1.0, abs(want))
    combo.backward(combo.output, y_true)
    ref.backward(combo.output.astype(np.float64), y_true)
    assert_close(combo.dinputs, ref.dinputs, 2 * ULP * np.abs(ref.dinputs) + TINY, "dinputs")
    book = combo.output.copy()
    book[range(N), y] -= 1
    np.testing.assert_array_equal(combo.dinputs, book / np.float32(N))


@pytest.mark.parametrize("sparse", [True, False])
def test_fused_forward_equals_softmax_then_loss(rng, sparse):
    """The fused kernel keeps the book's numbers: activation.forward then loss.calculate."""
    X = (5 * rng.standard_normal((257, 13))).astype(np.float32)
    y = labels(rng, 257, 13)
    y_true = y if sparse else one_hot(y, 13)
    output, sample_losses = softmax_crossentropy_forward(X, y_true)
    softmax, loss = Activation_Softmax(), Loss_CategoricalCrossentropy()
    softmax.forward(X)
    np.testing.assert_array_equal(output, softmax.output)
    np.testing.assert_array_equal(sample_losses, loss.forward(softmax.output, y_true))
    combo = Activation_Softmax_Loss_CategoricalCrossentropy()
    mean = combo.forward(X, y_true)
    assert mean == loss.calculate(softmax.output, y_true) == np.mean(sample_losses)
    assert combo.output is combo.activation.output and combo.activation.inputs is X
    np.testing.assert_array_equal(combo.output, output)
    assert combo.loss.accumulated_count == 257
    assert combo.loss.accumulated_sum == np.sum(sample_losses)
    assert combo.loss.calculate_accumulated() == combo.loss.accumulated_sum / 257


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.uint16, np.int32, np.uint32,
                                   np.int64, np.uint64])
def test_sparse_labels_of_any_integer_dtype(rng, dtype):
    """Labels of every integer dtype, strided, byte-swapped or as a list give the same
    numbers (the kernels read them in place, switching on the type)."""
    P = probabilities(rng, (40, 7))
    y = labels(rng, 40, 7)
    want = Loss_CategoricalCrossentropy().forward(P, y)
    want_fused = softmax_crossentropy_forward(P, y)[1]
    combo = Activation_Softmax_Loss_CategoricalCrossentropy()
    combo.backward(P, y)
    want_grads = [combo.dinputs, _losses.crossentropy_backward(P, y)]
    swapped = y.astype(np.dtype(dtype).newbyteorder(">" if np.little_endian else "<"))
    reversed_ = y[::-1].astype(dtype)[::-1]   # negative stride
    for y_true in (y.astype(dtype), np.repeat(y, 2).astype(dtype)[::2], reversed_, swapped,
                   y.astype(dtype).tolist()):
        np.testing.assert_array_equal(Loss_CategoricalCrossentropy().forward(P, y_true), want)
        np.testing.assert_array_equal(softmax_crossentropy_forward(P, y_true)[1], want_fused)
        combo.backward(P, y_true)
        np.testing.assert_array_equal(combo.dinputs, want_grads[0])
        np.testing.assert_array_equal(_losses.crossentropy_backward(P, y_true), want_grads[1])
    for oh_dtype in (np.uint8, np.int64, np.float64):
        oh = one_hot(y, 7, oh_dtype)
        np.testing.assert_array_equal(Loss_CategoricalCrossentropy().forward(P, oh), want)
        combo = Activation_Softmax_Loss_CategoricalCrossentropy()
        combo.backward(P, oh)
        grad = combo.dinputs
        combo.backward(P, y)
        np.testing.assert_array_equal(grad, combo.dinputs)


def test_log_of_clipped_probabilities_is_correctly_rounded():
    """-log(clip(p)) equals float32(-log(float64(clip(p)))) on every float32 of a sample of
    the clipped range (checked exhaustively when written: all 195,641,450 values); NaN stays
    NaN; one-hot sums outside the probabilities' range (0, > 1, negative) still get a log."""
    lo, hi = (int(np.float32(v).view(np.uint32)) for v in (1e-7, 1 - 1e-7))
    bits = np.unique(np.concatenate([np.arange(lo, hi + 1, 997, dtype=np.uint32),
                                     np.uint32(np.float32(1).view(np.uint32)) - np.arange(
                                         1, 2000, dtype=np.uint32)]))
    p = bits.view(np.float32)
    want = (-np.log(np.clip(p, np.float32(1e-7), np.float32(1 - 1e-7)).astype(np.float64))
            ).astype(np.float32)
    got = Loss_CategoricalCrossentropy().forward(p.reshape(-1, 1), np.zeros(len(p), np.uint8))
    np.testing.assert_array_equal(got, want)
    P = np.array([[np.nan, 0.5], [0.5, 0.5], [0.5, 0.5], [0.5, 0.5]], np.float32)
    T = np.array([[1, 0], [0, 0], [4, 0], [-1, 0]], np.float32)
    got = Loss_CategoricalCrossentropy().forward(P, T)
    np.testing.assert_array_equal(got, [np.nan, np.inf, -np.log(np.float32(2)), np.nan])


@given(st.data())
def test_crossentropy_properties(data):
    """Sparse and one-hot labels give the same losses bit for bit (the one-hot sum adds exact
    zeros), losses lie in [0, -log(1e-7)], and each combined gradient row sums to ~0."""
    N = data.draw(st.integers(1, 30))
    C = data.draw(st.integers(1, 12))
    X = data.draw(hnp.arrays(np.float32, (N, C), elements=st.floats(-30, 30, width=32)))
    y = np.array(data.draw(st.lists(st.integers(0, C - 1), min_size=N, max_size=N)))
    output, sample = softmax_crossentropy_forward(X, y)
    np.testing.assert_array_equal(softmax_crossentropy_forward(X, one_hot(y, C))[1], sample)
    np.testing.assert_array_equal(Loss_CategoricalCrossentropy().forward(output, one_hot(y, C)),
                                  sample)
    assert np.all(sample >= 0) and np.all(sample <= -np.log(np.float32(1e-7)))
    combo = Activation_Softmax_Loss_CategoricalCrossentropy()
    combo.backward(output, y)
    np.testing.assert_allclose(combo.dinputs.sum(axis=1), 0, atol=C * 2e-7 / N)


def test_extreme_logits_stay_finite_without_warnings():
    X = np.array([[1e4, -1e4, 0], [-1e4, 1e4, -1e4], [0, 0, 0]], np.float32)
    y = np.array([1, 1, 2])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        combo = Activation_Softmax_Loss_CategoricalCrossentropy()
        loss = combo.forward(X, y)
        combo.backward(combo.output, y)
    # p = 0 is clipped to 1e-7: -log(1e-7) = 16.118; p = 1 to 1 - 1e-7: ~1.19e-7
    np.testing.assert_allclose(combo.loss.forward(combo.output, y),
                               [-np.log(np.float32(1e-7)), 1.1920929e-07, np.log(3)],
                               rtol=1e-6)
    assert np.isfinite(loss) and np.isfinite(combo.dinputs).all()


# ------------------------------------------------------------------ BCE, MSE, MAE

@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", list(REGRESSION))
def test_mean_losses_match_reference(rng, shape, name):
    N, K = shape
    if name == "BinaryCrossentropy":
        P = rng.random(shape).astype(np.float32)
        Y = (rng.random(shape) > 0.5).astype(np.float64)
        # clipped in both passes (with targets 1: the float32 and float64 clip bounds differ
        # by ~2e-8, which -log(1 - p) with target 0 would magnify)
        P.flat[:2], Y.flat[:2] = [0.0, 1.0], [1.0, 1.0]
    else:
        P = rng.standard_normal(shape).astype(np.float32)
        Y = rng.standard_normal(shape)  # float64 targets (sine_data), converted once
        Y.flat[:1] = P.flat[:1]         # MAE: sign(0) = 0
    Y32 = Y.astype(np.float32)
    loss, ref = REGRESSION[name](), ref_loss(name)
    got, want = loss.forward(P, Y), ref.forward(P, Y32)
    one_minus_p = 2.0 ** -24 if name == "BinaryCrossentropy" else 0
    assert_close(got, want, ULP * (np.log2(K) + 4) * want + one_minus_p + TINY,
                 "sample losses")
    loss.backward(P, Y)
    ref.backward(P, Y32)
    assert_close(loss.dinputs, ref.dinputs, 6 * ULP * np.abs(ref.dinputs) + TINY, "dinputs")


def test_book_float32_expressions_bit_for_bit(rng):
    P = rng.random((301, 3)).astype(np.float32)
    P[0] = [0, 1, np.nan]
    Y = (rng.random((301, 3)) > 0.5).astype(np.float32)
    Y[1] = P[1]
    N, K = np.float32(301), np.float32(3)
    clipped = np.clip(P, 1e-7, 1 - 1e-7)
    book = {
        "BinaryCrossentropy": -(Y / clipped - (1 - Y) / (1 - clipped)) / K / N,
        "MeanSquaredError": -2 * (Y - P) / K / N,
        "MeanAbsoluteError": np.sign(Y - P) / K / N,
    }
    for name, cls in REGRESSION.items():
        loss = cls()
        loss.backward(P, Y)
        np.testing.assert_array_equal(loss.dinputs, book[name], err_msg=name)
    # per-sample means: NumPy's pairwise order over the outputs; |0 - p| and (0 - p)**2 are
    # exact, so only the summation order can make a difference (widths across the 8 and 128
    # blocks of NumPy's pairwise sum)
    for width in (3, 8, 9, 127, 128, 129, 1000):
        Q = rng.standard_normal((5, width)).astype(np.float32)
        Z = np.zeros_like(Q)
        np.testing.assert_array_equal(Loss_MeanAbsoluteError().forward(Q, Z),
                                      np.mean(np.abs(Z - Q), axis=-1))
        np.testing.assert_array_equal(Loss_MeanSquaredError().forward(Q, Z),
                                      np.mean((Z - Q) ** 2, axis=-1))


def test_mean_absolute_error_sign_semantics():
    P = np.array([[1, 2, 3, np.nan]], np.float32)
    Y = np.array([[2, 2, 1, 0]], np.float32)
    loss = Loss_MeanAbsoluteError()
    loss.backward(P, Y)
    np.testing.assert_array_equal(loss.dinputs, [[0.25, 0, -0.25, np.nan]])


def test_binary_crossentropy_at_0_and_1_is_finite():
    P = np.array([[0.0], [1.0], [0.0], [1.0]], np.float32)
    Y = np.array([[0], [1], [1], [0]], np.uint8)
    loss = Loss_BinaryCrossentropy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sample = loss.forward(P, Y)
        loss.backward(P, Y)
    assert np.isfinite(sample).all() and np.isfinite(loss.dinputs).all()
    clipped = np.clip(P, 1e-7, 1 - 1e-7)  # the book's float32 values: 16.118, 15.942
    np.testing.assert_allclose(sample[2:], -np.log(np.where(Y, clipped, 1 - clipped))[2:, 0],
                               rtol=1e-6)


# --------------------------------------------------------------------- finite differences

def numerical_grad(f, X, h):
    grad = np.zeros(X.shape)
    for idx in np.ndindex(X.shape):
        Xp, Xm = X.copy(), X.copy()
        Xp[idx] += h
        Xm[idx] -= h
        grad[idx] = (float(f(Xp)) - float(f(Xm))) / (2 * h)
    return grad


@pytest.mark.parametrize("name", ["CategoricalCrossentropy", "Combined", *REGRESSION])
def test_backward_is_the_gradient_of_the_mean_loss(rng, name):
    """backward(dvalues, y) = d(mean loss)/d(dvalues), by central differences (float32
    losses over h = 1e-3: ~1e-4 absolute error). The book's MAE gradient has the opposite
    sign of the true one (README.md, Compatibility notes), which this test pins down."""
    N, C = 4, 3
    y = labels(rng, N, C)
    if name == "Combined":
        X = rng.standard_normal((N, C)).astype(np.float32)
        combo = Activation_Softmax_Loss_CategoricalCrossentropy()

        def f(Z):
            return combo.forward(Z, y)
        combo.forward(X, y)
        combo.backward(combo.output, y)
        grad, sign = combo.dinputs, 1
    else:
        loss = (Loss_CategoricalCrossentropy() if name == "CategoricalCrossentropy"
                else REGRESSION[name]())
        X = probabilities(rng, (N, C)) * 0.8 + 0.1 if name[0] in "CB" else \
            rng.standard_normal((N, C)).astype(np.float32)
        X = X.astype(np.float32)
        target = y if name[0] == "C" else rng.random((N, C)).astype(np.float32)

        def f(Z):
            return loss.calculate(Z, target)
        loss.backward(X, target)
        grad, sign = loss.dinputs, (-1 if name == "MeanAbsoluteError" else 1)
    expected = numerical_grad(f, X, 1e-3)
    np.testing.assert_allclose(grad, sign * expected, rtol=2e-2, atol=3e-4)


# --------------------------------------------------------------- the Loss base class

def test_calculate_accumulates_without_new_pass(rng):
    P = probabilities(rng, (10, 4))
    y = labels(rng, 10, 4)
    loss = Loss_CategoricalCrossentropy()
    first = loss.calculate(P[:6], y[:6])
    second = loss.calculate(P[6:], y[6:])
    sample = loss.forward(P, y)
    assert first == np.mean(sample[:6]) and second == np.mean(sample[6:])
    assert loss.accumulated_count == 10
    assert loss.accumulated_sum == np.sum(sample[:6]) + np.sum(sample[6:])
    np.testing.assert_allclose(loss.calculate_accumulated(), np.mean(sample), rtol=1e-6)
    assert loss.calculate_accumulated(include_regularization=True)[1] == 0
    loss.new_pass()
    assert (loss.accumulated_sum, loss.accumulated_count) == (0, 0)
    with pytest.raises(ValueError, match="no losses were calculated since new_pass"):
        loss.calculate_accumulated()
    with pytest.raises(ValueError, match="empty"):
        loss.calculate(P[:0], y[:0])


def test_data_loss_is_np_mean_bit_for_bit(rng):
    """calculate's mean (np.add.reduce / N, cheaper) equals the book's np.mean exactly."""
    loss = Loss_MeanSquaredError()
    for n in (1, 2, 7, 8, 9, 127, 128, 129, 300, 1000, 4097):
        P, Y = rng.standard_normal((n, 2)).astype(np.float32), np.zeros((n, 2), np.float32)
        assert loss.calculate(P, Y) == np.mean(loss.forward(P, Y))
    assert type(loss.calculate(P, Y)) is np.float32


def test_book_chapter_5_figures():
    """The book's printed figures: Ch4 softmax rows (within 2 ulp; this build gives the book's
    digits) and the
    Ch5 loss 1.0986104 (printed form), from the book's spiral data and weights."""
    from nnfs_fast.datasets import spiral_data
    state = np.random.get_state()
    try:
        np.random.seed(0)
        X, y = spiral_data(samples=100, classes=3)
        dense1, dense2 = Layer_Dense(2, 3), Layer_Dense(3, 3)
    finally:
        np.random.set_state(state)
    dense1.forward(X)
    relu = nnfs_fast.Activation_ReLU()
    relu.forward(dense1.output)
    dense2.forward(relu.output)
    softmax = Activation_Softmax()
    softmax.forward(dense2.output)
    book = np.array([[0.33333334, 0.33333334, 0.33333334],
                     [0.33333316, 0.3333332, 0.33333364],
                     [0.33333287, 0.3333329, 0.33333418],
                     [0.3333326, 0.33333263, 0.33333477],
                     [0.33333233, 0.3333324, 0.33333528]], np.float32)
    np.testing.assert_array_max_ulp(softmax.output[:5], book, maxulp=2)
    assert str(Loss_CategoricalCrossentropy().calculate(softmax.output, y)) == "1.0986104"
    combo = Activation_Softmax_Loss_CategoricalCrossentropy()
    assert str(combo.forward(dense2.output, y)) == "1.0986104"


def test_regularization_loss_both_chapter_forms(rng):
    layers = [Layer_Dense(4, 5, weight_regularizer_l1=1e-3, weight_regularizer_l2=5e-4,
                          bias_regularizer_l1=2e-3, bias_regularizer_l2=5e-4),
              Layer_Dense(5, 3, weight_regularizer_l2=1e-2),
              Layer_Dense(3, 2)]
    for layer in layers:
        layer.weights = rng.standard_normal(layer.weights.shape).astype(np.float32)
        layer.biases = rng.standard_normal(layer.biases.shape).astype(np.float32)
    loss = Loss_CategoricalCrossentropy()
    assert loss.regularization_loss() == 0  # no trainable layers remembered yet
    per_layer = [loss.regularization_loss(layer) for layer in layers]  # Ch14-17 form
    np.testing.assert_allclose(per_layer, [reference.Loss().regularization_loss(layer)
                                           for layer in layers], rtol=1e-6)
    assert per_layer[2] == 0
    # the book's float32 expression exactly
    w, b = layers[0].weights, layers[0].biases
    assert per_layer[0] == (0 + 1e-3 * np.sum(np.abs(w)) + 5e-4 * np.sum(w * w)
                            + 2e-3 * np.sum(np.abs(b)) + 5e-4 * np.sum(b * b))
    loss.remember_trainable_layers(layers)  # Ch18+ form
    assert loss.trainable_layers is layers
    assert loss.regularization_loss() == sum(per_layer)
    P = probabilities(rng, (3, 3))
    data_loss, reg = loss.calculate(P, labels(rng, 3, 3), include_regularization=True)
    assert reg == sum(per_layer) and data_loss > 0


def test_repr():
    for cls in (Loss, Loss_CategoricalCrossentropy, *REGRESSION.values(),
                Activation_Softmax_Loss_CategoricalCrossentropy):
        assert repr(cls()) == f"{cls.__name__}()"


# ------------------------------------------------------------ layouts, threads, aliasing

def all_results(P, Y, X, y):
    """Every loss's forward and backward on the same inputs (for equality checks)."""
    out = []
    for loss in (Loss_CategoricalCrossentropy(),):
        out += [loss.forward(P, y), loss.forward(P, one_hot(y, P.shape[1]))]
        loss.backward(P, y)
        out.append(loss.dinputs)
    for cls in REGRESSION.values():
        loss = cls()
        out.append(loss.forward(P, Y))
        loss.backward(P, Y)
        out.append(loss.dinputs)
    output, sample = softmax_crossentropy_forward(X, y)
    combo = Activation_Softmax_Loss_CategoricalCrossentropy()
    combo.backward(output, y)
    return out + [output, sample, combo.dinputs]


@pytest.mark.parametrize("kind", LAYOUTS)
def test_layouts_give_identical_results(rng, kind):
    P, Y = probabilities(rng, (37, 11)), rng.random((37, 11)).astype(np.float32)
    X, y = rng.standard_normal((37, 11)).astype(np.float32), labels(rng, 37, 11)
    want = all_results(P, Y, X, y)
    got = all_results(layout(P, kind), layout(Y, kind), layout(X, kind), y)
    for g, w in zip(got, want):
        assert g.flags.c_contiguous
        np.testing.assert_array_equal(g, w)


def test_thread_count_does_not_change_results(rng, restore_threads):
    P, Y = probabilities(rng, (2000, 50)), rng.random((2000, 50)).astype(np.float32)
    X, y = rng.standard_normal((2000, 50)).astype(np.float32), labels(rng, 2000, 50)
    runs = []
    for n in THREAD_COUNTS:
        nnfs_fast.set_num_threads(n)
        runs += [all_results(P, Y, X, y), all_results(P, Y, X, y)]
    with threadpool_limits(1, "openmp"):
        runs.append(all_results(P, Y, X, y))
    for got in runs[1:]:
        for g, w in zip(got, runs[0]):
            np.testing.assert_array_equal(g, w)


def test_outputs_are_new_arrays_each_call(rng):
    P, y = probabilities(rng, (6, 3)), labels(rng, 6, 3)
    combo = Activation_Softmax_Loss_CategoricalCrossentropy()
    combo.forward(P, y)
    first, kept = combo.output, combo.output.copy()
    combo.backward(first, y)
    grad = combo.dinputs
    combo.forward(P * 2, y)
    combo.backward(combo.output, y)
    assert combo.output is not first and combo.dinputs is not grad
    np.testing.assert_array_equal(first, kept)


# ------------------------------------------------------------------------------- errors

def test_label_errors_name_the_argument(rng):
    P = probabilities(rng, (4, 3))
    for obj in (Loss_CategoricalCrossentropy(), Activation_Softmax_Loss_CategoricalCrossentropy()):
        for call in (obj.forward, obj.backward):
            with pytest.raises(ValueError,
                               match=r"y_true: class indices must be in \[0, 3\) .* got 3 at "
                                     r"position 2"):
                call(P, np.array([0, 1, 3, 2]))
            with pytest.raises(ValueError, match=r"got -1 at position 0"):
                call(P, np.array([-1, 1, 2, 2], np.int8))
            with pytest.raises(ValueError, match=r"got 9223372036854775809 at position 3"):
                call(P, np.array([0, 1, 2, 2**63 + 1], np.uint64))
            with pytest.raises(ValueError, match=r"got 255 at position 1"):
                call(P, np.array([1, 2, 255, 0], np.uint8)[::-1])  # negative stride
            with pytest.raises(TypeError, match="y_true: class indices must be integers, got "
                                                "dtype float64"):
                call(P, np.array([0.0, 1, 2, 2]))
            with pytest.raises(ValueError, match=r"y_true: expected 4 class indices .* got "
                                                 r"shape \(3,\)"):
                call(P, np.array([0, 1, 2]))
            with pytest.raises(ValueError, match=r"y_true: expected one-hot labels of shape "
                                                 r"\(4, 3\), got \(4, 2\)"):
                call(P, np.zeros((4, 2)))
            with pytest.raises(ValueError, match=r"y_true: expected class indices of shape "
                                                 r"\(4,\) or one-hot"):
                call(P, np.zeros((4, 3, 1)))


def test_prediction_and_target_errors(rng):
    with pytest.raises(ValueError, match=r"y_pred: expected a 2-D array"):
        Loss_CategoricalCrossentropy().forward(np.ones(3), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"dvalues: expected a 2-D array"):
        Loss_MeanSquaredError().backward(np.ones(3), np.ones((3, 1)))
    for cls in REGRESSION.values():
        with pytest.raises(ValueError, match=r"y_true: expected targets of shape \(5, 1\), "
                                             r".*got shape \(5,\) .*reshape\(-1, 1\)"):
            cls().forward(np.ones((5, 1), np.float32), np.ones(5))
        with pytest.raises(ValueError, match=r"y_true: expected 2 columns, got shape \(5, 3\)"):
            cls().backward(np.ones((5, 2), np.float32), np.ones((5, 3)))
        with pytest.raises(TypeError, match="y_true: expected real numbers"):
            cls().forward(np.ones((5, 1), np.float32), np.ones((5, 1), complex))


def test_kernels_check_their_arguments_and_allocate_their_outputs(rng):
    P = probabilities(rng, (6, 4))
    y = labels(rng, 6, 4).astype(np.intp)
    with pytest.raises(ValueError, match=r"y_true: expected 6 class indices \(one per sample\), "
                                         r"got shape \(5,\)"):
        _losses.crossentropy_forward(P, y[:5], 1)
    with pytest.raises(ValueError, match=r"y_true: expected one-hot labels of shape \(6, 4\)"):
        _losses.softmax_crossentropy_backward(P, P.T, 1)
    with pytest.raises(ValueError, match="kind: expected"):
        _losses.sample_losses(99, P, P, 1)
    with pytest.raises(ValueError, match="at least one class column"):
        _losses.crossentropy_forward(P[:, :0], P[:, :0], 1)
    with pytest.raises(ValueError, match=r"y_true: expected 4 columns, got shape \(6, 3\)"):
        _losses.mean_loss_backward(_losses.SQUARED, P, P[:, :3], 1)
    kept = P.copy()
    results = []
    for n_threads in (1, 3):
        out, loss = _losses.softmax_crossentropy_forward(P, y, n_threads)
        got = [out, loss, _losses.crossentropy_backward(P, y, n_threads),
               _losses.softmax_crossentropy_backward(P, y, n_threads)]
        for kind in (_losses.BINARY_CROSSENTROPY, _losses.SQUARED, _losses.ABSOLUTE):
            got += [_losses.sample_losses(kind, P, P, n_threads),
                    _losses.mean_loss_backward(kind, P, P, n_threads)]
        for a in got:
            assert a.shape in ((6, 4), (6,)) and a.dtype == np.float32
            assert a.flags.c_contiguous and a.flags.writeable and a.base is None
            assert np.isfinite(a).all()
        results.append(got)
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(P, kept)
