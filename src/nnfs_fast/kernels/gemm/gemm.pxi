# kernels/gemm/gemm.pxi - nnfs_fast's GEMM: a pure plan, then BLIS's loops around the micro-kernel.
# Included by kernels/gemm/dense.pxi (so by each dense_<level>.pyx, one compile unit per
# instruction-set level, see setup.py).
#
# Design
# ------
# gemm() computes C[M, N] = A[M, K] . B[K, N] (+ C) (+ bias per column or per row) (ReLU) on
# float32 matrices given as pointers with element strides, so transposes (X^T for dW, W^T for
# dX), F-ordered and sliced inputs need no copy. It is two steps:
#   plan_gemm()  pure: from the shape, the strides and the thread count, picks the path and
#                its block and task counts (a GemmPlan; `plan()` shows it to Python);
#   run_plan()   does it.
# The paths (GemmPath):
#   EXACT    forward products of depth 0 < K <= EXACT_K (a first layer on 2-D points, the
#            book's 3-neuron layers) when the caller asks for exactness (dense_forward): each
#            output summed in double (narrow.h's nnfs_small_k), bit for bit the book's float64
#            np.dot under nnfs.init(), e.g. the chapter 3-5 printouts.
#   DOT      outputs narrower than half a tile (2N < NR, M > N) with contiguous A rows and
#            K >= VL: dot products along K (narrow.h's nnfs_dot_rows).
#   BLOCKED  everything else, with BLIS's loops (flame/blis docs/KernelsHowTo.md,
#            frame/3/gemm/); a narrow output whose A rows are not contiguous is first transposed
#            (C^T = B^T A^T, `transposed`) so that the vector lanes run along the long side:
#              pack B, KC deep, into NR-wide micro-panels (all threads; a round holds at most
#                BP_MAX floats, a deeper B takes several rounds)
#              tasks = ic: row chunks of at most MC rows x (when too few chunks for the
#                threads) groups of B micro-panels; per task:
#                pc  over depth blocks of KC       (A packed per task when no stride is 1 or
#                                                   many B panels reuse it: PACK_PANELS)
#                jc  over NC-wide groups of B      (the group stays in L2)
#                ir  over MR-high A micro-panels   (stays in L1; ir outside jr: one A panel
#                                                   sweeps the NC group, not BLIS's jr-ir)
#                jr  over NR-wide B micro-panels   (read in place when few A panels reuse
#                                                   them: DIRECT_B_PANELS)
#                  micro-kernel (ukernel.h), with the epilogue on the last depth block.
# Every C element is summed by one thread in a fixed order, so results do not depend on the
# thread count. Work under PAR_FLOPS (kernels/parallel.pxd) runs on the calling thread.

from libc.string cimport memcpy, memset

from nnfs_fast.kernels.parallel cimport PAR_FLOPS, run_tasks, thread_slot, thresholds

cdef extern from "ukernel.h" nogil:
    const char* NNFS_ISA
    const char* NNFS_COMPILER
    int NNFS_MR
    int NNFS_NR
    int NNFS_VL
    int NNFS_KC
    int NNFS_MC
    int NNFS_NC
    void nnfs_ukernel(int mr, Py_ssize_t kc, const float* a, Py_ssize_t rsa, Py_ssize_t csa,
                      const float* b, Py_ssize_t ldb, float* c, Py_ssize_t rsc, Py_ssize_t csc,
                      Py_ssize_t n,
                      int accumulate, const float* bias_col, const float* bias_row, int relu)
    void* nnfs_aligned_alloc(size_t nbytes)
    void nnfs_aligned_free(void* p)

cdef extern from "narrow.h" nogil:
    void nnfs_dot_rows(Py_ssize_t m, Py_ssize_t n, Py_ssize_t kc, const float* a,
                       Py_ssize_t lda, const float* bt, Py_ssize_t ldbt, float* c,
                       Py_ssize_t rsc, Py_ssize_t csc, int accumulate, const float* bias_col,
                       const float* bias_row, int relu)
    void nnfs_small_k(Py_ssize_t m, Py_ssize_t n, Py_ssize_t kc, const float* a, Py_ssize_t rsa,
                      Py_ssize_t csa, const double* bd, Py_ssize_t ldb, float* c, Py_ssize_t ldc,
                      int accumulate, const float* bias_col, const float* bias_row, int relu)

