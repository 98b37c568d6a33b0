# Optimizer kernels: one in-place pass over a parameter array and its state per update.
#
# Design
# ------
# The book updates a parameter with a chain of NumPy expressions (Adam: about 15 array
# temporaries per array). Each kernel here walks the flat, C-contiguous float32 arrays once
# and applies the same float32 operations in the book's order, element by element:
#
#   sgd_update    no momentum:  W += (-lr) * g
#                 momentum:     u = momentum * m - lr * g;  m = u;  W += u
#   cache_update  cache = rho * cache + one_minus_rho * (g * g)
#                 W += (-lr) * g / (sqrt(cache) + eps)
#                 (RMSprop; Adagrad's ``cache += g**2`` is rho = one_minus_rho = 1, exact)
#   adam_update   m = beta_1 * m + one_minus_beta_1 * g;      mhat = m / momentum_correction
#                 v = beta_2 * v + one_minus_beta_2 * (g * g); vhat = v / cache_correction
#                 W += (-lr) * mhat / (sqrt(vhat) + eps)
#
# Every scalar arrives as a C float: the Python-float hyper-parameters (and 1 - beta,
# 1 - beta**(iterations + 1), computed in double by the caller) rounded once to float32, as
# NumPy's weak-scalar rule does in the book's expressions. Without FMA contraction the results
# equal the book's float32 NumPy expressions bit for bit.
# Each element is read and written by one thread, so results do not depend on the thread
# count; arrays under PAR_ELEMS elements are updated on the calling thread.

from cython.parallel cimport prange
from libc.math cimport sqrtf

cdef enum:
    PAR_ELEMS = 32768   # below this many elements an update runs on one thread (benchmarks/)


cdef int check_size(str name, Py_ssize_t got, Py_ssize_t n) except -1:
    if got != n:
        raise ValueError(f"{name}: expected {n} elements (the parameter's), got {got}")
    return 0


def sgd_update(float[::1] param,                  # IN/OUT  weights or biases, flattened
               const float[::1] grad,             # IN      their gradient
               float[::1] momentums,              # IN/OUT  None without momentum
               float learning_rate, float momentum, int n_threads=1):
    """SGD step on flat float32 arrays of one size, in place (see the module design)."""
    cdef Py_ssize_t n = param.shape[0], i
    check_size("grad", grad.shape[0], n)
    if momentums is not None:
        check_size("momentums", momentums.shape[0], n)
    cdef float neg_lr = -learning_rate
    cdef float u
    cdef bint par = n_threads > 1 and n >= PAR_ELEMS
    if momentums is None:
        for i in prange(n, nogil=True, use_threads_if=par, num_threads=n_threads,
                        schedule="static"):
            param[i] = param[i] + neg_lr * grad[i]
    else:
        for i in prange(n, nogil=True, use_threads_if=par, num_threads=n_threads,
                        schedule="static"):
            u = momentum * momentums[i] - learning_rate * grad[i]
            momentums[i] = u
            param[i] = param[i] + u


def cache_update(float[::1] param,                # IN/OUT  weights or biases, flattened
                 const float[::1] grad,           # IN      their gradient
                 float[::1] cache,                # IN/OUT  weight_cache or bias_cache
                 float learning_rate, float rho, float one_minus_rho, float epsilon,
                 int n_threads=1):
    """RMSprop (or, with rho = one_minus_rho = 1, Adagrad) step, in place."""
    cdef Py_ssize_t n = param.shape[0], i
    check_size("grad", grad.shape[0], n)
    check_size("cache", cache.shape[0], n)
    cdef float neg_lr = -learning_rate
    cdef float g, c
    for i in prange(n, nogil=True, use_threads_if=n_threads > 1 and n >= PAR_ELEMS,
                    num_threads=n_threads, schedule="static"):
        g = grad[i]
        c = rho * cache[i] + one_minus_rho * (g * g)
        cache[i] = c
        param[i] = param[i] + neg_lr * g / (sqrtf(c) + epsilon)


def adam_update(float[::1] param,                 # IN/OUT  weights or biases, flattened
                const float[::1] grad,            # IN      their gradient
                float[::1] momentums,             # IN/OUT  first moment m
                float[::1] cache,                 # IN/OUT  second moment v
                float learning_rate, float beta_1, float one_minus_beta_1, float beta_2,
                float one_minus_beta_2, float momentum_correction, float cache_correction,
                float epsilon, int n_threads=1):
    """Adam step, in place; the corrections are 1 - beta**(iterations + 1)."""
    cdef Py_ssize_t n = param.shape[0], i
    check_size("grad", grad.shape[0], n)
    check_size("momentums", momentums.shape[0], n)
    check_size("cache", cache.shape[0], n)
    cdef float neg_lr = -learning_rate
    cdef float g, m, v
    for i in prange(n, nogil=True, use_threads_if=n_threads > 1 and n >= PAR_ELEMS,
                    num_threads=n_threads, schedule="static"):
        g = grad[i]
        m = beta_1 * momentums[i] + one_minus_beta_1 * g
        momentums[i] = m
        v = beta_2 * cache[i] + one_minus_beta_2 * (g * g)
        cache[i] = v
        param[i] = param[i] + neg_lr * (m / momentum_correction) / (
            sqrtf(v / cache_correction) + epsilon)
