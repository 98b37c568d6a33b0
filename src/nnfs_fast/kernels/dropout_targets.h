/* kernels/dropout_targets.h - the hot loops of the dropout kernels (kernels/dropout.pyx), per
 * target: NumPy's MT19937 (numpy/random/src/mt19937/mt19937.{h,c}) and its 53-bit doubles, the
 * Bernoulli mask of the book's draws, and the masked product of the backward pass.
 *
 * Design note
 * -----------
 * The draws are serial (one RNG stream), so the book's dropout runs at these loops' speed: a
 * block of 624 words generated, tempered, paired into 53-bit doubles, compared with the
 * sampler's thresholds and turned into the float32 mask and output. The loops are written once
 * (kernels/dropout_loops.h) and compiled for the baseline and for AVX2 as kernels/targets.h
 * describes; kernels/dropout.pyx picks a table (nnfs_dropout_ops) at import. One step is
 * written with AVX2 intrinsics instead, because the compiler cannot fuse it: words -> doubles
 * -> draws -> mask and output in one pass (nnfs_mt_mask_words_fused_avx2; the loops version
 * makes three passes over a buffer of doubles). Integer operations, exact double arithmetic
 * and one float32 product per element: every target gives the same bits, which
 * tests/kernels/test_binomial.py checks against NumPy on each. Speeds: benchmarks/RESULTS.md,
 * "The book's dropout draws".
 */
#ifndef NNFS_DROPOUT_TARGETS_H
#define NNFS_DROPOUT_TARGETS_H

#include "targets.h"

#define NNFS_MT_N 624
#define NNFS_MT_M 397
#define NNFS_MT_UNIFORMS 256     /* doubles buffered at a time (nnfs_mt_mask_words) */

/* numpy/random/src/mt19937/mt19937.h's mt19937_state (its layout is checked at import) */
typedef struct { uint32_t key[NNFS_MT_N]; int pos; } nnfs_mt19937_state;

/* one target's loops (kernels/dropout_loops.h) */
typedef struct {
    const char *target;
    void (*gen)(nnfs_mt19937_state *state);
    void (*temper)(const uint32_t *key, uint32_t *out, ptrdiff_t n);
    void (*doubles)(const uint32_t *words, double *u, ptrdiff_t n);
    int (*mask_words)(const uint32_t *words, ptrdiff_t n, double qn, double px1, int mirror,
                      float scale, const float *in, float *binary_mask, float *out);
    void (*masked_product)(const float *values, const float *mask, float *out, ptrdiff_t n);
} nnfs_dropout_ops;

#define NNFS_DROPOUT_OPS(NAME, FN, MASK_WORDS) \
    {NAME, FN(nnfs_mt_gen), FN(nnfs_mt_temper), FN(nnfs_mt_doubles), MASK_WORDS, \
     FN(nnfs_masked_product)}

#define NNFS_LOOP_TARGET
#define NNFS_LOOP_FN(name) NNFS_LOOP_BASELINE(name)
#include "dropout_loops.h"
#undef NNFS_LOOP_TARGET
#undef NNFS_LOOP_FN
static const nnfs_dropout_ops nnfs_dropout_baseline =
    NNFS_DROPOUT_OPS("baseline", NNFS_LOOP_BASELINE, nnfs_mt_mask_words_baseline);

#if NNFS_HAVE_AVX2_TARGET
#include <immintrin.h>
#define NNFS_LOOP_TARGET NNFS_AVX2_TARGET
#define NNFS_LOOP_FN(name) NNFS_LOOP_AVX2(name)
#include "dropout_loops.h"

/* nnfs_mt_mask_words in one pass, 4 uniforms (8 words) a step: the even words >> 5 and the
 * odd words >> 6 converted to doubles, u = (a * 2^26 + b) * 2^-53 (exact, as next_double's
 * division by 2^53), the rare-branch test u - qn > px1 and the draw (u > qn) != mirror made
 * in double exactly as the loops make them, the draw's 64-bit lane mask narrowed to 32 bits
 * and ANDed with scale. It writes as it goes, as the loops version does: when it returns 1 (a
 * uniform took the rare branch) the outputs hold values the caller rewrites. */
NNFS_LOOP_TARGET static int nnfs_mt_mask_words_fused_avx2(const uint32_t *words, ptrdiff_t n,
                                                         double qn, double px1, int mirror,
                                                         float scale, const float *in,
                                                         float *binary_mask, float *out)
{
    const __m256i order = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
    const __m256i shifts = _mm256_setr_epi32(5, 5, 5, 5, 6, 6, 6, 6);
    const __m256d two26 = _mm256_set1_pd(67108864.0), two_m53 = _mm256_set1_pd(0x1p-53);
    const __m256d vqn = _mm256_set1_pd(qn), vpx1 = _mm256_set1_pd(px1);
    const __m256d flip = _mm256_castsi256_pd(_mm256_set1_epi64x(mirror ? -1 : 0));
    const __m128 vscale = _mm_set1_ps(scale);
    ptrdiff_t n4 = n - n % 4, i;
    __m256d any = _mm256_setzero_pd();
    for (i = 0; i < n4; i += 4) {
        __m256i w = _mm256_loadu_si256((const __m256i *)(words + 2 * i));
        w = _mm256_srlv_epi32(_mm256_permutevar8x32_epi32(w, order), shifts);
        __m256d a = _mm256_cvtepi32_pd(_mm256_castsi256_si128(w));
        __m256d b = _mm256_cvtepi32_pd(_mm256_extracti128_si256(w, 1));
        __m256d u = _mm256_mul_pd(_mm256_add_pd(_mm256_mul_pd(a, two26), b), two_m53);
        any = _mm256_or_pd(any, _mm256_cmp_pd(_mm256_sub_pd(u, vqn), vpx1, _CMP_GT_OQ));
        __m256d draw = _mm256_xor_pd(_mm256_cmp_pd(u, vqn, _CMP_GT_OQ), flip);
        __m128 m = _mm_and_ps(_mm256_castps256_ps128(_mm256_permutevar8x32_ps(
                                  _mm256_castpd_ps(draw), order)), vscale);
        _mm_storeu_ps(binary_mask + i, m);
        _mm_storeu_ps(out + i, _mm_mul_ps(_mm_loadu_ps(in + i), m));
    }
    return _mm256_movemask_pd(any)
        || NNFS_LOOP_FN(nnfs_mt_mask_words)(words + 2 * n4, n - n4, qn, px1, mirror, scale,
                                           in + n4, binary_mask + n4, out + n4);
}
#undef NNFS_LOOP_TARGET
#undef NNFS_LOOP_FN
static const nnfs_dropout_ops nnfs_dropout_avx2 =
    NNFS_DROPOUT_OPS("avx2", NNFS_LOOP_AVX2, nnfs_mt_mask_words_fused_avx2);
#else
static const nnfs_dropout_ops nnfs_dropout_avx2 =      /* never chosen (NNFS_HAVE_AVX2_TARGET) */
    NNFS_DROPOUT_OPS("baseline", NNFS_LOOP_BASELINE, nnfs_mt_mask_words_baseline);
#endif

#endif /* NNFS_DROPOUT_TARGETS_H */
