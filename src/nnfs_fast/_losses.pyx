# Loss kernels: per-sample losses (forward) and their gradients (backward), and the fused
# softmax + categorical cross-entropy of the book's combined class.
#
# Design
# ------
# One pass over the rows per call; each row (its loss, its gradient row) belongs to one
# thread, so results do not depend on the thread count, and work under PAR_WORK (see
# _activations.pxd) stays on the calling thread. Predictions, targets and gradients may have
# any element strides; outputs are C-contiguous. Class labels arrive as intp (N,) ("sparse") or
# as a float32 (N, C) matrix ("one-hot", any real values); a label outside [0, C) is counted
# (never read through) and reported as a ValueError after the loop.
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
# clip(p) = min(max(p, 1e-7), 1 - 1e-7) in float32. Row sums are pairwise (NumPy's order), and
# every elementwise step is the book's float32 operation in the book's order (libm's logf), so
# results equal the book's float32 NumPy expressions given the same log; the fused softmax
# uses the exp of _activations.pxd (~1 ulp, see there).

from cython.parallel cimport prange
from libc.math cimport NAN, logf

from nnfs_fast._activations cimport (ABSOLUTE_ERROR, BINARY_CE, CLIPPED_PROD, EXP_COST,
                                     PAR_WORK, SQUARED_ERROR, check_shape, clip_prob,
                                     elem_stride, map_elements, pairwise_sum, row_map,
                                     softmax_row)

BINARY_CROSSENTROPY = BINARY_CE
SQUARED = SQUARED_ERROR
ABSOLUTE = ABSOLUTE_ERROR


cdef struct Mat:
    # a (rows, cols) float32 matrix seen through element strides; p is NULL when absent
    const float* p
    Py_ssize_t rs, cs


cdef Mat view(str name, const float[:, :] a, Py_ssize_t N, Py_ssize_t C) except *:
    """The Mat of ``a`` after checking its shape is (N, C); a NULL Mat for None or no elements."""
    cdef Mat m
    m.p = NULL
    m.rs = m.cs = 0
    if a is None:
        return m
    check_shape(name, (a.shape[0], a.shape[1]), (N, C))
    m.rs = elem_stride(a.strides[0], name)
    m.cs = elem_stride(a.strides[1], name)
    if N and C:
        m.p = &a[0, 0]
    return m


cdef const Py_ssize_t* label_ptr(const Py_ssize_t[::1] labels, const float[:, :] onehot,
                                 Py_ssize_t N, Py_ssize_t C) except? NULL:
    """Pointer to the sparse labels (checked to be N long), NULL when one-hot is used."""
    if (labels is None) == (onehot is None):
        raise ValueError("y_true: pass exactly one of sparse labels and one-hot labels")
    if N and not C:
        raise ValueError(f"predictions: expected at least one class column, got shape ({N}, 0)")
    if labels is None:
        return NULL
    if labels.shape[0] != N:
        raise ValueError(f"y_true: expected {N} labels (one per sample), got {labels.shape[0]}")
    return &labels[0] if N else NULL


cdef int raise_bad_label(const Py_ssize_t[::1] labels, Py_ssize_t C) except -1:
    """Raise the ValueError for the first label outside [0, C)."""
    cdef Py_ssize_t i
    for i in range(labels.shape[0]):
        if not 0 <= labels[i] < C:
            raise ValueError(f"y_true: class indices must be in [0, {C}) for {C} columns of "
                             f"predictions, got {labels[i]} at position {i}")
    return 0


cdef inline float crossentropy_row(const float* p, Py_ssize_t cs, Py_ssize_t C, Py_ssize_t y,
                                   const float* t, Py_ssize_t ts) noexcept nogil:
    """-log of the clipped confidence in the true class: p[y] (t NULL) or sum_j clip(p_j) t_j."""
    if t == NULL:
        return -logf(clip_prob(p[y * cs]))
    return -logf(pairwise_sum(CLIPPED_PROD, p, cs, t, ts, C))


