/* kernels/gemm/colsum.h - column sums for the bias gradient (used by dense.pxi's column_sums).
 *
 * db[j] = sum_i g[i, j] in row order, float32; with the fused ReLU's output y, g is first
 * masked by kernels/vecmath.h's nnfs_relu_grad_out (V_RELU_GRAD_OUT in vectors). Its own file:
 * it is neither the micro-kernel nor a GEMM form.
 */
#ifndef NNFS_COLSUM_H
#define NNFS_COLSUM_H

#include "isa.h"
#include "../vecmath.h"

/* Column sums of an m x n block of G with contiguous rows (n <= NNFS_COLSUM_COLS), for the
 * bias gradient: db[j] = sum_i g[i, j] in row order; with the fused ReLU's output y, g is
 * first masked (y > 0 ? g : 0) and written to gm. Whole vectors of columns keep their sums in
 * registers across the rows; the last n % VL columns are summed in scalars, same order. */
#define NNFS_COLSUM_VECS 4
#define NNFS_COLSUM_COLS (NNFS_COLSUM_VECS * NNFS_VL)
static void nnfs_colsum_block(ptrdiff_t m, ptrdiff_t n, const float *g, ptrdiff_t rsg,
                              const float *y, ptrdiff_t rsy, float *gm, ptrdiff_t ldgm,
                              float *db)
{
    nnfs_vf acc[NNFS_COLSUM_VECS];
    ptrdiff_t i, j, nv = n / NNFS_VL;
    int q;
    for (q = 0; q < NNFS_COLSUM_VECS; q++) acc[q] = V_ZERO();
    for (i = 0; i < m; i++) {
        const float *gi = g + i * rsg;
        for (q = 0; q < nv; q++) {
            nnfs_vf v = V_LOAD(gi + q * NNFS_VL);
            if (y) {
                v = V_RELU_GRAD_OUT(V_LOAD(y + i * rsy + q * NNFS_VL), v);
                V_STORE(gm + i * ldgm + q * NNFS_VL, v);
            }
            acc[q] = V_ADD(acc[q], v);
        }
    }
    for (q = 0; q < nv; q++) V_STORE(db + q * NNFS_VL, acc[q]);
    for (j = nv * NNFS_VL; j < n; j++) {
        float s = 0.0f;
        for (i = 0; i < m; i++) {
            float v = g[i * rsg + j];
            if (y) {
                v = nnfs_relu_grad_out(y[i * rsy + j], v);
                gm[i * ldgm + j] = v;
            }
            s += v;
        }
        db[j] = s;
    }
}

#endif /* NNFS_COLSUM_H */
