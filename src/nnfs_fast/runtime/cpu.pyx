"""Which instruction-set levels this CPU (and its OS) can run; used once at import.

x86-64: the CPUID feature bits, and XCR0 for the register state the OS saves (gcc/clang's
__builtin_cpu_supports checks both; MSVC: __cpuid and _xgetbv). Intel Macs enable the AVX-512
state lazily, on a thread's first AVX-512 instruction, so XCR0 reads as "no AVX-512" until
then and CPUID alone would pick AVX2 there: on macOS the kernel is asked instead
(sysctl hw.optional.avx512*), as Go and cpu_features do (see macos_avx512).
arm64: NEON is part of the base architecture, so the baseline is the only level.
"""
import os
import sys

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
    #if defined(__APPLE__)
    #include <sys/types.h>
    #include <sys/sysctl.h>
    /* A boolean sysctl of the macOS kernel: 1 or 0, -1 where it does not exist. */
    static int nnfs_sysctl_flag(const char *name) {
        int value = 0;
        size_t size = sizeof(value);
        if (sysctlbyname(name, &value, &size, NULL, 0) != 0) return -1;
        return value != 0;
    }
    #else
    static int nnfs_sysctl_flag(const char *name) { (void)name; return -1; }
    #endif
    """
    int nnfs_has_avx2()
    int nnfs_has_avx512()
    int nnfs_sysctl_flag(const char* name)

# The AVX-512 subsets the avx512 kernels are compiled for (setup.py), as macOS names them.
MACOS_AVX512_SYSCTLS = ("hw.optional.avx512f", "hw.optional.avx512dq", "hw.optional.avx512bw",
                        "hw.optional.avx512vl")
# Darwin 21.3 (macOS 12.2): older kernels could corrupt the AVX-512 mask registers on return
# from a signal handler (golang/go#49233), so AVX-512 is used from there on only.
MACOS_AVX512_MIN_DARWIN = (21, 3)


def sysctl_flag(name):
    """A boolean macOS sysctl: 1, 0, or -1 where it does not exist (always -1 elsewhere)."""
    return nnfs_sysctl_flag(name.encode())


def macos_avx512(flag=sysctl_flag, darwin_release=None):
    """Whether an Intel Mac runs the avx512 kernels: the kernel reports every subset they use
    and is Darwin 21.3 or later. ``flag(name)`` reads a sysctl; ``darwin_release`` is
    ``os.uname().release`` ("21.3.0") unless given."""
    release = os.uname().release if darwin_release is None else darwin_release
    try:
        version = tuple(int(part) for part in release.split(".")[:2])
    except ValueError:
        return False
    return version >= MACOS_AVX512_MIN_DARWIN and all(flag(n) == 1 for n in MACOS_AVX512_SYSCTLS)


def supported_levels():
    """Instruction-set levels of nnfs_fast's kernels this CPU can run, best last."""
    levels = ["baseline"]
    if nnfs_has_avx2():
        levels.append("avx2")
        if nnfs_has_avx512() or (sys.platform == "darwin" and macos_avx512()):
            levels.append("avx512")
    return levels
