/* kernels/optimizer_targets.h - the optimizers' update loops (kernels/optimizer_loops.h) for the
 * baseline and for AVX2 (kernels/targets.h). An Adam step over the chapter 19 network's 118k
 * parameters is about a tenth of the step: 8 floats a vector instead of 4 (and 8 square roots
 * and divisions a vector) halve it. Every operation is an IEEE float32 +, -, *, / or sqrt,
 * never fused (-ffp-contract=off): both targets give the book's bits (NaNs aside:
 * kernels/targets.h). kernels/optimizers.pyx
 * picks the table at import; its range functions call it.
 */
#ifndef NNFS_OPTIMIZER_TARGETS_H
#define NNFS_OPTIMIZER_TARGETS_H

#include <math.h>
#include "targets.h"

/* one parameter's update (kernels/optimizers.pxd's Args) */
typedef struct {
    float *param;               /* IN/OUT  weights or biases */
    const float *grad;          /* IN      their gradient */
    float *momentums;           /* IN/OUT  SGD momentums or Adam's first moment */
    float *cache;               /* IN/OUT  RMSprop/Adagrad cache or Adam's second moment */
    ptrdiff_t n;                /* elements of each */
    float lr, momentum, rho, one_minus_rho, beta_1, one_minus_beta_1, beta_2, one_minus_beta_2;
    float momentum_correction, cache_correction, epsilon;
} nnfs_opt_args;

typedef void (*nnfs_opt_loop)(const nnfs_opt_args *a, ptrdiff_t start, ptrdiff_t end);

typedef struct {
    const char *target;
    nnfs_opt_loop sgd, sgd_momentum, cache, adam;
} nnfs_optimizer_ops;

#define NNFS_OPTIMIZER_OPS(NAME, FN) \
    {NAME, FN(nnfs_sgd), FN(nnfs_sgd_momentum), FN(nnfs_cache), FN(nnfs_adam)}

#define NNFS_LOOP_TARGET
#define NNFS_LOOP_FN(name) NNFS_LOOP_BASELINE(name)
#include "optimizer_loops.h"
#undef NNFS_LOOP_TARGET
#undef NNFS_LOOP_FN
static const nnfs_optimizer_ops nnfs_optimizer_baseline =
    NNFS_OPTIMIZER_OPS("baseline", NNFS_LOOP_BASELINE);

#if NNFS_HAVE_AVX2_TARGET
#define NNFS_LOOP_TARGET NNFS_AVX2_TARGET
#define NNFS_LOOP_FN(name) NNFS_LOOP_AVX2(name)
#include "optimizer_loops.h"
#undef NNFS_LOOP_TARGET
#undef NNFS_LOOP_FN
static const nnfs_optimizer_ops nnfs_optimizer_avx2 = NNFS_OPTIMIZER_OPS("avx2", NNFS_LOOP_AVX2);
#else
static const nnfs_optimizer_ops nnfs_optimizer_avx2 =  /* never chosen (NNFS_HAVE_AVX2_TARGET) */
    NNFS_OPTIMIZER_OPS("baseline", NNFS_LOOP_BASELINE);
#endif

#endif /* NNFS_OPTIMIZER_TARGETS_H */
