"""No memory growth in long runs (docs/GUARANTEES.md): 20,000 training steps, 1,000 save/load
cycles, many large kernel calls and many refused calls (error paths) leave the resident set
size where it was after a warm-up, within a generous bound; a tracemalloc run catches smaller
leaks of Python objects and NumPy buffers (NumPy reports its allocations to tracemalloc), such
as a reference a kernel forgets to release.

Resident memory is read from /proc/self/statm (Linux) or, elsewhere, the peak from
``resource.getrusage``; Windows has neither and skips. Marked slow (10-20 s in all).
"""
import gc
import os
import tracemalloc

import numpy as np
import pytest

import nnfs_fast
from nnfs_fast import (
    Accuracy_Categorical,
    Activation_ReLU,
    Activation_Softmax,
    Layer_Dense,
    Layer_Dropout,
    Loss_CategoricalCrossentropy,
    Model,
    Optimizer_Adam,
)
from nnfs_fast.datasets import spiral_data

pytestmark = pytest.mark.slow

MiB = 1 << 20


def resident_bytes():
    """Current resident set size (Linux), else the peak so far (macOS, BSD)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        pass
    try:
        import resource
    except ImportError:
        pytest.skip("no way to read the resident set size here")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if os.uname().sysname == "Darwin" else peak * 1024


def growth(run, warmup, rounds):
    """Resident bytes gained by ``rounds`` calls of run() after ``warmup`` calls."""
    for _ in range(warmup):
        run()
    gc.collect()
    before = resident_bytes()
    for _ in range(rounds):
        run()
    gc.collect()
    return resident_bytes() - before


def python_growth(run, warmup, rounds):
    """Bytes still allocated (Python objects and NumPy buffers) after ``rounds`` calls.
    Tracing starts before the warm-up, so that the arrays each call replaces (outputs,
    gradients) are traced both when freed and when made."""
    tracemalloc.start()
    try:
        for _ in range(warmup):
            run()
        gc.collect()
        before = tracemalloc.take_snapshot()
        for _ in range(rounds):
            run()
        gc.collect()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    stats = after.compare_to(before, "lineno")
    return sum(s.size_diff for s in stats), stats[:5]


def small_model():
    np.random.seed(0)
    model = Model()
    model.add(Layer_Dense(2, 16, weight_regularizer_l2=5e-4))
    model.add(Activation_ReLU())
    model.add(Layer_Dropout(0.1))
    model.add(Layer_Dense(16, 3))
    model.add(Activation_Softmax())
    model.set(loss=Loss_CategoricalCrossentropy(), optimizer=Optimizer_Adam(),
              accuracy=Accuracy_Categorical())
    model.finalize()
    return model


@pytest.fixture(scope="module")
def spiral():
    np.random.seed(0)
    return spiral_data(samples=100, classes=3)   # 300 samples: 9 full batches of 32 + 12


def test_20000_training_steps_keep_memory_flat(spiral):
    X, y = spiral
    model = small_model()

    def epoch():   # 10 steps, the last one a short batch
        model.train(X, y, epochs=1, batch_size=32, verbose=False)

    gained = growth(epoch, warmup=100, rounds=2000)
    assert gained < 16 * MiB, f"{gained / MiB:.1f} MiB more after 20,000 steps"


def test_training_steps_leave_no_python_objects_behind(spiral):
    X, y = spiral
    model = small_model()
    gained, top = python_growth(
        lambda: model.train(X, y, epochs=1, batch_size=32, verbose=False), 20, 200)
    assert gained < 32 * 1024, f"{gained} bytes kept by 2,000 steps: {top}"


def test_1000_save_load_cycles_keep_memory_flat(tmp_path, spiral):
    X, y = spiral
    model = small_model()
    model.train(X, y, epochs=2, verbose=False)
    path = tmp_path / "m.model"
    parms = tmp_path / "m.parms"

    def cycle():
        model.save(path)
        loaded = Model.load(path)
        loaded.save_parameters(parms)
        loaded.load_parameters(parms)

    gained = growth(cycle, warmup=50, rounds=1000)
    assert gained < 16 * MiB, f"{gained / MiB:.1f} MiB more after 1,000 save/load cycles"
    gained, top = python_growth(cycle, 10, 50)
    assert gained < 32 * 1024, f"{gained} bytes kept by 50 save/load cycles: {top}"


def test_large_kernel_calls_and_refused_calls_keep_memory_flat(restore_threads):
    """Large layers (packed GEMM buffers, thread teams) and calls refused by the kernels'
    checks (their error paths must release what they took)."""
    nnfs_fast.set_num_threads(max(2, nnfs_fast.get_num_threads()))
    rng = np.random.default_rng(0)
    X = rng.standard_normal((256, 512)).astype(np.float32)
    G = rng.standard_normal((256, 384)).astype(np.float32)
    np.random.seed(0)
    layer = Layer_Dense(512, 384)
    wrong = np.ones((256, 511), np.float32)

    def calls():
        layer.forward(X)
        layer.backward(G)
        for bad in (wrong, wrong.astype(np.float64), wrong[:, ::2]):
            try:
                layer.forward(bad)
            except ValueError:
                pass
        try:
            layer.backward(G[:, :100])
        except ValueError:
            pass

    gained = growth(calls, warmup=20, rounds=300)
    assert gained < 16 * MiB, f"{gained / MiB:.1f} MiB more after 300 rounds"
    gained, top = python_growth(calls, 5, 30)
    assert gained < 32 * 1024, f"{gained} bytes kept by 30 rounds: {top}"
