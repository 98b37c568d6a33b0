# The one place where nnfs_fast's kernels go parallel.
#
# A kernel describes its work as n_tasks independent tasks (each owning its outputs, so results
# do not depend on the thread count) and a function fn(ctx, task). run_tasks runs them on the
# calling thread when one thread is wanted -- without entering OpenMP at all: a prange with
# use_threads_if=False still costs ~1.5 us per call, which is most of a small layer -- and
# otherwise splits them statically among the OpenMP threads.
from cython.parallel cimport prange

ctypedef void (*TaskFn)(void* ctx, Py_ssize_t task) noexcept nogil


cdef inline void run_tasks(TaskFn fn, void* ctx, Py_ssize_t n_tasks,
                           int n_threads) noexcept nogil:
    cdef Py_ssize_t t
    if n_threads <= 1 or n_tasks <= 1:
        for t in range(n_tasks):
            fn(ctx, t)
    else:
        for t in prange(n_tasks, num_threads=n_threads, schedule="static"):
            fn(ctx, t)
