/* kernels/vecmath.h - the scalar math every kernel shares: one definition each.
 *
 * exp, the log of a clipped probability, sigmoid, the probability clip, ReLU and its two
 * backward masks, on float32. Written in C so that the loops calling them (in Cython, in
 * kernels/rows.pxd, kernels/activations.pyx, kernels/losses.pyx, and in kernels/gemm's C
 * kernels) vectorize: no libm call, no branch the compiler cannot if-convert. The vector forms
 * of ReLU and its mask that the GEMM's micro-kernel uses (V_RELU, V_RELU_GRAD_OUT in
 * kernels/gemm/isa.h) compute the same values lane by lane.
 */
#ifndef NNFS_VECMATH_H
#define NNFS_VECMATH_H

#include <stdint.h>
#include <string.h>

/* exp(x) for x <= 0 (or NaN), in float32 arithmetic that compilers vectorize: no branch,
   no call, no float comparison (those block if-conversion under -ftrapping-math).
   exp(x) = 2^n exp(r), n = round(x / ln 2), r = x - n ln 2 (Cody-Waite, two constants),
   exp(r) by Cephes' expf polynomial; 2^n is applied as two normal powers of two so that
   results down to the subnormal range are rounded once. Error <= 1 ulp; it differs from
   glibc's expf by 1 ulp for about 0.85% of inputs (checked exhaustively on [-104, 0]).
   x < -104 (exp rounds to 0 there) is clamped on the integer bits, where negative floats
   order as signed integers; NaN passes through. */
static inline float nnfs_exp_nonpos(float x) {
    const float shift = 12582912.0f;              /* 1.5 * 2^23: z - shift = round(z) */
    const int32_t lo = (int32_t)0xC2D00000u;      /* bits of -104.0f */
    const int32_t neg_inf = (int32_t)0xFF800000u; /* bits of -inf */
    int32_t xb, clamp, k, k1;
    uint32_t zb, b1, b2;
    float z, n, r, p, s1, s2;
    memcpy(&xb, &x, 4);
    clamp = -(int32_t)((xb > lo) & (xb <= neg_inf));
    xb = (xb & ~clamp) | (lo & clamp);
    memcpy(&x, &xb, 4);
    z = x * 1.44269504088896341f + shift;
    n = z - shift;
    r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    memcpy(&zb, &z, 4);
    k = (int32_t)(zb - 0x4B400000u);              /* n as an integer, in [-150, 0] */
    k1 = k >> 1;
    b1 = (uint32_t)(k1 + 127) << 23;
    b2 = (uint32_t)(k - k1 + 127) << 23;
    memcpy(&s1, &b1, 4);
    memcpy(&s2, &b2, 4);
    return p * s1 * s2;
}
/* 1 / (1 + exp(-x)) as 1 / (1 + e) for x >= 0 and e / (1 + e) for x < 0, e = exp(-|x|):
   never overflows. The sign is read from the bits (branch-free, vectorizable). */
static inline float nnfs_sigmoid(float x) {
    uint32_t xb, neg;
    float e, num;
    memcpy(&xb, &x, 4);
    neg = 0u - (xb >> 31);
    xb |= 0x80000000u;                            /* -|x| */
    memcpy(&e, &xb, 4);
    e = nnfs_exp_nonpos(e);
    {
        uint32_t eb, one = 0x3F800000u, nb;
        memcpy(&eb, &e, 4);
        nb = (eb & neg) | (one & ~neg);
        memcpy(&num, &nb, 4);
    }
    return num / (1.0f + e);
}
/* np.clip(p, 1e-7f, 1 - 1e-7f) (NaN stays NaN), decided on the bits: float comparisons
   followed by arithmetic on the result keep GCC from vectorizing the loops around it.
   Non-negative floats order as their bits; negative ones are negative as int32. */
static inline float nnfs_clip_prob(float p) {
    const float lo = 1e-7f, hi = (float)(1.0 - 1e-7);
    int32_t pb, lob, hib, nan, below, above;
    memcpy(&pb, &p, 4);
    memcpy(&lob, &lo, 4);
    memcpy(&hib, &hi, 4);
    nan = -(int32_t)((pb & 0x7FFFFFFF) > 0x7F800000);
    below = -(int32_t)(pb < lob) & ~nan;
    above = -(int32_t)(pb > hib) & ~nan;
    pb = (pb & ~(below | above)) | (lob & below) | (hib & above);
    memcpy(&p, &pb, 4);
    return p;
}
/* log(p) for a clipped probability: p a normal positive float32 (clip_prob's range) or
   NaN (passed through), without a call or a table, so that loops over it vectorize.
   p = 2^k m with m in [sqrt(1/2), sqrt(2)); log m = 2 atanh(s), s = (m - 1) / (m + 1),
   |s| < 0.172, by its series to s^17 (truncation < 4e-14 relative), all in double, so the
   result is rounded once: the correctly rounded log except within ~1e-13 of a halfway
   case (libm's logf is within 0.82 ulp). */
static inline float nnfs_log_prob(float p) {
    uint32_t pb, mb, rb, nan;
    int32_t k;
    float m, r;
    double f, s, z, q;
    memcpy(&pb, &p, 4);
    nan = 0u - (uint32_t)((pb & 0x7FFFFFFFu) > 0x7F800000u);
    mb = pb + (0x3F800000u - 0x3F3504F3u);
    k = (int32_t)(mb >> 23) - 127;
    mb = (mb & 0x007FFFFFu) + 0x3F3504F3u;
    memcpy(&m, &mb, 4);
    f = (double)m - 1.0;
    s = f / (2.0 + f);
    z = s * s;
    q = 1.0 / 17;
    q = q * z + 1.0 / 15;
    q = q * z + 1.0 / 13;
    q = q * z + 1.0 / 11;
    q = q * z + 1.0 / 9;
    q = q * z + 1.0 / 7;
    q = q * z + 1.0 / 5;
    q = q * z + 1.0 / 3;
    q = q * z + 1.0;
    r = (float)((double)k * 0.69314718055994530942 + 2.0 * s * q);
    memcpy(&rb, &r, 4);
    rb = (rb & ~nan) | (pb & nan);
    memcpy(&r, &rb, 4);
    return r;
}

/* ReLU, np.maximum(0, x): x < 0 gives +0; -0 and NaN pass through (x86's max(0, x) with x
   second, which V_RELU is). */
static inline float nnfs_relu(float x) {
    return x < 0.0f ? 0.0f : x;
}

/* ReLU's backward from the forward *input* x, the book's dinputs[inputs <= 0] = 0: g where
   x > 0, and where x is NaN (x <= 0 is false); 0 elsewhere. */
static inline float nnfs_relu_grad(float x, float g) {
    return x <= 0.0f ? 0.0f : g;
}

/* ReLU's backward from the forward *output* y (the dense layer's fused ReLU keeps only its
   output): g where y > 0, else 0. Equal to nnfs_relu_grad of the input except where that
   input was NaN (y NaN: 0 here, g there). */
static inline float nnfs_relu_grad_out(float y, float g) {
    return y > 0.0f ? g : 0.0f;
}

#endif /* NNFS_VECMATH_H */
