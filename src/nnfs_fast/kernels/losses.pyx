# Loss kernels: per-sample losses (forward) and their gradients (backward), the fused
# softmax + categorical cross-entropy of the book's combined class, and the batch mean.
#
# Design
# ------
# Entry points take ndarrays (checked as in kernels/arrays.pxd: predictions of any real dtype are
# converted to float32 once, float32 ones of any layout are read in place), allocate their
# C-contiguous float32 outputs, and make one pass over the rows; each row (its loss, its
# gradient row) belongs to one thread, so results do not depend on the thread count, and
# work under PAR_WORK (see kernels/parallel.pxd) stays on the calling thread without touching
# the thread pool. Class labels are sparse indices (N,) of any integer dtype and stride, or
# one-hot rows (N, C) of any real dtype. Sparse labels are copied once into a private int64
# array (8 bytes per sample), every index of the copy is checked to be in [0, C) before any row
# is computed, and the kernels index with that copy only: a bad label is never read through,
# and another Python thread rewriting y_true while a kernel runs without the GIL changes nothing
# the kernel reads (the call sees the labels as they were when copied).
#
#   crossentropy_forward           loss_i = -log(clip(p[i, y_i]))  or  -log(sum_j clip(p_ij) t_ij)
#   crossentropy_backward          dx_ij  = -t_ij / p_ij / N           (no clip, as the book)
#   softmax_crossentropy_forward   s_i = softmax(x_i) written out, then loss_i from s_i as above:
#                                  the same numbers as Activation_Softmax.forward followed by
#                                  Loss_CategoricalCrossentropy.forward, in one pass
#   softmax_crossentropy_backward  dx_ij  = (s_ij - [j == y_i]) / N
#   sample_losses (kind)           loss_i = (sum_j term_kind(p_ij, y_ij)) / K, kind one of
#                                  BINARY_CROSSENTROPY, SQUARED_ERROR, ABSOLUTE_ERROR
#   mean_loss_backward (kind)      BCE: -(y / c - (1 - y) / (1 - c)) / K / N, c = clip(p)
#                                  MSE: -2 * (y - p) / K / N;  MAE: sign(y - p) / K / N
#   sum_and_mean                   np.add.reduce(losses) and that / N, np.float32 scalars
# clip(p) = min(max(p, 1e-7), 1 - 1e-7) in float32. Sums are pairwise (NumPy's order), and
# every elementwise step is the book's float32 operation in the book's order, so results equal
# the book's float32 NumPy expressions given the same log and exp. log is log_prob of
# kernels/rows.pxd, correctly rounded on the clipped range (NumPy's float32 log is 1 ulp off
# for ~6% of it); the fused softmax uses the exp of kernels/rows.pxd (~1 ulp, see there).
# Floating point: bit-identical on every platform and compiler (setup.py: -ffp-contract=off),
# except log_of_sum's libm logf for one-hot targets other than 0/1 (docs/INSTALL.md).

cimport numpy as cnp
from libc.float cimport FLT_MAX, FLT_MIN
from libc.math cimport logf
from libc.stdint cimport int64_t, uint64_t

from nnfs_fast.kernels.rows cimport (ABSOLUTE_ERROR, BINARY_CE, CLIPPED_PROD, EXP_COST,
                                     ROW_BLOCK, SQUARED_ERROR, SUM, clip_prob, log_prob,
                                     map_elements, min_per_thread, pairwise_sum, row_map,
                                     softmax_rows)
from nnfs_fast.kernels.parallel cimport run_range, thresholds
from nnfs_fast.kernels.arrays cimport (U64, Ints, View2, as_float32, as_native, empty2,
                                       float32_array, int64_copy, int_view, matrix, view2)

cnp.import_array()
globals().update(thresholds())   # PAR_WORK, PAR_ELEMS, ... for tests (kernels/parallel.pxd)

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

