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
# NumPy's weak-scalar rule does in the book's expressions. setup.py compiles with
# -ffp-contract=off (gcc would fuse param + neg_lr*g and beta_1*m + ... into FMAs on arm64,
# ~35 ulp where W - lr*update nearly cancels), so the results equal the book's float32 NumPy
# expressions bit for bit on every platform and compiler (docs/INSTALL.md, "Floating point").
#
# An entry point updates all the parameters of a layer (weights and biases) in one call: it
# takes their arrays as one tuple (checked as in kernels/arrays.pxd: float32, C-contiguous, the
# parameter's shape, writable where written; all before any update), fills an Args record per
# parameter and hands a range function to kernels/parallel.pxd's run_range: on the calling thread
# without touching the thread pool (biases are updated every step, so small arrays must cost next to
# nothing), or split into one contiguous, cache-line-aligned block per thread from PAR_ELEMS
# elements on. Each element is written by one thread: results do not depend on the thread
# count.
# The range loops (kernels/optimizer_loops.h) are compiled for the baseline and for AVX2 and
# chosen at import (kernels/targets.h); they vectorize, the ones with sqrtf only when compiled
# with -fno-math-errno (otherwise sqrtf must be able to set errno for a negative argument,
# which gcc does with a branch per element).

cimport numpy as cnp
from cpython.mem cimport PyMem_Free, PyMem_Malloc

from nnfs_fast.kernels.parallel cimport PAR_ELEMS, RangeFn, run_range, thresholds
from nnfs_fast.kernels.arrays cimport View2, is_view2, view2

from nnfs_fast.runtime import dispatch

cnp.import_array()
globals().update(thresholds())   # PAR_WORK, PAR_ELEMS, ... for tests (kernels/parallel.pxd)

# The range loops are kernels/optimizer_loops.h's, compiled for the baseline and for AVX2
# (kernels/optimizer_targets.h, kernels/targets.h); _ops is the table chosen at import.

cdef extern from "optimizer_targets.h" nogil:
    ctypedef void (*Loop "nnfs_opt_loop")(const Args* a, Py_ssize_t start,
                                          Py_ssize_t end) noexcept nogil
    ctypedef struct OptimizerOps "nnfs_optimizer_ops":
        const char* target
        Loop sgd, sgd_momentum, cache, adam
    const OptimizerOps nnfs_optimizer_baseline
    const OptimizerOps nnfs_optimizer_avx2
    const int NNFS_HAVE_AVX2_TARGET

cdef const OptimizerOps* _ops = &nnfs_optimizer_baseline


def _use_target(name):
    """Run the update loops compiled for ``name``: "baseline", or "avx2" where built and
    runnable (tests compare both)."""
    global _ops
    name = dispatch.checked_loop_target(name, NNFS_HAVE_AVX2_TARGET)
    _ops = &nnfs_optimizer_avx2 if name == "avx2" else &nnfs_optimizer_baseline


def targets():
    """The targets the update loops can run as here: "baseline", and "avx2" where this build
    has them and this CPU runs AVX2 (kernels/targets.h)."""
    return dispatch.loop_targets(NNFS_HAVE_AVX2_TARGET)


def target():
    """The target the update loops run as (kernels/optimizer_targets.h)."""
    return _ops.target.decode()


cdef void sgd_range(void* ctx, Py_ssize_t start, Py_ssize_t end) noexcept nogil:
    _ops.sgd(<const Args*>ctx, start, end)


cdef void sgd_momentum_range(void* ctx, Py_ssize_t start, Py_ssize_t end) noexcept nogil:
    _ops.sgd_momentum(<const Args*>ctx, start, end)


cdef void cache_range(void* ctx, Py_ssize_t start, Py_ssize_t end) noexcept nogil:
    _ops.cache(<const Args*>ctx, start, end)


cdef void adam_range(void* ctx, Py_ssize_t start, Py_ssize_t end) noexcept nogil:
    _ops.adam(<const Args*>ctx, start, end)


_use_target(dispatch.loop_target(NNFS_HAVE_AVX2_TARGET))


cdef float* state(object a, str name, const View2* p, bint writable) except? NULL:
    """The data of ``a``, a C-contiguous float32 array of the parameter's shape."""
    cdef View2 v = view2(a, name, -1, -1, writable, True)
    if v.rows != p.rows or v.cols != p.cols:
        raise ValueError(f"{name}: expected shape {(p.rows, p.cols)} (the parameter's), "
                         f"got {(v.rows, v.cols)}")
    return v.data


cdef object separate(Args* a, tuple arrays, Py_ssize_t first):
    """Refuse a parameter whose written arrays (param, momentums, cache) share memory
    (written_overlap). Returns a C-contiguous copy of the gradient (and points a.grad at it)
    when it overlaps a written array without being that array: the loops read g[i] just
    before writing element i, so an exact alias (a user's layer.dweights = layer.weights)
    gives the book's bits, but a shifted one would read elements already updated (by this
    thread or another); NumPy computes from the old values. Else None."""
    cdef int j, k
    cdef float* written[3]
    if written_overlap(a, &j, &k):
        names = ("param", "momentums", "cache")
        raise ValueError(f"{names[j]}: shares memory with {names[k]}; the update writes "
                         f"both, so they must be separate arrays")
    written[0], written[1], written[2] = a.param, a.momentums, a.cache
    for j in range(3):
        if written[j] != NULL and a.grad != written[j] and overlaps(a.grad, written[j], a.n):
            grad = cnp.PyArray_NewCopy(<cnp.ndarray>arrays[first + 1], cnp.NPY_CORDER)
            a.grad = <const float*>cnp.PyArray_DATA(<cnp.ndarray>grad)
            return grad
    return None


