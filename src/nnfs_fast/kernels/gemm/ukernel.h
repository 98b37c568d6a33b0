/* kernels/gemm/ukernel.h - the GEMM's MR x NR micro-kernel and its bias/ReLU epilogue.
 *
 * Contract of nnfs_ukernel (everything else -- blocking, packing, threads -- is gemm.pxi's):
 *   C[mr x n] = A[mr x kc] . B[kc x NR](first n columns) (+ C if accumulate)
 *               (+ bias_col[j]) (+ bias_row[i]) (ReLU), then stored;
 *   1 <= mr <= MR, 1 <= n <= NR, kc >= 0; float32 throughout.
 *   A: element (i, k) at a[i*rsa + k*csa], with rsa == 1 or csa == 1 (row-major rows, a
 *      transposed matrix, or a packed micro-panel: rsa == 1, csa == MR). Values only broadcast.
 *   B: element (k, j) at b[k*ldb + j], NR readable floats per k (a packed micro-panel, ldb ==
 *      NR, zero past the matrix edge; or a full NR-wide panel of a row-major B read in place).
 *   C: element (i, j) at c[i*rsc + j*csc]; only the mr x n elements are read or written.
 *   bias_col: NR readable floats (padded) or NULL; bias_row: mr floats or NULL.
 *   Each C element is the sum over k in order 0..kc-1 of one FMA chain, then the epilogue in
 *   the order accumulate, bias_col, bias_row, ReLU: the same numbers for any caller.
 *
 * Inside, the accumulator tile acc[mr][NV] lives in vector registers: per k, NV vectors of B
 * are loaded and each of the mr values of A is broadcast and multiplied into one row of the
 * tile (mr*NV FMAs). A full tile with csc == 1 is stored with vector stores, anything else goes
 * through a small buffer. mr is a compile-time constant in each specialisation made by
 * nnfs_ukernel's switch, so small matrices (a 2-row dW) do not pay for a full tile.
 *
 * Floating point: V_FMA is a fused multiply-add where the level has one (AVX2, AVX-512, NEON:
 * explicit intrinsics) and a multiply then an add on SSE2 and in the scalar fallback; the rest
 * is compiled with -ffp-contract=off (setup.py), so no compiler fuses anything else. A level's
 * products are therefore the same with gcc, clang and MSVC; between levels they differ in the
 * last bits (see docs/INSTALL.md, "Floating point").
 */
#ifndef NNFS_UKERNEL_H
#define NNFS_UKERNEL_H

#include "isa.h"

/* The epilogue of a tile: t[i, j] = acc[i][j] (+ t) (+ bias_col) (+ bias_row) (ReLU), in that
 * order. A macro on nnfs_tile's locals (a function taking acc would keep it out of registers),
 * expanded with constant flags for the common cases, so that a plain product stores its tile
 * with no test per vector. */
#define NNFS_EPILOGUE(ACCUMULATE, BIAS_COL, BIAS_ROW, RELU)                                 \
    NNFS_UNROLL for (i = 0; i < mr; i++) {                                                  \
        NNFS_UNROLL for (j = 0; j < NNFS_NV; j++) {                                         \
            nnfs_vf v = acc[i][j];                                                          \
            if (ACCUMULATE) v = V_ADD(v, V_LOAD(t + i * rst + j * NNFS_VL));                \
            if (BIAS_COL) v = V_ADD(v, V_LOAD((BIAS_COL) + j * NNFS_VL));                   \
            if (BIAS_ROW) v = V_ADD(v, V_SET1((BIAS_ROW)[i]));                              \
            if (RELU) v = V_RELU(v);                                                        \
            V_STORE(t + i * rst + j * NNFS_VL, v);                                          \
        }                                                                                   \
    }

