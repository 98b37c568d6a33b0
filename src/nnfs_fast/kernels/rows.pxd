# Row routines shared by the activation kernels (kernels/activations.pyx) and the loss kernels
# (kernels/losses.pyx, which fuses softmax with cross-entropy): inline, nogil, on float pointers
# with element strides; and the elementwise map their entry points share (their argument
# checks, float32_array and matrix, are kernels/arrays.pxd's).
#
# Every routine does the book's float32 NumPy operations in the book's order. Sums use
# NumPy's pairwise order (8 running sums per 128-element block, blocks halved recursively),
# so a row sum equals np.sum(row) bit for bit. exp, the log of a clipped probability, sigmoid
# and ReLU are kernels/vecmath.h's (declared below).
cimport numpy as cnp
from libc.math cimport fabsf

from nnfs_fast.kernels.parallel cimport PAR_WORK, run_range
from nnfs_fast.kernels.arrays cimport View2, empty2, view2

cdef extern from "vecmath.h" nogil:
    float exp_nonpos "nnfs_exp_nonpos"(float x) noexcept
    float clip_prob "nnfs_clip_prob"(float p) noexcept
    float log_prob "nnfs_log_prob"(float p) noexcept
    float sigmoid "nnfs_sigmoid"(float x) noexcept
    float relu "nnfs_relu"(float x) noexcept
    float relu_grad "nnfs_relu_grad"(float x, float g) noexcept
    float relu_grad_out "nnfs_relu_grad_out"(float y, float g) noexcept

cdef enum:
    PW_BLOCK = 128    # NumPy's pairwise-summation block
    ROW_BLOCK = 32    # rows softmax_block computes together
    EXP_COST = 8      # work units of one exp or log (an add, compare or copy is 1)

# what pairwise_sum adds up: the terms of a kind, of p[i] and y[i]
cdef enum Term:
    SUM = 0           # p
    CLIPPED_PROD = 1  # clip(p) * y                                      (one-hot CCE)
    SQUARED_ERROR = 2  # (y - p)^2                                        (MSE)
    ABSOLUTE_ERROR = 3  # |y - p|                                         (MAE)
    BINARY_CE = 4     # -(y * log(clip(p)) + (1 - y) * log(1 - clip(p)))  (BCE)


cdef inline void terms(int kind, const float* p, Py_ssize_t ps, const float* y, Py_ssize_t ys,
                       Py_ssize_t n, float* out) noexcept nogil:
    """out[i] = the term of ``kind`` of p[i*ps] and y[i*ys], for i < n: one loop per kind,
    so that each vectorizes."""
    cdef Py_ssize_t i
    cdef float c, d, one = 1   # a float 1: a literal 1 would make Cython compute in double
    if kind == SUM:
        for i in range(n):
            out[i] = p[i * ps]
    elif kind == CLIPPED_PROD:
        for i in range(n):
            out[i] = clip_prob(p[i * ps]) * y[i * ys]
    elif kind == SQUARED_ERROR:
        for i in range(n):
            d = y[i * ys] - p[i * ps]
            out[i] = d * d
    elif kind == ABSOLUTE_ERROR:
        for i in range(n):
            out[i] = fabsf(y[i * ys] - p[i * ps])
    else:
        for i in range(n):
            c = clip_prob(p[i * ps])
            out[i] = -(y[i * ys] * log_prob(c) + (one - y[i * ys]) * log_prob(one - c))


cdef inline float pairwise_sum(int kind, const float* p, Py_ssize_t ps, const float* y,
                               Py_ssize_t ys, Py_ssize_t n) noexcept nogil:
    """The sum of the terms of ``kind`` (see terms) for i < n, in NumPy's pairwise order:
    halves down to blocks of at most PW_BLOCK terms, each summed with 8 running sums (a
    single one below 8 terms). y is read only by the kinds that use it (pass p for SUM)."""
    cdef float t[PW_BLOCK]
    cdef float r[8]
    cdef float res
    cdef Py_ssize_t i, k, n8, half
    if n > PW_BLOCK:
        half = n // 2
        half -= half % 8
        return (pairwise_sum(kind, p, ps, y, ys, half)
                + pairwise_sum(kind, p + half * ps, ps, y + half * ys, ys, n - half))
    terms(kind, p, ps, y, ys, n, t)
    if n < 8:
        res = -0.0
        for i in range(n):
            res = res + t[i]
        return res
    for k in range(8):
        r[k] = t[k]
    n8 = n - n % 8
    for i in range(8, n8, 8):
        for k in range(8):
            r[k] = r[k] + t[i + k]
    res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
    for i in range(n8, n):
        res = res + t[i]
    return res


