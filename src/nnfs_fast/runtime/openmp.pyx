"""Thread control for the OpenMP runtime that every nnfs_fast kernel runs on.

The thread count is OpenMP's own: ``OMP_NUM_THREADS`` sets the default, ``set_num_threads``
and threadpoolctl's ``threadpool_limits(n, "openmp")`` change it for the calling thread, and
kernels read it at each call. There is no second pool (no BLAS is called).

A process forked after kernels have run (``multiprocessing`` with the fork start method) runs
its kernels on one thread: GNU OpenMP cannot restart its thread pool in a forked child and
would hang at the first parallel region.
"""
import numbers
import os

from nnfs_fast.runtime.openmp cimport NNFS_FAST_HAVE_OPENMP, omp_get_max_threads, omp_set_num_threads

cdef bint _forked_child = False


def _after_fork_in_child():
    global _forked_child
    _forked_child = True


os.register_at_fork(after_in_child=_after_fork_in_child)


def openmp_enabled():
    """True when the extensions were compiled with OpenMP."""
    return bool(NNFS_FAST_HAVE_OPENMP)


def get_num_threads():
    """Threads the next kernel call from this Python thread may use (>= 1; 1 in a forked
    child)."""
    if _forked_child:
        return 1
    return max(1, omp_get_max_threads())


def set_num_threads(n):
    """Set the OpenMP thread count for kernel calls made from this Python thread.

    n: int >= 1. Affects the whole OpenMP runtime of this thread (as threadpoolctl does).
    """
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"set_num_threads: n must be an int >= 1, got {n!r}")
    omp_set_num_threads(int(n))