NNFS_ALWAYS_INLINE void nnfs_tile(const int mr, ptrdiff_t kc, const float *a, ptrdiff_t rsa,
                                  ptrdiff_t csa, const float *b, ptrdiff_t ldb,
                                  float *c, ptrdiff_t rsc, ptrdiff_t csc, ptrdiff_t n,
                                  int accumulate, const float *bias_col, const float *bias_row,
                                  int relu)
{
    nnfs_vf acc[NNFS_MR][NNFS_NV];
    float buf[NNFS_MR * NNFS_NR];
    int direct = (csc == 1 && n == NNFS_NR);
    float *t = direct ? c : buf;
    ptrdiff_t rst = direct ? rsc : NNFS_NR;
    int i, j;
    ptrdiff_t k;

    NNFS_UNROLL for (i = 0; i < mr; i++)
        NNFS_UNROLL for (j = 0; j < NNFS_NV; j++) acc[i][j] = V_ZERO();
    for (k = 0; k < kc; k++) {
        nnfs_vf bv[NNFS_NV];
        NNFS_UNROLL for (j = 0; j < NNFS_NV; j++) bv[j] = V_LOAD(b + k * ldb + j * NNFS_VL);
        NNFS_UNROLL for (i = 0; i < mr; i++) {
            nnfs_vf ai = V_SET1(a[k * csa + i * rsa]);
            NNFS_UNROLL for (j = 0; j < NNFS_NV; j++) acc[i][j] = V_FMA(ai, bv[j], acc[i][j]);
        }
    }
    if (!direct && accumulate) {  /* gather the partial C tile into buf (zeros past the edge) */
        memset(buf, 0, sizeof(buf));
        for (i = 0; i < mr; i++)
            for (k = 0; k < n; k++) buf[i * NNFS_NR + k] = c[i * rsc + k * csc];
    }
    /* the forms the dense passes use, each with constant flags; any other, tested per vector */
    if (!bias_col && !bias_row && !relu) {
        if (accumulate) {
            NNFS_EPILOGUE(1, (const float *)NULL, (const float *)NULL, 0)  /* dW += reg. */
        } else {
            NNFS_EPILOGUE(0, (const float *)NULL, (const float *)NULL, 0)  /* backward */
        }
    } else if (!accumulate && bias_col && !bias_row) {
        if (relu) {
            NNFS_EPILOGUE(0, bias_col, (const float *)NULL, 1)     /* forward, fused ReLU */
        } else {
            NNFS_EPILOGUE(0, bias_col, (const float *)NULL, 0)     /* forward */
        }
    } else {
        NNFS_EPILOGUE(accumulate, bias_col, bias_row, relu)
    }
    if (!direct)
        for (i = 0; i < mr; i++)
            for (k = 0; k < n; k++) c[i * rsc + k * csc] = buf[i * NNFS_NR + k];
}

/* one specialisation per mr and per unit-stride side of A */
#define NNFS_TILE_CASE(m)                                                                   \
    case m:                                                                                 \
        if (csa == 1)                                                                       \
            nnfs_tile(m, kc, a, rsa, 1, b, ldb, c, rsc, csc, n, accumulate, bias_col,       \
                      bias_row, relu);                                                      \
        else                                                                                \
            nnfs_tile(m, kc, a, 1, csa, b, ldb, c, rsc, csc, n, accumulate, bias_col,       \
                      bias_row, relu);                                                      \
        break;

/* The micro-kernel: see the contract at the top of this file. */
static void nnfs_ukernel(int mr, ptrdiff_t kc, const float *a, ptrdiff_t rsa, ptrdiff_t csa,
                         const float *b, ptrdiff_t ldb, float *c, ptrdiff_t rsc, ptrdiff_t csc, ptrdiff_t n,
                         int accumulate, const float *bias_col, const float *bias_row, int relu)
{
    switch (mr) {
        NNFS_TILE_CASE(1) NNFS_TILE_CASE(2) NNFS_TILE_CASE(3) NNFS_TILE_CASE(4)
#if NNFS_MR > 4
        NNFS_TILE_CASE(5) NNFS_TILE_CASE(6)
#endif
#if NNFS_MR > 6
        NNFS_TILE_CASE(7) NNFS_TILE_CASE(8)
#endif
#if NNFS_MR > 8
        NNFS_TILE_CASE(9) NNFS_TILE_CASE(10) NNFS_TILE_CASE(11) NNFS_TILE_CASE(12)
        NNFS_TILE_CASE(13) NNFS_TILE_CASE(14)
#endif
    default: break;
    }
}

#endif /* NNFS_UKERNEL_H */