cdef inline void softmax_row(const float* x, Py_ssize_t cs, float* out,
                             Py_ssize_t n) noexcept nogil:
    """out[j] = exp(x[j] - max(x)) / sum_k exp(x[k] - max(x)) for j < n (out contiguous)."""
    cdef Py_ssize_t j
    cdef float m, s
    if n == 0:
        return
    m = x[0]
    for j in range(1, n):
        if x[j * cs] > m:
            m = x[j * cs]
    for j in range(n):
        out[j] = exp_nonpos(x[j * cs] - m)
    s = pairwise_sum(SUM, out, 1, out, 1, n)
    for j in range(n):
        out[j] = out[j] / s


cdef inline void softmax_block(const float* x, Py_ssize_t rs, Py_ssize_t cs, float* out,
                               Py_ssize_t R, Py_ssize_t C) noexcept nogil:
    """softmax_row for R <= ROW_BLOCK rows of C <= PW_BLOCK columns (out C-contiguous), with
    the vector lanes running across the rows: the block is transposed into a buffer, where
    each step of softmax_row -- max, exp, the pairwise sum (for C <= PW_BLOCK its 8 running
    sums, or one below 8 terms), the division -- is one loop over the rows, in the same order
    per row, so the results are softmax_row's bit for bit."""
    cdef float t[PW_BLOCK * ROW_BLOCK]   # t[j * ROW_BLOCK + r] = row r, column j
    cdef float m[ROW_BLOCK]
    cdef float acc[8 * ROW_BLOCK]        # the pairwise sum's running sums, then the sum
    cdef Py_ssize_t r, j, k, n8 = C - C % 8
    cdef float v
    # contiguous rows of 2 or 3 columns (binary and the book's 3-class spiral): a constant
    # stride, so the loads vectorize; any other layout column by column
    if cs == 1 and rs == C and C == 2:
        for r in range(R):
            t[r] = x[2 * r]
            t[ROW_BLOCK + r] = x[2 * r + 1]
    elif cs == 1 and rs == C and C == 3:
        for r in range(R):
            t[r] = x[3 * r]
            t[ROW_BLOCK + r] = x[3 * r + 1]
            t[2 * ROW_BLOCK + r] = x[3 * r + 2]
    else:
        for j in range(C):
            for r in range(R):
                t[j * ROW_BLOCK + r] = x[r * rs + j * cs]
    for r in range(R):
        m[r] = t[r]
    for j in range(1, C):
        for r in range(R):
            v = t[j * ROW_BLOCK + r]
            m[r] = v if v > m[r] else m[r]
    for j in range(C):
        for r in range(R):
            t[j * ROW_BLOCK + r] = exp_nonpos(t[j * ROW_BLOCK + r] - m[r])
    if C < 8:
        for r in range(R):
            acc[r] = -0.0
        for j in range(C):
            for r in range(R):
                acc[r] = acc[r] + t[j * ROW_BLOCK + r]
    else:
        for k in range(8):
            for r in range(R):
                acc[k * ROW_BLOCK + r] = t[k * ROW_BLOCK + r]
        for j in range(8, n8, 8):
            for k in range(8):
                for r in range(R):
                    acc[k * ROW_BLOCK + r] = acc[k * ROW_BLOCK + r] + t[(j + k) * ROW_BLOCK + r]
        for r in range(R):
            acc[r] = (((acc[r] + acc[ROW_BLOCK + r])
                       + (acc[2 * ROW_BLOCK + r] + acc[3 * ROW_BLOCK + r]))
                      + ((acc[4 * ROW_BLOCK + r] + acc[5 * ROW_BLOCK + r])
                         + (acc[6 * ROW_BLOCK + r] + acc[7 * ROW_BLOCK + r])))
        for j in range(n8, C):
            for r in range(R):
                acc[r] = acc[r] + t[j * ROW_BLOCK + r]
    for j in range(C):          # the division, on the way back to rows
        for r in range(R):
            out[r * C + j] = t[j * ROW_BLOCK + r] / acc[r]


