/* kernels/gemm/narrow.h - the two GEMM forms beside the micro-kernel, for shapes it fits badly.
 *
 *   nnfs_dot_rows  outputs narrower than half a tile (2N < NR) with contiguous A rows: dot
 *                  products with the vector lanes along the depth K (no transposing pack).
 *   nnfs_small_k   forward products of depth K <= EXACT_K (gemm.pxi): each output summed in
 *                  double and rounded once, bit for bit the book's float64 np.dot.
 * Both take float32 matrices with element strides and the same epilogue as the micro-kernel
 * (+ C, + bias per column or per row, ReLU from kernels/vecmath.h). gemm.pxi's plan_gemm()
 * decides which form a product takes.
 */
#ifndef NNFS_NARROW_H
#define NNFS_NARROW_H

#include "isa.h"
#include "../vecmath.h"

/* Dot-product form for outputs narrower than a vector (N < NR) whose A rows are contiguous:
 * C[i, j] (+)= sum_k A[i, k] * Bt[j, k] (+ bias) (ReLU), with the vector lanes along k, so
 * neither A nor B needs a transposing pack. Blocks of ri x cj outputs (4 x 2 when they fit; 4 x 3
 * for a last 3 columns, so that N = 3 reads each A row once) keep ri*cj independent
 * accumulators in flight; each is reduced once at the end, whatever block it is in. */
NNFS_ALWAYS_INLINE void nnfs_dot_block(const int ri, const int cj, ptrdiff_t kc,
                                       const float *a, ptrdiff_t lda, const float *bt,
                                       ptrdiff_t ldbt, float *c, ptrdiff_t rsc, ptrdiff_t csc,
                                       int accumulate, const float *bias_col,
                                       const float *bias_row, int relu)
{
    nnfs_vf acc[4][3];
    float v[4][3];
    ptrdiff_t kv = kc - kc % NNFS_VL, k;
    int r, q;
    NNFS_UNROLL for (r = 0; r < ri; r++)
        NNFS_UNROLL for (q = 0; q < cj; q++) acc[r][q] = V_ZERO();
    for (k = 0; k < kv; k += NNFS_VL) {
        nnfs_vf bv[3];
        NNFS_UNROLL for (q = 0; q < cj; q++) bv[q] = V_LOAD(bt + q * ldbt + k);
        NNFS_UNROLL for (r = 0; r < ri; r++) {
            nnfs_vf av = V_LOAD(a + r * lda + k);
            NNFS_UNROLL for (q = 0; q < cj; q++) acc[r][q] = V_FMA(av, bv[q], acc[r][q]);
        }
    }
    /* the epilogue a step at a time over the block (each test once per block, not per output),
       in the same order for every output */
    NNFS_UNROLL for (r = 0; r < ri; r++) {
        NNFS_UNROLL for (q = 0; q < cj; q++) {
            v[r][q] = V_HSUM(acc[r][q]);
            for (k = kv; k < kc; k++) v[r][q] += a[r * lda + k] * bt[q * ldbt + k];
        }
    }
    if (accumulate)
        NNFS_UNROLL for (r = 0; r < ri; r++)
            NNFS_UNROLL for (q = 0; q < cj; q++) v[r][q] += c[r * rsc + q * csc];
    if (bias_col)
        NNFS_UNROLL for (r = 0; r < ri; r++)
            NNFS_UNROLL for (q = 0; q < cj; q++) v[r][q] += bias_col[q];
    if (bias_row)
        NNFS_UNROLL for (r = 0; r < ri; r++)
            NNFS_UNROLL for (q = 0; q < cj; q++) v[r][q] += bias_row[r];
    if (relu)
        NNFS_UNROLL for (r = 0; r < ri; r++)
            NNFS_UNROLL for (q = 0; q < cj; q++) v[r][q] = nnfs_relu(v[r][q]);
    NNFS_UNROLL for (r = 0; r < ri; r++)
        NNFS_UNROLL for (q = 0; q < cj; q++) c[r * rsc + q * csc] = v[r][q];
}

/* The columns of one block: 2, or 3 when exactly 3 are left (12 accumulators and 3 B vectors
 * still fit in 16 vector registers), or a last 1. */
#define NNFS_DOT_COLS(left) ((left) == 3 ? 3 : (left) >= 2 ? 2 : 1)

/* nnfs_dot_block with RI rows and cj columns, both compile-time constants in each call */
#define NNFS_DOT_BLOCK(RI, cj, ...)                                                         \
    do {                                                                                    \
        if ((cj) == 3) nnfs_dot_block(RI, 3, __VA_ARGS__);                                  \
        else if ((cj) == 2) nnfs_dot_block(RI, 2, __VA_ARGS__);                             \
        else nnfs_dot_block(RI, 1, __VA_ARGS__);                                            \
    } while (0)

static void nnfs_dot_rows(ptrdiff_t m, ptrdiff_t n, ptrdiff_t kc, const float *a, ptrdiff_t lda,
                          const float *bt, ptrdiff_t ldbt, float *c, ptrdiff_t rsc,
                          ptrdiff_t csc, int accumulate, const float *bias_col,
                          const float *bias_row, int relu)
{
    ptrdiff_t i, j, cj;
    for (i = 0; i < m; i += 4) {
        for (j = 0; j < n; j += cj) {
            const float *ai = a + i * lda, *bj = bt + j * ldbt;
            float *cij = c + i * rsc + j * csc;
            const float *bc = bias_col ? bias_col + j : NULL, *br = bias_row ? bias_row + i : NULL;
            cj = NNFS_DOT_COLS(n - j);
            if (m - i >= 4) {
                NNFS_DOT_BLOCK(4, cj, kc, ai, lda, bj, ldbt, cij, rsc, csc, accumulate, bc, br,
                               relu);
                continue;
            }
            for (ptrdiff_t r = i; r < m; r++)
                NNFS_DOT_BLOCK(1, cj, kc, a + r * lda, lda, bj, ldbt, c + r * rsc + j * csc, rsc,
                               csc, accumulate, bc, bias_row ? bias_row + r : NULL, relu);
        }
    }
}