def crossentropy_forward(const float[:, :] y_pred,           # IN  (N, C) probabilities
                         const Py_ssize_t[::1] labels,        # IN  (N,) class indices, or None
                         const float[:, :] onehot,            # IN  (N, C) targets, or None
                         float[::1] losses,                   # OUT (N,)
                         int n_threads=1):
    """losses[i] = -log(clip(y_pred[i, labels[i]])), or with one-hot targets
    -log(sum_j clip(y_pred[i, j]) * onehot[i, j])."""
    cdef Py_ssize_t N = y_pred.shape[0], C = y_pred.shape[1], i, y, n_bad = 0
    cdef const Py_ssize_t* lab = label_ptr(labels, onehot, N, C)
    cdef Mat P = view("y_pred", y_pred, N, C)
    cdef Mat T = view("y_true", onehot, N, C)
    if losses.shape[0] != N:
        raise ValueError(f"losses: expected {N} elements, got {losses.shape[0]}")
    cdef int nt = max(1, n_threads)
    cdef Py_ssize_t work = N * EXP_COST + (0 if lab != NULL else N * C)
    for i in prange(N, nogil=True, use_threads_if=nt > 1 and work >= PAR_WORK,
                    num_threads=nt, schedule="static"):
        y = lab[i] if lab != NULL else 0
        if lab != NULL and not 0 <= y < C:
            losses[i] = NAN
            n_bad += 1
            continue
        losses[i] = crossentropy_row(P.p + i * P.rs, P.cs, C, y,
                                     T.p + i * T.rs if T.p != NULL else NULL, T.cs)
    if n_bad:
        raise_bad_label(labels, C)


def softmax_crossentropy_forward(const float[:, :] inputs,    # IN  (N, C) logits
                                 const Py_ssize_t[::1] labels,  # IN  (N,) class indices, or None
                                 const float[:, :] onehot,      # IN  (N, C) targets, or None
                                 float[:, ::1] output,          # OUT (N, C) softmax
                                 float[::1] losses,             # OUT (N,)
                                 int n_threads=1):
    """output = softmax(inputs) row-wise; losses = crossentropy_forward(output, labels|onehot)."""
    cdef Py_ssize_t N = inputs.shape[0], C = inputs.shape[1], i, y, n_bad = 0
    cdef const Py_ssize_t* lab = label_ptr(labels, onehot, N, C)
    cdef Mat X = view("inputs", inputs, N, C)
    cdef Mat T = view("y_true", onehot, N, C)
    check_shape("output", (output.shape[0], output.shape[1]), (N, C))
    if losses.shape[0] != N:
        raise ValueError(f"losses: expected {N} elements, got {losses.shape[0]}")
    cdef float* out = &output[0, 0] if N and C else NULL
    cdef int nt = max(1, n_threads)
    for i in prange(N, nogil=True, use_threads_if=nt > 1 and N * C * EXP_COST >= PAR_WORK,
                    num_threads=nt, schedule="static"):
        softmax_row(X.p + i * X.rs, X.cs, out + i * C, C)
        y = lab[i] if lab != NULL else 0
        if lab != NULL and not 0 <= y < C:
            losses[i] = NAN
            n_bad += 1
            continue
        losses[i] = crossentropy_row(out + i * C, 1, C, y,
                                     T.p + i * T.rs if T.p != NULL else NULL, T.cs)
    if n_bad:
        raise_bad_label(labels, C)


def crossentropy_backward(const float[:, :] dvalues,          # IN  (N, C) predicted probabilities
                          const Py_ssize_t[::1] labels,        # IN  (N,) class indices, or None
                          const float[:, :] onehot,            # IN  (N, C) targets, or None
                          float[:, ::1] dinputs,               # OUT (N, C)
                          int n_threads=1):
    """dinputs = -t / dvalues / N with t the one-hot targets (sparse labels: t = [j == y_i])."""
    cdef Py_ssize_t N = dvalues.shape[0], C = dvalues.shape[1], i, j, y, n_bad = 0
    cdef const Py_ssize_t* lab = label_ptr(labels, onehot, N, C)
    cdef Mat D = view("dvalues", dvalues, N, C)
    cdef Mat T = view("y_true", onehot, N, C)
    check_shape("dinputs", (dinputs.shape[0], dinputs.shape[1]), (N, C))
    cdef float* dx = &dinputs[0, 0] if N and C else NULL
    cdef float n = N, t
    cdef int nt = max(1, n_threads)
    for i in prange(N, nogil=True, use_threads_if=nt > 1 and N * C * 2 >= PAR_WORK,
                    num_threads=nt, schedule="static"):
        y = lab[i] if lab != NULL else -1
        if lab != NULL and not 0 <= y < C:
            n_bad += 1
            continue
        for j in range(C):
            t = T.p[i * T.rs + j * T.cs] if lab == NULL else (1 if j == y else 0)
            dx[i * C + j] = -t / D.p[i * D.rs + j * D.cs] / n
    if n_bad:
        raise_bad_label(labels, C)


