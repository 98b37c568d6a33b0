# Threads: the OpenMP shim (the sklearn/utils/_openmp_helpers.pxd pattern) that holds the thread
# count, and the pool every kernel runs its tasks on (runtime/pool.h, started from
# runtime/openmp.pyx; one per process). The package also builds without OpenMP: the shim then
# answers as a one-thread runtime would, so kernels run on the calling thread.
cdef extern from *:
    """
    #if NNFS_FAST_HAVE_OPENMP
    #include <omp.h>
    #else
    static int omp_get_max_threads(void) { return 1; }
    static void omp_set_num_threads(int n) { (void)n; }
    #endif
    """
    int omp_get_max_threads() noexcept nogil
    void omp_set_num_threads(int n) noexcept nogil
    int NNFS_FAST_HAVE_OPENMP

# A kernel's work: fn(ctx, task) for independent tasks, each owning its outputs.
ctypedef void (*TaskFn)(void* ctx, Py_ssize_t task) noexcept nogil

cdef void pool_run(TaskFn fn, void* ctx, Py_ssize_t n_tasks, int n_threads) noexcept nogil
cdef int pool_slot() noexcept nogil
