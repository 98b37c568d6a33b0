# Loss kernels: per-sample losses (forward) and their gradients (backward), the fused
# softmax + categorical cross-entropy of the book's combined class, and the batch mean.
#
# Design
# ------
# Entry points take ndarrays (checked as in _view.pxd: predictions of any real dtype are
# converted to float32 once, float32 ones of any layout are read in place), allocate their
# C-contiguous float32 outputs, and make one pass over the rows; each row (its loss, its
# gradient row) belongs to one thread, so results do not depend on the thread count, and
# work under PAR_WORK (see _activations.pxd) stays on the calling thread without entering
# OpenMP. Class labels are sparse indices (N,) of any integer dtype and stride, read in place
# (no conversion copy), or one-hot rows (N, C) of any real dtype; every index is checked to be
# in [0, C) before any row is computed, so a bad label is never read through.
#
#   crossentropy_forward           loss_i = -log(clip(p[i, y_i]))  or  -log(sum_j clip(p_ij) t_ij)
#   crossentropy_backward          dx_ij  = -t_ij / p_ij / N           (no clip, as the book)
#   softmax_crossentropy_forward   s_i = softmax(x_i) written out, then loss_i from s_i as above:
#                                  the same numbers as Activation_Softmax.forward followed by
#                                  Loss_CategoricalCrossentropy.forward, in one pass
#   softmax_crossentropy_backward  dx_ij  = (s_ij - [j == y_i]) / N
#   sample_losses (kind)           loss_i = (sum_j term(kind, p_ij, y_ij)) / K, kind one of
#                                  BINARY_CROSSENTROPY, SQUARED_ERROR, ABSOLUTE_ERROR
#   mean_loss_backward (kind)      BCE: -(y / c - (1 - y) / (1 - c)) / K / N, c = clip(p)
#                                  MSE: -2 * (y - p) / K / N;  MAE: sign(y - p) / K / N
#   sum_and_mean                   np.add.reduce(losses) and that / N, np.float32 scalars
# clip(p) = min(max(p, 1e-7), 1 - 1e-7) in float32. Sums are pairwise (NumPy's order), and
# every elementwise step is the book's float32 operation in the book's order (libm's logf), so
# results equal the book's float32 NumPy expressions given the same log; the fused softmax
# uses the exp of _activations.pxd (~1 ulp, see there).

cimport numpy as cnp
from libc.math cimport logf
from libc.stdint cimport (int8_t, int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t,
                          uint64_t)

from nnfs_fast._activations cimport (ABSOLUTE_ERROR, BINARY_CE, CLIPPED_PROD, EXP_COST,
                                     SQUARED_ERROR, SUM, clip_prob, float32_array,
                                     map_elements, matrix, min_per_thread, pairwise_sum,
                                     row_map, softmax_row)
from nnfs_fast._parallel cimport run_range
from nnfs_fast._view cimport (I8, I16, I32, I64, U8, U16, U32, Ints, View2, as_float32,
                              as_native, empty2, int_at, int_view, view2)

cnp.import_array()

cdef extern from "numpy/arrayobject.h":
    object PyArray_Scalar(void* data, cnp.dtype descr, object base)

BINARY_CROSSENTROPY = BINARY_CE
SQUARED = SQUARED_ERROR
ABSOLUTE = ABSOLUTE_ERROR

cdef cnp.dtype FLOAT32 = cnp.PyArray_DescrFromType(cnp.NPY_FLOAT32)


cdef inline object float32_scalar(float value):
    return PyArray_Scalar(&value, FLOAT32, None)


cdef inline cnp.ndarray empty1(Py_ssize_t n):
    cdef cnp.npy_intp dims[1]
    dims[0] = n
    return cnp.PyArray_EMPTY(1, dims, cnp.NPY_FLOAT32, 0)


# ------------------------------------------------------------------------------ class labels

cdef struct Labels:
    Ints sparse       # class indices (sparse.data NULL when one-hot)
    View2 onehot      # one-hot rows (onehot.data NULL when sparse)


