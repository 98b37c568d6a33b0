"""The caller-runs thread pool every kernel runs on (runtime/pool.h).

* A call never waits for a worker that has not started a task: with worker 0 held up by the
  test hook (nnfs_fast.runtime.openmp._stall_worker) the call completes, on the calling thread, with
  the one-thread results while the worker still sleeps.
* A late worker (one that read a job's counter, then slept through that job and the next
  ones) never runs a task of a finished or a later job: every result stays exact.
* While one Python thread's job holds the pool, another thread's call runs its tasks itself
  instead of waiting for the pool.
* The guard: while parallel jobs take longer than the caller alone would have, calls run on
  the calling thread for a while, then the pool is tried again.
* The serial path never enters the pool; set_num_threads, threadpoolctl and OMP_NUM_THREADS
  decide how many threads a call uses; forked and spawned children start their own workers.
No assertion here is about time: "did not wait" is shown by the hook's state (the worker was
still asleep when the call returned) and by the pool's counters.
"""
import json
import multiprocessing
import os
import threading
import time

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import nnfs_fast
from conftest import run_python
from nnfs_fast.runtime import dispatch as _dispatch
from nnfs_fast.runtime.config import config
from nnfs_fast.runtime.openmp import _pool_stats, _set_guard, _set_spin_us, _stall_worker

pytestmark = pytest.mark.skipif(not nnfs_fast.openmp_enabled(),
                                reason="built without OpenMP: one thread only")

kernels = _dispatch.kernels
STALL = 1.0            # seconds a held-up worker sleeps: far longer than any call below
WAIT_LIMIT = 60.0      # seconds to wait for the worker to reach the hook (only a hang fails)


def layer_data(batch, n_in, n_out, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((batch, n_in), dtype=np.float32),
            (0.1 * rng.standard_normal((n_in, n_out))).astype(np.float32),
            (0.1 * rng.standard_normal((1, n_out))).astype(np.float32))


def forward(data, n_threads):
    return kernels.dense_forward(*data, True, n_threads)


def wait_for(condition, what):
    """Poll until condition() holds; fail after WAIT_LIMIT seconds."""
    deadline = time.monotonic() + WAIT_LIMIT
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.001)


@pytest.fixture
def pool():
    """A started pool with one worker, no stall armed, the guard off (so that every call
    above the thresholds uses the pool); every stall over and the guard back on after."""
    _set_guard(False)
    data = layer_data(128, 784, 128)
    forward(data, 2)
    assert _pool_stats()["workers"] >= 1
    yield
    _stall_worker(-1, 0)
    wait_for(lambda: not _pool_stats()["stalling"], "the held-up worker to wake")
    _set_guard(True)


def test_a_call_does_not_wait_for_a_held_up_worker(pool):
    data = layer_data(128, 784, 128)
    want = forward(data, 1)
    before = _pool_stats()
    _stall_worker(0, STALL, "before_claim")
    deadline = time.monotonic() + WAIT_LIMIT
    while True:                              # the worker stalls in the first job it joins
        np.testing.assert_array_equal(forward(data, 2), want)
        during = _pool_stats()
        if during["stalling"]:
            break
        assert during["stalls"] == before["stalls"], "a call waited for the held-up worker"
        assert time.monotonic() < deadline, "worker 0 never joined a job"

    for _ in range(20):
        np.testing.assert_array_equal(forward(data, 2), want)
    after = _pool_stats()
    assert after["stalling"], "the calls waited for the held-up worker"
    assert after["stalls"] == before["stalls"] + 1
    assert after["jobs"] > during["jobs"]                           # the calls used the pool
    assert after["tasks_by_workers"] == during["tasks_by_workers"]  # and ran every task here


def test_a_late_worker_never_runs_a_task_of_another_job(pool):
    """Worker 0 reads a job's counter, sleeps 50 ms holding it while calls with other data
    and shapes run (and are checked), then wakes into the middle of later jobs."""
    datas = [layer_data(*shape, seed=i) for i, shape in
             enumerate([(128, 784, 128), (300, 64, 64), (1024, 96, 48), (64, 784, 256)])]
    wants = [forward(d, 1) for d in datas]
    before = _pool_stats()
    _stall_worker(0, 0.05, "before_claim")
    for i in range(4000):
        np.testing.assert_array_equal(forward(datas[i % 4], 2), wants[i % 4])
        stats = _pool_stats()
        if stats["stalls"] > before["stalls"] and not stats["stalling"] \
                and stats["tasks_by_workers"] > before["tasks_by_workers"] + 50:
            break        # the worker stalled, woke, and has been working again since
    assert stats["stalls"] == before["stalls"] + 1
    assert stats["tasks_by_workers"] > before["tasks_by_workers"], \
        "the worker never joined a job after its stall"


