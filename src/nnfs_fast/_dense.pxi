# Dense-layer kernels: our GEMM (blocking, packing, threads) and the fused dense passes.
# Included by each _dense_<level>.pyx, which setup.py compiles with that level's
# instruction-set flags; _ukernel.h then supplies the matching micro-kernel.
#
# Design
# ------
# gemm() computes C = op(A) . op(B) [+ C] [+ bias] [ReLU] for float32 matrices given as pointers
# with element strides, so transposes (X^T for dW, W^T for dX), F-ordered and sliced inputs need
# no copy: packing reads any strides.
#   pack B, KC-deep block by block, into NR-wide micro-panels (shared, in parallel)    ~L3
#   parallel over tasks = (row chunk of <= MB rows) x (group of B panels):
#     for each depth block (C += A[:, pc] . B[pc, :]):
#       (A is read in place when a stride is 1: its values are only broadcast; an A
#        with no unit stride is packed into MR-high micro-panels per thread)
#       for each NB-wide group of B micro-panels (stays in L2):
#         for each A micro-panel (stays in L1): for each B micro-panel: micro-kernel
#   (packed B is capped at BP_MAX floats: a deeper B is done in several such rounds)
#   the epilogue (bias, ReLU) runs inside the micro-kernel on the last depth block.
# A forward pass of depth 0 < K <= EXACT_K (a first layer on 2-D points, the book's 3-neuron
# layers) is summed in double per output (gemm_small_k): bit-identical to the book's float64
# np.dot under nnfs.init(), e.g. the chapter 3-5 printouts.
# A product whose output has fewer columns than half a tile (2N < NR) either takes dot products
# along K (gemm_dot, when A's rows are contiguous) or is computed transposed (C^T = B^T A^T),
# so the vector lanes run along the long side.
# Every C element is summed by one thread in a fixed order, so results do not depend on the
# thread count. Work under PAR_FLOPS runs on the calling thread (no thread team is started).

from libc.string cimport memcpy

cimport numpy as cnp
from nnfs_fast._parallel cimport run_tasks, thread_slot
from nnfs_fast._view cimport View2, as_float32, empty2, view2

cnp.import_array()

cdef extern from "_ukernel.h" nogil:
    const char* NNFS_ISA
    const char* NNFS_COMPILER
    int NNFS_MR
    int NNFS_NR
    void nnfs_ukernel(int mr, Py_ssize_t kc, const float* a, Py_ssize_t rsa, Py_ssize_t csa,
                      const float* b, Py_ssize_t ldb, float* c, Py_ssize_t rsc, Py_ssize_t csc, Py_ssize_t n,
                      int accumulate, const float* bias_col, const float* bias_row, int relu)
    void nnfs_dot_rows(Py_ssize_t m, Py_ssize_t n, Py_ssize_t kc, const float* a,
                       Py_ssize_t lda, const float* bt, Py_ssize_t ldbt, float* c,
                       Py_ssize_t rsc, Py_ssize_t csc, int accumulate, const float* bias_col,
                       const float* bias_row, int relu)
    int NNFS_VL
    void nnfs_small_k(Py_ssize_t m, Py_ssize_t n, Py_ssize_t kc, const float* a, Py_ssize_t rsa,
                      Py_ssize_t csa, const double* bd, Py_ssize_t ldb, float* c, Py_ssize_t ldc,
                      int accumulate, const float* bias_col, const float* bias_row, int relu)
    int NNFS_COLSUM_COLS
    void nnfs_colsum_block(Py_ssize_t m, Py_ssize_t n, const float* g, Py_ssize_t rsg,
                           const float* y, Py_ssize_t rsy, float* gm, Py_ssize_t ldgm, float* db)
    void* nnfs_aligned_alloc(size_t nbytes)
    void nnfs_aligned_free(void* p)