ctypedef fused index_t:
    int8_t
    uint8_t
    int16_t
    uint16_t
    int32_t
    uint32_t
    int64_t
    uint64_t


cdef Py_ssize_t first_outside(const index_t* y, Py_ssize_t stride, Py_ssize_t n,
                              uint64_t C) noexcept nogil:
    """Position of the first y[i * stride] outside [0, C), or -1 (one branch-free pass)."""
    cdef Py_ssize_t i
    cdef bint bad = False
    for i in range(n):   # as unsigned, a negative index is above C
        bad |= <uint64_t>y[i * stride] >= C
    if not bad:
        return -1
    for i in range(n):
        if <uint64_t>y[i * stride] >= C:
            return i
    return -1


cdef Py_ssize_t bad_label(const Ints* v, Py_ssize_t C) noexcept nogil:
    """first_outside for the element type of v."""
    cdef Py_ssize_t s = v.stride
    if v.code == U8:
        return first_outside(<const uint8_t*>v.data, s, v.n, C)
    if v.code == I8:
        return first_outside(<const int8_t*>v.data, s, v.n, C)
    if v.code == I16:
        return first_outside(<const int16_t*>v.data, s // 2, v.n, C)
    if v.code == U16:
        return first_outside(<const uint16_t*>v.data, s // 2, v.n, C)
    if v.code == I32:
        return first_outside(<const int32_t*>v.data, s // 4, v.n, C)
    if v.code == U32:
        return first_outside(<const uint32_t*>v.data, s // 4, v.n, C)
    if v.code == I64:
        return first_outside(<const int64_t*>v.data, s // 8, v.n, C)
    return first_outside(<const uint64_t*>v.data, s // 8, v.n, C)


cdef object labels(object y_true, Py_ssize_t N, Py_ssize_t C, bint as_indices,
                   Labels* out):
    """Check the class labels of predictions of shape (N, C) and fill *out; returns the array
    *out views (keep it alive). Sparse: integers (N,), each in [0, C). One-hot: (N, C), as
    float32, or with as_indices turned into indices by argmax (the book's combined backward).
    """
    out.sparse.data = NULL
    out.onehot.data = NULL
    if N and not C:
        raise ValueError(f"predictions: expected at least one class column, got shape ({N}, 0)")
    y = y_true if cnp.PyArray_Check(y_true) else cnp.PyArray_FROM_O(y_true)
    cdef int ndim = cnp.PyArray_NDIM(<cnp.ndarray>y)
    if ndim == 2:
        if y.shape != (N, C):
            raise ValueError(f"y_true: expected one-hot labels of shape {(N, C)}, got {y.shape}")
        if not as_indices:
            y = as_float32(y, "y_true")
            out.onehot = view2(y, "y_true")
            return y
        y = y.argmax(axis=1)
    elif ndim != 1:
        raise ValueError(f"y_true: expected class indices of shape ({N},) or one-hot labels of "
                         f"shape {(N, C)}, got shape {y.shape}")
    elif not cnp.PyArray_ISINTEGER(<cnp.ndarray>y):
        raise TypeError(f"y_true: class indices must be integers, got dtype {y.dtype}")
    elif cnp.PyArray_DIM(<cnp.ndarray>y, 0) != N:
        raise ValueError(f"y_true: expected {N} class indices (one per sample), got shape "
                         f"{y.shape}")
    y = as_native(y)
    out.sparse = int_view(y, "y_true")
    cdef Py_ssize_t i = bad_label(&out.sparse, C)
    if i >= 0:
        raise ValueError(f"y_true: class indices must be in [0, {C}) for {C} columns of "
                         f"predictions, got {y[i]} at position {i}")
    return y


# ---------------------------------------------------------------------- categorical CE

cdef struct RowArgs:
    View2 p           # predictions (logits for the fused forward)
    Labels t
    View2 q           # sample_losses: targets
    int kind          # sample_losses: the term
    float* out        # (N, C) output: softmax (fused forward) or gradient; C-contiguous
    float* losses     # (N,)


cdef inline float crossentropy_row(const float* p, Py_ssize_t cs, Py_ssize_t C,
                                   const Labels* t, Py_ssize_t i) noexcept nogil:
    """-log of the clipped confidence of row i in its true class: p[y_i], or with one-hot
    targets sum_j clip(p_j) t_ij."""
    if t.sparse.data != NULL:
        return -logf(clip_prob(p[int_at(&t.sparse, i) * cs]))
    return -logf(pairwise_sum(CLIPPED_PROD, p, cs, t.onehot.data + i * t.onehot.rs,
                              t.onehot.cs, C))


cdef void crossentropy_range(void* ctx, Py_ssize_t start, Py_ssize_t end) noexcept nogil:
    cdef RowArgs* r = <RowArgs*>ctx
    cdef Py_ssize_t i
    for i in range(start, end):
        r.losses[i] = crossentropy_row(r.p.data + i * r.p.rs, r.p.cs, r.p.cols, &r.t, i)


def crossentropy_forward(y_pred, y_true, int n_threads=1):
    """y_pred (N, C) probabilities, y_true (N,) class indices or (N, C) one-hot -> losses (N,):
    -log(clip(y_pred[i, y_true[i]])), or -log(sum_j clip(y_pred[i, j]) * y_true[i, j])."""
    P = float32_array(y_pred, "y_pred")
    cdef RowArgs r
    r.p = matrix(P, "y_pred")
    Y = labels(y_true, r.p.rows, r.p.cols, False, &r.t)
    losses = empty1(r.p.rows)
    r.losses = <float*>cnp.PyArray_DATA(losses)
    with nogil:
        run_range(crossentropy_range, &r, r.p.rows, n_threads,
                  min_per_thread(EXP_COST + (0 if r.t.sparse.data != NULL else r.p.cols)))
    return losses


cdef void softmax_crossentropy_range(void* ctx, Py_ssize_t start,
                                     Py_ssize_t end) noexcept nogil:
    cdef RowArgs* r = <RowArgs*>ctx
    cdef Py_ssize_t i, C = r.p.cols
    for i in range(start, end):
        softmax_row(r.p.data + i * r.p.rs, r.p.cs, r.out + i * C, C)
        r.losses[i] = crossentropy_row(r.out + i * C, 1, C, &r.t, i)


def softmax_crossentropy_forward(inputs, y_true, int n_threads=1):
    """inputs (N, C) logits, y_true as for crossentropy_forward -> (output, losses): output =
    softmax(inputs) row-wise (N, C), losses = crossentropy_forward(output, y_true) (N,)."""
    X = float32_array(inputs, "inputs")
    cdef RowArgs r
    r.p = matrix(X, "inputs")
    Y = labels(y_true, r.p.rows, r.p.cols, False, &r.t)
    output = empty2(r.p.rows, r.p.cols)
    losses = empty1(r.p.rows)
    r.out = <float*>cnp.PyArray_DATA(output)
    r.losses = <float*>cnp.PyArray_DATA(losses)
    with nogil:
        run_range(softmax_crossentropy_range, &r, r.p.rows, n_threads,
                  min_per_thread(EXP_COST * r.p.cols))
    return output, losses


cdef void crossentropy_grad_range(void* ctx, Py_ssize_t start, Py_ssize_t end) noexcept nogil:
    cdef RowArgs* r = <RowArgs*>ctx
    cdef Py_ssize_t i, j, y, C = r.p.cols
    cdef float n = r.p.rows, t, zero = 0, one = 1
    cdef View2 p = r.p, o = r.t.onehot
    for i in range(start, end):
        y = int_at(&r.t.sparse, i) if r.t.sparse.data != NULL else -1
        for j in range(C):
            t = o.data[i * o.rs + j * o.cs] if o.data != NULL else (one if j == y else zero)
            r.out[i * C + j] = -t / p.data[i * p.rs + j * p.cs] / n


def crossentropy_backward(dvalues, y_true, int n_threads=1):
    """dvalues (N, C) predicted probabilities, y_true as for crossentropy_forward -> dinputs
    (N, C) = -t / dvalues / N with t the one-hot targets (sparse labels: t_ij = [j == y_i])."""
    D = float32_array(dvalues, "dvalues")
    cdef RowArgs r
    r.p = matrix(D, "dvalues")
    Y = labels(y_true, r.p.rows, r.p.cols, False, &r.t)
    dinputs = empty2(r.p.rows, r.p.cols)
    r.out = <float*>cnp.PyArray_DATA(dinputs)
    with nogil:
        run_range(crossentropy_grad_range, &r, r.p.rows, n_threads,
                  min_per_thread(2 * r.p.cols))
    return dinputs


cdef void softmax_crossentropy_grad_range(void* ctx, Py_ssize_t start,
                                          Py_ssize_t end) noexcept nogil:
    cdef RowArgs* r = <RowArgs*>ctx
    cdef Py_ssize_t i, j, y, C = r.p.cols
    cdef float n = r.p.rows, v
    cdef View2 p = r.p
    for i in range(start, end):
        y = int_at(&r.t.sparse, i)
        for j in range(C):
            v = p.data[i * p.rs + j * p.cs]
            if j == y:
                v = v - 1
            r.out[i * C + j] = v / n


def softmax_crossentropy_backward(dvalues, y_true, int n_threads=1):
    """dvalues (N, C) softmax outputs, y_true (N,) class indices or (N, C) one-hot (argmax is
    used) -> dinputs (N, C) = (dvalues - onehot(y_true)) / N, as the book's copy,
    ``[range(N), y] -= 1``, ``/ N``."""
    D = float32_array(dvalues, "dvalues")
    cdef RowArgs r
    r.p = matrix(D, "dvalues")
    Y = labels(y_true, r.p.rows, r.p.cols, True, &r.t)
    dinputs = empty2(r.p.rows, r.p.cols)
    r.out = <float*>cnp.PyArray_DATA(dinputs)
    with nogil:
        run_range(softmax_crossentropy_grad_range, &r, r.p.rows, n_threads,
                  min_per_thread(2 * r.p.cols))
    return dinputs


# ------------------------------------------------------------- per-output (regression) losses

cdef int check_kind(int kind) except -1:
    if kind != BINARY_CE and kind != SQUARED_ERROR and kind != ABSOLUTE_ERROR:
        raise ValueError(f"kind: expected BINARY_CROSSENTROPY ({BINARY_CE}), SQUARED "
                         f"({SQUARED_ERROR}) or ABSOLUTE ({ABSOLUTE_ERROR}), got {kind}")
    return 0


cdef object targets(object y_true, View2* like, View2* out):
    """Per-output targets (N, K) like the predictions, as float32: fills *out, returns the
    array it views."""
    y = y_true if cnp.PyArray_Check(y_true) else cnp.PyArray_FROM_O(y_true)
    if cnp.PyArray_NDIM(<cnp.ndarray>y) != 2:
        raise ValueError(f"y_true: expected targets of shape {(like.rows, like.cols)}, like the "
                         f"predictions, got shape {y.shape} (1-D labels need y.reshape(-1, 1), "
                         f"as in the book)")
    Y = float32_array(y, "y_true")
    out[0] = matrix(Y, "y_true", like.rows, like.cols)
    return Y


cdef void sample_losses_range(void* ctx, Py_ssize_t start, Py_ssize_t end) noexcept nogil:
    cdef RowArgs* r = <RowArgs*>ctx
    cdef Py_ssize_t i
    cdef float k = r.p.cols
    for i in range(start, end):
        r.losses[i] = pairwise_sum(r.kind, r.p.data + i * r.p.rs, r.p.cs,
                                   r.q.data + i * r.q.rs, r.q.cs, r.p.cols) / k


def sample_losses(int kind, y_pred, y_true, int n_threads=1):
    """kind: BINARY_CROSSENTROPY, SQUARED or ABSOLUTE; y_pred, y_true (N, K) -> losses (N,):
    the mean over the K outputs of term(kind, y_pred[i, j], y_true[i, j])."""
    check_kind(kind)
    P = float32_array(y_pred, "y_pred")
    cdef RowArgs r
    r.p = matrix(P, "y_pred")
    Y = targets(y_true, &r.p, &r.q)
    r.kind = kind
    losses = empty1(r.p.rows)
    r.losses = <float*>cnp.PyArray_DATA(losses)
    with nogil:
        run_range(sample_losses_range, &r, r.p.rows, n_threads,
                  min_per_thread((2 * EXP_COST if kind == BINARY_CE else 2) * r.p.cols))
    return losses


# the book's gradients of mean_i(mean_j term(kind, p_ij, y_ij)), elementwise; k = K, n = N;
# float constants keep every step in float32 (a literal would be a double)
cdef void bce_grad_row(const float* p, Py_ssize_t cp, const float* y, Py_ssize_t cy,
                       float* out, Py_ssize_t m, float k, float n) noexcept nogil:
    cdef Py_ssize_t j
    cdef float c, one = 1
    for j in range(m):
        c = clip_prob(p[j * cp])
        out[j] = -(y[j * cy] / c - (one - y[j * cy]) / (one - c)) / k / n


cdef void mse_grad_row(const float* p, Py_ssize_t cp, const float* y, Py_ssize_t cy,
                       float* out, Py_ssize_t m, float k, float n) noexcept nogil:
    cdef Py_ssize_t j
    cdef float minus_two = -2
    for j in range(m):
        out[j] = minus_two * (y[j * cy] - p[j * cp]) / k / n


cdef void mae_grad_row(const float* p, Py_ssize_t cp, const float* y, Py_ssize_t cy,
                       float* out, Py_ssize_t m, float k, float n) noexcept nogil:
    cdef Py_ssize_t j
    cdef float d, sign
    for j in range(m):
        d = y[j * cy] - p[j * cp]
        # np.sign: 1, -1, 0 (also for -0.0), NaN stays NaN
        sign = 1 if d > 0 else (-1 if d < 0 else (0 if d == 0 else d))
        out[j] = sign / k / n


def mean_loss_backward(int kind, dvalues, y_true, int n_threads=1):
    """kind as for sample_losses; dvalues (N, K) predictions, y_true (N, K) -> dinputs (N, K),
    the book's gradient of the loss ``kind`` (see the module design)."""
    check_kind(kind)
    cdef row_map grad = (bce_grad_row if kind == BINARY_CE else
                         mse_grad_row if kind == SQUARED_ERROR else mae_grad_row)
    D = float32_array(dvalues, "dvalues")
    cdef View2 d = matrix(D, "dvalues"), y
    Y = targets(y_true, &d, &y)
    return map_elements(grad, 4, d, y, d.cols, d.rows, n_threads)


# ----------------------------------------------------------------------------- batch mean

def sum_and_mean(sample_losses):
    """For a float32 1-D array of N > 0 losses: (total, mean, N) with total = np.add.reduce
    (NumPy's pairwise order, bit for bit) and mean = total / float32(N) (= np.mean), both
    np.float32; (None, None, N) when N is 0. None for anything else (NumPy's turn)."""
    if not (cnp.PyArray_Check(sample_losses)
            and cnp.PyArray_TYPE(<cnp.ndarray>sample_losses) == cnp.NPY_FLOAT32
            and cnp.PyArray_NDIM(<cnp.ndarray>sample_losses) == 1):
        return None
    L = as_float32(sample_losses, "sample_losses")    # aligned, native
    cdef cnp.ndarray arr = <cnp.ndarray>L
    cdef Py_ssize_t n = cnp.PyArray_DIM(arr, 0)
    cdef float total, count = n
    if n == 0:
        return None, None, 0
    cdef const float* p = <const float*>cnp.PyArray_DATA(arr)
    cdef Py_ssize_t stride = cnp.PyArray_STRIDE(arr, 0) // 4
    total = pairwise_sum(SUM, p, stride, p, stride, n)
    return float32_scalar(total), float32_scalar(total / count), n
