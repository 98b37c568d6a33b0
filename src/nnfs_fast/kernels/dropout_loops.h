/* kernels/dropout_loops.h - the loops of kernels/dropout_targets.h, written once and compiled
 * once per target (kernels/targets.h): that header includes this file with NNFS_LOOP_FN(name)
 * (the target's function names) and NNFS_LOOP_TARGET (its function attribute) defined. No
 * include guard on purpose.
 * Every loop is integer arithmetic, exact double arithmetic or one float32 product per
 * element, so each target gives the same bits; the compiler vectorises them for the target
 * (-O3, -ffp-contract=off). */

/* numpy/random/src/mt19937/mt19937.c, mt19937_gen: the next block of 624 words, in place. In
 * the second loop key[i + M - N] = key[i - 227] was written 227 words earlier, far more than a
 * vector apart, so both loops vectorise. */
NNFS_LOOP_TARGET static void NNFS_LOOP_FN(nnfs_mt_gen)(nnfs_mt19937_state *state)
{
    uint32_t *key = state->key, y;
    int i;
    for (i = 0; i < NNFS_MT_N - NNFS_MT_M; i++) {
        y = (key[i] & 0x80000000U) | (key[i + 1] & 0x7fffffffU);
        key[i] = key[i + NNFS_MT_M] ^ (y >> 1) ^ (-(y & 1U) & 0x9908b0dfU);
    }
    for (; i < NNFS_MT_N - 1; i++) {
        y = (key[i] & 0x80000000U) | (key[i + 1] & 0x7fffffffU);
        key[i] = key[i + (NNFS_MT_M - NNFS_MT_N)] ^ (y >> 1) ^ (-(y & 1U) & 0x9908b0dfU);
    }
    y = (key[NNFS_MT_N - 1] & 0x80000000U) | (key[0] & 0x7fffffffU);
    key[NNFS_MT_N - 1] = key[NNFS_MT_M - 1] ^ (y >> 1) ^ (-(y & 1U) & 0x9908b0dfU);
    state->pos = 0;
}

/* mt19937_next's tempering: out[k] = temper(key[k]), k < n. */
NNFS_LOOP_TARGET static void NNFS_LOOP_FN(nnfs_mt_temper)(const uint32_t *NNFS_LOOP_RESTRICT key,
                                                      uint32_t *NNFS_LOOP_RESTRICT out, ptrdiff_t n)
{
    ptrdiff_t k;
    for (k = 0; k < n; k++) {
        uint32_t y = key[k];
        y ^= (y >> 11);
        y ^= (y << 7) & 0x9d2c5680U;
        y ^= (y << 15) & 0xefc60000U;
        y ^= (y >> 18);
        out[k] = y;
    }
}

/* mt19937_next_double: u[i] = (a * 2^26 + b) / 2^53 with a = words[2i] >> 5, b = words[2i+1] >> 6
 * (exact: a 53-bit integer scaled by a power of two). */
NNFS_LOOP_TARGET static void NNFS_LOOP_FN(nnfs_mt_doubles)(const uint32_t *NNFS_LOOP_RESTRICT words,
                                                       double *NNFS_LOOP_RESTRICT u, ptrdiff_t n)
{
    ptrdiff_t i;
    for (i = 0; i < n; i++) {
        int32_t a = (int32_t)(words[2 * i] >> 5), b = (int32_t)(words[2 * i + 1] >> 6);
        u[i] = (a * 67108864.0 + b) / 9007199254740992.0;
    }
}

/* Whether any u[i] takes the sampler's rare branch (u - qn > px1: no draw, a new uniform). */
NNFS_LOOP_TARGET static int NNFS_LOOP_FN(nnfs_mt_any_resample)(const double *u, ptrdiff_t n,
                                                           double qn, double px1)
{
    ptrdiff_t i;
    int any = 0;
    for (i = 0; i < n; i++)
        any |= u[i] - qn > px1;
    return any;
}

/* One draw per uniform (no rare branch among them): draw = (u > qn) != mirror, then
 * binary_mask[i] = draw ? scale : 0 and out[i] = in[i] * binary_mask[i] (float32). */
NNFS_LOOP_TARGET static void NNFS_LOOP_FN(nnfs_mt_mask)(const double *u, ptrdiff_t n,
                                                    double qn, int mirror, float scale,
                                                    const float *in,
                                                    float *binary_mask,
                                                    float *out)
{
    ptrdiff_t i;
    for (i = 0; i < n; i++) {
        float m = (u[i] > qn) != mirror ? scale : 0.0f;
        binary_mask[i] = m;
        out[i] = in[i] * m;
    }
}

/* The draws of the uniforms made from words[0:2n] (nnfs_mt_doubles), applied as nnfs_mt_mask
 * does, NNFS_MT_UNIFORMS at a time. Returns 1 as soon as one of them takes the rare branch,
 * having written outputs that the caller rewrites: draw_forward (kernels/dropout.pyx) redoes
 * these uniforms one at a time, and the draws they and the next uniforms make cover every one
 * of those elements. */
NNFS_LOOP_TARGET static int NNFS_LOOP_FN(nnfs_mt_mask_words)(const uint32_t *words, ptrdiff_t n,
                                                         double qn, double px1, int mirror,
                                                         float scale, const float *in,
                                                         float *binary_mask, float *out)
{
    double u[NNFS_MT_UNIFORMS];
    ptrdiff_t i, m;
    for (i = 0; i < n; i += m) {
        m = n - i < NNFS_MT_UNIFORMS ? n - i : NNFS_MT_UNIFORMS;
        NNFS_LOOP_FN(nnfs_mt_doubles)(words + 2 * i, u, m);
        if (NNFS_LOOP_FN(nnfs_mt_any_resample)(u, m, qn, px1))
            return 1;
        NNFS_LOOP_FN(nnfs_mt_mask)(u, m, qn, mirror, scale, in + i, binary_mask + i, out + i);
    }
    return 0;
}

/* The dropout backward (and a given mask applied): out[i] = values[i] * binary_mask[i]. */
NNFS_LOOP_TARGET static void NNFS_LOOP_FN(nnfs_masked_product)(const float *values,
                                                           const float *mask,
                                                           float *out,
                                                           ptrdiff_t n)
{
    ptrdiff_t i;
    for (i = 0; i < n; i++)
        out[i] = values[i] * mask[i];
}
