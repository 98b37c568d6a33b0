# Optimizer kernels: one in-place pass over a parameter array and its state per update.
#
# Design
# ------
# The book updates a parameter with a chain of NumPy expressions (Adam: about 15 array
# temporaries per array). Each kernel here walks the C-contiguous float32 arrays once, as flat
# arrays, and applies the same float32 operations in the book's order, element by element:
#
#   sgd_update           W += (-lr) * g
#   sgd_momentum_update  u = momentum * m - lr * g;  m = u;  W += u
#   cache_update         cache = rho * cache + one_minus_rho * (g * g)
#                        W += (-lr) * g / (sqrt(cache) + eps)
#                        (RMSprop; Adagrad's cache += g**2 is rho = one_minus_rho = 1, exact)
#   adam_update          m = beta_1 * m + one_minus_beta_1 * g;   mhat = m / momentum_correction
#                        v = beta_2 * v + one_minus_beta_2 * (g * g); vhat = v / cache_correction
#                        W += (-lr) * mhat / (sqrt(vhat) + eps)
#
# Every scalar arrives as a C float: the Python-float hyper-parameters (and 1 - beta,
# 1 - beta**(iterations + 1), computed in double by the caller) rounded once to float32, as
# NumPy's weak-scalar rule does in the book's expressions. Without FMA contraction the results
# equal the book's float32 NumPy expressions bit for bit.
#
# Each kernel fills an Args record and hands a range function to parallel_for, which runs it
# over [0, n) on the calling thread, or split into one contiguous, cache-line-aligned block per
# thread when n >= PAR_ELEMS. (A prange with use_threads_if=False still enters the OpenMP
# runtime, about 1.5 us per call; biases are updated every step, so small arrays skip it.)
# Each element is written by one thread: results do not depend on the thread count.
# The range loops vectorize; the ones with sqrtf only when compiled with -fno-math-errno
# (otherwise sqrtf must be able to set errno for a negative argument, which gcc does with a
# branch per element).

from cython.parallel cimport prange
from libc.math cimport sqrtf

cdef enum:
    PAR_ELEMS = 32768   # below this many elements an update runs on one thread (benchmarks/)
    ALIGN = 16          # floats per 64-byte cache line: per-thread blocks start on one


cdef struct Args:
    float* param            # IN/OUT  weights or biases
    const float* grad       # IN      their gradient
    float* momentums        # IN/OUT  SGD momentums or Adam's first moment
    float* cache            # IN/OUT  RMSprop/Adagrad cache or Adam's second moment
    float lr, momentum, rho, one_minus_rho, beta_1, one_minus_beta_1, beta_2, one_minus_beta_2
    float momentum_correction, cache_correction, epsilon

ctypedef void (*RangeFn)(const Args* a, Py_ssize_t start, Py_ssize_t end) noexcept nogil