/* Products of depth K <= 4 (a first layer on 2-D points, the book's 3-neuron layers): each
 * output summed in double and rounded once, as NumPy's float64 np.dot under nnfs.init() does,
 * so such layers reproduce the book's float32 numbers bit for bit. No packing, no tiling:
 * there is too little work per output for either to pay. */
/* One output of nnfs_small_k_rows: out[j] = (float)acc (+ out[j]) (+ bias[j]) (+ br) (ReLU), the
 * micro-kernel's epilogue order (kernels/gemm/ukernel.h). No restrict here: the caller's
 * restrict rows already let its loop vectorise, and restrict parameters on this function cost
 * the spiral step's forward 12% more instructions (callgrind). */
NNFS_ALWAYS_INLINE void nnfs_small_k_put(double acc, float *out, ptrdiff_t j, int accumulate,
                                         const float *bias, float br, int relu)
{
    float v = (float)acc;
    if (accumulate) v += out[j];
    if (bias) v += bias[j];
    v += br;
    if (relu) v = nnfs_relu(v);
    out[j] = v;
}

/* nr rows (1 or 2; a1, out1 NULL and br1 unused with 1): out_r[j] = (float)(sum_k a_r[k*csa] *
 * bd[k*ldb + j]) (+ out_r[j]) (+ bias[j]) (+ br_r) (ReLU), j < n. nr and kc are constants in
 * each specialisation, so the k loop unrolls and the j loop vectorises with the double sums
 * in registers (the two output rows are separate restrict pointers: the compiler need not
 * fear that they overlap); with two rows each B value is read once for both and the loop's
 * setup is paid once per pair. */
NNFS_ALWAYS_INLINE void nnfs_small_k_rows(const int nr, const int kc, ptrdiff_t n,
                                          const float *a0, const float *a1, ptrdiff_t csa,
                                          const double *NNFS_RESTRICT bd, ptrdiff_t ldb,
                                          float *NNFS_RESTRICT out0, float *NNFS_RESTRICT out1,
                                          int accumulate, const float *NNFS_RESTRICT bias,
                                          float br0, float br1, int relu)
{
    double ak0[4], ak1[4];
    ptrdiff_t j;
    int k;
    for (k = 0; k < kc; k++) {
        ak0[k] = (double)a0[k * csa];
        ak1[k] = nr == 2 ? (double)a1[k * csa] : 0.0;
    }
    for (j = 0; j < n; j++) {
        double acc0 = ak0[0] * bd[j], acc1 = ak1[0] * bd[j];
        for (k = 1; k < kc; k++) {
            acc0 += ak0[k] * bd[k * ldb + j];
            if (nr == 2) acc1 += ak1[k] * bd[k * ldb + j];
        }
        nnfs_small_k_put(acc0, out0, j, accumulate, bias, br0, relu);
        if (nr == 2) nnfs_small_k_put(acc1, out1, j, accumulate, bias, br1, relu);
    }
}

/* nnfs_small_k_rows with NR rows and the depth kc, both constants in each call */
#define NNFS_SMALL_K_ROWS(NR, ...)                                                          \
    do {                                                                                    \
        switch (kc) {                                                                       \
        case 1: nnfs_small_k_rows(NR, 1, __VA_ARGS__); break;                               \
        case 2: nnfs_small_k_rows(NR, 2, __VA_ARGS__); break;                               \
        case 3: nnfs_small_k_rows(NR, 3, __VA_ARGS__); break;                               \
        default: nnfs_small_k_rows(NR, 4, __VA_ARGS__);                                     \
        }                                                                                   \
    } while (0)

/* C[m x n] = A[m x kc] . B (1 <= kc <= 4), B given as doubles bd (kc x n, row stride ldb, the
 * float32 values widened once by the caller); C rows contiguous (row stride ldc >= n), two
 * rows at a time. */
static void nnfs_small_k(ptrdiff_t m, ptrdiff_t n, ptrdiff_t kc, const float *a, ptrdiff_t rsa,
                         ptrdiff_t csa, const double *bd, ptrdiff_t ldb, float *c, ptrdiff_t ldc,
                         int accumulate, const float *bias_col, const float *bias_row, int relu)
{
    ptrdiff_t i;
    for (i = 0; i + 1 < m; i += 2)
        NNFS_SMALL_K_ROWS(2, n, a + i * rsa, a + (i + 1) * rsa, csa, bd, ldb, c + i * ldc,
                          c + (i + 1) * ldc, accumulate, bias_col,
                          bias_row ? bias_row[i] : 0.0f, bias_row ? bias_row[i + 1] : 0.0f, relu);
    if (i < m)
        NNFS_SMALL_K_ROWS(1, n, a + i * rsa, NULL, csa, bd, ldb, c + i * ldc, NULL, accumulate,
                          bias_col, bias_row ? bias_row[i] : 0.0f, 0.0f, relu);
}

#endif /* NNFS_NARROW_H */