def softmax_crossentropy_backward(const float[:, :] dvalues,  # IN  (N, C) softmax outputs
                                  const Py_ssize_t[::1] labels,  # IN  (N,) class indices
                                  float[:, ::1] dinputs,       # OUT (N, C)
                                  int n_threads=1):
    """dinputs = (dvalues - onehot(labels)) / N, as the book's copy, ``[range(N), y] -= 1``,
    ``/ N``."""
    cdef Py_ssize_t N = dvalues.shape[0], C = dvalues.shape[1], i, j, y, n_bad = 0
    if labels is None:
        raise ValueError("y_true: class indices are required")
    cdef const Py_ssize_t* lab = label_ptr(labels, None, N, C)
    cdef Mat D = view("dvalues", dvalues, N, C)
    check_shape("dinputs", (dinputs.shape[0], dinputs.shape[1]), (N, C))
    cdef float* dx = &dinputs[0, 0] if N and C else NULL
    cdef float n = N, v
    cdef int nt = max(1, n_threads)
    for i in prange(N, nogil=True, use_threads_if=nt > 1 and N * C * 2 >= PAR_WORK,
                    num_threads=nt, schedule="static"):
        y = lab[i]
        if not 0 <= y < C:
            n_bad += 1
            continue
        for j in range(C):
            v = D.p[i * D.rs + j * D.cs]
            if j == y:
                v = v - 1
            dx[i * C + j] = v / n
    if n_bad:
        raise_bad_label(labels, C)


cdef int check_kind(int kind) except -1:
    if kind != BINARY_CE and kind != SQUARED_ERROR and kind != ABSOLUTE_ERROR:
        raise ValueError(f"kind: expected BINARY_CROSSENTROPY ({BINARY_CE}), SQUARED "
                         f"({SQUARED_ERROR}) or ABSOLUTE ({ABSOLUTE_ERROR}), got {kind}")
    return 0


def sample_losses(int kind,                         # BINARY_CROSSENTROPY, SQUARED or ABSOLUTE
                  const float[:, :] y_pred,         # IN  (N, K)
                  const float[:, :] y_true,         # IN  (N, K)
                  float[::1] losses,                # OUT (N,)
                  int n_threads=1):
    """losses[i] = mean over the K outputs of term(kind, y_pred[i, j], y_true[i, j])."""
    check_kind(kind)
    cdef Py_ssize_t N = y_pred.shape[0], K = y_pred.shape[1], i
    cdef Mat P = view("y_pred", y_pred, N, K)
    cdef Mat Y = view("y_true", y_true, N, K)
    if losses.shape[0] != N:
        raise ValueError(f"losses: expected {N} elements, got {losses.shape[0]}")
    cdef float k = K
    cdef int nt = max(1, n_threads)
    cdef Py_ssize_t cost = 2 * EXP_COST if kind == BINARY_CE else 2
    for i in prange(N, nogil=True, use_threads_if=nt > 1 and N * K * cost >= PAR_WORK,
                    num_threads=nt, schedule="static"):
        losses[i] = pairwise_sum(kind, P.p + i * P.rs, P.cs, Y.p + i * Y.rs, Y.cs, K) / k


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


def mean_loss_backward(int kind,                    # BINARY_CROSSENTROPY, SQUARED or ABSOLUTE
                       const float[:, :] dvalues,   # IN  (N, K) predictions
                       const float[:, :] y_true,    # IN  (N, K)
                       float[:, ::1] dinputs,       # OUT (N, K)
                       int n_threads=1):
    """dinputs = the book's gradient of the loss ``kind`` (see the module design)."""
    check_kind(kind)
    cdef row_map grad = (bce_grad_row if kind == BINARY_CE else
                         mse_grad_row if kind == SQUARED_ERROR else mae_grad_row)
    map_elements(grad, 4, "dvalues", dvalues, "y_true", y_true, dinputs, dvalues.shape[1],
                 dvalues.shape[0], n_threads)
