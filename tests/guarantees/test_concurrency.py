"""Threads, fork and spawn (docs/GUARANTEES.md).

* Kernels release the GIL: while one Python thread is inside a long dense kernel, another
  keeps running Python code.
* Kernels are re-entrant: models trained in parallel Python threads end bit-identical to the
  same models trained one after another, and kernels called from several threads at once give
  the results of single calls.
* ``set_num_threads`` acts on the calling Python thread only (OpenMP's per-thread setting).
* After kernels have run on the thread pool, a child made with the ``fork`` start method runs
  kernels on its own threads (the pool's at-fork handler resets it; tests/kernels/test_pool.py
  checks the child's workers) instead of hanging, and the ``spawn`` start method works too.
  Children are joined with a timeout: a hang fails the test.
* Concurrent saves to one path leave one complete file.

Worker functions live at module level so that spawned children can import them.
"""
import multiprocessing
import os
import threading
import time

import numpy as np
import pytest

import nnfs_fast
from nnfs_fast import (
    Accuracy_Categorical,
    Activation_ReLU,
    Activation_Softmax,
    Layer_Dense,
    Loss_CategoricalCrossentropy,
    Model,
    Optimizer_Adam,
)
from nnfs_fast.datasets import spiral_data

CHILD_TIMEOUT = 120          # seconds; a hung child fails the test after this


def build_model(seed, width=64):
    np.random.seed(seed)
    model = Model()
    model.add(Layer_Dense(2, width))
    model.add(Activation_ReLU())
    model.add(Layer_Dense(width, width))
    model.add(Activation_ReLU())
    model.add(Layer_Dense(width, 3))
    model.add(Activation_Softmax())
    model.set(loss=Loss_CategoricalCrossentropy(), optimizer=Optimizer_Adam(learning_rate=0.02),
              accuracy=Accuracy_Categorical())
    model.finalize()
    return model


def dataset(seed, samples=200):
    np.random.seed(100 + seed)
    return spiral_data(samples=samples, classes=3)


def train_model(seed):
    """Train model ``seed`` on dataset ``seed``; return its parameters and history."""
    return train(build_model(seed), *dataset(seed))


def train(model, X, y):
    """Train without touching the global RNG (unlike building a model or a dataset)."""
    history = model.train(X, y, epochs=5, batch_size=100, verbose=False)
    return [a.copy() for pair in model.get_parameters() for a in pair], history["loss"]


def child_work(queue, n_threads=None):
    """In a child process: report the thread count, a big layer's output and a training run."""
    try:
        if n_threads is not None:
            nnfs_fast.set_num_threads(n_threads)
        X = np.random.default_rng(5).standard_normal((2000, 300)).astype(np.float32)
        np.random.seed(0)
        layer = Layer_Dense(300, 200)
        layer.forward(X)
        queue.put(("ok", nnfs_fast.get_num_threads(), layer.output, train_model(1)))
    except BaseException as exc:  # report, don't hang the parent
        queue.put(("error", repr(exc), None, None))


def run_child(method, n_threads=None):
    """Start child_work with ``method``; return what it reported, failing on a hang."""
    ctx = multiprocessing.get_context(method)
    queue = ctx.Queue()
    child = ctx.Process(target=child_work, args=(queue, n_threads))
    child.start()
    try:
        result = queue.get(timeout=CHILD_TIMEOUT)
    except Exception:  # noqa: BLE001 - queue.Empty: no answer in time
        result = None
    child.join(timeout=30)
    alive = child.is_alive()
    if alive:
        child.kill()
        child.join(10)
    assert not alive and result is not None, (
        f"{method} child hung (no result in {CHILD_TIMEOUT} s): kernels after "
        f"{method} must not wait for the parent's OpenMP threads")
    assert child.exitcode == 0, f"{method} child exit code {child.exitcode}"
    assert result[0] == "ok", f"{method} child failed: {result[1]}"
    return result[1:]


def reference_results():
    """What child_work computes, computed here."""
    X = np.random.default_rng(5).standard_normal((2000, 300)).astype(np.float32)
    np.random.seed(0)
    layer = Layer_Dense(300, 200)
    layer.forward(X)
    return layer.output, train_model(1)


def assert_same_training(got, want):
    (params, losses), (params0, losses0) = got, want
    assert losses == losses0
    for a, b in zip(params, params0):
        np.testing.assert_array_equal(a, b)


# -------------------------------------------------------------------------------- the GIL

