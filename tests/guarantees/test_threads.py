"""Thread control (README.md, Threads): get/set_num_threads, OMP_NUM_THREADS, threadpoolctl, and
results
that do not depend on the thread count."""
import json
import re

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

import nnfs_fast
from conftest import ALL_THREADS, run_python
from nnfs_fast import Layer_Dense

needs_openmp = pytest.mark.skipif(not nnfs_fast.openmp_enabled(),
                                  reason="built without OpenMP: one thread only")


def test_get_num_threads_is_a_positive_int():
    n = nnfs_fast.get_num_threads()
    assert type(n) is int and n >= 1


@needs_openmp
@pytest.mark.parametrize("n", [1, 2, 3, 7])
def test_set_num_threads_round_trip(restore_threads, n):
    nnfs_fast.set_num_threads(n)
    assert nnfs_fast.get_num_threads() == n


@pytest.mark.parametrize("bad", [0, -1, 1.5, 2.0, "2", None, True, False])
def test_set_num_threads_rejects_bad_values(restore_threads, bad):
    with pytest.raises(ValueError, match=r"set_num_threads.*int >= 1.*" + re.escape(repr(bad))):
        nnfs_fast.set_num_threads(bad)
    assert nnfs_fast.get_num_threads() == restore_threads


@needs_openmp
@pytest.mark.parametrize("value", ["1", "3"])
def test_omp_num_threads_sets_the_default(value):
    code = ("import json, nnfs_fast; from nnfs_fast.runtime.config import config; "
            "print(json.dumps([nnfs_fast.get_num_threads(), config()['threads']]))")
    proc = run_python(code, env={"OMP_NUM_THREADS": value})
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [int(value), int(value)]


def test_openmp_runtime_is_visible_to_threadpoolctl():
    """A fresh process: importing nnfs_fast loads the OpenMP runtime threadpoolctl reports."""
    code = """
import json
from threadpoolctl import threadpool_info
openmp = lambda: sorted(m["filepath"] for m in threadpool_info() if m["user_api"] == "openmp")
before = openmp()
import nnfs_fast
print(json.dumps([nnfs_fast.openmp_enabled(), before, openmp()]))
"""
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr
    enabled, before, after = json.loads(proc.stdout)
    if not enabled:
        pytest.skip("built without OpenMP")
    assert after, "no OpenMP runtime visible to threadpoolctl after importing nnfs_fast"
    if not before:
        assert set(after) - set(before), "the OpenMP runtime was not loaded by nnfs_fast"
    assert any(m["user_api"] == "openmp" for m in threadpool_info())


@needs_openmp
def test_threadpool_limits_changes_nnfs_fast_threads(restore_threads):
    with threadpool_limits(1, user_api="openmp"):
        assert nnfs_fast.get_num_threads() == 1
    assert nnfs_fast.get_num_threads() == restore_threads
    with threadpool_limits(3, user_api="openmp"):
        assert nnfs_fast.get_num_threads() == 3
    with threadpool_limits(limits=1):
        assert nnfs_fast.get_num_threads() == 1
    assert nnfs_fast.get_num_threads() == restore_threads


def train_steps(X, G, steps=3):
    """A few forward/backward/update steps of two layers; every array they produced."""
    np.random.seed(0)
    layers = [Layer_Dense(X.shape[1], 96, weight_regularizer_l2=5e-4), Layer_Dense(96, 10)]
    results = []
    for _ in range(steps):
        h = X
        for layer in layers:
            layer.forward(h)
            h = layer.output
        d = G
        for layer in reversed(layers):
            layer.backward(d)
            d = layer.dinputs
            layer.weights += -0.1 * layer.dweights
            layer.biases += -0.1 * layer.dbiases
        results += [a.copy() for layer in layers
                    for a in (layer.output, layer.dweights, layer.dbiases, layer.dinputs)]
    return results


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(5)
    return (rng.standard_normal((700, 33)).astype(np.float32),
            rng.standard_normal((700, 10)).astype(np.float32))


