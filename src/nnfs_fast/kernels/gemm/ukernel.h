/* kernels/gemm/ukernel.h - the register-tiled micro-kernel of nnfs_fast's GEMM, and its vector vocabulary.
 *
 * Design (BLIS/OpenBLAS style, see kernels/gemm/dense.pxi for the blocking and packing around it):
 *   C[mr x NR] (+)= A[mr x kc] . Bp[kc x NR], then the epilogue: + bias (per column or per
 *   row), ReLU, store.
 *   A is read in place with strides (rsa, csa), one of which is 1: row-major rows (csa == 1),
 *   a transposed matrix or a packed micro-panel (rsa == 1; packed: csa == MR). Its values are
 *   only ever broadcast, so no layout change is needed for them to be read efficiently.
 *   B is an NR-column micro-panel, k-major with row stride ldb: packed (ldb == NR, zero
 *   padded past the matrix edge) or, when few A panels reuse it, a full panel of a
 *   row-major B read in place. The accumulator tile
 *   acc[mr][NV] lives in vector registers: per k, NV vectors of B are loaded, and each of the mr
 *   values of A is broadcast and multiplied into one row of the tile (mr*NV FMAs).
 *   The tile is written to C with arbitrary strides (rsc, csc): a full tile with csc == 1 is
 *   stored with vector stores, anything else goes through a small buffer.
 *
 * One source serves every instruction-set level: the V_* macros map to AVX-512, AVX2+FMA, SSE2
 * or NEON intrinsics (or plain floats) according to the flags this file is compiled with, and the
 * tile shape follows the register file (MR rows x NV vectors, leaving registers for B and A).
 * mr (1..MR) is a compile-time constant in each specialisation made by nnfs_ukernel's switch,
 * so small matrices (a 2-row dW, a 3-column output) do not pay for a full tile.
 *
 * Floating point: V_FMA is a fused multiply-add where the level has one (AVX2, AVX-512, NEON:
 * explicit intrinsics) and a multiply then an add on SSE2 and in the scalar fallback; the rest
 * is compiled with -ffp-contract=off (setup.py), so no compiler fuses anything else. A level's
 * products are therefore the same with gcc, clang and MSVC; between levels they differ in the
 * last bits (see docs/INSTALL.md, "Floating point").
 */
