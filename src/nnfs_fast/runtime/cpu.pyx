"""Which instruction-set levels this CPU (and its OS) can run; used once at import."""

cdef extern from *:
    """
    #if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
    static int nnfs_has_avx2(void) {
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
    static int nnfs_has_avx512(void) {
        __builtin_cpu_init();
        return nnfs_has_avx2() && __builtin_cpu_supports("avx512f")
            && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq")
            && __builtin_cpu_supports("avx512bw");
    }
    #elif defined(_MSC_VER) && (defined(_M_X64) || defined(_M_IX86))
    #include <intrin.h>
    #include <immintrin.h>
    static int nnfs_os_saves(unsigned long long mask) {
        int r[4];
        __cpuid(r, 1);
        if (!(r[2] & (1 << 27))) return 0;  /* OSXSAVE */
        return (_xgetbv(0) & mask) == mask;
    }
    static int nnfs_has_avx2(void) {
        int r1[4], r7[4];
        __cpuid(r1, 1);
        __cpuidex(r7, 7, 0);
        return nnfs_os_saves(0x6) && (r1[2] & (1 << 12)) && (r7[1] & (1 << 5));
    }
    static int nnfs_has_avx512(void) {
        int r7[4];
        __cpuidex(r7, 7, 0);
        /* F (16), DQ (17), BW (30), VL (31) */
        return nnfs_has_avx2() && nnfs_os_saves(0xE6) && (r7[1] & (1 << 16))
            && (r7[1] & (1 << 17)) && (r7[1] & (1 << 30)) && (r7[1] & (1u << 31));
    }
    #else
    static int nnfs_has_avx2(void) { return 0; }
    static int nnfs_has_avx512(void) { return 0; }
    #endif
    """
    int nnfs_has_avx2()
    int nnfs_has_avx512()


def supported_levels():
    """Instruction-set levels of nnfs_fast's kernels this CPU can run, best last."""
    levels = ["baseline"]
    if nnfs_has_avx2():
        levels.append("avx2")
    if nnfs_has_avx512():
        levels.append("avx512")
    return levels
