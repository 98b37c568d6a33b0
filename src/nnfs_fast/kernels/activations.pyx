# Activation kernels: ReLU, softmax and sigmoid, forward and backward.
#
# Design
# ------
# Entry points take ndarrays (checked as in kernels/arrays.pxd; inputs of any real dtype are
# converted to float32 once, float32 ones of any strides -- F-ordered, sliced, negative -- are
# read in place), allocate their C-contiguous float32 output and make one pass over it. Each output
# row (or block of elements, see map_elements) is written by one thread, so results do not
# depend on the thread count; work under PAR_WORK (see kernels/parallel.pxd) stays on the calling
# thread without touching the thread pool (kernels/parallel.pxd's run_range).
#
#   relu_forward      out = x if not x < 0 else 0           (np.maximum(0, x); NaN stays NaN)
#   relu_backward     dx  = 0 if x <= 0 else d              (zero counts as inactive)
#   sigmoid_forward   e = exp(-|x|);  out = 1 / (1 + e) for x >= 0, e / (1 + e) for x < 0
#                     (the book's 1 / (1 + exp(-x)), but never overflows)
#   sigmoid_backward  dx  = d * (1 - out) * out
#   softmax_forward   per row: exp(x - max x) / (pairwise sum of those exps)
#   softmax_backward  per row: dx = s * (d - s.d), the Jacobian (diag(s) - s s^T) times d,
#                     with s.d and the products in double, rounded once
#
# The other steps are the book's float32 NumPy operations in the book's order (float-typed
# constants, so that no step is done in double): ReLU (both passes) and sigmoid_backward equal
# the book's float32 results bit for bit, and softmax rows equal NumPy's for the same exp values
# (pairwise row sum). exp is the vectorizable one of kernels/rows.pxd (<= 1 ulp; 1 ulp from
# libm's expf for ~0.85% of inputs), so softmax and sigmoid agree with the book to ~1 ulp.
# Floating point: every result here is bit-identical on every platform, compiler and thread
# count: no libm call, and no FMA contraction (setup.py: -ffp-contract=off; exp's polynomial
# would otherwise be fused on arm64). See docs/INSTALL.md, "Floating point".

# (EXP_COST, map_elements, min_per_thread, softmax_rows: see kernels/rows.pxd; float32_array,
# matrix: kernels/arrays.pxd; relu, relu_grad, sigmoid: kernels/vecmath.h)
cimport numpy as cnp

from nnfs_fast.kernels.arrays cimport View2, empty2, float32_array, matrix
from nnfs_fast.kernels.parallel cimport run_range, thresholds
from nnfs_fast.kernels.rows cimport (EXP_COST, PW_BLOCK, ROW_BLOCK, map_elements, min_per_thread,
                                     relu, relu_grad, sigmoid, softmax_rows)

cnp.import_array()
globals().update(thresholds())   # PAR_WORK, PAR_ELEMS, ... for tests (kernels/parallel.pxd)
# softmax_rows' blocks, for tests: ROW_BLOCK rows at a time when at most PW_BLOCK columns
globals().update(ROW_BLOCK=ROW_BLOCK, PW_BLOCK=PW_BLOCK)


cdef void relu_row(const float* x, Py_ssize_t cx, const float* unused, Py_ssize_t cu,
                   float* out, Py_ssize_t n, float s1, float s2) noexcept nogil:
    cdef Py_ssize_t j
    for j in range(n):
        out[j] = relu(x[j * cx])


cdef void relu_grad_row(const float* x, Py_ssize_t cx, const float* d, Py_ssize_t cd,
                        float* out, Py_ssize_t n, float s1, float s2) noexcept nogil:
    cdef Py_ssize_t j
    for j in range(n):
        out[j] = relu_grad(x[j * cx], d[j * cd])


cdef void sigmoid_row(const float* x, Py_ssize_t cx, const float* unused, Py_ssize_t cu,
                      float* out, Py_ssize_t n, float s1, float s2) noexcept nogil:
    cdef Py_ssize_t j
    for j in range(n):
        out[j] = sigmoid(x[j * cx])


cdef void sigmoid_grad_row(const float* y, Py_ssize_t cy, const float* d, Py_ssize_t cd,
                           float* out, Py_ssize_t n, float s1, float s2) noexcept nogil:
    cdef Py_ssize_t j
    cdef float one = 1   # a float constant keeps every step in float32 (a literal is double)
    for j in range(n):
        out[j] = d[j * cd] * (one - y[j * cy]) * y[j * cy]