def test_another_thread_runs_its_own_tasks_while_the_pool_is_busy(pool):
    """Thread A's job stays in flight while worker 0 sleeps inside a task it claimed; a call
    from the main thread meanwhile runs on its own thread and returns first."""
    big = layer_data(4096, 256, 64, seed=1)
    small = layer_data(128, 784, 128, seed=2)
    want_big, want_small = forward(big, 1), forward(small, 1)
    before = _pool_stats()
    results = []

    def thread_a():
        while _pool_stats()["stalls"] == before["stalls"]:
            results.append(forward(big, 2))

    _stall_worker(0, STALL, "in_task")
    a = threading.Thread(target=thread_a)
    a.start()
    wait_for(lambda: _pool_stats()["stalling"], "worker 0 to hold a claimed task")
    got = forward(small, 2)
    stats = _pool_stats()
    a.join(WAIT_LIMIT)
    assert not a.is_alive()
    np.testing.assert_array_equal(got, want_small)
    assert stats["stalling"], "the second caller waited for the busy pool"
    assert stats["busy_runs"] > before["busy_runs"]
    for r in results:
        np.testing.assert_array_equal(r, want_big)


def test_the_guard_runs_calls_on_one_thread_while_the_pool_loses(pool):
    """Worker 0 sleeps 50 ms inside a task it claimed: that job took far longer than the
    caller alone would have, so the next calls run on the calling thread; later the pool is
    tried again. Results stay exact throughout. (On a machine busy enough that the worker
    never gets to claim a task, jobs lose anyway and the guard backs off all the same.)"""
    data = layer_data(128, 784, 128)
    want = forward(data, 1)
    _set_guard(True, sample=1)               # measure every job
    before = _pool_stats()
    _stall_worker(0, 0.05, "in_task")
    stats, calls = before, 0
    while stats["serial_runs"] == before["serial_runs"]:   # stall, verdict, one thread
        np.testing.assert_array_equal(forward(data, 2), want)
        stats = _pool_stats()
        calls += 1
        assert calls < 2000, f"the guard did not back off: {stats}"
    assert stats["backoffs"] > before["backoffs"]
    deadline = time.monotonic() + WAIT_LIMIT
    while _pool_stats()["jobs"] == stats["jobs"]:             # the pool is tried again
        np.testing.assert_array_equal(forward(data, 2), want)
        assert time.monotonic() < deadline, "the pool was never tried again"


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity here")
def test_a_worker_on_the_callers_core_leaves_the_job_to_it():
    """All threads confined to one core: a woken worker could only take turns with the
    caller there, so it leaves every job (and the guard keeps later calls on one thread)."""
    code = """
import json, os
os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})   # workers inherit it
import numpy as np, nnfs_fast
from nnfs_fast.runtime.openmp import _pool_stats
from nnfs_fast.runtime.dispatch import kernels
rng = np.random.default_rng(0)
X, W = rng.standard_normal((128, 784), dtype=np.float32), np.ones((784, 128), np.float32)
b = np.zeros((1, 128), np.float32)
want = kernels.dense_forward(X, W, b, True, 1)
ok = all(np.array_equal(kernels.dense_forward(X, W, b, True, 2), want) for _ in range(300))
print(json.dumps([ok, _pool_stats()]))
"""
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr
    ok, stats = json.loads(proc.stdout)
    assert ok and stats["workers"] == 1
    assert stats["tasks_by_workers"] == 0


def test_the_guard_can_be_turned_off(pool):
    data = layer_data(128, 784, 128)
    before = _pool_stats()
    for _ in range(20):
        forward(data, 2)
    after = _pool_stats()
    assert after["serial_runs"] == before["serial_runs"] and after["jobs"] > before["jobs"]
    assert "guard off" in config()["runtime"]


