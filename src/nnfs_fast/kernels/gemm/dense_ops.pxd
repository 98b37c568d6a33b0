# The dense layer's passes as C functions (kernels/gemm/dense.pxi defines them in each
# dense_<level> module), handed to the training plan (kernels/plan.pyx) in a capsule named
# DENSE_OPS_CAPSULE by the active level's ``dense_ops()``. Types only: nothing to import.
from nnfs_fast.kernels.arrays cimport View2

cdef extern from *:
    """
    #define NNFS_DENSE_OPS_CAPSULE "nnfs_fast.kernels.gemm.DenseOps"
    """
    const char* DENSE_OPS_CAPSULE "NNFS_DENSE_OPS_CAPSULE"

# out (N, n_out, C-contiguous) = x (N, n_in) . w (n_in, n_out) + bias (n_out contiguous)
# [then max(0, .)]; returns 0, or -1 when packing buffers could not be allocated
ctypedef int (*DenseForward)(const View2* x, const View2* w, const float* bias, bint relu,
                             float* out, int n_threads) noexcept nogil

# kernels/gemm/dense.pxi's dense_backward on pointers: y (the fused ReLU's output) may have
# y.data NULL (no ReLU; gm unused), dX NULL (no input gradient); returns 0 or -1 as above
ctypedef int (*DenseBackward)(const View2* x, const View2* w, const View2* b, const View2* g,
                              const View2* y, float* gm, float* dW, float* db, float* dX,
                              float weight_l1, float weight_l2, float bias_l1, float bias_l2,
                              int n_threads) noexcept nogil

ctypedef struct DenseOps:
    DenseForward forward
    DenseBackward backward
