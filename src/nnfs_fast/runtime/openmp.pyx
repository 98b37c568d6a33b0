"""Threads for every nnfs_fast kernel: the thread count, and the pool that runs the tasks.

The thread count is OpenMP's own setting: ``OMP_NUM_THREADS`` sets the default,
``set_num_threads`` and threadpoolctl's ``threadpool_limits(n, "openmp")`` change it for the
calling thread, and kernels read it at each call. The threads themselves are nnfs_fast's own
caller-runs pool (runtime/pool.h): the calling thread works on its kernel's tasks beside the pool's
workers and the call ends when the tasks are done, so a worker that gets no core (beside
NumPy's BLAS threads, another process, another pool) costs nothing. No OpenMP parallel region
runs, so OpenMP's spin settings (``GOMP_SPINCOUNT``, ``KMP_BLOCKTIME``) do not matter.

A forked child (``multiprocessing``'s fork start method) starts its own workers at its first
parallel call.
"""
import numbers

from nnfs_fast.runtime.openmp cimport (NNFS_FAST_HAVE_OPENMP, omp_get_max_threads,
                                       omp_set_num_threads)

cdef extern from "pool.h" nogil:
    ctypedef void (*nnfs_task_fn)(void* ctx, Py_ssize_t task) noexcept nogil
    const char* NNFS_POOL_THREADS
    int NNFS_POOL_MAX_WORKERS
    void nnfs_pool_run(nnfs_task_fn fn, void* ctx, Py_ssize_t n_tasks, int n_threads)
    int nnfs_pool_slot()
    int nnfs_pool_init()
    int nnfs_pool_workers()
    long long nnfs_pool_jobs()
    long long nnfs_pool_tasks_by_workers()
    long long nnfs_pool_busy_runs()
    long long nnfs_pool_same_core_skips()
    long long nnfs_pool_job_ns()
    long long nnfs_pool_wait_ns()
    long long nnfs_pool_caller_sleeps()
    long long nnfs_pool_backoffs()
    long long nnfs_pool_serial_runs()
    int nnfs_pool_guard_on()
    void nnfs_pool_set_guard(int on, int sample)
    int NNFS_GUARD_SAMPLE
    long long nnfs_pool_spin_ns()
    void nnfs_pool_set_spin_ns(long long ns)
    long long nnfs_pool_stalling()
    long long nnfs_pool_stalls()
    void nnfs_pool_stall(int k, long long ns, int where)
    int NNFS_STALL_BEFORE_CLAIM, NNFS_STALL_IN_TASK

if nnfs_pool_init() != 0:
    raise ImportError("nnfs_fast: could not register the thread pool's at-fork handler")


cdef void pool_run(TaskFn fn, void* ctx, Py_ssize_t n_tasks, int n_threads) noexcept nogil:
    """fn(ctx, t) for t in [0, n_tasks) on up to n_threads threads (the caller included)."""
    nnfs_pool_run(<nnfs_task_fn>fn, ctx, n_tasks, n_threads)


cdef int pool_slot() noexcept nogil:
    """The running thread's slot in its job: 0 (the caller) to n_threads - 1."""
    return nnfs_pool_slot()


def openmp_enabled():
    """True when the extensions were compiled with OpenMP."""
    return bool(NNFS_FAST_HAVE_OPENMP)


def get_num_threads():
    """Threads the next kernel call from this Python thread may use (>= 1)."""
    return max(1, omp_get_max_threads())


def set_num_threads(n):
    """Set the thread count for kernel calls made from this Python thread.

    n: int >= 1. Sets OpenMP's count for this thread (as threadpoolctl does). Calls use at
    most 256 threads (the caller and 255 workers).
    """
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"set_num_threads: n must be an int >= 1, got {n!r}")
    omp_set_num_threads(int(n))