def test_the_serial_path_never_enters_the_pool(pool):
    small = layer_data(300, 2, 64)         # below every parallel threshold
    before = _pool_stats()["jobs"]
    forward(small, 2)
    kernels.dense_backward(*small, np.ones((300, 64), np.float32), n_threads=2)
    assert _pool_stats()["jobs"] == before


def test_thread_controls_decide_the_pool_threads(pool, restore_threads):
    """threadpoolctl's OpenMP limit and set_num_threads set what a layer's calls use."""
    np.random.seed(0)
    layer = nnfs_fast.Layer_Dense(784, 128)
    X = layer_data(128, 784, 128)[0]
    with threadpool_limits(1, user_api="openmp"):
        before = _pool_stats()["jobs"]
        layer.forward(X)
        assert _pool_stats()["jobs"] == before
        one = layer.output
    nnfs_fast.set_num_threads(3)
    before = _pool_stats()["jobs"]
    layer.forward(X)
    assert _pool_stats()["jobs"] > before
    assert _pool_stats()["workers"] >= 2
    np.testing.assert_array_equal(layer.output, one)


@pytest.mark.parametrize("spin_us", [0, 20, 1000])
def test_results_do_not_depend_on_the_idle_spin(pool, spin_us):
    data = layer_data(128, 784, 128)
    want = forward(data, 1)
    old = _pool_stats()["spin_us"]
    try:
        _set_spin_us(spin_us)
        for _ in range(50):
            np.testing.assert_array_equal(forward(data, 2), want)
            time.sleep(0.0005 if spin_us == 0 else 0)    # workers asleep between calls
    finally:
        _set_spin_us(old)


def test_omp_num_threads_sets_the_pool_threads():
    code = """
import json, numpy as np, nnfs_fast
from nnfs_fast.runtime.openmp import _pool_stats
np.random.seed(0)
layer = nnfs_fast.Layer_Dense(784, 128)
layer.forward(np.ones((128, 784), np.float32))
print(json.dumps([nnfs_fast.get_num_threads(), _pool_stats()["workers"]]))
"""
    for value, want in (("1", [1, 0]), ("3", [3, 2])):
        proc = run_python(code, env={"OMP_NUM_THREADS": value})
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout) == want


def test_show_config_names_the_runtime():
    assert "caller-runs, one thread while threads lose" in config()["runtime"]


@pytest.mark.parametrize("args, match", [
    ((-2, 1.0), r"k must be an int in \[-1, 255\), got -2"),
    ((0.5, 1.0), r"k must be an int.*got 0.5"),
    ((0, -1), r"seconds must be a number in \[0, 60\], got -1"),
    ((0, 1.0, "later"), r"where must be one of \['before_claim', 'in_task'\], got 'later'"),
])
def test_the_stall_hook_refuses_bad_arguments(args, match):
    with pytest.raises(ValueError, match=match):
        _stall_worker(*args)


@pytest.mark.parametrize("call, match", [
    (lambda: _set_guard(True, 0), r"_set_guard: sample must be an int >= 1, got 0"),
    (lambda: _set_spin_us(-1), r"_set_spin_us: us must be a number in \[0, 1e6\], got -1"),
])
def test_the_private_knobs_refuse_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ------------------------------------------------------------------------- fork and spawn

def child_report(queue):
    """In a child: the pool's workers before and after a 2-thread call, and its output."""
    try:
        before = _pool_stats()["workers"]
        out = forward(layer_data(128, 784, 128), 2)
        queue.put(("ok", before, _pool_stats()["workers"], out))
    except BaseException as exc:  # noqa: BLE001 - reported, so the parent does not hang
        queue.put(("error", repr(exc), None, None))


@pytest.mark.parametrize("method", ["fork", "spawn"])
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_children_start_their_own_workers(pool, method):
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"no {method} start method on this platform")
    want = forward(layer_data(128, 784, 128), 1)
    ctx = multiprocessing.get_context(method)
    queue = ctx.Queue()
    child = ctx.Process(target=child_report, args=(queue,))
    child.start()
    status, before, after, out = queue.get(timeout=120)
    child.join(30)
    assert status == "ok", before
    assert child.exitcode == 0
    assert (before, after) == (0, 1)      # fork: the parent's worker is not copied
    np.testing.assert_array_equal(out, want)
