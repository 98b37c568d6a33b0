# Activation kernels: ReLU, softmax and sigmoid, forward and backward.
#
# Design
# ------
# One pass per call; each output row (or chunk of one, see map_elements) is written by one
# thread, so results do not depend on the thread count, and work under PAR_WORK (see
# _activations.pxd) stays on the calling thread. Inputs may have any element strides
# (F-ordered, sliced, negative: the wrapper passes float32 arrays in place); outputs are
# C-contiguous and written exactly once.
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
# (pairwise row sum). exp is the vectorizable one of _activations.pxd (<= 1 ulp; 1 ulp from
# libm's expf for ~0.85% of inputs), so softmax and sigmoid agree with the book to ~1 ulp.

# (PAR_WORK, EXP_COST, map_elements, sigmoid, softmax_row, check_shape, elem_stride: see
# _activations.pxd)
from cython.parallel cimport prange

cdef void relu_row(const float* x, Py_ssize_t cx, const float* unused, Py_ssize_t cu,
                   float* out, Py_ssize_t n, float s1, float s2) noexcept nogil:
    cdef Py_ssize_t j
    for j in range(n):
        out[j] = 0 if x[j * cx] < 0 else x[j * cx]


cdef void relu_grad_row(const float* x, Py_ssize_t cx, const float* d, Py_ssize_t cd,
                        float* out, Py_ssize_t n, float s1, float s2) noexcept nogil:
    cdef Py_ssize_t j
    cdef float g
    for j in range(n):
        g = d[j * cd]   # read unconditionally, so the loop can be vectorized
        out[j] = 0 if x[j * cx] <= 0 else g


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


def relu_forward(const float[:, :] inputs,        # IN  (N, C) any strides
                 float[:, ::1] output,             # OUT (N, C)
                 int n_threads=1):
    """output = max(0, inputs) (NaN propagates); float32."""
    map_elements(relu_row, 1, "inputs", inputs, "inputs", inputs, output, 0, 0, n_threads)


def relu_backward(const float[:, :] inputs,       # IN  (N, C) the forward inputs
                  const float[:, :] dvalues,       # IN  (N, C)
                  float[:, ::1] dinputs,           # OUT (N, C)
                  int n_threads=1):
    """dinputs = dvalues, zeroed where inputs <= 0; float32."""
    map_elements(relu_grad_row, 1, "inputs", inputs, "dvalues", dvalues, dinputs, 0, 0,
                 n_threads)


def sigmoid_forward(const float[:, :] inputs,     # IN  (N, C) any strides
                    float[:, ::1] output,          # OUT (N, C)
                    int n_threads=1):
    """output = 1 / (1 + exp(-inputs)), computed without overflow; float32."""
    map_elements(sigmoid_row, EXP_COST, "inputs", inputs, "inputs", inputs, output, 0, 0,
                 n_threads)


def sigmoid_backward(const float[:, :] output,    # IN  (N, C) the forward output
                     const float[:, :] dvalues,    # IN  (N, C)
                     float[:, ::1] dinputs,        # OUT (N, C)
                     int n_threads=1):
    """dinputs = dvalues * (1 - output) * output; float32."""
    map_elements(sigmoid_grad_row, 2, "output", output, "dvalues", dvalues, dinputs, 0, 0,
                 n_threads)


def softmax_forward(const float[:, :] inputs,     # IN  (N, C) any strides
                    float[:, ::1] output,          # OUT (N, C)
                    int n_threads=1):
    """Row-wise output = exp(inputs - rowmax) / rowsum(exp(inputs - rowmax)); float32."""
    cdef Py_ssize_t N = inputs.shape[0], C = inputs.shape[1], i
    check_shape("output", (output.shape[0], output.shape[1]), (N, C))
    if N == 0 or C == 0:
        return
    cdef Py_ssize_t rs = elem_stride(inputs.strides[0], "inputs")
    cdef Py_ssize_t cs = elem_stride(inputs.strides[1], "inputs")
    cdef const float* x = &inputs[0, 0]
    cdef float* out = &output[0, 0]
    cdef int nt = max(1, n_threads)
    for i in prange(N, nogil=True, use_threads_if=nt > 1 and N * C * EXP_COST >= PAR_WORK,
                    num_threads=nt, schedule="static"):
        softmax_row(x + i * rs, cs, out + i * C, C)


cdef inline void softmax_grad_row(const float* s, Py_ssize_t ss, const float* d,
                                  Py_ssize_t ds, float* out, Py_ssize_t n) noexcept nogil:
    """out[j] = s[j] * (d[j] - sum_k s[k] d[k]) for j < n (in double, rounded once)."""
    cdef double dot = 0
    cdef Py_ssize_t j
    for j in range(n):
        dot += <double>s[j * ss] * d[j * ds]
    for j in range(n):
        out[j] = <float>(s[j * ss] * (<double>d[j * ds] - dot))


def softmax_backward(const float[:, :] output,    # IN  (N, C) the forward output s
                     const float[:, :] dvalues,    # IN  (N, C) d
                     float[:, ::1] dinputs,        # OUT (N, C)
                     int n_threads=1):
    """dinputs[i] = (diag(s_i) - s_i s_i^T) . d_i = s_i * (d_i - s_i . d_i) for every row i."""
    cdef Py_ssize_t N = output.shape[0], C = output.shape[1], i
    check_shape("dvalues", (dvalues.shape[0], dvalues.shape[1]), (N, C))
    check_shape("dinputs", (dinputs.shape[0], dinputs.shape[1]), (N, C))
    if N == 0 or C == 0:
        return
    cdef Py_ssize_t rs = elem_stride(output.strides[0], "output")
    cdef Py_ssize_t cs = elem_stride(output.strides[1], "output")
    cdef Py_ssize_t rd = elem_stride(dvalues.strides[0], "dvalues")
    cdef Py_ssize_t cd = elem_stride(dvalues.strides[1], "dvalues")
    cdef const float* s = &output[0, 0]
    cdef const float* d = &dvalues[0, 0]
    cdef float* out = &dinputs[0, 0]
    cdef int nt = max(1, n_threads)
    for i in prange(N, nogil=True, use_threads_if=nt > 1 and N * C * 4 >= PAR_WORK,
                    num_threads=nt, schedule="static"):
        softmax_grad_row(s + i * rs, cs, d + i * rd, cd, out + i * C, C)