cdef void parallel_for(RangeFn fn, const Args* a, Py_ssize_t n, int n_threads) noexcept nogil:
    """fn(a, start, end) over [0, n): serially, or one aligned block per thread."""
    cdef Py_ssize_t t, block
    if n_threads <= 1 or n < PAR_ELEMS:
        fn(a, 0, n)
        return
    block = ((n + n_threads - 1) // n_threads + ALIGN - 1) // ALIGN * ALIGN
    for t in prange(n_threads, num_threads=n_threads, schedule="static"):
        fn(a, min(n, t * block), min(n, (t + 1) * block))


# The range functions copy the record into locals first: a float store through param could
# otherwise alias the float fields of *a, which would keep the loop from being vectorized.

cdef void sgd_range(const Args* a, Py_ssize_t start, Py_ssize_t end) noexcept nogil:
    cdef float* param = a.param
    cdef const float* grad = a.grad
    cdef float neg_lr = -a.lr
    cdef Py_ssize_t i
    for i in range(start, end):
        param[i] = param[i] + neg_lr * grad[i]


cdef void sgd_momentum_range(const Args* a, Py_ssize_t start, Py_ssize_t end) noexcept nogil:
    cdef float* param = a.param
    cdef const float* grad = a.grad
    cdef float* momentums = a.momentums
    cdef float lr = a.lr, momentum = a.momentum, u
    cdef Py_ssize_t i
    for i in range(start, end):
        u = momentum * momentums[i] - lr * grad[i]
        momentums[i] = u
        param[i] = param[i] + u


cdef void cache_range(const Args* a, Py_ssize_t start, Py_ssize_t end) noexcept nogil:
    cdef float* param = a.param
    cdef const float* grad = a.grad
    cdef float* cache = a.cache
    cdef float neg_lr = -a.lr, rho = a.rho, one_minus_rho = a.one_minus_rho
    cdef float epsilon = a.epsilon, g, c
    cdef Py_ssize_t i
    for i in range(start, end):
        g = grad[i]
        c = rho * cache[i] + one_minus_rho * (g * g)
        cache[i] = c
        param[i] = param[i] + neg_lr * g / (sqrtf(c) + epsilon)


cdef void adam_range(const Args* a, Py_ssize_t start, Py_ssize_t end) noexcept nogil:
    cdef float* param = a.param
    cdef const float* grad = a.grad
    cdef float* momentums = a.momentums
    cdef float* cache = a.cache
    cdef float neg_lr = -a.lr, beta_1 = a.beta_1, one_minus_beta_1 = a.one_minus_beta_1
    cdef float beta_2 = a.beta_2, one_minus_beta_2 = a.one_minus_beta_2
    cdef float momentum_correction = a.momentum_correction
    cdef float cache_correction = a.cache_correction, epsilon = a.epsilon, g, m, v
    cdef Py_ssize_t i
    for i in range(start, end):
        g = grad[i]
        m = beta_1 * momentums[i] + one_minus_beta_1 * g
        momentums[i] = m
        v = beta_2 * cache[i] + one_minus_beta_2 * (g * g)
        cache[i] = v
        param[i] = param[i] + neg_lr * (m / momentum_correction) / (
            sqrtf(v / cache_correction) + epsilon)


cdef int check_shape(str name, Py_ssize_t r, Py_ssize_t c, Py_ssize_t r0,
                     Py_ssize_t c0) except -1:
    if r != r0 or c != c0:
        raise ValueError(f"{name}: expected shape {(r0, c0)} (the parameter's), got {(r, c)}")
    return 0


cdef Args arrays(float[:, ::1] param, const float[:, ::1] grad, float[:, ::1] momentums,
                 float[:, ::1] cache, Py_ssize_t* n) except *:
    """Args with the array pointers (NULL for None), after checking every array has the
    parameter's shape; n = its number of elements."""
    cdef Args a
    cdef Py_ssize_t r = param.shape[0], c = param.shape[1]
    check_shape("grad", grad.shape[0], grad.shape[1], r, c)
    if momentums is not None:
        check_shape("momentums", momentums.shape[0], momentums.shape[1], r, c)
    if cache is not None:
        check_shape("cache", cache.shape[0], cache.shape[1], r, c)
    n[0] = r * c
    a.param = &param[0, 0] if n[0] else NULL
    a.grad = &grad[0, 0] if n[0] else NULL
    a.momentums = &momentums[0, 0] if n[0] and momentums is not None else NULL
    a.cache = &cache[0, 0] if n[0] and cache is not None else NULL
    return a


def sgd_update(float[:, ::1] param not None,              # IN/OUT  weights or biases
               const float[:, ::1] grad not None,         # IN      their gradient
               float learning_rate, int n_threads=1):
    """SGD step without momentum, in place; float32 C-contiguous arrays of one shape."""
    cdef Py_ssize_t n
    cdef Args a = arrays(param, grad, None, None, &n)
    a.lr = learning_rate
    with nogil:
        parallel_for(sgd_range, &a, n, n_threads)


def sgd_momentum_update(float[:, ::1] param not None,     # IN/OUT  weights or biases
                        const float[:, ::1] grad not None,  # IN    their gradient
                        float[:, ::1] momentums not None,   # IN/OUT
                        float learning_rate, float momentum, int n_threads=1):
    """SGD step with momentum, in place."""
    cdef Py_ssize_t n
    cdef Args a = arrays(param, grad, momentums, None, &n)
    a.lr, a.momentum = learning_rate, momentum
    with nogil:
        parallel_for(sgd_momentum_range, &a, n, n_threads)


def cache_update(float[:, ::1] param not None,            # IN/OUT  weights or biases
                 const float[:, ::1] grad not None,       # IN      their gradient
                 float[:, ::1] cache not None,            # IN/OUT  weight_cache or bias_cache
                 float learning_rate, float rho, float one_minus_rho, float epsilon,
                 int n_threads=1):
    """RMSprop (or, with rho = one_minus_rho = 1, Adagrad) step, in place."""
    cdef Py_ssize_t n
    cdef Args a = arrays(param, grad, None, cache, &n)
    a.lr, a.rho, a.one_minus_rho, a.epsilon = learning_rate, rho, one_minus_rho, epsilon
    with nogil:
        parallel_for(cache_range, &a, n, n_threads)


def adam_update(float[:, ::1] param not None,             # IN/OUT  weights or biases
                const float[:, ::1] grad not None,        # IN      their gradient
                float[:, ::1] momentums not None,         # IN/OUT  first moment m
                float[:, ::1] cache not None,             # IN/OUT  second moment v
                float learning_rate, float beta_1, float one_minus_beta_1, float beta_2,
                float one_minus_beta_2, float momentum_correction, float cache_correction,
                float epsilon, int n_threads=1):
    """Adam step, in place; the corrections are 1 - beta**(iterations + 1)."""
    cdef Py_ssize_t n
    cdef Args a = arrays(param, grad, momentums, cache, &n)
    a.lr, a.epsilon = learning_rate, epsilon
    a.beta_1, a.one_minus_beta_1, a.beta_2, a.one_minus_beta_2 = \
        beta_1, one_minus_beta_1, beta_2, one_minus_beta_2
    a.momentum_correction, a.cache_correction = momentum_correction, cache_correction
    with nogil:
        parallel_for(adam_range, &a, n, n_threads)