def assert_all_equal(a_list, b_list, what):
    for i, (a, b) in enumerate(zip(a_list, b_list)):
        np.testing.assert_array_equal(a, b, err_msg=f"{what}: array {i}")


@needs_openmp
def test_layer_results_identical_for_one_and_all_threads(batch, restore_threads):
    """Via threadpoolctl and via set_num_threads: 1 thread, all threads, 3 and 4 threads, and
    twice with all threads (run to run)."""
    with threadpool_limits(1, user_api="openmp"):
        one = train_steps(*batch)
    assert_all_equal(train_steps(*batch), one, f"{ALL_THREADS} threads vs 1")
    assert_all_equal(train_steps(*batch), one, "run to run")
    for n in (3, 4):
        nnfs_fast.set_num_threads(n)
        assert_all_equal(train_steps(*batch), one, f"{n} threads vs 1")


def test_import_leaves_the_environment_alone():
    """No OpenMP wait-policy variable is set for the process or its subprocesses: kernels run
    on nnfs_fast's own pool, and OpenMP's spinning no longer matters."""
    code = ("import os; before = dict(os.environ); import nnfs_fast; "
            "print(sorted(set(os.environ.items()) ^ set(before.items())))")
    proc = run_python(code, env={"GOMP_SPINCOUNT": None, "OMP_WAIT_POLICY": None})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


class _KernelSpy:
    """Stands for a kernel module: its threaded entries record their last argument (the
    n_threads the book's class passed), everything else is the module's own."""

    def __init__(self, module, seen):
        self._module, self._seen = module, seen

    def __getattr__(self, name):
        real = getattr(self._module, name)
        if not name.endswith(("_forward", "_backward", "_update")):
            return real

        def call(*args):
            self._seen.append((name, args[-1]))
            return real(*args)
        return call


@needs_openmp
def test_the_book_loop_reads_the_thread_count_at_every_call(monkeypatch, restore_threads):
    """Issue 12's cheaper Python entry caches nothing that outlives a call: set_num_threads and
    threadpoolctl's limits between two steps of the chapter 10 loop reach every kernel of the
    next step (README.md, Threads)."""
    from nnfs_fast import (
        Activation_ReLU,
        Activation_Softmax_Loss_CategoricalCrossentropy,
        Optimizer_Adam,
        activations,
        layers,
        losses,
        optimizers,
    )
    seen = []
    for module, name in ((layers, "kernels"), (activations, "_k"), (losses, "_k"),
                         (optimizers, "_optimizers")):
        monkeypatch.setattr(module, name, _KernelSpy(getattr(module, name), seen))
    np.random.seed(0)
    X = np.random.randn(30, 2).astype(np.float32)
    y = np.arange(30) % 3
    dense1, relu, dense2 = Layer_Dense(2, 8), Activation_ReLU(), Layer_Dense(8, 3)
    loss_activation = Activation_Softmax_Loss_CategoricalCrossentropy()
    optimizer = Optimizer_Adam(learning_rate=0.05, decay=5e-7)

    def step():
        seen.clear()
        dense1.forward(X)
        relu.forward(dense1.output)
        dense2.forward(relu.output)
        loss_activation.forward(dense2.output, y)
        loss_activation.backward(loss_activation.output, y)
        dense2.backward(loss_activation.dinputs)
        relu.backward(dense2.dinputs)
        dense1.backward(relu.dinputs)
        optimizer.pre_update_params()
        optimizer.update_params(dense1)
        optimizer.update_params(dense2)
        optimizer.post_update_params()
        assert len(seen) == 10, seen
        return {n for _, n in seen}

    for n in (1, 3, 1, 2):
        nnfs_fast.set_num_threads(n)
        assert step() == {n}, f"set_num_threads({n})"
    with threadpool_limits(4, user_api="openmp"):
        assert step() == {4}, "threadpool_limits(4)"
    assert step() == {2}, "after threadpool_limits"
