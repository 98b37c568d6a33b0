# The optimizer kernels' record and range functions, for the training plan (kernels/plan.pyx);
# optimizers.pyx defines them (see its design note).

cdef extern from "optimizer_targets.h" nogil:
    # one parameter's update (its fields: kernels/optimizer_targets.h)
    ctypedef struct Args "nnfs_opt_args":
        float* param            # IN/OUT  weights or biases
        const float* grad       # IN      their gradient
        float* momentums        # IN/OUT  SGD momentums or Adam's first moment
        float* cache            # IN/OUT  RMSprop/Adagrad cache or Adam's second moment
        Py_ssize_t n            # elements of each
        float lr, momentum, rho, one_minus_rho, beta_1, one_minus_beta_1, beta_2
        float one_minus_beta_2, momentum_correction, cache_correction, epsilon

cdef void sgd_range(void* ctx, Py_ssize_t start, Py_ssize_t end) noexcept nogil
cdef void sgd_momentum_range(void* ctx, Py_ssize_t start, Py_ssize_t end) noexcept nogil
cdef void cache_range(void* ctx, Py_ssize_t start, Py_ssize_t end) noexcept nogil
cdef void adam_range(void* ctx, Py_ssize_t start, Py_ssize_t end) noexcept nogil


cdef inline bint overlaps(const float* x, const float* y, Py_ssize_t n) noexcept nogil:
    """Whether the n floats from x and the n floats from y share an element."""
    return n > 0 and x < y + n and y < x + n


cdef inline bint written_overlap(const Args* a, int* j, int* k) noexcept nogil:
    """Whether two of the arrays an update writes share an element: param (0), momentums (1)
    and cache (2), the last two when not NULL; then *j > *k name the first such pair. The
    loops write them in place (the book rebinds its state to new arrays), so such an update
    is refused (optimizers.pyx's separate; the training plan falls back to it)."""
    cdef float* w[3]
    cdef int i, m
    w[0], w[1], w[2] = a.param, a.momentums, a.cache
    for i in range(1, 3):
        for m in range(i):
            if w[i] != NULL and w[m] != NULL and overlaps(w[i], w[m], a.n):
                j[0], k[0] = i, m
                return True
    return False
