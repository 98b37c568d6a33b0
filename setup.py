"""Build the nnfs_fast extension modules (metadata lives in pyproject.toml).

* Every ``src/nnfs_fast/**/*.pyx`` becomes the module of its path (``kernels/losses.pyx`` ->
  ``nnfs_fast.kernels.losses``).
* ``kernels/gemm/dense_<level>.pyx`` modules hold the matrix-product kernels; each is compiled with the
  instruction-set flags of its level and only the levels of the target architecture are built
  (x86-64: baseline SSE2, AVX2+FMA, AVX-512; other architectures: baseline, which is NEON on
  arm64). ``nnfs_fast.runtime.dispatch`` picks the best one the CPU supports at import.
* OpenMP is probed per compiler (gcc/clang ``-fopenmp``, MSVC ``/openmp``, Apple clang
  ``-Xpreprocessor -fopenmp`` + ``-lomp``). Without it the package builds and runs serially.
  ``NNFS_FAST_USE_OPENMP=0`` disables it, ``=1`` makes a missing OpenMP a build error.
* ``NNFS_FAST_DEBUG=1`` compiles with Cython bounds/initialisation checks on and ``-O0 -g``.
* Floating point: gcc/clang compile every module with ``-ffp-contract=off``, so ``a*b + c`` is
  never fused into an FMA behind the code's back (gcc fuses by default wherever the target has
  FMA: AVX2, AVX-512, every arm64 CPU; clang within an expression). The book's float32
  expressions are then reproduced bit for bit on every platform; the FMAs the GEMM wants are
  explicit intrinsics, which the flag does not touch. MSVC's default ``/fp:precise`` does not
  contract (docs/INSTALL.md, "Floating point").
* Cross builds (tools/check_arm64.sh): the instruction-set levels are those of the target,
  asked of the compiler itself, so ``CC=aarch64-linux-gnu-gcc`` builds the baseline only.
"""
import os
import platform
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).parent
PKG = HERE / "src" / "nnfs_fast"
DEBUG = os.environ.get("NNFS_FAST_DEBUG", "0") not in ("", "0")

# instruction-set level -> flags for (gcc/clang, msvc)
X86_LEVELS = {
    "baseline": ([], []),
    "avx2": (["-mavx2", "-mfma"], ["/arch:AVX2"]),
    "avx512": (["-mavx512f", "-mavx512vl", "-mavx512dq", "-mavx512bw", "-mavx2", "-mfma"],
               ["/arch:AVX512"]),
}


def target_is_x86_64():
    archflags = os.environ.get("ARCHFLAGS", "")  # macOS cross builds: "-arch arm64"
    if "-arch" in archflags:
        return "x86_64" in archflags
    return platform.machine().lower() in ("x86_64", "amd64", "x64")


def level_of(module_name):
    stem = module_name.rsplit(".", 1)[-1]
    return stem[len("dense_"):] if stem.startswith("dense_") else None


def compiler_targets_x86_64(compiler):
    """Whether this compiler emits x86-64 code (a cross compiler for arm64 does not)."""
    code = "#if !defined(__x86_64__) && !defined(_M_X64)\n#error not x86-64\n#endif\n"
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "arch_probe.c"
        src.write_text(code)
        try:
            compiler.compile([str(src)], output_dir=tmp)
        except Exception:  # noqa: BLE001 - the #error fired (or nothing compiles: caught later)
            return False
    return True


def openmp_flags(compiler):
    """(compile flags, link flags) that enable OpenMP for this compiler, or None."""
    ctype = compiler.compiler_type
    if ctype == "msvc":
        candidates = [(["/openmp"], [])]
    elif sys.platform == "darwin":
        candidates = [(["-Xpreprocessor", "-fopenmp"], ["-lomp"]), (["-fopenmp"], ["-fopenmp"])]
    else:
        candidates = [(["-fopenmp"], ["-fopenmp"])]
    code = textwrap.dedent("""
        #include <omp.h>
        int main(void) {
            int n = 0;
            #pragma omp parallel reduction(+:n)
            n += 1;
            return n == omp_get_max_threads() ? 0 : 1;
        }
    """)
    extra_cflags = os.environ.get("CPPFLAGS", "").split() + os.environ.get("CFLAGS", "").split()
    extra_ldflags = os.environ.get("LDFLAGS", "").split()
    for cflags, ldflags in candidates:
        with tempfile.TemporaryDirectory() as tmp:
            src = Path(tmp) / "omp_probe.c"
            src.write_text(code)
            try:
                objs = compiler.compile([str(src)], output_dir=tmp,
                                        extra_preargs=extra_cflags + cflags)
                compiler.link_executable(objs, "omp_probe", output_dir=tmp,
                                         extra_preargs=extra_ldflags + ldflags)
            except Exception:  # noqa: BLE001 - any compiler/linker failure means "not available"
                continue
        return cflags, ldflags
    return None