cdef int update(RangeFn fn, tuple arrays, bint momentums, bint cache, const Args* hyper,
                int n_threads) except -1:
    """fn over every parameter in ``arrays`` = (param, grad[, momentums][, cache]) for each
    parameter (a layer's weights, then its biases), with the scalars of ``hyper``. Every array
    is checked before any parameter is updated, so a refusal changes nothing; a gradient that
    partly overlaps a written array is read from a copy (separate)."""
    cdef Py_ssize_t size = 2 + momentums + cache, n_params = len(arrays) // size, i
    cdef View2 p
    if n_params * size != len(arrays):
        raise ValueError(f"arrays: expected {size} arrays (param, grad"
                         f"{', momentums' if momentums else ''}{', cache' if cache else ''}) "
                         f"per parameter, got {len(arrays)}")
    copies = []     # gradients copied by separate(), alive until the loops have run
    cdef Args* a = <Args*>PyMem_Malloc(n_params * sizeof(Args) + 1)
    if a == NULL:
        raise MemoryError()
    try:
        for i in range(n_params):
            a[i] = hyper[0]
            p = view2(arrays[i * size], "param", -1, -1, True, True)
            a[i].param, a[i].n = p.data, p.rows * p.cols
            a[i].momentums = a[i].cache = NULL
            a[i].grad = state(arrays[i * size + 1], "grad", &p, False)
            if momentums:
                a[i].momentums = state(arrays[i * size + 2], "momentums", &p, True)
            if cache:
                a[i].cache = state(arrays[i * size + 2 + momentums], "cache", &p, True)
            grad = separate(&a[i], arrays, i * size)
            if grad is not None:
                copies.append(grad)
        with nogil:
            for i in range(n_params):
                run_range(fn, &a[i], a[i].n, n_threads, PAR_ELEMS // 2)
    finally:
        PyMem_Free(a)
    return 0


def arrays_ready(tuple arrays, int per_param):
    """Whether the update kernels take ``arrays`` as they are: per_param arrays (param, grad,
    *state) per parameter, each a C-contiguous native float32 2-D ndarray of its parameter's
    shape, the parameter and its state writable. The optimizers' one test (optimizers.py),
    before they convert anything; the kernels still check everything themselves."""
    cdef Py_ssize_t i, j, n = len(arrays)
    cdef cnp.ndarray p, a
    if per_param < 2 or n % per_param:
        return False
    for i in range(0, n, per_param):
        for j in range(per_param):
            x = arrays[i + j]
            if not (is_view2(x) and cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>x)):
                return False
            a = <cnp.ndarray>x
            if j == 0:
                p = a
            elif (cnp.PyArray_DIM(a, 0) != cnp.PyArray_DIM(p, 0)
                  or cnp.PyArray_DIM(a, 1) != cnp.PyArray_DIM(p, 1)):
                return False
            if j != 1 and not cnp.PyArray_ISWRITEABLE(a):
                return False
    return True


def sgd_update(tuple arrays, float learning_rate, int n_threads=1):
    """SGD step without momentum, in place. arrays: (param, grad) per parameter; param
    (weights or biases, written) and grad (their gradient): float32 C-contiguous 2-D arrays
    of one shape."""
    cdef Args a
    a.lr = learning_rate
    update(sgd_range, arrays, False, False, &a, n_threads)


def sgd_momentum_update(tuple arrays, float learning_rate, float momentum, int n_threads=1):
    """SGD step with momentum, in place. arrays: (param, grad, momentums) per parameter
    (param and momentums written)."""
    cdef Args a
    a.lr, a.momentum = learning_rate, momentum
    update(sgd_momentum_range, arrays, True, False, &a, n_threads)


def cache_update(tuple arrays, float learning_rate, float rho, float one_minus_rho,
                 float epsilon, int n_threads=1):
    """RMSprop (or, with rho = one_minus_rho = 1, Adagrad) step, in place. arrays: (param,
    grad, cache) per parameter (param and cache, the weight_cache or bias_cache, written)."""
    cdef Args a
    a.lr, a.rho, a.one_minus_rho, a.epsilon = learning_rate, rho, one_minus_rho, epsilon
    update(cache_range, arrays, False, True, &a, n_threads)


def adam_update(tuple arrays, float learning_rate, float beta_1, float one_minus_beta_1,
                float beta_2, float one_minus_beta_2, float momentum_correction,
                float cache_correction, float epsilon, int n_threads=1):
    """Adam step, in place. arrays: (param, grad, momentums, cache) per parameter (param,
    momentums = first moment m and cache = second moment v written); the corrections are
    1 - beta**(iterations + 1)."""
    cdef Args a
    a.lr, a.epsilon = learning_rate, epsilon
    a.beta_1, a.one_minus_beta_1, a.beta_2, a.one_minus_beta_2 = \
        beta_1, one_minus_beta_1, beta_2, one_minus_beta_2
    a.momentum_correction, a.cache_correction = momentum_correction, cache_correction
    update(adam_range, arrays, True, True, &a, n_threads)