def test_kernels_release_the_gil(restore_threads):
    """A Python thread keeps ticking while another runs one long dense kernel. Were the GIL
    held, the ticking thread would stall for the whole kernel."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((3000, 1500)).astype(np.float32)
    np.random.seed(0)
    layer = Layer_Dense(1500, 1500)
    window = []
    started = threading.Event()

    def worker():
        nnfs_fast.set_num_threads(1)      # this thread only: one long single-thread call
        started.set()
        t0 = time.perf_counter()
        layer.forward(X)
        window.append((t0, time.perf_counter()))

    thread = threading.Thread(target=worker)
    thread.start()
    started.wait()
    ticks = []
    while thread.is_alive():
        ticks.append(time.perf_counter())
    thread.join()
    t0, t1 = window[0]
    inside = [t for t in ticks if t0 <= t <= t1]
    gaps = np.diff([t0] + inside + [t1])
    assert t1 - t0 > 0.05, f"kernel too short to tell ({t1 - t0:.3f} s)"
    assert gaps.max() < 0.5 * (t1 - t0), (
        f"the main thread stalled {gaps.max():.3f} s of a {t1 - t0:.3f} s kernel call: "
        "the GIL was held")


# ------------------------------------------------------------------ parallel Python threads

def test_models_trained_in_parallel_threads_match_sequential_training():
    seeds = range(4)
    sequential = [train_model(seed) for seed in seeds]
    # models and data come from the global RNG: made here, trained in the threads
    jobs = [(build_model(seed), *dataset(seed)) for seed in seeds]
    results = {}
    errors = []
    barrier = threading.Barrier(len(seeds))

    def worker(seed):
        try:
            barrier.wait()
            results[seed] = train(*jobs[seed])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in seeds]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a training thread hung"
    assert not errors, errors
    for seed in seeds:
        assert_same_training(results[seed], sequential[seed])


def test_concurrent_kernel_calls_match_single_calls():
    """Many threads hammer the same layer objects' kernels (forward and backward of their own
    copies) and the optimizer's; every result equals the single-threaded one."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((512, 64)).astype(np.float32)
    G = rng.standard_normal((512, 96)).astype(np.float32)
    np.random.seed(0)
    reference = Layer_Dense(64, 96, weight_regularizer_l2=1e-3)
    reference.forward(X)
    reference.backward(G)
    want = (reference.output, reference.dweights, reference.dbiases, reference.dinputs)
    errors = []

    def worker(n_threads):
        try:
            nnfs_fast.set_num_threads(n_threads)
            layer = Layer_Dense(64, 96, weight_regularizer_l2=1e-3)
            layer.weights, layer.biases = reference.weights, reference.biases  # shared, read
            for _ in range(25):
                layer.forward(X)
                layer.backward(G)
                got = (layer.output, layer.dweights, layer.dbiases, layer.dinputs)
                for a, b in zip(got, want):
                    np.testing.assert_array_equal(a, b)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in (1, 2, 3, 1, 2, 3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads)
    assert not errors, errors[0]


def test_set_num_threads_is_per_python_thread(restore_threads):
    nnfs_fast.set_num_threads(2)
    seen = []

    def worker():
        nnfs_fast.set_num_threads(1)
        seen.append(nnfs_fast.get_num_threads())

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen == [1]
    assert nnfs_fast.get_num_threads() == 2


def test_concurrent_saves_leave_one_complete_file(tmp_path):
    path = tmp_path / "shared.model"
    models = [build_model(seed, width=16) for seed in range(4)]
    errors = []

    def worker(model):
        try:
            for _ in range(10):
                model.save(path)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(m,)) for m in models]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert os.listdir(tmp_path) == ["shared.model"]          # no temporary files left
    loaded = Model.load(path).get_parameters()
    assert any(all(np.array_equal(a, b) for pair, pair0 in zip(loaded, m.get_parameters())
                   for a, b in zip(pair, pair0)) for m in models)


# ------------------------------------------------------------------------- fork and spawn

needs_fork = pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(),
                                reason="no fork start method on this platform")


@needs_fork
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_fork_after_parallel_kernels_does_not_hang(restore_threads):
    nnfs_fast.set_num_threads(max(2, nnfs_fast.get_num_threads()))  # a real thread team
    output, training = reference_results()                           # has run here
    n_threads, child_output, child_training = run_child("fork")
    assert n_threads == nnfs_fast.get_num_threads()          # the parent's setting
    np.testing.assert_array_equal(child_output, output)   # thread count changes nothing
    assert_same_training(child_training, training)


@needs_fork
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_forked_child_runs_on_the_threads_it_asks_for(restore_threads):
    nnfs_fast.set_num_threads(max(2, nnfs_fast.get_num_threads()))
    output, _ = reference_results()
    n_threads, child_output, _ = run_child("fork", n_threads=4)
    assert n_threads == (4 if nnfs_fast.openmp_enabled() else 1)
    np.testing.assert_array_equal(child_output, output)


def test_spawned_child_runs_kernels_with_threads(restore_threads):
    nnfs_fast.set_num_threads(max(2, nnfs_fast.get_num_threads()))
    output, training = reference_results()
    n_threads, child_output, child_training = run_child("spawn", n_threads=2)
    assert n_threads == (2 if nnfs_fast.openmp_enabled() else 1)
    np.testing.assert_array_equal(child_output, output)
    assert_same_training(child_training, training)