class BuildExt(build_ext):
    def build_extensions(self):
        ctype = self.compiler.compiler_type
        want = os.environ.get("NNFS_FAST_USE_OPENMP", "auto")
        omp = None if want == "0" else openmp_flags(self.compiler)
        if omp is None and want == "1":
            sys.exit("NNFS_FAST_USE_OPENMP=1 but no working OpenMP was found for compiler "
                     f"{ctype!r}; install libgomp/libomp or unset the variable.")
        if omp is None:
            print("nnfs_fast: building WITHOUT OpenMP: kernels will run on one thread", flush=True)
        if any(level_of(e.name) not in (None, "baseline") for e in self.extensions) \
                and not compiler_targets_x86_64(self.compiler):
            print("nnfs_fast: the compiler does not target x86-64: building the baseline "
                  "kernels only", flush=True)
            self.extensions = [e for e in self.extensions if level_of(e.name) in (None, "baseline")]
        if ctype == "msvc":
            base = ["/Od", "/Zi"] if DEBUG else ["/O2"]
        else:
            # -fno-math-errno: sqrtf/expf need not set errno (nothing reads it), which lets
            # the optimizer and activation loops vectorise
            # -ffp-contract=off: no implicit FMA (see the module docstring)
            base = (["-O0", "-g"] if DEBUG else ["-O3"]) \
                + ["-fno-math-errno", "-ffp-contract=off"]
            base += ["-Wno-unused-function", "-Wno-unreachable-code-fallthrough"] \
                if "clang" in str(self.compiler.compiler[0]) else ["-Wno-unused-function"]
        for ext in self.extensions:
            level = level_of(ext.name)
            isa = X86_LEVELS[level][1 if ctype == "msvc" else 0] if level else []
            ext.extra_compile_args = base + isa + (omp[0] if omp else [])
            ext.extra_link_args = omp[1] if omp else []
            ext.define_macros = [("NPY_NO_DEPRECATED_API", "NPY_1_9_API_VERSION"),
                                 ("NNFS_FAST_HAVE_OPENMP", "1" if omp else "0")]
        super().build_extensions()


def extensions():
    levels = list(X86_LEVELS) if target_is_x86_64() else ["baseline"]
    # every C header: an edited header rebuilds the modules (Cython tracks .pxd/.pxi itself,
    # setuptools compares the .c's dependencies' times only with this list)
    headers = sorted(str(h.relative_to(HERE)) for h in PKG.rglob("*.h"))
    exts = []
    for pyx in sorted(PKG.rglob("*.pyx")):
        name = ".".join(pyx.relative_to(PKG).with_suffix("").parts)
        if level_of(name) and level_of(name) not in levels:
            continue
        exts.append(Extension(f"nnfs_fast.{name}", [str(pyx.relative_to(HERE))],
                              include_dirs=[numpy.get_include(),
                                            str(pyx.parent.relative_to(HERE))],
                              depends=headers))
    return cythonize(
        exts,
        compiler_directives={
            "language_level": 3,
            "boundscheck": DEBUG,
            "wraparound": False,
            "initializedcheck": DEBUG,
            "cdivision": True,
            "nonecheck": DEBUG,
            "embedsignature": True,
        },
        compile_time_env={"NNFS_FAST_DEBUG": DEBUG},
        nthreads=int(os.environ.get("NNFS_FAST_CYTHON_JOBS", "0")),
    )


setup(ext_modules=extensions(), cmdclass={"build_ext": BuildExt})
