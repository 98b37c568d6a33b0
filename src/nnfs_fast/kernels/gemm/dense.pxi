# kernels/gemm/dense.pxi - the dense layer's passes on top of the GEMM (kernels/gemm/gemm.pxi).
# Included, after gemm.pxi, by each kernels/gemm/dense_<level>.pyx, which setup.py compiles with
# that level's instruction-set flags (kernels/gemm/isa.h then supplies its vectors and tiles).
#
# Design
# ------
#   dense_forward   out (N, n_out) = inputs (N, n_in) . weights (n_in, n_out) + biases (1, n_out)
#                   [ReLU fused in the micro-kernel's epilogue]: one gemm, exact for n_in <= EXACT_K
#   dense_backward  G = dvalues, masked by the fused ReLU's output (vecmath.h's relu_grad_out);
#                   dbiases = column sums of G (+ regularization), one pass that also writes the
#                   masked G; dweights = inputs^T . G (+ regularization, accumulated into the
#                   product); dinputs = G . weights^T. Transposes are strides, never copies.
#   gemm_into       C (+)= A . B, for tests and benchmarks.
# All float32; inputs of any real dtype are converted once (kernels/arrays.pxd), float32 ones
# of any strides are read in place; outputs are new C-contiguous arrays. Each output element is
# written by one thread in a fixed order: results do not depend on the thread count.
# Floating point (docs/INSTALL.md): the FMAs of the micro-kernels are explicit intrinsics
# (ukernel.h); everything else is compiled with -ffp-contract=off (setup.py), so the column
# sums, the regularization terms (l1*sign(w) + 2*l2*w, rounded as the book's NumPy does) and the
# depth <= EXACT_K products are bit-identical on every level and platform. Products of depth
# > EXACT_K differ between levels in the last bits (FMA or not, vector width).

cimport numpy as cnp
from cpython.pycapsule cimport PyCapsule_New

from nnfs_fast.kernels.arrays cimport View2, as_float32, empty2, is_view2, view2
from nnfs_fast.kernels.gemm.dense_ops cimport DENSE_OPS_CAPSULE, DenseOps

cnp.import_array()

cdef extern from "colsum.h" nogil:
    int NNFS_COLSUM_COLS
    void nnfs_colsum_block(Py_ssize_t m, Py_ssize_t n, const float* g, Py_ssize_t rsg,
                           const float* y, Py_ssize_t rsy, float* gm, Py_ssize_t ldgm, float* db)

cdef extern from "../vecmath.h" nogil:
    float relu_grad_out "nnfs_relu_grad_out"(float y, float g) noexcept

COLSUM_COLS = NNFS_COLSUM_COLS


cdef struct ColumnSums:
    Py_ssize_t M, N
    const float* G
    Py_ssize_t rsg, csg
    const float* Y
    Py_ssize_t rsy, csy
    float* Gm
    float* db
    const float* b
    Py_ssize_t csb
    float l1, l2x2


cdef void column_sums_task(void* ctx, Py_ssize_t t) noexcept nogil:
    """Columns [t*NNFS_COLSUM_COLS, (t+1)*NNFS_COLSUM_COLS) of column_sums, rows in order."""
    cdef ColumnSums* s = <ColumnSums*>ctx
    cdef Py_ssize_t j0 = t * NNFS_COLSUM_COLS, nj = min(<Py_ssize_t>NNFS_COLSUM_COLS, s.N - j0)
    cdef Py_ssize_t i, j
    cdef float g
    if s.csg == 1 and (s.Y == NULL or s.csy == 1):   # the common case, in vectors
        nnfs_colsum_block(s.M, nj, s.G + j0, s.rsg, s.Y + j0 if s.Y != NULL else NULL, s.rsy,
                          s.Gm + j0 if s.Y != NULL else NULL, s.N, s.db + j0)
    else:
        for j in range(j0, j0 + nj):
            s.db[j] = 0.0
        for i in range(s.M):
            for j in range(j0, j0 + nj):
                g = s.G[i * s.rsg + j * s.csg]
                if s.Y != NULL:
                    g = relu_grad_out(s.Y[i * s.rsy + j * s.csy], g)
                    s.Gm[i * s.N + j] = g
                s.db[j] = s.db[j] + g
    for j in range(j0, j0 + nj):
        s.db[j] = s.db[j] + regularization_term(s.b[j * s.csb], s.l1, s.l2x2)