def runtime():
    """One line for show_config: the parallel runtime, its policy and its workers."""
    guard = "one thread while threads lose" if nnfs_pool_guard_on() else "guard off"
    return (f"nnfs_fast pool ({NNFS_POOL_THREADS.decode()}; caller-runs, {guard}; idle spin "
            f"{nnfs_pool_spin_ns() / 1000:g} us; {nnfs_pool_workers()} workers started)")


def _pool_stats():
    """Counters of the pool (tests, benchmarks): jobs run on it, tasks its workers ran,
    calls that ran on their own thread because another thread's job held the pool, jobs a
    worker left because it woke on the caller's own core, the guard's one-thread periods
    (backoffs) and the calls they ran on one thread, seconds
    spent in jobs and, of those, by callers waiting for tasks that workers had started
    (caller_sleeps: waits long enough to sleep), workers started, idle spin in
    microseconds, and the test hook's state (stalls begun, one in progress)."""
    return {"jobs": nnfs_pool_jobs(), "tasks_by_workers": nnfs_pool_tasks_by_workers(),
            "busy_runs": nnfs_pool_busy_runs(), "same_core_skips": nnfs_pool_same_core_skips(),
            "backoffs": nnfs_pool_backoffs(),
            "serial_runs": nnfs_pool_serial_runs(), "job_seconds": nnfs_pool_job_ns() / 1e9,
            "wait_seconds": nnfs_pool_wait_ns() / 1e9, "caller_sleeps": nnfs_pool_caller_sleeps(),
            "workers": nnfs_pool_workers(),
            "spin_us": nnfs_pool_spin_ns() / 1000, "stalls": nnfs_pool_stalls(),
            "stalling": bool(nnfs_pool_stalling())}


def _set_spin_us(us):
    """How long idle workers (and a caller waiting for them) spin before sleeping, in
    microseconds (benchmarks; the default is in runtime/pool.h)."""
    if isinstance(us, bool) or not isinstance(us, numbers.Real) or not 0 <= us <= 1e6:
        raise ValueError(f"_set_spin_us: us must be a number in [0, 1e6], got {us!r}")
    nnfs_pool_set_spin_ns(<long long>(us * 1000))


def _set_guard(on, sample=NNFS_GUARD_SAMPLE):
    """Turn the pool's answers to contention (runtime/pool.h: one thread while the pool loses
    against it; a worker woken on the caller's own core leaves the job) on or off, and
    measure one job in ``sample`` (tests: 1, so that every job counts)."""
    if isinstance(sample, bool) or not isinstance(sample, numbers.Integral) or sample < 1:
        raise ValueError(f"_set_guard: sample must be an int >= 1, got {sample!r}")
    nnfs_pool_set_guard(bool(on), int(sample))


_STALL_WHERE = {"before_claim": NNFS_STALL_BEFORE_CLAIM, "in_task": NNFS_STALL_IN_TASK}


def _stall_worker(k, seconds, where="before_claim"):
    """Test hook: worker k (0-based; the calling thread is not a worker) sleeps ``seconds``
    once, the next time it joins a job: "before_claim" holds the job's counter it has just
    read (a late worker: the call must not wait for it), "in_task" holds a task it has
    claimed (the job stays in flight: other callers must not wait for it). k = -1 disarms."""
    if (isinstance(k, bool) or not isinstance(k, numbers.Integral)
            or not -1 <= k < NNFS_POOL_MAX_WORKERS):
        raise ValueError(f"_stall_worker: k must be an int in [-1, {NNFS_POOL_MAX_WORKERS}), "
                         f"got {k!r}")
    if isinstance(seconds, bool) or not isinstance(seconds, numbers.Real) \
            or not 0 <= seconds <= 60:
        raise ValueError(f"_stall_worker: seconds must be a number in [0, 60], got {seconds!r}")
    if where not in _STALL_WHERE:
        raise ValueError(f"_stall_worker: where must be one of {sorted(_STALL_WHERE)}, "
                         f"got {where!r}")
    nnfs_pool_stall(int(k), <long long>(seconds * 1e9), _STALL_WHERE[where])
