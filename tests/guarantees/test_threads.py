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
