/* kernels/gemm/isa.h - what one instruction-set level gives the GEMM: its vector vocabulary,
 * its micro-tile (MR x NR) and its block sizes (KC, MC, NC), side by side.
 *
 * One source serves every level: the V_* macros map to AVX-512, AVX2+FMA, SSE2 or NEON
 * intrinsics (or plain floats) according to the flags the including dense_<level>.pyx is
 * compiled with (setup.py). A vector holds VL floats; the micro-tile is MR rows x NV vectors
 * (NR = NV*VL columns) of accumulators, sized to the register file (MR*NV accumulators plus
 * NV vectors of B and one broadcast A value): 14 x 2 of 32 zmm, 6 x 2 of 16 ymm/xmm, 8 x 3 of
 * 32 NEON registers.
 *
 * Block sizes (floats, see kernels/gemm/gemm.pxi for the loops that use them):
 *   KC  depth of a packed block: an A micro-panel, MR*KC floats, stays in L1
 *   MC  rows of A one task covers (MC*KC floats packed: L2)
 *   NC  columns of B one A micro-panel sweeps (KC*NC floats: L2)
 * Today every level shares the same values (measured with benchmarks/bench_dense.py on AVX2
 * and AVX-512 machines); a level that needs others defines them in its branch below.
 *
 * Vector ReLU and its mask compute, lane by lane, kernels/vecmath.h's nnfs_relu and
 * nnfs_relu_grad_out: V_RELU(v) = max(0, v) with v second (x86 returns it for -0 and NaN),
 * V_RELU_GRAD_OUT(y, g) = g where y > 0, else 0.
 */
#ifndef NNFS_ISA_H
#define NNFS_ISA_H

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
#define V_RELU_GRAD_OUT(y, g) _mm512_maskz_mov_ps(_mm512_cmp_ps_mask((y), _mm512_setzero_ps(), _CMP_GT_OQ), (g))
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
#define V_RELU_GRAD_OUT(y, g) _mm256_and_ps((g), _mm256_cmp_ps((y), _mm256_setzero_ps(), _CMP_GT_OQ))
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
#define V_RELU_GRAD_OUT(y, g) _mm_and_ps((g), _mm_cmpgt_ps((y), _mm_setzero_ps()))
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
#define V_RELU_GRAD_OUT(y, g) vbslq_f32(vcgtq_f32((y), vdupq_n_f32(0.0f)), (g), vdupq_n_f32(0.0f))
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
#define V_RELU_GRAD_OUT(y, g) ((y) > 0.0f ? (g) : 0.0f)
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

#ifndef NNFS_KC
#define NNFS_KC 256     /* depth of a packed block */
#endif
#ifndef NNFS_MC
#define NNFS_MC 224     /* rows of A per task: MC*KC floats = 224 KiB */
#endif
#ifndef NNFS_NC
#define NNFS_NC 512     /* columns of B one A micro-panel sweeps: KC*NC floats = 512 KiB */
#endif

#define V_RELU(v) V_MAX(V_ZERO(), (v))  /* NaN and -0 propagate: max returns its 2nd operand */


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

#endif /* NNFS_ISA_H */