def relu_forward(inputs, int n_threads=1):
    """inputs (N, C), any real dtype and layout -> max(0, inputs) (NaN propagates), a new
    C-contiguous float32 (N, C) array."""
    X = float32_array(inputs, "inputs")
    cdef View2 x = matrix(X, "inputs")
    return map_elements(relu_row, 1, x, x, 0, 0, n_threads)


def relu_backward(inputs, dvalues, int n_threads=1):
    """inputs: the forward inputs, dvalues: (N, C) -> dvalues zeroed where inputs <= 0 (new
    float32 array)."""
    X = float32_array(inputs, "inputs")
    cdef View2 x = matrix(X, "inputs")
    D = float32_array(dvalues, "dvalues")
    cdef View2 d = matrix(D, "dvalues", x.rows, x.cols)
    return map_elements(relu_grad_row, 1, x, d, 0, 0, n_threads)


def sigmoid_forward(inputs, int n_threads=1):
    """inputs (N, C) -> 1 / (1 + exp(-inputs)), computed without overflow (new float32
    array)."""
    X = float32_array(inputs, "inputs")
    cdef View2 x = matrix(X, "inputs")
    return map_elements(sigmoid_row, EXP_COST, x, x, 0, 0, n_threads)


def sigmoid_backward(output, dvalues, int n_threads=1):
    """output: the forward output, dvalues: (N, C) -> dvalues * (1 - output) * output (new
    float32 array)."""
    Y = float32_array(output, "output")
    cdef View2 y = matrix(Y, "output")
    D = float32_array(dvalues, "dvalues")
    cdef View2 d = matrix(D, "dvalues", y.rows, y.cols)
    return map_elements(sigmoid_grad_row, 2, y, d, 0, 0, n_threads)


cdef void softmax_range(void* ctx, Py_ssize_t start, Py_ssize_t end) noexcept nogil:
    cdef RowArgs* r = <RowArgs*>ctx
    softmax_rows(r.a.data + start * r.a.rs, r.a.rs, r.a.cs, r.out + start * r.a.cols,
                 end - start, r.a.cols)


def softmax_forward(inputs, int n_threads=1):
    """inputs (N, C) -> row-wise exp(inputs - rowmax) / rowsum(exp(inputs - rowmax)) (new
    float32 array)."""
    X = float32_array(inputs, "inputs")
    cdef RowArgs r
    r.a = matrix(X, "inputs")
    out = empty2(r.a.rows, r.a.cols)
    r.out = <float*>cnp.PyArray_DATA(out)
    with nogil:
        run_range(softmax_range, &r, r.a.rows, n_threads,
                  min_per_thread(EXP_COST * r.a.cols))
    return out


cdef inline void softmax_grad_row(const float* s, Py_ssize_t ss, const float* d,
                                  Py_ssize_t ds, float* out, Py_ssize_t n) noexcept nogil:
    """out[j] = s[j] * (d[j] - sum_k s[k] d[k]) for j < n (in double, rounded once)."""
    cdef double dot = 0
    cdef Py_ssize_t j
    for j in range(n):
        dot += <double>s[j * ss] * d[j * ds]
    for j in range(n):
        out[j] = <float>(s[j * ss] * (<double>d[j * ds] - dot))


cdef void softmax_grad_range(void* ctx, Py_ssize_t start, Py_ssize_t end) noexcept nogil:
    cdef RowArgs* r = <RowArgs*>ctx
    cdef Py_ssize_t i
    for i in range(start, end):
        softmax_grad_row(r.a.data + i * r.a.rs, r.a.cs, r.b.data + i * r.b.rs, r.b.cs,
                         r.out + i * r.a.cols, r.a.cols)


def softmax_backward(output, dvalues, int n_threads=1):
    """output s: the forward output, dvalues d: (N, C) -> dinputs[i] = (diag(s_i) - s_i s_i^T)
    . d_i = s_i * (d_i - s_i . d_i) for every row i (new float32 array)."""
    S = float32_array(output, "output")
    cdef RowArgs r
    r.a = matrix(S, "output")
    D = float32_array(dvalues, "dvalues")
    r.b = matrix(D, "dvalues", r.a.rows, r.a.cols)
    out = empty2(r.a.rows, r.a.cols)
    r.out = <float*>cnp.PyArray_DATA(out)
    with nogil:
        run_range(softmax_grad_range, &r, r.a.rows, n_threads,
                  min_per_thread(4 * r.a.cols))
    return out