cdef void column_sums(Py_ssize_t M, Py_ssize_t N, const float* G, Py_ssize_t rsg,
                      Py_ssize_t csg, const float* Y, Py_ssize_t rsy, Py_ssize_t csy,
                      float* Gm, float* db, const float* b, Py_ssize_t csb, float l1,
                      float l2x2, int n_threads) noexcept nogil:
    """db[j] = sum_i g[i, j] + l1*sign(b[j]) + l2x2*b[j], g = G masked where Y <= 0.

    With Y (the ReLU output) the masked g is also written to Gm (C-contiguous M x N).
    Each task owns NNFS_COLSUM_COLS columns and sums its rows in order (thread-count
    independent).
    """
    cdef ColumnSums s
    s.M, s.N, s.G, s.rsg, s.csg, s.Y, s.rsy, s.csy = M, N, G, rsg, csg, Y, rsy, csy
    s.Gm, s.db, s.b, s.csb, s.l1, s.l2x2 = Gm, db, b, csb, l1, l2x2
    run_tasks(column_sums_task, &s, cdiv(N, NNFS_COLSUM_COLS),
              threads_for(4.0 * M * N, n_threads))


cdef inline float regularization_term(float w, float l1, float l2x2) noexcept nogil:
    """d/dw (l1*|w| + l2*w^2) as the book computes it: the sign of 0 counts as +1."""
    return (l1 if not w < 0 else -l1) + l2x2 * w


cdef void regularization_grad(Py_ssize_t R, Py_ssize_t Cn, const float* W, Py_ssize_t rsw,
                              Py_ssize_t csw, float* out, float l1, float l2x2) noexcept nogil:
    """out[i, j] = regularization_term(W[i, j]) (out C-contiguous R x Cn); weight-sized, one
    pass on the calling thread."""
    cdef Py_ssize_t i, j
    for i in range(R):
        for j in range(Cn):
            out[i * Cn + j] = regularization_term(W[i * rsw + j * csw], l1, l2x2)


def gemm_into(A, B, C, bint accumulate=False, int n_threads=1):
    """C = A . B (C += A . B with accumulate). A (M, K), B (K, N), C (M, N) writable; float32,
    any strides."""
    cdef View2 a = view2(A, "A")
    cdef View2 b = view2(B, "B", a.cols)
    cdef View2 c = view2(C, "C", a.rows, b.cols, writable=True)
    cdef int err
    with nogil:
        err = gemm(a.rows, b.cols, a.cols, a.data, a.rs, a.cs, b.data, b.rs, b.cs,
                   c.data, c.rs, c.cs, accumulate, NULL, False, False, False, max(1, n_threads))
    if err:
        raise MemoryError("gemm: could not allocate packing buffers")


def parameters_ready(weights, biases):
    """Whether dense_forward/dense_backward take ``weights`` and ``biases`` as they are
    (aligned native float32 2-D ndarrays; their shapes are checked by the kernels): the
    layer's one test, at C level, before it converts them (layers.py)."""
    return is_view2(weights) and is_view2(biases)


def dense_forward(inputs, weights, biases, bint relu=False, int n_threads=1):
    """output = inputs . weights + biases, then max(0, .) when relu; returns output.

    inputs (N, n_in): any real dtype (converted to float32 once), any strides;
    weights (n_in, n_out), biases (1, n_out): float32, any strides.
    output: a new C-contiguous float32 (N, n_out) array.
    """
    X = as_float32(inputs, "inputs")
    cdef View2 w = view2(weights, "weights")
    cdef View2 x = view2(X, "inputs", -1, w.rows)
    cdef View2 b = view2(biases, "biases", 1, w.cols)
    out = empty2(x.rows, w.cols)
    cdef int err
    if b.cs != 1:
        biases = biases.copy()
        b = view2(biases, "biases", 1, w.cols)
    with nogil:
        err = dense_forward_c(&x, &w, b.data, relu, <float*>cnp.PyArray_DATA(out), n_threads)
    if err:
        raise MemoryError("dense_forward: could not allocate packing buffers")
    return out


cdef int dense_forward_c(const View2* x, const View2* w, const float* bias, bint relu,
                         float* out, int n_threads) noexcept nogil:
    """dense_forward on pointers (kernels/gemm/dense_ops.pxd): out (C-contiguous) = x . w +
    bias [ReLU]; exact: small depths summed like the book's float64 np.dot (gemm.pxi)."""
    return gemm(x.rows, w.cols, x.cols, x.data, x.rs, x.cs, w.data, w.rs, w.cs,
                out, w.cols, 1, False, bias, False, relu, True, max(1, n_threads))


