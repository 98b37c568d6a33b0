# OpenMP shim (the sklearn/utils/_openmp_helpers.pxd pattern): the package also builds without
# OpenMP, in which case these calls answer as a one-thread runtime would.
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