cdef enum:
    BP_MAX = 1 << 22    # floats of packed B held at once (16 MiB, L3)
    PACK_PANELS = 8     # pack A when more B micro-panels than this reuse it
    DIRECT_B_PANELS = 2  # read B in place when at most this many A micro-panels reuse it
    DOT_ROWS = 32       # rows per task of the DOT path
    EXACT_K = 4         # depths up to this are summed in double (the book's float64 np.dot)
    SMALL_K_ROWS = 256  # rows per task of the EXACT path

cdef enum GemmPath:
    PATH_EMPTY = 0      # M == 0 or N == 0: nothing to do
    PATH_EXACT = 1
    PATH_DOT = 2
    PATH_BLOCKED = 3

PATH_NAMES = ("empty", "exact", "dot", "blocked")


cdef struct GemmPlan:
    GemmPath path
    bint transposed             # computed as C^T = B^T . A^T: M, N and the strides swapped
    Py_ssize_t M, N, K          # the product as computed (after any transposition)
    Py_ssize_t rsa, csa, rsb, csb, rsc, csc
    int n_threads               # threads used: 1 under PAR_FLOPS
    Py_ssize_t n_tasks          # tasks of the compute step (per round for BLOCKED)
    # BLOCKED only (zero otherwise)
    Py_ssize_t kc               # depth of a block (K split into balanced blocks of <= KC)
    Py_ssize_t n_kblocks        # depth blocks
    Py_ssize_t kblocks_per_round  # depth blocks of packed B held at once (<= BP_MAX floats)
    Py_ssize_t n_bpanels        # NR-wide B micro-panels
    Py_ssize_t n_cols_padded    # N rounded up to whole micro-panels
    Py_ssize_t n_apanels        # MR-high A micro-panels
    Py_ssize_t n_row_chunks     # ic: row chunks (a multiple of the threads, <= MC rows each)
    Py_ssize_t chunk_rows       # rows of the largest chunk
    Py_ssize_t n_col_groups     # B panel groups per row chunk (when chunks < threads)
    Py_ssize_t panels_per_group
    bint pack_a                 # A packed into MR-high micro-panels per task
    bint direct_b               # full B panels read in place


cdef inline int threads_for(double flops, int n_threads) noexcept nogil:
    """n_threads for work of at least PAR_FLOPS flops, else 1 (the calling thread alone)."""
    return n_threads if flops >= PAR_FLOPS else 1