#ifndef NNFS_UKERNEL_H
#define NNFS_UKERNEL_H

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#if defined(__AVX512F__)
#include <immintrin.h>
#define NNFS_ISA "avx512"
#define NNFS_VL 16
#define NNFS_NV 2
#define NNFS_MR 14
typedef __m512 nnfs_vf;
#define V_LOAD(p) _mm512_loadu_ps(p)
#define V_STORE(p, v) _mm512_storeu_ps((p), (v))
#define V_SET1(x) _mm512_set1_ps(x)
#define V_ZERO() _mm512_setzero_ps()
#define V_FMA(a, b, c) _mm512_fmadd_ps((a), (b), (c))
#define V_ADD(a, b) _mm512_add_ps((a), (b))
#define V_MAX(a, b) _mm512_max_ps((a), (b))
#define V_HSUM(v) _mm512_reduce_add_ps(v)
#define V_WHERE_POS(y, g) _mm512_maskz_mov_ps(_mm512_cmp_ps_mask((y), _mm512_setzero_ps(), _CMP_GT_OQ), (g))
#elif defined(__AVX2__)
#include <immintrin.h>
#define NNFS_ISA "avx2"
#define NNFS_VL 8
#define NNFS_NV 2
#define NNFS_MR 6
typedef __m256 nnfs_vf;
#define V_LOAD(p) _mm256_loadu_ps(p)
#define V_STORE(p, v) _mm256_storeu_ps((p), (v))
#define V_SET1(x) _mm256_set1_ps(x)
#define V_ZERO() _mm256_setzero_ps()
#define V_FMA(a, b, c) _mm256_fmadd_ps((a), (b), (c))
#define V_ADD(a, b) _mm256_add_ps((a), (b))
#define V_MAX(a, b) _mm256_max_ps((a), (b))
#define V_HSUM(v) nnfs_hsum128(_mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps((v), 1)))
#define V_WHERE_POS(y, g) _mm256_and_ps((g), _mm256_cmp_ps((y), _mm256_setzero_ps(), _CMP_GT_OQ))
#elif defined(__SSE2__) || defined(_M_X64) || (defined(_M_IX86_FP) && _M_IX86_FP >= 2)
#include <emmintrin.h>
#define NNFS_ISA "sse2"
#define NNFS_VL 4
#define NNFS_NV 2
#define NNFS_MR 6
typedef __m128 nnfs_vf;
#define V_LOAD(p) _mm_loadu_ps(p)
#define V_STORE(p, v) _mm_storeu_ps((p), (v))
#define V_SET1(x) _mm_set1_ps(x)
#define V_ZERO() _mm_setzero_ps()
#define V_FMA(a, b, c) _mm_add_ps(_mm_mul_ps((a), (b)), (c))
#define V_ADD(a, b) _mm_add_ps((a), (b))
#define V_MAX(a, b) _mm_max_ps((a), (b))
#define V_HSUM(v) nnfs_hsum128(v)
#define V_WHERE_POS(y, g) _mm_and_ps((g), _mm_cmpgt_ps((y), _mm_setzero_ps()))
#elif defined(__aarch64__) || defined(_M_ARM64)
#include <arm_neon.h>
#define NNFS_ISA "neon"
#define NNFS_VL 4
#define NNFS_NV 3
#define NNFS_MR 8
typedef float32x4_t nnfs_vf;
#define V_LOAD(p) vld1q_f32(p)
#define V_STORE(p, v) vst1q_f32((p), (v))
#define V_SET1(x) vdupq_n_f32(x)
#define V_ZERO() vdupq_n_f32(0.0f)
#define V_FMA(a, b, c) vfmaq_f32((c), (a), (b))
#define V_ADD(a, b) vaddq_f32((a), (b))
#define V_MAX(a, b) nnfs_neon_max((a), (b))
#define V_HSUM(v) vaddvq_f32(v)
#define V_WHERE_POS(y, g) vbslq_f32(vcgtq_f32((y), vdupq_n_f32(0.0f)), (g), vdupq_n_f32(0.0f))
/* NaN-propagating like x86 max(0, x) with x second: keep b where a > b is false */
static inline float32x4_t nnfs_neon_max(float32x4_t a, float32x4_t b) {
    return vbslq_f32(vcgtq_f32(a, b), a, b);
}
#else
#define NNFS_ISA "scalar"
#define NNFS_VL 1
#define NNFS_NV 4
#define NNFS_MR 4
typedef float nnfs_vf;
#define V_LOAD(p) (*(p))
#define V_STORE(p, v) (*(p) = (v))
#define V_SET1(x) (x)
#define V_ZERO() 0.0f
#define V_FMA(a, b, c) ((a) * (b) + (c))
#define V_ADD(a, b) ((a) + (b))
#define V_MAX(a, b) ((a) > (b) ? (a) : (b))
#define V_HSUM(v) (v)
#define V_WHERE_POS(y, g) ((y) > 0.0f ? (g) : 0.0f)
#endif

#if defined(__SSE2__) || defined(_M_X64) || (defined(_M_IX86_FP) && _M_IX86_FP >= 2)
static inline float nnfs_hsum128(__m128 v)
{
    v = _mm_add_ps(v, _mm_movehl_ps(v, v));
    v = _mm_add_ss(v, _mm_shuffle_ps(v, v, 1));
    return _mm_cvtss_f32(v);
}
#endif

#define NNFS_NR (NNFS_NV * NNFS_VL)

#if defined(_MSC_VER)
#define NNFS_ALWAYS_INLINE static __forceinline
#define NNFS_UNROLL
#define NNFS_RESTRICT __restrict
#else
#define NNFS_RESTRICT __restrict__
#define NNFS_ALWAYS_INLINE static inline __attribute__((always_inline))
#define NNFS_UNROLL _Pragma("GCC unroll 16")
#endif

