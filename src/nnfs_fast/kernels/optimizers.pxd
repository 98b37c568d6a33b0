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