cdef enum:
    KC = 256            # depth of a packed block: an A micro-panel is MR*KC floats (L1)
    NB = 512            # B columns one A micro-panel sweeps: KC*NB floats = 512 KiB (L2)
    MB = 224            # rows of A one task packs: MB*KC floats = 224 KiB (L2)
    BP_MAX = 1 << 22    # floats of packed B held at once (16 MiB, L3)
    PACK_PANELS = 8     # pack A when more B micro-panels than this reuse it
    DIRECT_B_PANELS = 2 # read B in place when at most this many A micro-panels reuse it
    DOT_ROWS = 32       # rows per task of the dot-product form
    EXACT_K = 4         # depths up to this are summed in double (the book's float64 np.dot)
    SMALL_K_ROWS = 256  # rows per task of the small-depth form
    PAR_FLOPS = 2000000 # below this many flops a product runs on one thread (threshold.py)

ISA = NNFS_ISA.decode()
COMPILER = NNFS_COMPILER.decode()


cdef inline int threads_for(double flops, int n_threads) noexcept nogil:
    """n_threads for work of at least PAR_FLOPS flops, else 1 (the calling thread alone)."""
    return n_threads if flops >= PAR_FLOPS else 1


cdef inline Py_ssize_t cdiv(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    return (a + b - 1) // b


cdef void pack_b(const float* B, Py_ssize_t rsb, Py_ssize_t csb, Py_ssize_t kc,
                 Py_ssize_t nc, float* out) noexcept nogil:
    """One micro-panel: out[k*NR + j] = B[k, j] for j < nc, zero for nc <= j < NR."""
    cdef Py_ssize_t k, j
    for k in range(kc):
        if csb == 1:    # rows of B are contiguous: a copy the compiler turns into vector moves
            memcpy(out + k * NNFS_NR, B + k * rsb, nc * sizeof(float))
        else:
            for j in range(nc):
                out[k * NNFS_NR + j] = B[k * rsb + j * csb]
        for j in range(nc, NNFS_NR):
            out[k * NNFS_NR + j] = 0.0


cdef void pack_a(const float* A, Py_ssize_t rsa, Py_ssize_t csa, Py_ssize_t mr,
                 Py_ssize_t kc, float* out) noexcept nogil:
    """One micro-panel of an A with no unit stride: out[k*MR + i] = A[i, k] for i < mr."""
    cdef Py_ssize_t k, i
    for k in range(kc):
        for i in range(mr):
            out[k * NNFS_MR + i] = A[i * rsa + k * csa]


cdef struct Gemm:
    # the product, C[M, N] = A[M, K] . B[K, N] (+ C) (+ bias) (ReLU), with element strides
    Py_ssize_t M, N, K
    const float* A
    Py_ssize_t rsa, csa
    const float* B
    Py_ssize_t rsb, csb
    float* C
    Py_ssize_t rsc, csc
    bint accumulate, relu
    const float* bias_pad     # per-column bias padded to whole panels, or NULL
    const float* bias_row     # per-row bias, or NULL
    # the plan
    Py_ssize_t nkb, kcb       # depth blocks and their depth
    Py_ssize_t n_np, npad     # B micro-panels, columns padded to whole panels
    Py_ssize_t g0, g1         # depth blocks of the current round
    Py_ssize_t n_mp, n_mt, mb # A micro-panels, row chunks, max rows of a chunk
    Py_ssize_t n_nt, npt      # panel groups per row chunk, panels per group
    bint pack_a, direct_b
    float* Ap                 # per-thread packed A chunks (pack_a)
    float* Bp                 # packed B of the current round


cdef void gemm_pack_b_task(void* ctx, Py_ssize_t u) noexcept nogil:
    """Pack micro-panel u % n_np of depth block g0 + u // n_np (unless B is read in place)."""
    cdef Gemm* g = <Gemm*>ctx
    cdef Py_ssize_t kb = g.g0 + u // g.n_np, q = u % g.n_np
    cdef Py_ssize_t pc = kb * g.kcb, kc = max(0, min(g.kcb, g.K - pc))
    if not g.direct_b or (q + 1) * NNFS_NR > g.N:
        pack_b(g.B + pc * g.rsb + q * NNFS_NR * g.csb, g.rsb, g.csb, kc,
               min(<Py_ssize_t>NNFS_NR, g.N - q * NNFS_NR),
               g.Bp + (kb - g.g0) * g.kcb * g.npad + q * NNFS_NR * kc)


cdef void gemm_task(void* ctx, Py_ssize_t t) noexcept nogil:
    """Row chunk t // n_nt times panel group t % n_nt, for the depth blocks of this round."""
    cdef Gemm* g = <Gemm*>ctx
    cdef float* ap = g.Ap + thread_slot() * g.kcb * g.mb
    cdef Py_ssize_t m0 = ((t // g.n_nt) * g.n_mp // g.n_mt) * NNFS_MR
    cdef Py_ssize_t mc = min(g.M, ((t // g.n_nt + 1) * g.n_mp // g.n_mt) * NNFS_MR) - m0
    cdef Py_ssize_t q0 = (t % g.n_nt) * g.npt, q1 = min(g.n_np, q0 + g.npt)
    cdef Py_ssize_t nbp = max(1, NB // NNFS_NR)
    cdef Py_ssize_t kb, pc, kc, i, ir, jg, jq, q, j, rs, cs, ldb
    cdef const float* a
    cdef const float* bq
    cdef bint acc, last
    for kb in range(g.g0, g.g1):
        pc = kb * g.kcb
        kc = max(0, min(g.kcb, g.K - pc))
        acc = g.accumulate or kb > 0
        last = kb == g.nkb - 1
        if g.pack_a:
            for i in range(cdiv(mc, NNFS_MR)):
                ir = i * NNFS_MR
                pack_a(g.A + (m0 + ir) * g.rsa + pc * g.csa, g.rsa, g.csa,
                       min(<Py_ssize_t>NNFS_MR, mc - ir), kc, ap + ir * kc)
        for jg in range(cdiv(q1 - q0, nbp)):
            jq = q0 + jg * nbp
            for i in range(cdiv(mc, NNFS_MR)):
                ir = i * NNFS_MR
                if g.pack_a:
                    a, rs, cs = ap + ir * kc, 1, NNFS_MR
                else:
                    a, rs, cs = g.A + (m0 + ir) * g.rsa + pc * g.csa, g.rsa, g.csa
                for q in range(jq, min(q1, jq + nbp)):
                    j = q * NNFS_NR
                    if g.direct_b and j + NNFS_NR <= g.N:
                        bq, ldb = g.B + pc * g.rsb + j, g.rsb
                    else:
                        bq, ldb = g.Bp + (kb - g.g0) * g.kcb * g.npad + j * kc, NNFS_NR
                    nnfs_ukernel(min(<Py_ssize_t>NNFS_MR, mc - ir), kc, a, rs, cs, bq, ldb,
                                 g.C + (m0 + ir) * g.rsc + j * g.csc, g.rsc, g.csc,
                                 min(<Py_ssize_t>NNFS_NR, g.N - j), acc,
                                 g.bias_pad + j if last and g.bias_pad != NULL else NULL,
                                 g.bias_row + m0 + ir if last and g.bias_row != NULL else NULL,
                                 g.relu and last)


cdef int gemm(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K,
              const float* A, Py_ssize_t rsa, Py_ssize_t csa,
              const float* B, Py_ssize_t rsb, Py_ssize_t csb,
              float* C, Py_ssize_t rsc, Py_ssize_t csc,
              bint accumulate, const float* bias, bint bias_per_row, bint relu,
              int n_threads) noexcept nogil:
    """C[M, N] = A[M, K] . B[K, N] (+ C if accumulate) (+ bias) (ReLU); -1 if out of memory.

    bias: N values (one per column) or, with bias_per_row, M values; NULL for none.
    """
    if M <= 0 or N <= 0:
        return 0
    if 2 * N < NNFS_NR and M > N:   # under half the lanes of a tile would be used
        if csa == 1 and K >= NNFS_VL:
            return gemm_dot(M, N, K, A, rsa, B, rsb, csb, C, rsc, csc, accumulate, bias,
                            bias_per_row, relu, n_threads)
        return gemm(N, M, K, B, csb, rsb, A, csa, rsa, C, csc, rsc,
                    accumulate, bias, not bias_per_row, relu, n_threads)

    cdef int nt = threads_for(2.0 * M * N * K, n_threads)
    cdef Gemm g
    cdef Py_ssize_t gi, j, kb_group
    cdef float* bias_pad = NULL
    g.M, g.N, g.K = M, N, K
    g.A, g.rsa, g.csa, g.B, g.rsb, g.csb, g.C, g.rsc, g.csc = A, rsa, csa, B, rsb, csb, C, rsc, csc
    g.accumulate, g.relu = accumulate, relu
    g.nkb = max(1, cdiv(K, KC))
    g.kcb = max(1, cdiv(K, g.nkb))                     # balanced depth blocks
    g.n_np = cdiv(N, NNFS_NR)
    g.npad = g.n_np * NNFS_NR
    kb_group = max(1, BP_MAX // (g.kcb * g.npad))      # depth blocks packed per round
    # row chunks: a multiple of the thread count, whole micro-panels spread evenly (chunk t
    # holds panels [t*n_mp//n_mt, (t+1)*n_mp//n_mt)), at most MB rows each
    g.n_mp = cdiv(M, NNFS_MR)
    g.n_mt = min(g.n_mp, nt * cdiv(g.n_mp, nt * (MB // NNFS_MR)))
    g.mb = cdiv(g.n_mp, g.n_mt) * NNFS_MR
    # too few row chunks for the threads: also split the B panels into groups
    g.n_nt = 1 if g.n_mt >= nt else min(g.n_np, cdiv(nt, g.n_mt))
    g.npt = cdiv(g.n_np, g.n_nt)
    # A is read in place when one stride is 1, unless many B panels reuse each micro-panel:
    # then packing pays, and avoids the L1 set conflicts of rows 2^k bytes apart
    g.pack_a = (rsa != 1 and csa != 1) or g.n_np > PACK_PANELS
    # B is packed unless few A micro-panels reuse it and its rows are contiguous; a partial
    # last panel is always packed (zero padding)
    g.direct_b = csb == 1 and g.n_mp <= DIRECT_B_PANELS
    g.Bp = <float*>nnfs_aligned_alloc(min(g.nkb, kb_group) * g.kcb * g.npad * sizeof(float))
    g.Ap = <float*>nnfs_aligned_alloc((nt * g.kcb * g.mb if g.pack_a else 1) * sizeof(float))
    g.bias_row = bias if bias_per_row else NULL
    if bias != NULL and not bias_per_row:
        bias_pad = <float*>nnfs_aligned_alloc(g.npad * sizeof(float))
        if bias_pad != NULL:
            for j in range(g.npad):
                bias_pad[j] = bias[j] if j < N else 0.0
    g.bias_pad = bias_pad
    if g.Bp == NULL or g.Ap == NULL or (bias != NULL and not bias_per_row and bias_pad == NULL):
        nnfs_aligned_free(g.Bp)
        nnfs_aligned_free(g.Ap)
        nnfs_aligned_free(bias_pad)
        return -1
    for gi in range(cdiv(g.nkb, kb_group)):
        g.g0 = gi * kb_group
        g.g1 = min(g.nkb, g.g0 + kb_group)
        run_tasks(gemm_pack_b_task, &g, (g.g1 - g.g0) * g.n_np, nt)
        run_tasks(gemm_task, &g, g.n_mt * g.n_nt, nt)
    nnfs_aligned_free(g.Bp)
    nnfs_aligned_free(g.Ap)
    nnfs_aligned_free(bias_pad)
    return 0


cdef struct DotRows:
    Py_ssize_t M, N, K
    const float* A
    Py_ssize_t rsa
    const float* bt
    Py_ssize_t ldbt
    float* C
    Py_ssize_t rsc, csc
    bint accumulate, relu
    const float* bias_col
    const float* bias_row


cdef void dot_task(void* ctx, Py_ssize_t t) noexcept nogil:
    cdef DotRows* d = <DotRows*>ctx
    cdef Py_ssize_t i0 = t * DOT_ROWS
    nnfs_dot_rows(min(<Py_ssize_t>DOT_ROWS, d.M - i0), d.N, d.K, d.A + i0 * d.rsa, d.rsa, d.bt,
                  d.ldbt, d.C + i0 * d.rsc, d.rsc, d.csc, d.accumulate, d.bias_col,
                  d.bias_row + i0 if d.bias_row != NULL else NULL, d.relu)


cdef int gemm_dot(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, const float* A, Py_ssize_t rsa,
                  const float* B, Py_ssize_t rsb, Py_ssize_t csb, float* C, Py_ssize_t rsc,
                  Py_ssize_t csc, bint accumulate, const float* bias, bint bias_per_row,
                  bint relu, int n_threads) noexcept nogil:
    """gemm for N < NR with contiguous A rows: dot products along K (nnfs_dot_rows).

    B^T's rows are B's columns; they are used in place when contiguous (B = W^T in dX) and
    copied otherwise (a K x N copy, small because N < NR). Rows are split among threads.
    """
    cdef float* Bt = NULL
    cdef Py_ssize_t j, k
    cdef DotRows d
    d.M, d.N, d.K, d.A, d.rsa, d.bt, d.ldbt = M, N, K, A, rsa, B, csb
    d.C, d.rsc, d.csc, d.accumulate, d.relu = C, rsc, csc, accumulate, relu
    d.bias_col, d.bias_row = NULL, NULL
    if bias_per_row:
        d.bias_row = bias
    else:
        d.bias_col = bias
    if rsb != 1:
        Bt = <float*>nnfs_aligned_alloc(N * K * sizeof(float))
        if Bt == NULL:
            return -1
        for j in range(N):
            for k in range(K):
                Bt[j * K + k] = B[k * rsb + j * csb]
        d.bt, d.ldbt = Bt, K
    run_tasks(dot_task, &d, cdiv(M, DOT_ROWS), threads_for(2.0 * M * N * K, n_threads))
    nnfs_aligned_free(Bt)
    return 0


cdef struct SmallK:
    Py_ssize_t M, N, K
    const float* A
    Py_ssize_t rsa, csa
    const double* Bd          # K x N, B widened to double
    Py_ssize_t ldb
    float* C                  # M x N, rows contiguous
    Py_ssize_t ldc
    bint accumulate, relu
    const float* bias_col
    const float* bias_row


cdef void small_k_task(void* ctx, Py_ssize_t t) noexcept nogil:
    cdef SmallK* d = <SmallK*>ctx
    cdef Py_ssize_t i0 = t * SMALL_K_ROWS
    nnfs_small_k(min(<Py_ssize_t>SMALL_K_ROWS, d.M - i0), d.N, d.K, d.A + i0 * d.rsa, d.rsa,
                 d.csa, d.Bd, d.ldb, d.C + i0 * d.ldc, d.ldc, d.accumulate, d.bias_col,
                 d.bias_row + i0 if d.bias_row != NULL else NULL, d.relu)


cdef int gemm_small_k(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, const float* A, Py_ssize_t rsa,
                      Py_ssize_t csa, const float* B, Py_ssize_t rsb, Py_ssize_t csb, float* C,
                      Py_ssize_t rsc, Py_ssize_t csc, bint accumulate, const float* bias,
                      bint bias_per_row, bint relu, int n_threads) noexcept nogil:
    """gemm for K <= EXACT_K (nnfs_small_k), rows split among threads; B (K x N, small) is
    widened to double once. A C whose rows are not contiguous is done transposed."""
    if csc != 1:
        return gemm_small_k(N, M, K, B, csb, rsb, A, csa, rsa, C, csc, rsc, accumulate, bias,
                            not bias_per_row, relu, n_threads)
    cdef SmallK d
    cdef double* Bd = <double*>nnfs_aligned_alloc(K * N * sizeof(double))
    cdef Py_ssize_t j, k
    if Bd == NULL:
        return -1
    for k in range(K):
        for j in range(N):
            Bd[k * N + j] = B[k * rsb + j * csb]
    d.M, d.N, d.K, d.A, d.rsa, d.csa, d.Bd, d.ldb = M, N, K, A, rsa, csa, Bd, N
    d.C, d.ldc, d.accumulate, d.relu = C, rsc, accumulate, relu
    d.bias_col, d.bias_row = NULL, NULL
    if bias_per_row:
        d.bias_row = bias
    else:
        d.bias_col = bias
    run_tasks(small_k_task, &d, cdiv(M, SMALL_K_ROWS),
              threads_for(8.0 * M * N, n_threads))
    nnfs_aligned_free(Bd)
    return 0


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
                    g = g if s.Y[i * s.rsy + j * s.csy] > 0 else 0.0
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
                   c.data, c.rs, c.cs, accumulate, NULL, False, False, max(1, n_threads))
    if err:
        raise MemoryError("gemm: could not allocate packing buffers")


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
    cdef float* o = <float*>cnp.PyArray_DATA(out)
    cdef int err
    if b.cs != 1:
        biases = biases.copy()
        b = view2(biases, "biases")
    with nogil:
        if 0 < x.cols <= EXACT_K:   # exact like the book's float64 np.dot
            err = gemm_small_k(x.rows, w.cols, x.cols, x.data, x.rs, x.cs, w.data, w.rs, w.cs,
                               o, w.cols, 1, False, b.data, False, relu, max(1, n_threads))
        else:
            err = gemm(x.rows, w.cols, x.cols, x.data, x.rs, x.cs, w.data, w.rs, w.cs,
                       o, w.cols, 1, False, b.data, False, relu, max(1, n_threads))
    if err:
        raise MemoryError("dense_forward: could not allocate packing buffers")
    return out


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
    y.rs = y.cs = 0
    cdef Py_ssize_t M = x.rows, K = x.cols, N = w.cols
    cdef const float* Y = NULL
    cdef float* Gm = NULL
    if relu_output is not None:
        y = view2(relu_output, "relu_output", M, N)
        Y = y.data
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
    cdef int nt = max(1, n_threads)
    cdef bint reg = weight_l1 > 0 or weight_l2 > 0
    cdef int err = 0
    with nogil:
        column_sums(M, N, g.data, g.rs, g.cs, Y, y.rs, y.cs, Gm, db,
                    b.data, b.cs, max(bias_l1, 0), 2 * max(bias_l2, 0), nt)
        if Y != NULL:
            g.data = Gm
            g.rs = N
            g.cs = 1
        if reg:
            regularization_grad(K, N, w.data, w.rs, w.cs, dW, max(weight_l1, 0),
                                2 * max(weight_l2, 0))
        err = gemm(K, N, M, x.data, x.cs, x.rs, g.data, g.rs, g.cs, dW, N, 1, reg, NULL,
                   False, False, nt)
        if dX != NULL and err == 0:
            err = gemm(M, K, N, g.data, g.rs, g.cs, w.data, w.cs, w.rs, dX, K, 1, False, NULL,
                       False, False, nt)
    if err:
        raise MemoryError("dense_backward: could not allocate packing buffers")
    return dweights, dbiases, dinputs, dvalues_masked