cdef inline void softmax_rows(const float* x, Py_ssize_t rs, Py_ssize_t cs, float* out,
                              Py_ssize_t n_rows, Py_ssize_t C) noexcept nogil:
    """softmax_row for n_rows rows (out C-contiguous): ROW_BLOCK rows at a time when they
    have at most PW_BLOCK columns (softmax_block; a short row has no vector work of its own),
    longer ones row by row."""
    cdef Py_ssize_t i
    if C == 0:
        return
    if C > PW_BLOCK:
        for i in range(n_rows):
            softmax_row(x + i * rs, cs, out + i * C, C)
        return
    i = 0
    while i < n_rows:
        softmax_block(x + i * rs, rs, cs, out + i * C, min(<Py_ssize_t>ROW_BLOCK, n_rows - i), C)
        i += ROW_BLOCK


# out[j] = f(a[j * ca], b[j * cb]) for j < n, with scalars s1, s2: one elementwise operation
ctypedef void (*row_map)(const float* a, Py_ssize_t ca, const float* b, Py_ssize_t cb,
                         float* out, Py_ssize_t n, float s1, float s2) noexcept nogil


cdef struct MapArgs:
    row_map f
    View2 a, b
    float* out        # C-contiguous, a's shape
    float s1, s2


cdef inline void map_range(void* ctx, Py_ssize_t start, Py_ssize_t end) noexcept nogil:
    """Elements [start, end) of the map, in C order: f on each piece of a row."""
    cdef MapArgs* m = <MapArgs*>ctx
    cdef Py_ssize_t k = start, i, j, n, C = m.a.cols
    while k < end:
        i = k // C
        j = k - i * C
        n = min(C - j, end - k)
        m.f(m.a.data + i * m.a.rs + j * m.a.cs, m.a.cs, m.b.data + i * m.b.rs + j * m.b.cs,
            m.b.cs, m.out + k, n, m.s1, m.s2)
        k += n


cdef inline Py_ssize_t min_per_thread(Py_ssize_t cost) noexcept nogil:
    """Items (elements, rows) a thread must get, for items of ``cost`` work units each: a
    kernel goes parallel from PAR_WORK units (on two threads, more as the work grows)."""
    return max(1, PAR_WORK // (2 * max(1, cost)))


cdef inline void map_into(row_map f, Py_ssize_t cost, View2 a, View2 b, float s1, float s2,
                          float* out, int n_threads) noexcept nogil:
    """out = f(a, b) elementwise, out C-contiguous of a's shape (b: the same shape, or a
    itself). cost: work units per element (see min_per_thread).

    Rows that follow each other in memory (C-ordered a and b) are walked as one long row, so
    narrow arrays (N, 1) run one vectorized loop instead of N short ones.
    """
    cdef MapArgs m
    if a.rows * a.cols == 0:
        return
    if (a.rs == a.cols * a.cs or a.rows == 1) and (b.rs == b.cols * b.cs or b.rows == 1):
        a.cols = b.cols = a.rows * a.cols
        a.rows = b.rows = 1
    m.f, m.a, m.b, m.s1, m.s2, m.out = f, a, b, s1, s2, out
    run_range(map_range, &m, a.rows * a.cols, n_threads, min_per_thread(cost))


cdef inline object map_elements(row_map f, Py_ssize_t cost, View2 a, View2 b, float s1,
                                float s2, int n_threads):
    """A new C-contiguous float32 array out = f(a, b) elementwise (map_into)."""
    out = empty2(a.rows, a.cols)
    with nogil:
        map_into(f, cost, a, b, s1, s2, <float*>cnp.PyArray_DATA(out), n_threads)
    return out