cdef Py_ssize_t bad_label(const int64_t* y, Py_ssize_t n, Py_ssize_t C) noexcept nogil:
    """Position of the first of y[:n] outside [0, C), or -1 (a branch-free pass first)."""
    cdef Py_ssize_t i
    cdef bint bad = False
    for i in range(n):          # as unsigned, a negative label is above C
        bad |= <uint64_t>y[i] >= <uint64_t>C
    if bad:
        for i in range(n):
            if <uint64_t>y[i] >= <uint64_t>C:
                return i
    return -1


cdef object labels(object y_true, Py_ssize_t N, Py_ssize_t C, bint as_indices,
                   Labels* out):
    """Check the class labels of predictions of shape (N, C) and fill *out; returns the array
    *out views (keep it alive). Sparse: integers (N,), each in [0, C), copied (int64_copy) so
    that the kernels use exactly the checked values. One-hot: (N, C), as float32, or with
    as_indices turned into indices by argmax (the book's combined backward). Sizes are those
    of the arrays viewed, whatever a subclass's shape or methods answer.
    """
    out.sparse = NULL
    out.onehot.data = NULL
    if N and not C:
        raise ValueError(f"predictions: expected at least one class column, got shape ({N}, 0)")
    y = y_true if cnp.PyArray_Check(y_true) else cnp.PyArray_FROM_O(y_true)
    cdef int ndim = cnp.PyArray_NDIM(<cnp.ndarray>y)
    if ndim == 2:
        rows, cols = cnp.PyArray_DIM(<cnp.ndarray>y, 0), cnp.PyArray_DIM(<cnp.ndarray>y, 1)
        if rows != N or cols != C:
            raise ValueError(f"y_true: expected one-hot labels of shape {(N, C)}, got "
                             f"{(rows, cols)}")
        if not as_indices:
            y = as_float32(y, "y_true")
            out.onehot = view2(y, "y_true", N, C)
            return y
        y = y.argmax(axis=1)
    elif ndim != 1:
        raise ValueError(f"y_true: expected class indices of shape ({N},) or one-hot labels of "
                         f"shape {(N, C)}, got shape {y.shape}")
    elif not cnp.PyArray_ISINTEGER(<cnp.ndarray>y):
        raise TypeError(f"y_true: class indices must be integers, got dtype {y.dtype}")
    cdef Ints v = int_view(as_native(y), "y_true")
    if v.n != N:
        raise ValueError(f"y_true: expected {N} class indices (one per sample), got shape "
                         f"({v.n},)")
    Y = int64_copy(&v)
    out.sparse = <const int64_t*>cnp.PyArray_DATA(Y)
    cdef Py_ssize_t i = bad_label(out.sparse, N, C)
    cdef object label
    if i >= 0:
        if v.code == U64:
            label = <uint64_t>out.sparse[i]
        else:
            label = out.sparse[i]
        raise ValueError(f"y_true: class indices must be in [0, {C}) for {C} columns of "
                         f"predictions, got {label} at position {i}")
    return Y


# ---------------------------------------------------------------------- categorical CE

cdef inline float log_of_sum(float v) noexcept nogil:
    """log of a one-hot-weighted sum of clipped probabilities: log_prob where it applies (a
    positive normal float or NaN, as for every true one-hot row, so sparse and one-hot labels
    agree bit for bit), libm's logf for what targets of any real values can make (0, a
    negative, a subnormal or an infinite sum)."""
    if FLT_MIN <= v <= FLT_MAX or v != v:
        return log_prob(v)
    return logf(v)


cdef inline void crossentropy_rows(const float* p, Py_ssize_t rs, Py_ssize_t cs, Py_ssize_t C,
                                   const Labels* t, Py_ssize_t i0, Py_ssize_t R,
                                   float* losses) noexcept nogil:
    """losses[r] = -log of the clipped confidence of row i0 + r (p points at row i0) in its
    true class, for r < R <= ROW_BLOCK: p[y] (sparse), or sum_j clip(p_j) t_j (one-hot). The
    sparse logs are one loop over the block (vectorized)."""
    cdef float g[ROW_BLOCK]
    cdef const int64_t* y = t.sparse + i0
    cdef Py_ssize_t r
    cdef View2 o = t.onehot
    if t.sparse == NULL:
        for r in range(R):
            losses[r] = -log_of_sum(pairwise_sum(CLIPPED_PROD, p + r * rs, cs,
                                                 o.data + (i0 + r) * o.rs, o.cs, C))
        return
    for r in range(R):
        g[r] = p[r * rs + y[r] * cs]
    for r in range(R):
        losses[r] = -log_prob(clip_prob(g[r]))


