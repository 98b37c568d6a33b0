# The activation kernels' row functions and range functions, for the training plan
# (kernels/plan.pyx), which runs them on its own buffers; activations.pyx defines them.
from nnfs_fast.kernels.arrays cimport View2

cdef struct RowArgs:
    View2 a, b        # the kernel's inputs (b unused by softmax_forward)
    float* out        # C-contiguous, a's shape

# kernels/rows.pxd's row_map signature: out[j] = f(a[j * ca], b[j * cb]) for j < n
cdef void relu_row(const float* x, Py_ssize_t cx, const float* unused, Py_ssize_t cu,
                   float* out, Py_ssize_t n, float s1, float s2) noexcept nogil
cdef void relu_grad_row(const float* x, Py_ssize_t cx, const float* d, Py_ssize_t cd,
                        float* out, Py_ssize_t n, float s1, float s2) noexcept nogil
cdef void sigmoid_row(const float* x, Py_ssize_t cx, const float* unused, Py_ssize_t cu,
                      float* out, Py_ssize_t n, float s1, float s2) noexcept nogil
cdef void sigmoid_grad_row(const float* y, Py_ssize_t cy, const float* d, Py_ssize_t cd,
                           float* out, Py_ssize_t n, float s1, float s2) noexcept nogil
cdef void softmax_range(void* ctx, Py_ssize_t start, Py_ssize_t end) noexcept nogil
cdef void softmax_grad_range(void* ctx, Py_ssize_t start, Py_ssize_t end) noexcept nogil
