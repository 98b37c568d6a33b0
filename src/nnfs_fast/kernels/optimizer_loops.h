/* kernels/optimizer_loops.h - the optimizers' update loops (kernels/optimizers.pyx's design
 * note has their formulas), written once and compiled once per target by
 * kernels/optimizer_targets.h (kernels/targets.h: NNFS_LOOP_FN, NNFS_LOOP_TARGET). No include
 * guard on purpose. Each loop copies the record's scalars into locals first: a float store
 * through param could otherwise alias the record's float fields and keep the loop scalar.
 * The arrays may overlap (nothing forbids a user's aliasing): no restrict, so the compiler
 * checks for overlap at run time before it takes the vector loop. */

/* SGD: W += (-lr) * g */
NNFS_LOOP_TARGET static void NNFS_LOOP_FN(nnfs_sgd)(const nnfs_opt_args *a, ptrdiff_t start,
                                                    ptrdiff_t end)
{
    float *param = a->param;
    const float *grad = a->grad;
    const float neg_lr = -a->lr;
    ptrdiff_t i;
    for (i = start; i < end; i++)
        param[i] = param[i] + neg_lr * grad[i];
}

/* SGD with momentum: u = momentum * m - lr * g; m = u; W += u */
NNFS_LOOP_TARGET static void NNFS_LOOP_FN(nnfs_sgd_momentum)(const nnfs_opt_args *a,
                                                             ptrdiff_t start, ptrdiff_t end)
{
    float *param = a->param;
    const float *grad = a->grad;
    float *momentums = a->momentums;
    const float lr = a->lr, momentum = a->momentum;
    ptrdiff_t i;
    for (i = start; i < end; i++) {
        float u = momentum * momentums[i] - lr * grad[i];
        momentums[i] = u;
        param[i] = param[i] + u;
    }
}

/* RMSprop (Adagrad: rho = one_minus_rho = 1): cache = rho * cache + one_minus_rho * (g * g);
 * W += (-lr) * g / (sqrt(cache) + eps) */
NNFS_LOOP_TARGET static void NNFS_LOOP_FN(nnfs_cache)(const nnfs_opt_args *a, ptrdiff_t start,
                                                      ptrdiff_t end)
{
    float *param = a->param;
    const float *grad = a->grad;
    float *cache = a->cache;
    const float neg_lr = -a->lr, rho = a->rho, one_minus_rho = a->one_minus_rho;
    const float epsilon = a->epsilon;
    ptrdiff_t i;
    for (i = start; i < end; i++) {
        float g = grad[i], c = rho * cache[i] + one_minus_rho * (g * g);
        cache[i] = c;
        param[i] = param[i] + neg_lr * g / (sqrtf(c) + epsilon);
    }
}

/* Adam: m = beta_1 * m + one_minus_beta_1 * g; v = beta_2 * v + one_minus_beta_2 * (g * g);
 * W += (-lr) * (m / momentum_correction) / (sqrt(v / cache_correction) + eps) */
NNFS_LOOP_TARGET static void NNFS_LOOP_FN(nnfs_adam)(const nnfs_opt_args *a, ptrdiff_t start,
                                                     ptrdiff_t end)
{
    float *param = a->param;
    const float *grad = a->grad;
    float *momentums = a->momentums;
    float *cache = a->cache;
    const float neg_lr = -a->lr, beta_1 = a->beta_1, one_minus_beta_1 = a->one_minus_beta_1;
    const float beta_2 = a->beta_2, one_minus_beta_2 = a->one_minus_beta_2;
    const float momentum_correction = a->momentum_correction;
    const float cache_correction = a->cache_correction, epsilon = a->epsilon;
    ptrdiff_t i;
    for (i = start; i < end; i++) {
        float g = grad[i];
        float m = beta_1 * momentums[i] + one_minus_beta_1 * g;
        float v = beta_2 * cache[i] + one_minus_beta_2 * (g * g);
        momentums[i] = m;
        cache[i] = v;
        param[i] = param[i] + neg_lr * (m / momentum_correction)
                                  / (sqrtf(v / cache_correction) + epsilon);
    }
}