cdef void crossentropy_range(void* ctx, Py_ssize_t start, Py_ssize_t end) noexcept nogil:
    cdef RowArgs* r = <RowArgs*>ctx
    cdef Py_ssize_t i = start
    while i < end:
        crossentropy_rows(r.p.data + i * r.p.rs, r.p.rs, r.p.cs, r.p.cols, &r.t, i,
                          min(<Py_ssize_t>ROW_BLOCK, end - i), r.losses + i)
        i += ROW_BLOCK


def crossentropy_forward(y_pred, y_true, int n_threads=1):
    """y_pred (N, C) probabilities, y_true (N,) class indices or (N, C) one-hot -> losses (N,):
    -log(clip(y_pred[i, y_true[i]])), or -log(sum_j clip(y_pred[i, j]) * y_true[i, j])."""
    P = float32_array(y_pred, "y_pred")
    cdef RowArgs r
    r.p = matrix(P, "y_pred")
    # _Y (here and below): keeps the array r.t points into alive until the kernel is done
    _Y = labels(y_true, r.p.rows, r.p.cols, False, &r.t)
    losses = empty1(r.p.rows)
    r.losses = <float*>cnp.PyArray_DATA(losses)
    with nogil:
        run_range(crossentropy_range, &r, r.p.rows, n_threads,
                  min_per_thread(EXP_COST + (0 if r.t.sparse != NULL else r.p.cols)))
    return losses


cdef void softmax_crossentropy_range(void* ctx, Py_ssize_t start,
                                     Py_ssize_t end) noexcept nogil:
    """Rows [start, end) in blocks of ROW_BLOCK: softmax, then the losses while in cache."""
    cdef RowArgs* r = <RowArgs*>ctx
    cdef Py_ssize_t i = start, n, C = r.p.cols
    while i < end:
        n = min(<Py_ssize_t>ROW_BLOCK, end - i)
        softmax_rows(r.p.data + i * r.p.rs, r.p.rs, r.p.cs, r.out + i * C, n, C)
        crossentropy_rows(r.out + i * C, C, 1, C, &r.t, i, n, r.losses + i)
        i += n


def softmax_crossentropy_forward(inputs, y_true, int n_threads=1):
    """inputs (N, C) logits, y_true as for crossentropy_forward -> (output, losses): output =
    softmax(inputs) row-wise (N, C), losses = crossentropy_forward(output, y_true) (N,)."""
    X = float32_array(inputs, "inputs")
    cdef RowArgs r
    r.p = matrix(X, "inputs")
    _Y = labels(y_true, r.p.rows, r.p.cols, False, &r.t)
    output = empty2(r.p.rows, r.p.cols)
    losses = empty1(r.p.rows)
    r.out = <float*>cnp.PyArray_DATA(output)
    r.losses = <float*>cnp.PyArray_DATA(losses)
    with nogil:
        run_range(softmax_crossentropy_range, &r, r.p.rows, n_threads,
                  min_per_thread(EXP_COST * r.p.cols))
    return output, losses