/* Compiler that built this module, for show_config(). */
#if defined(__clang__)
#define NNFS_COMPILER "clang " __clang_version__
#elif defined(__GNUC__)
#define NNFS_COMPILER "gcc " __VERSION__
#elif defined(_MSC_VER)
#define NNFS_STR2(x) #x
#define NNFS_STR(x) NNFS_STR2(x)
#define NNFS_COMPILER "msvc " NNFS_STR(_MSC_FULL_VER)
#else
#define NNFS_COMPILER "unknown"
#endif

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
    NNFS_UNROLL for (i = 0; i < mr; i++) {
        NNFS_UNROLL for (j = 0; j < NNFS_NV; j++) {
            nnfs_vf v = acc[i][j];
            if (accumulate) v = V_ADD(v, V_LOAD(t + i * rst + j * NNFS_VL));
            if (bias_col) v = V_ADD(v, V_LOAD(bias_col + j * NNFS_VL));
            if (bias_row) v = V_ADD(v, V_SET1(bias_row[i]));
            if (relu) v = V_MAX(V_ZERO(), v);  /* NaN propagates: max returns its 2nd operand */
            V_STORE(t + i * rst + j * NNFS_VL, v);
        }
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

/* C[mr x n] (+)= A . Bp with epilogue; 1 <= mr <= NNFS_MR, 1 <= n <= NNFS_NR,
 * and rsa == 1 or csa == 1. */
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

/* Dot-product form for outputs narrower than a vector (N < NR) whose A rows are contiguous:
 * C[i, j] (+)= sum_k A[i, k] * Bt[j, k] (+ bias) (ReLU), with the vector lanes along k, so
 * neither A nor B needs a transposing pack. Blocks of ri x cj outputs (4 x 2 when they fit)
 * keep ri*cj independent accumulators in flight; each is reduced once at the end. */
NNFS_ALWAYS_INLINE void nnfs_dot_block(const int ri, const int cj, ptrdiff_t kc,
                                       const float *a, ptrdiff_t lda, const float *bt,
                                       ptrdiff_t ldbt, float *c, ptrdiff_t rsc, ptrdiff_t csc,
                                       int accumulate, const float *bias_col,
                                       const float *bias_row, int relu)
{
    nnfs_vf acc[4][2];
    ptrdiff_t kv = kc - kc % NNFS_VL, k;
    int r, q;
    NNFS_UNROLL for (r = 0; r < ri; r++)
        NNFS_UNROLL for (q = 0; q < cj; q++) acc[r][q] = V_ZERO();
    for (k = 0; k < kv; k += NNFS_VL) {
        nnfs_vf bv[2];
        NNFS_UNROLL for (q = 0; q < cj; q++) bv[q] = V_LOAD(bt + q * ldbt + k);
        NNFS_UNROLL for (r = 0; r < ri; r++) {
            nnfs_vf av = V_LOAD(a + r * lda + k);
            NNFS_UNROLL for (q = 0; q < cj; q++) acc[r][q] = V_FMA(av, bv[q], acc[r][q]);
        }
    }
    NNFS_UNROLL for (r = 0; r < ri; r++) {
        NNFS_UNROLL for (q = 0; q < cj; q++) {
            float v = V_HSUM(acc[r][q]);
            for (k = kv; k < kc; k++) v += a[r * lda + k] * bt[q * ldbt + k];
            if (accumulate) v += c[r * rsc + q * csc];
            if (bias_col) v += bias_col[q];
            if (bias_row) v += bias_row[r];
            if (relu && v < 0.0f) v = 0.0f;  /* NaN stays NaN */
            c[r * rsc + q * csc] = v;
        }
    }
}

static void nnfs_dot_rows(ptrdiff_t m, ptrdiff_t n, ptrdiff_t kc, const float *a, ptrdiff_t lda,
                          const float *bt, ptrdiff_t ldbt, float *c, ptrdiff_t rsc,
                          ptrdiff_t csc, int accumulate, const float *bias_col,
                          const float *bias_row, int relu)
{
    ptrdiff_t i, j;
    for (i = 0; i < m; i += 4) {
        for (j = 0; j < n; j += 2) {
            const float *ai = a + i * lda, *bj = bt + j * ldbt;
            float *cij = c + i * rsc + j * csc;
            const float *bc = bias_col ? bias_col + j : NULL, *br = bias_row ? bias_row + i : NULL;
            if (m - i >= 4 && n - j >= 2)
                nnfs_dot_block(4, 2, kc, ai, lda, bj, ldbt, cij, rsc, csc, accumulate, bc, br, relu);
            else if (m - i >= 4)
                nnfs_dot_block(4, 1, kc, ai, lda, bj, ldbt, cij, rsc, csc, accumulate, bc, br, relu);
            else if (n - j >= 2)
                for (ptrdiff_t r = i; r < m; r++)
                    nnfs_dot_block(1, 2, kc, a + r * lda, lda, bj, ldbt, c + r * rsc + j * csc,
                                   rsc, csc, accumulate, bc, bias_row ? bias_row + r : NULL, relu);
            else
                for (ptrdiff_t r = i; r < m; r++)
                    nnfs_dot_block(1, 1, kc, a + r * lda, lda, bj, ldbt, c + r * rsc + j * csc,
                                   rsc, csc, accumulate, bc, bias_row ? bias_row + r : NULL, relu);
        }
    }
}

/* Products of depth K <= 4 (a first layer on 2-D points, the book's 3-neuron layers): each
 * output summed in double and rounded once, as NumPy's float64 np.dot under nnfs.init() does,
 * so such layers reproduce the book's float32 numbers bit for bit. No packing, no tiling:
 * there is too little work per output for either to pay. */
/* One row: out[j] = (float)(sum_k a[k*csa] * bd[k*ldb + j]) (+ out) (+ bias) (ReLU), j < n.
 * kc is a constant in each specialisation, so the k loop unrolls and the j loop vectorises
 * with the double sums in registers. */
NNFS_ALWAYS_INLINE void nnfs_small_k_row(const int kc, ptrdiff_t n, const float *a,
                                         ptrdiff_t csa, const double *NNFS_RESTRICT bd,
                                         ptrdiff_t ldb, float *NNFS_RESTRICT out,
                                         int accumulate, const float *NNFS_RESTRICT bias,
                                         float bias_row, int relu)
{
    double ak[4];
    ptrdiff_t j;
    int k;
    for (k = 0; k < kc; k++) ak[k] = (double)a[k * csa];
    for (j = 0; j < n; j++) {
        double acc = ak[0] * bd[j];
        float v;
        for (k = 1; k < kc; k++) acc += ak[k] * bd[k * ldb + j];
        v = (float)acc;
        if (accumulate) v += out[j];
        if (bias) v += bias[j];
        v += bias_row;
        if (relu) v = v < 0.0f ? 0.0f : v;  /* NaN stays NaN */
        out[j] = v;
    }
}

/* C[m x n] = A[m x kc] . B (1 <= kc <= 4), B given as doubles bd (kc x n, row stride ldb, the
 * float32 values widened once by the caller); C rows contiguous (row stride ldc). */
static void nnfs_small_k(ptrdiff_t m, ptrdiff_t n, ptrdiff_t kc, const float *a, ptrdiff_t rsa,
                         ptrdiff_t csa, const double *bd, ptrdiff_t ldb, float *c, ptrdiff_t ldc,
                         int accumulate, const float *bias_col, const float *bias_row, int relu)
{
    ptrdiff_t i;
    for (i = 0; i < m; i++) {
        const float br = bias_row ? bias_row[i] : 0.0f;
        const float *ai = a + i * rsa;
        float *ci = c + i * ldc;
        switch (kc) {
        case 1: nnfs_small_k_row(1, n, ai, csa, bd, ldb, ci, accumulate, bias_col, br, relu); break;
        case 2: nnfs_small_k_row(2, n, ai, csa, bd, ldb, ci, accumulate, bias_col, br, relu); break;
        case 3: nnfs_small_k_row(3, n, ai, csa, bd, ldb, ci, accumulate, bias_col, br, relu); break;
        default: nnfs_small_k_row(4, n, ai, csa, bd, ldb, ci, accumulate, bias_col, br, relu);
        }
    }
}

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
                v = V_WHERE_POS(V_LOAD(y + i * rsy + q * NNFS_VL), v);
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
                v = y[i * rsy + j] > 0.0f ? v : 0.0f;
                gm[i * ldgm + j] = v;
            }
            s += v;
        }
        db[j] = s;
    }
}

/* 64-byte aligned scratch for packed panels. */
static void *nnfs_aligned_alloc(size_t nbytes)
{
#if defined(_MSC_VER)
    return _aligned_malloc(nbytes ? nbytes : 1, 64);
#else
    void *p = NULL;
    return posix_memalign(&p, 64, nbytes ? nbytes : 1) == 0 ? p : NULL;
#endif
}

static void nnfs_aligned_free(void *p)
{
#if defined(_MSC_VER)
    _aligned_free(p);
#else
    free(p);
#endif
}

#endif /* NNFS_UKERNEL_H */
