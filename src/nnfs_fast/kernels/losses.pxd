# The loss kernels' records and range functions, for the training plan (kernels/plan.pyx), which
# runs them on its own buffers; losses.pyx defines them (see its design note).
from libc.stdint cimport int64_t

from nnfs_fast.kernels.arrays cimport View2

cdef struct Labels:
    const int64_t* sparse   # class indices: a private copy, checked (NULL when one-hot)
    View2 onehot            # one-hot rows (onehot.data NULL when sparse)

cdef enum:
    CROSSENTROPY = 100          # RowArgs.kind of the categorical gradients
    SOFTMAX_CROSSENTROPY = 101

cdef struct RowArgs:
    View2 p           # predictions (logits for the fused forward)
    Labels t
    View2 q           # sample_losses: targets
    int kind          # sample_losses: the term; sparse_grad_range: which gradient
    float* out        # (N, C) output: softmax (fused forward) or gradient; C-contiguous
    float* losses     # (N,)

cdef object labels(object y_true, Py_ssize_t N, Py_ssize_t C, bint as_indices, Labels* out)
cdef void crossentropy_range(void* ctx, Py_ssize_t start, Py_ssize_t end) noexcept nogil
cdef void softmax_crossentropy_range(void* ctx, Py_ssize_t start,
                                     Py_ssize_t end) noexcept nogil
cdef void sparse_grad_range(void* ctx, Py_ssize_t start, Py_ssize_t end) noexcept nogil
cdef void sample_losses_range(void* ctx, Py_ssize_t start, Py_ssize_t end) noexcept nogil
# kernels/rows.pxd's row_map signature, with s1 = K (outputs) and s2 = N (samples)
cdef void bce_grad_row(const float* p, Py_ssize_t cp, const float* y, Py_ssize_t cy,
                       float* out, Py_ssize_t m, float k, float n) noexcept nogil
cdef void mse_grad_row(const float* p, Py_ssize_t cp, const float* y, Py_ssize_t cy,
                       float* out, Py_ssize_t m, float k, float n) noexcept nogil
cdef void mae_grad_row(const float* p, Py_ssize_t cp, const float* y, Py_ssize_t cy,
                       float* out, Py_ssize_t m, float k, float n) noexcept nogil
