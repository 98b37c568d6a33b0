/* kernels/targets.h - one loop file compiled for two instruction sets inside one module.
 *
 * Design note
 * -----------
 * The dense products have one module per instruction-set level (kernels/gemm/, picked by
 * runtime/dispatch.py). The element-wise kernels that dominate some training steps -- the
 * book's dropout draws, the optimizers' updates -- live in modules compiled for the baseline
 * (SSE2 on x86-64), where their loops vectorise 4 floats wide. Rather than a module per level
 * for each, such a kernel writes its loops once in a loop file (kernels/<name>_loops.h) that a
 * targets header includes twice: with NNFS_LOOP_TARGET empty and NNFS_LOOP_FN(name) naming
 * name_baseline, and, where the compiler can (gcc or clang on x86-64, NNFS_HAVE_AVX2_TARGET),
 * with NNFS_LOOP_TARGET = NNFS_AVX2_TARGET (__attribute__((target("avx2")))) and names
 * name_avx2, which -O3 vectorises 8 floats wide. The module keeps a pointer to one table of
 * those functions, chosen at import by runtime/dispatch.py's loop_target(): avx2 where the
 * dense kernels' level is avx2 or higher, so NNFS_FAST_ISA=baseline forces the baseline loops
 * too. Only operations that round the same way on every target go in a loop file (integer
 * and IEEE float32/float64 +, -, *, /, sqrt; setup.py's -ffp-contract=off forbids fusing them
 * into FMAs), so both targets give the same bits for every number, and the tests run on both
 * (where two NaNs meet in one operation, which NaN comes out -- its sign and payload --
 * depends on the compiler's operand order: NaN either way).
 * MSVC and other architectures build the baseline table only.
 */
#ifndef NNFS_TARGETS_H
#define NNFS_TARGETS_H

#include <stddef.h>
#include <stdint.h>

#if defined(_MSC_VER) && !defined(__clang__)
#define NNFS_LOOP_RESTRICT __restrict
#else
#define NNFS_LOOP_RESTRICT __restrict__
#endif

#define NNFS_LOOP_BASELINE(name) name##_baseline
#define NNFS_LOOP_AVX2(name) name##_avx2

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#define NNFS_HAVE_AVX2_TARGET 1
#define NNFS_AVX2_TARGET __attribute__((target("avx2")))
#else
#define NNFS_HAVE_AVX2_TARGET 0
#endif

#endif /* NNFS_TARGETS_H */