cdef void sparse_grad_range(void* ctx, Py_ssize_t start, Py_ssize_t end) noexcept nogil:
    """Rows [start, end) of a gradient with sparse labels, as the book's array operations:
    dinputs = p (a copy), or -0 / p (crossentropy: -t / p where t = 0); then the true class
    of each row: p - 1, or -1 / p; then dinputs / N. The whole-block passes are flat loops
    over the C-contiguous output (vectorized), so the labels cost one access per row."""
    cdef RowArgs* r = <RowArgs*>ctx
    cdef View2 p = r.p
    cdef Py_ssize_t i, j, k, y, C = p.cols, m = (end - start) * C
    cdef float* out = r.out + start * C
    cdef float n = p.rows, v, one = 1, zero = 0
    cdef float neg_zero = -zero
    cdef bint crossentropy = r.kind == CROSSENTROPY
    if p.cs == 1 and p.rs == C:
        for k in range(m):
            out[k] = p.data[start * C + k]
    else:
        for i in range(end - start):
            for j in range(C):
                out[i * C + j] = p.data[(start + i) * p.rs + j * p.cs]
    if crossentropy:
        for k in range(m):
            out[k] = neg_zero / out[k]
    for i in range(start, end):
        y = r.t.sparse[i]
        v = p.data[i * p.rs + y * p.cs]
        out[(i - start) * C + y] = -one / v if crossentropy else v - one
    for k in range(m):
        out[k] = out[k] / n


cdef void onehot_grad_row(const float* p, Py_ssize_t cp, const float* t, Py_ssize_t ct,
                          float* out, Py_ssize_t m, float n, float unused) noexcept nogil:
    cdef Py_ssize_t j
    for j in range(m):
        out[j] = -t[j * ct] / p[j * cp] / n


cdef object sparse_grad(int kind, object dvalues, object y_true, bint as_indices,
                        int n_threads):
    """The gradient of crossentropy (kind CROSSENTROPY) or of the combined softmax +
    crossentropy (SOFTMAX_CROSSENTROPY, one-hot labels as_indices) with respect to dvalues."""
    D = float32_array(dvalues, "dvalues")
    cdef RowArgs r
    r.p = matrix(D, "dvalues")
    r.kind = kind
    _Y = labels(y_true, r.p.rows, r.p.cols, as_indices, &r.t)
    if r.t.sparse == NULL:          # one-hot targets t: -t / p / N elementwise
        return map_elements(onehot_grad_row, 3, r.p, r.t.onehot, r.p.rows, 0, n_threads)
    dinputs = empty2(r.p.rows, r.p.cols)
    r.out = <float*>cnp.PyArray_DATA(dinputs)
    with nogil:
        run_range(sparse_grad_range, &r, r.p.rows, n_threads, min_per_thread(3 * r.p.cols))
    return dinputs


def crossentropy_backward(dvalues, y_true, int n_threads=1):
    """dvalues (N, C) predicted probabilities, y_true as for crossentropy_forward -> dinputs
    (N, C) = -t / dvalues / N with t the one-hot targets (sparse labels: t_ij = [j == y_i])."""
    return sparse_grad(CROSSENTROPY, dvalues, y_true, False, n_threads)


def softmax_crossentropy_backward(dvalues, y_true, int n_threads=1):
    """dvalues (N, C) softmax outputs, y_true (N,) class indices or (N, C) one-hot (argmax is
    used) -> dinputs (N, C) = (dvalues - onehot(y_true)) / N, as the book's copy,
    ``[range(N), y] -= 1``, ``/ N``."""
    return sparse_grad(SOFTMAX_CROSSENTROPY, dvalues, y_true, True, n_threads)


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
    the mean over the K outputs of the term of kind (see kernels/rows.pxd's terms)."""
    check_kind(kind)
    P = float32_array(y_pred, "y_pred")
    cdef RowArgs r
    r.p = matrix(P, "y_pred")
    _Y = targets(y_true, &r.p, &r.q)
    r.kind = kind
    losses = empty1(r.p.rows)
    r.losses = <float*>cnp.PyArray_DATA(losses)
    with nogil:
        run_range(sample_losses_range, &r, r.p.rows, n_threads,
                  min_per_thread((2 * EXP_COST if kind == BINARY_CE else 2) * r.p.cols))
    return losses


# the book's gradients of mean_i(mean_j term_kind(p_ij, y_ij)), elementwise; k = K, n = N;
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
    _Y = targets(y_true, &d, &y)
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