def dense_backward(inputs, weights, biases, dvalues, relu_output=None, dvalues_masked=None,
                   float weight_l1=0, float weight_l2=0, float bias_l1=0, float bias_l2=0,
                   bint want_dinputs=True, int n_threads=1):
    """Gradients of output = inputs . weights + biases, and of a fused ReLU after it.

    G = dvalues, or, given relu_output (the fused layer's output), dvalues where
    relu_output > 0 and 0 elsewhere, written to dvalues_masked (allocated when None);
    dbiases = colsum(G) + bias_l1*sign(biases) + 2*bias_l2*biases;
    dweights = inputs^T . G + weight_l1*sign(weights) + 2*weight_l2*weights (sign(0) = +1);
    dinputs = G . weights^T (None when not want_dinputs).
    Shapes: inputs (N, n_in), weights (n_in, n_out), biases (1, n_out), dvalues and
    relu_output (N, n_out). Returns (dweights, dbiases, dinputs, dvalues_masked), new
    C-contiguous float32 arrays (dvalues_masked None without relu_output).
    """
    X = as_float32(inputs, "inputs")
    D = as_float32(dvalues, "dvalues")
    cdef View2 w = view2(weights, "weights")
    cdef View2 x = view2(X, "inputs", -1, w.rows)
    cdef View2 b = view2(biases, "biases", 1, w.cols)
    cdef View2 g = view2(D, "dvalues", x.rows, w.cols)
    cdef View2 y, gm
    y.data = NULL
    y.rs = y.cs = 0
    cdef Py_ssize_t M = x.rows, K = x.cols, N = w.cols
    cdef float* Gm = NULL
    if relu_output is not None:
        y = view2(relu_output, "relu_output", M, N)
        if dvalues_masked is None:
            dvalues_masked = empty2(M, N)
        gm = view2(dvalues_masked, "dvalues_masked", M, N, writable=True, contiguous=True)
        Gm = gm.data
    dweights = empty2(K, N)
    dbiases = empty2(1, N)
    dinputs = empty2(M, K) if want_dinputs else None
    cdef float* dW = <float*>cnp.PyArray_DATA(dweights)
    cdef float* db = <float*>cnp.PyArray_DATA(dbiases)
    cdef float* dX = <float*>cnp.PyArray_DATA(dinputs) if want_dinputs else NULL
    cdef int err
    with nogil:
        err = dense_backward_c(&x, &w, &b, &g, &y, Gm, dW, db, dX, weight_l1, weight_l2,
                               bias_l1, bias_l2, n_threads)
    if err:
        raise MemoryError("dense_backward: could not allocate packing buffers")
    return dweights, dbiases, dinputs, dvalues_masked


cdef int dense_backward_c(const View2* x, const View2* w, const View2* b, const View2* g,
                          const View2* y, float* gm, float* dW, float* db, float* dX,
                          float weight_l1, float weight_l2, float bias_l1, float bias_l2,
                          int n_threads) noexcept nogil:
    """dense_backward on pointers (kernels/gemm/dense_ops.pxd): y.data NULL without a fused
    ReLU (gm unused), else gm (C-contiguous M x N) receives the masked gradient; dX NULL skips
    the input gradient. dW, db, dX: C-contiguous. Returns 0, or -1 when out of memory."""
    cdef Py_ssize_t M = x.rows, K = x.cols, N = w.cols
    cdef int nt = max(1, n_threads)
    cdef bint reg = weight_l1 > 0 or weight_l2 > 0
    cdef int err
    cdef View2 G = g[0]
    column_sums(M, N, G.data, G.rs, G.cs, y.data, y.rs, y.cs, gm, db,
                b.data, b.cs, max(bias_l1, 0), 2 * max(bias_l2, 0), nt)
    if y.data != NULL:
        G.data = gm
        G.rs = N
        G.cs = 1
    if reg:
        regularization_grad(K, N, w.data, w.rs, w.cs, dW, max(weight_l1, 0),
                            2 * max(weight_l2, 0))
    err = gemm(K, N, M, x.data, x.cs, x.rs, G.data, G.rs, G.cs, dW, N, 1, reg, NULL,
               False, False, False, nt)
    if dX != NULL and err == 0:
        err = gemm(M, K, N, G.data, G.rs, G.cs, w.data, w.cs, w.rs, dX, K, 1, False, NULL,
                   False, False, False, nt)
    return err


cdef DenseOps _DENSE_OPS
_DENSE_OPS.forward = dense_forward_c
_DENSE_OPS.backward = dense_backward_c


def dense_ops():
    """A capsule holding this level's DenseOps (kernels/gemm/dense_ops.pxd), for the training
    plan (kernels/plan.pyx)."""
    return PyCapsule_New(&_DENSE_OPS, DENSE_OPS_CAPSULE, NULL)
