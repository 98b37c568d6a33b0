# The one place where nnfs_fast's kernels go parallel.
#
# A kernel describes its work as n_tasks independent tasks (each owning its outputs, so results
# do not depend on the thread count or on which thread runs a task) and a function
# fn(ctx, task). run_tasks runs them on the calling thread when one thread is wanted -- without
# touching the pool at all, a plain loop -- and otherwise on nnfs_fast's caller-runs pool
# (runtime/pool.h): the caller and up to n_threads - 1 workers claim tasks from a shared counter and
# the call returns when all are done, so a worker that gets no core never holds it up.
from nnfs_fast.runtime.openmp cimport TaskFn, pool_run, pool_slot

# ---------------------------------------------------------------------------------------------
# Every threshold that decides one thread or many (work under it runs on the calling thread,
# without a thread team). Measured on the development machines with the scripts in benchmarks/
# (results in benchmarks/RESULTS.md); the dense_<level> modules export PAR_FLOPS to Python.
cdef enum:
    # dense products (kernels/gemm/): from 2*M*N*K flops (benchmarks/threshold.py, RESULTS.md
    # "When do threads pay?": 0.2 MFLOP was too early on a busy machine, 2 MFLOP is not)
    PAR_FLOPS = 2000000
    # row and element kernels (kernels/rows.pxd's min_per_thread: activations, losses), in
    # work units (an add, compare or copy is 1; an exp or log is EXP_COST)
    PAR_WORK = 32768
    # dropout passes (kernels/dropout.pyx) and optimizer updates (kernels/optimizers.pyx), in
    # elements. These two are round numbers from the benchmarks/bench_train.py runs; no script
    # sweeps them yet (benchmarks/threshold.py sweeps PAR_FLOPS only)
    PAR_ELEMS = 32768


cdef inline dict thresholds():
    """The thresholds above, for a kernel module to export to Python (tests derive their
    shapes from them): globals().update(thresholds())."""
    return {"PAR_FLOPS": PAR_FLOPS, "PAR_WORK": PAR_WORK, "PAR_ELEMS": PAR_ELEMS}
# ---------------------------------------------------------------------------------------------


cdef inline void run_tasks(TaskFn fn, void* ctx, Py_ssize_t n_tasks,
                           int n_threads) noexcept nogil:
    cdef Py_ssize_t t
    if n_threads <= 1 or n_tasks <= 1:
        for t in range(n_tasks):
            fn(ctx, t)
    else:
        pool_run(fn, ctx, n_tasks, n_threads)


cdef inline int thread_slot() noexcept nogil:
    """Inside a task: the running thread's slot, 0 (the caller) to n_threads - 1 of its
    run_tasks call; per-thread scratch is indexed by it."""
    return pool_slot()


# Flat work: fn(ctx, start, end) over the half-open range [start, end) of [0, n).
ctypedef void (*RangeFn)(void* ctx, Py_ssize_t start, Py_ssize_t end) noexcept nogil

cdef enum:
    BLOCK_ALIGN = 16    # range blocks start on multiples of this (64 bytes of float32)

ctypedef struct _Ranges:
    RangeFn fn
    void* ctx
    Py_ssize_t n, block


cdef inline void _range_task(void* ranges, Py_ssize_t t) noexcept nogil:
    cdef _Ranges* r = <_Ranges*>ranges
    r.fn(r.ctx, min(r.n, t * r.block), min(r.n, (t + 1) * r.block))


cdef inline void run_range(RangeFn fn, void* ctx, Py_ssize_t n, int n_threads,
                           Py_ssize_t min_per_thread) noexcept nogil:
    """fn over [0, n): on the calling thread (no pool) unless at least two threads get
    min_per_thread items each; then one contiguous block per thread, each starting on a
    multiple of BLOCK_ALIGN (whole cache lines of float32 outputs per thread)."""
    cdef Py_ssize_t nt = n // max(<Py_ssize_t>1, min_per_thread)
    cdef _Ranges r
    if nt > n_threads:
        nt = n_threads
    if nt <= 1:
        fn(ctx, 0, n)
        return
    r.fn, r.ctx, r.n = fn, ctx, n
    r.block = ((n + nt - 1) // nt + BLOCK_ALIGN - 1) // BLOCK_ALIGN * BLOCK_ALIGN
    run_tasks(_range_task, &r, (n + r.block - 1) // r.block, <int>nt)