cdef inline Py_ssize_t cdiv(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    return (a + b - 1) // b


cdef inline GemmPlan plan_gemm(
        Py_ssize_t M, Py_ssize_t N, Py_ssize_t K,
        Py_ssize_t rsa, Py_ssize_t csa, Py_ssize_t rsb, Py_ssize_t csb,
        Py_ssize_t rsc, Py_ssize_t csc, bint exact, int n_threads) noexcept nogil:
    """The plan of C[M, N] = A[M, K] . B[K, N] with these element strides on n_threads
    (>= 1); exact: a forward product that wants the EXACT path when K is small. Pure."""
    cdef GemmPlan p
    memset(&p, 0, sizeof(GemmPlan))
    p.M, p.N, p.K = M, N, K
    p.rsa, p.csa, p.rsb, p.csb, p.rsc, p.csc = rsa, csa, rsb, csb, rsc, csc
    p.n_threads = 1
    if M <= 0 or N <= 0:
        p.path = PATH_EMPTY
        return p
    if exact and 0 < K <= EXACT_K:
        p.path = PATH_EXACT
        if csc != 1:            # nnfs_small_k writes contiguous rows: do C^T
            transpose(&p)
        p.n_threads = threads_for(8.0 * M * N, n_threads)
        p.n_tasks = cdiv(p.M, SMALL_K_ROWS)
        return p
    if 2 * N < NNFS_NR and M > N:   # under half the lanes of a tile would be used
        if csa == 1 and K >= NNFS_VL:
            p.path = PATH_DOT
            p.n_threads = threads_for(2.0 * M * N * K, n_threads)
            p.n_tasks = cdiv(M, DOT_ROWS)
            return p
        transpose(&p)           # now M < N: the blocked path with lanes along the long side
    p.path = PATH_BLOCKED
    p.n_threads = threads_for(2.0 * M * N * K, n_threads)
    plan_blocks(&p)
    return p


cdef inline void transpose(GemmPlan* p) noexcept nogil:
    """C = A . B as C^T = B^T . A^T: swap the roles of A and B and of C's strides."""
    p.transposed = not p.transposed
    p.M, p.N = p.N, p.M
    p.rsa, p.csa, p.rsb, p.csb = p.csb, p.rsb, p.csa, p.rsa
    p.rsc, p.csc = p.csc, p.rsc


cdef void plan_blocks(GemmPlan* p) noexcept nogil:
    """The blocks and tasks of the BLOCKED path (see the design above)."""
    cdef int nt = p.n_threads
    p.n_kblocks = max(1, cdiv(p.K, NNFS_KC))
    p.kc = max(1, cdiv(p.K, p.n_kblocks))                   # balanced depth blocks
    p.n_bpanels = cdiv(p.N, NNFS_NR)
    p.n_cols_padded = p.n_bpanels * NNFS_NR
    p.kblocks_per_round = min(p.n_kblocks, max(1, BP_MAX // (p.kc * p.n_cols_padded)))
    # row chunks: a multiple of the thread count, whole micro-panels spread evenly (chunk c
    # holds panels [c*n_apanels//n_row_chunks, (c+1)*n_apanels//n_row_chunks)), <= MC rows each
    p.n_apanels = cdiv(p.M, NNFS_MR)
    p.n_row_chunks = min(p.n_apanels, nt * cdiv(p.n_apanels, nt * (NNFS_MC // NNFS_MR)))
    p.chunk_rows = cdiv(p.n_apanels, p.n_row_chunks) * NNFS_MR
    # too few row chunks for the threads: also split the B panels into groups
    p.n_col_groups = 1 if p.n_row_chunks >= nt else min(p.n_bpanels, cdiv(nt, p.n_row_chunks))
    p.panels_per_group = cdiv(p.n_bpanels, p.n_col_groups)
    p.n_tasks = p.n_row_chunks * p.n_col_groups
    # A is read in place when one stride is 1, unless many B panels reuse each micro-panel:
    # then packing pays, and avoids the L1 set conflicts of rows 2^k bytes apart
    p.pack_a = (p.rsa != 1 and p.csa != 1) or p.n_bpanels > PACK_PANELS
    # B is packed unless few A micro-panels reuse it and its rows are contiguous; a partial
    # last panel is always packed (zero padding)
    p.direct_b = p.csb == 1 and p.n_apanels <= DIRECT_B_PANELS


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


cdef struct Blocked:
    # what the BLOCKED tasks share: the plan, the operands (as the plan computes them) and
    # the buffers
    const GemmPlan* p
    const float* A
    const float* B
    float* C
    bint accumulate, relu
    const float* bias_pad     # per-column bias padded to whole panels, or NULL
    const float* bias_row     # per-row bias, or NULL
    Py_ssize_t kb_first, kb_end   # depth blocks of the current round
    float* Ap                 # per-thread packed A chunks (pack_a)
    float* Bp                 # packed B of the current round


cdef inline const float* packed_b(Blocked* g, Py_ssize_t kb, Py_ssize_t kc,
                                  Py_ssize_t jr) noexcept nogil:
    """The packed micro-panel of columns [jr, jr + NR) in depth block kb (of depth kc)."""
    return g.Bp + (kb - g.kb_first) * g.p.kc * g.p.n_cols_padded + jr * kc


cdef void pack_b_task(void* ctx, Py_ssize_t u) noexcept nogil:
    """Pack B micro-panel u % n_bpanels of depth block kb_first + u // n_bpanels (unless it
    is a full panel read in place)."""
    cdef Blocked* g = <Blocked*>ctx
    cdef const GemmPlan* p = g.p
    cdef Py_ssize_t kb = g.kb_first + u // p.n_bpanels, jr = (u % p.n_bpanels) * NNFS_NR
    cdef Py_ssize_t pc = kb * p.kc, kc = max(0, min(p.kc, p.K - pc))
    if not p.direct_b or jr + NNFS_NR > p.N:
        pack_b(g.B + pc * p.rsb + jr * p.csb, p.rsb, p.csb, kc,
               min(<Py_ssize_t>NNFS_NR, p.N - jr), <float*>packed_b(g, kb, kc, jr))


cdef void blocked_task(void* ctx, Py_ssize_t t) noexcept nogil:
    """Task t: rows [ic, ic + mc) (row chunk t // n_col_groups) times B panels
    [q0, q1) (group t % n_col_groups), for the depth blocks of this round."""
    cdef Blocked* g = <Blocked*>ctx
    cdef const GemmPlan* p = g.p
    cdef float* ap = g.Ap + thread_slot() * p.kc * p.chunk_rows
    cdef Py_ssize_t chunk = t // p.n_col_groups
    cdef Py_ssize_t ic = (chunk * p.n_apanels // p.n_row_chunks) * NNFS_MR
    cdef Py_ssize_t mc = min(p.M, ((chunk + 1) * p.n_apanels // p.n_row_chunks) * NNFS_MR) - ic
    cdef Py_ssize_t q0 = (t % p.n_col_groups) * p.panels_per_group
    cdef Py_ssize_t q1 = min(p.n_bpanels, q0 + p.panels_per_group)
    cdef Py_ssize_t nc_panels = max(1, NNFS_NC // NNFS_NR)
    cdef Py_ssize_t kb, pc, kc, jg, jc, i, ir, jr, q, rs, cs, ldb
    cdef const float* a
    cdef const float* b
    cdef bint acc, last
    for kb in range(g.kb_first, g.kb_end):                  # pc: depth blocks
        pc = kb * p.kc
        kc = max(0, min(p.kc, p.K - pc))
        acc = g.accumulate or kb > 0
        last = kb == p.n_kblocks - 1
        if p.pack_a:
            for i in range(cdiv(mc, NNFS_MR)):
                ir = i * NNFS_MR
                pack_a(g.A + (ic + ir) * p.rsa + pc * p.csa, p.rsa, p.csa,
                       min(<Py_ssize_t>NNFS_MR, mc - ir), kc, ap + ir * kc)
        for jg in range(cdiv(q1 - q0, nc_panels)):          # jc: NC-wide groups of B panels
            jc = q0 + jg * nc_panels                        # (in micro-panels)
            for i in range(cdiv(mc, NNFS_MR)):              # ir: A micro-panels
                ir = i * NNFS_MR
                if p.pack_a:
                    a, rs, cs = ap + ir * kc, 1, NNFS_MR
                else:
                    a, rs, cs = g.A + (ic + ir) * p.rsa + pc * p.csa, p.rsa, p.csa
                for q in range(jc, min(q1, jc + nc_panels)):   # jr: B micro-panels
                    jr = q * NNFS_NR
                    if p.direct_b and jr + NNFS_NR <= p.N:
                        b, ldb = g.B + pc * p.rsb + jr, p.rsb
                    else:
                        b, ldb = packed_b(g, kb, kc, jr), NNFS_NR
                    nnfs_ukernel(min(<Py_ssize_t>NNFS_MR, mc - ir), kc, a, rs, cs, b, ldb,
                                 g.C + (ic + ir) * p.rsc + jr * p.csc, p.rsc, p.csc,
                                 min(<Py_ssize_t>NNFS_NR, p.N - jr), acc,
                                 g.bias_pad + jr if last and g.bias_pad != NULL else NULL,
                                 g.bias_row + ic + ir if last and g.bias_row != NULL else NULL,
                                 g.relu and last)


cdef int run_blocked(GemmPlan* p, const float* A, const float* B, float* C, bint accumulate,
                     const float* bias, bint bias_per_row, bint relu) noexcept nogil:
    """The BLOCKED path of plan p (operands as the plan computes them); -1 if out of memory."""
    cdef Blocked g
    cdef Py_ssize_t r, j
    cdef float* bias_pad = NULL
    g.p = p
    g.A, g.B, g.C, g.accumulate, g.relu = A, B, C, accumulate, relu
    g.Bp = <float*>nnfs_aligned_alloc(p.kblocks_per_round * p.kc * p.n_cols_padded
                                      * sizeof(float))
    g.Ap = <float*>nnfs_aligned_alloc((p.n_threads * p.kc * p.chunk_rows if p.pack_a else 1)
                                      * sizeof(float))
    g.bias_row = bias if bias_per_row else NULL
    if bias != NULL and not bias_per_row:
        bias_pad = <float*>nnfs_aligned_alloc(p.n_cols_padded * sizeof(float))
        if bias_pad != NULL:
            for j in range(p.n_cols_padded):
                bias_pad[j] = bias[j] if j < p.N else 0.0
    g.bias_pad = bias_pad
    if g.Bp == NULL or g.Ap == NULL or (bias != NULL and not bias_per_row and bias_pad == NULL):
        nnfs_aligned_free(g.Bp)
        nnfs_aligned_free(g.Ap)
        nnfs_aligned_free(bias_pad)
        return -1
    for r in range(cdiv(p.n_kblocks, p.kblocks_per_round)):     # rounds of packed B
        g.kb_first = r * p.kblocks_per_round
        g.kb_end = min(p.n_kblocks, g.kb_first + p.kblocks_per_round)
        run_tasks(pack_b_task, &g, (g.kb_end - g.kb_first) * p.n_bpanels, p.n_threads)
        run_tasks(blocked_task, &g, p.n_tasks, p.n_threads)
    nnfs_aligned_free(g.Bp)
    nnfs_aligned_free(g.Ap)
    nnfs_aligned_free(bias_pad)
    return 0


cdef struct DotRows:
    const GemmPlan* p
    const float* A
    const float* bt           # B^T: its rows are B's columns
    Py_ssize_t ldbt
    float* C
    bint accumulate, relu
    const float* bias_col
    const float* bias_row


cdef void dot_task(void* ctx, Py_ssize_t t) noexcept nogil:
    """Rows [t*DOT_ROWS, (t+1)*DOT_ROWS) of the DOT path."""
    cdef DotRows* d = <DotRows*>ctx
    cdef Py_ssize_t i0 = t * DOT_ROWS
    nnfs_dot_rows(min(<Py_ssize_t>DOT_ROWS, d.p.M - i0), d.p.N, d.p.K, d.A + i0 * d.p.rsa,
                  d.p.rsa, d.bt, d.ldbt, d.C + i0 * d.p.rsc, d.p.rsc, d.p.csc, d.accumulate,
                  d.bias_col, d.bias_row + i0 if d.bias_row != NULL else NULL, d.relu)


cdef int run_dot(GemmPlan* p, const float* A, const float* B, float* C, bint accumulate,
                 const float* bias, bint bias_per_row, bint relu) noexcept nogil:
    """The DOT path (N < NR, A rows contiguous): dot products along K (nnfs_dot_rows).

    B^T's rows are B's columns; they are used in place when contiguous (B = W^T in dX) and
    copied otherwise (a K x N copy, small because N < NR). Rows are split among threads.
    """
    cdef float* Bt = NULL
    cdef Py_ssize_t j, k
    cdef DotRows d
    d.p = p
    d.A, d.bt, d.ldbt = A, B, p.csb
    d.C, d.accumulate, d.relu = C, accumulate, relu
    d.bias_col, d.bias_row = NULL, NULL
    if bias_per_row:
        d.bias_row = bias
    else:
        d.bias_col = bias
    if p.rsb != 1:
        Bt = <float*>nnfs_aligned_alloc(p.N * p.K * sizeof(float))
        if Bt == NULL:
            return -1
        for j in range(p.N):
            for k in range(p.K):
                Bt[j * p.K + k] = B[k * p.rsb + j * p.csb]
        d.bt, d.ldbt = Bt, p.K
    run_tasks(dot_task, &d, p.n_tasks, p.n_threads)
    nnfs_aligned_free(Bt)
    return 0


cdef struct Exact:
    const GemmPlan* p
    const float* A
    const double* Bd          # K x N, B widened to double
    float* C                  # M x N, rows contiguous
    bint accumulate, relu
    const float* bias_col
    const float* bias_row


cdef void exact_task(void* ctx, Py_ssize_t t) noexcept nogil:
    """Rows [t*SMALL_K_ROWS, (t+1)*SMALL_K_ROWS) of the EXACT path."""
    cdef Exact* d = <Exact*>ctx
    cdef Py_ssize_t i0 = t * SMALL_K_ROWS
    nnfs_small_k(min(<Py_ssize_t>SMALL_K_ROWS, d.p.M - i0), d.p.N, d.p.K, d.A + i0 * d.p.rsa,
                 d.p.rsa, d.p.csa, d.Bd, d.p.N, d.C + i0 * d.p.rsc, d.p.rsc, d.accumulate,
                 d.bias_col, d.bias_row + i0 if d.bias_row != NULL else NULL, d.relu)


cdef int run_exact(GemmPlan* p, const float* A, const float* B, float* C, bint accumulate,
                   const float* bias, bint bias_per_row, bint relu) noexcept nogil:
    """The EXACT path (K <= EXACT_K, C rows contiguous): B (K x N, small) widened to double
    once, rows split among threads (nnfs_small_k)."""
    cdef Exact d
    cdef double* Bd = <double*>nnfs_aligned_alloc(p.K * p.N * sizeof(double))
    cdef Py_ssize_t j, k
    if Bd == NULL:
        return -1
    for k in range(p.K):
        for j in range(p.N):
            Bd[k * p.N + j] = B[k * p.rsb + j * p.csb]
    d.p = p
    d.A, d.Bd, d.C, d.accumulate, d.relu = A, Bd, C, accumulate, relu
    d.bias_col, d.bias_row = NULL, NULL
    if bias_per_row:
        d.bias_row = bias
    else:
        d.bias_col = bias
    run_tasks(exact_task, &d, p.n_tasks, p.n_threads)
    nnfs_aligned_free(Bd)
    return 0


cdef int gemm(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K,
              const float* A, Py_ssize_t rsa, Py_ssize_t csa,
              const float* B, Py_ssize_t rsb, Py_ssize_t csb,
              float* C, Py_ssize_t rsc, Py_ssize_t csc,
              bint accumulate, const float* bias, bint bias_per_row, bint relu,
              bint exact, int n_threads) noexcept nogil:
    """C[M, N] = A[M, K] . B[K, N] (+ C if accumulate) (+ bias) (ReLU); -1 if out of memory.

    bias: N values (one per column) or, with bias_per_row, M values; NULL for none.
    exact: take the EXACT path for 0 < K <= EXACT_K (dense_forward). The path is
    plan_gemm()'s; n_threads >= 1.
    """
    cdef GemmPlan p = plan_gemm(M, N, K, rsa, csa, rsb, csb, rsc, csc, exact, n_threads)
    if p.transposed:            # C^T = B^T . A^T: the plan's strides are already swapped
        A, B = B, A
        bias_per_row = not bias_per_row
    if p.path == PATH_EMPTY:
        return 0
    if p.path == PATH_EXACT:
        return run_exact(&p, A, B, C, accumulate, bias, bias_per_row, relu)
    if p.path == PATH_DOT:
        return run_dot(&p, A, B, C, accumulate, bias, bias_per_row, relu)
    return run_blocked(&p, A, B, C, accumulate, bias, bias_per_row, relu)


def plan(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, int n_threads=1, bint exact=False,
         a_strides=None, b_strides=None, c_strides=None):
    """The plan gemm() makes for C[M, N] = A[M, K] . B[K, N], as a dict (for tests and for
    reading): path ("empty", "exact", "dot", "blocked"), transposed, the product as computed
    (M, N, K), n_threads used, n_tasks, and the BLOCKED path's block and task counts.

    Strides are in elements, (row, column); default C-contiguous. exact: as dense_forward
    asks (the EXACT path for 0 < K <= EXACT_K).
    """
    cdef Py_ssize_t rsa, csa, rsb, csb, rsc, csc
    rsa, csa = a_strides if a_strides is not None else (K, 1)
    rsb, csb = b_strides if b_strides is not None else (N, 1)
    rsc, csc = c_strides if c_strides is not None else (N, 1)
    if n_threads < 1:
        raise ValueError(f"n_threads: expected an int >= 1, got {n_threads}")
    cdef GemmPlan p = plan_gemm(M, N, K, rsa, csa, rsb, csb, rsc, csc, exact, n_threads)
    out = {"path": PATH_NAMES[<int>p.path], "transposed": bool(p.transposed),
           "M": p.M, "N": p.N, "K": p.K, "n_threads": p.n_threads, "n_tasks": p.n_tasks}
    if p.path == PATH_BLOCKED:
        out.update(kc=p.kc, n_kblocks=p.n_kblocks, kblocks_per_round=p.kblocks_per_round,
                   n_bpanels=p.n_bpanels, n_cols_padded=p.n_cols_padded,
                   n_apanels=p.n_apanels, n_row_chunks=p.n_row_chunks,
                   chunk_rows=p.chunk_rows, n_col_groups=p.n_col_groups,
                   panels_per_group=p.panels_per_group, pack_a=bool(p.pack_a),
                   direct_b=bool(p.direct_b))
    return out


# the constants, for tests and for reading (kernels/gemm/isa.h, kernels/parallel.pxd)
ISA = NNFS_ISA.decode()
COMPILER = NNFS_COMPILER.decode()
MR, NR, VL = NNFS_MR, NNFS_NR, NNFS_VL
KC, MC, NC = NNFS_KC, NNFS_MC, NNFS_NC
# (the enum names are taken by the C constants, hence globals())
globals().update(BP_MAX=BP_MAX, PACK_PANELS=PACK_PANELS, DIRECT_B_PANELS=DIRECT_B_PANELS,
                 DOT_ROWS=DOT_ROWS, EXACT_K=EXACT_K, SMALL_K_ROWS=SMALL_K_ROWS)
globals().update(thresholds())
