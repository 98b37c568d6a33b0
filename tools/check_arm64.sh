#!/usr/bin/env bash
# The arm64 (NEON) build of nnfs_fast, proven on an x86-64 Linux machine (docs/INSTALL.md;
# .ci/run calls it). In a temporary directory, removed at the end:
#
#   1. tools: qemu-user (qemu-aarch64) and Debian's cross compiler aarch64-linux-gnu-gcc with
#      its C library, installed with apt-get when missing (tools/ensure_packages.sh)
#   2. an arm64 root: Debian's arm64 CPython 3.11 and the libraries it and the extensions load
#      (libc, libgomp, libstdc++, ...), fetched with apt-get download through a private apt
#      configuration (this machine's dpkg architectures and package lists stay as they are)
#      and unpacked with dpkg -x
#   3. NumPy's manylinux aarch64 wheel (the host's NumPy version) and the test dependencies,
#      pip download --platform, unpacked beside it
#   4. the project's own setup.py, run by the host Python (Cython on the host), compiles a
#      copy of the sources with aarch64-linux-gnu-gcc against the arm64 Python and NumPy
#      headers; OpenMP on (NNFS_FAST_USE_OPENMP=1)
#   5. the kernel tests (ARM64_TESTS) on the arm64 CPython under qemu-aarch64; subprocesses
#      the tests start (sys.executable) go through a wrapper that runs qemu again
#
# usage: tools/check_arm64.sh [extra pytest arguments]
#   PYTHON       host interpreter with Cython, setuptools and numpy (default: python3)
#   ARM64_TESTS  test files (default: the kernel tests below)
#   KEEP=1       keep the work directory
# Needs root for apt-get (or the packages of step 1 installed), and Debian's archive and PyPI.
# Exit status: pytest's.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

PYTHON="${PYTHON:-python3}"
ARM64_TESTS="${ARM64_TESTS:-tests/kernels/test_dense.py tests/kernels/test_activations.py tests/kernels/test_losses.py
             tests/kernels/test_optimizers.py tests/kernels/test_dropout.py tests/kernels/test_dispatch.py}"
PYVER=3.11            # Debian bookworm's CPython
TRIPLET=aarch64-linux-gnu
START=$SECONDS
step() { printf '== check_arm64 [%ss] %s\n' "$((SECONDS - START))" "$*"; }
fail() { printf 'check_arm64: FAIL: %s\n' "$*" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/nnfs-fast-arm64.XXXXXX")
if [ "${KEEP:-0}" = 1 ]; then
    echo "check_arm64: work directory $WORK (kept)"
else
    trap 'rm -rf "$WORK"' EXIT
fi
unset PYTHONPATH NNFS_FAST_ISA NNFS_FAST_DEBUG NNFS_FAST_USE_OPENMP

step "tools: qemu-user, gcc-$TRIPLET"
# libc6-dev-arm64-cross (crt1.o, libc.so for the link) is only recommended by the compiler
bash tools/ensure_packages.sh qemu-user gcc-aarch64-linux-gnu libc6-dev-arm64-cross
command -v qemu-aarch64 > /dev/null || fail "qemu-aarch64 is not on PATH"

step "arm64 root: Debian's python$PYVER and its libraries"
SYS="$WORK/sysroot"
apt_arm64=(apt-get -q -o Dir::State::Lists="$WORK/apt/lists" -o Dir::Cache="$WORK/apt/cache"
           -o Dir::State::status="$WORK/apt/status" -o APT::Architecture=arm64
           -o APT::Architectures::=arm64 -o APT::Sandbox::User=root)
mkdir -p "$WORK/apt/lists/partial" "$WORK/apt/cache/archives/partial" "$WORK/debs" "$SYS"
touch "$WORK/apt/status"
"${apt_arm64[@]}" update > "$WORK/apt.log" 2>&1 || { tail -20 "$WORK/apt.log"; fail "apt-get update (arm64)"; }
(cd "$WORK/debs" && "${apt_arm64[@]}" download \
    "python$PYVER-minimal" "libpython$PYVER-minimal" "libpython$PYVER-stdlib" \
    "libpython$PYVER-dev" libc6 libgcc-s1 libstdc++6 libgomp1 zlib1g libexpat1 libffi8 \
    libssl3 libbz2-1.0 liblzma5 libuuid1) >> "$WORK/apt.log" 2>&1 \
    || { tail -20 "$WORK/apt.log"; fail "apt-get download (arm64)"; }
for deb in "$WORK"/debs/*.deb; do dpkg -x "$deb" "$SYS"; done
# the interpreter's site directories, empty, so that qemu never falls back to the host's
mkdir -p "$SYS/usr/local/lib/python$PYVER/dist-packages" "$SYS/usr/lib/python3/dist-packages"

# python3 for the tests: the arm64 CPython under qemu, with this wrapper as sys.executable so
# that the subprocesses the tests start are emulated too
mkdir -p "$WORK/bin"
cat > "$WORK/bin/python3" <<EOF
#!/bin/sh
exec qemu-aarch64 -L "$SYS" -0 "\$0" "$SYS/usr/bin/python$PYVER" "\$@"
EOF
chmod +x "$WORK/bin/python3"
ARM_PY="$WORK/bin/python3"
export PYTHONHOME="$SYS/usr" PYTHONNOUSERSITE=1
"$ARM_PY" -c 'import platform, sys; assert platform.machine() == "aarch64"; print(sys.version.split()[0], platform.machine())' \
    || fail "the arm64 CPython does not run under qemu-aarch64"
unset PYTHONHOME

step "NumPy's aarch64 wheel and the test dependencies"
NUMPY_VERSION=$("$PYTHON" -c 'import numpy; print(numpy.__version__)')
"$PYTHON" -m pip download --quiet --disable-pip-version-check --only-binary=:all: \
    --platform manylinux_2_28_aarch64 --platform manylinux_2_27_aarch64 \
    --platform manylinux2014_aarch64 --python-version "$PYVER" --implementation cp \
    -d "$WORK/wheels" "numpy==$NUMPY_VERSION" pytest hypothesis threadpoolctl \
    > "$WORK/pip.log" 2>&1 || { tail -20 "$WORK/pip.log"; fail "pip download (aarch64 wheels)"; }
for whl in "$WORK"/wheels/*.whl; do "$PYTHON" -m zipfile -e "$whl" "$WORK/site"; done
NUMPY_INCLUDE="$WORK/site/numpy/_core/include"
[ -f "$NUMPY_INCLUDE/numpy/arrayobject.h" ] || fail "no NumPy headers in the aarch64 wheel"

step "cross build: setup.py build_ext with $TRIPLET-gcc"
# the checkout's tracked and untracked files, not ignored ones (no in-place build, no .c)
mkdir "$WORK/src"
git ls-files -z --cached --others --exclude-standard \
    | tar --null --files-from=- --ignore-failed-read -cf - 2> /dev/null | tar -C "$WORK/src" -xf -
build_start=$SECONDS
# CFLAGS come before the include directories setup.py adds (the host's Python and NumPy):
# the arm64 headers win. -g0: the host Python's CFLAGS carry -g.
(
    cd "$WORK/src"
    CC="$TRIPLET-gcc" LDSHARED="$TRIPLET-gcc -shared" \
        CFLAGS="-I$SYS/usr/include/python$PYVER -I$SYS/usr/include -I$NUMPY_INCLUDE -g0" \
        LDFLAGS="" SETUPTOOLS_EXT_SUFFIX=".cpython-${PYVER/./}-$TRIPLET.so" \
        NNFS_FAST_USE_OPENMP=1 NNFS_FAST_CYTHON_JOBS=2 \
        "$PYTHON" setup.py build_ext --inplace -j 2 > build.log 2>&1
) || { tail -40 "$WORK/src/build.log"; fail "cross build"; }
"$TRIPLET-readelf" -h "$WORK"/src/src/nnfs_fast/kernels/gemm/dense_baseline*.so | grep -q "AArch64" \
    || fail "the extensions were not built for aarch64"
ls "$WORK"/src/src/nnfs_fast/kernels/gemm/dense_avx*.so > /dev/null 2>&1 && fail "x86 levels built for arm64"
echo "   built in $((SECONDS - build_start)) s: $(find "$WORK/src/src/nnfs_fast" -name "*.so" | wc -l) modules"

step "kernel tests on arm64 under qemu-aarch64"
cd "$WORK/src"
export PYTHONHOME="$SYS/usr" PYTHONNOUSERSITE=1 PYTHONPATH="$WORK/src/src:$WORK/site"
"$ARM_PY" -c 'import nnfs_fast; nnfs_fast.show_config()'
test_start=$SECONDS
status=0
# shellcheck disable=SC2086  # ARM64_TESTS is a list of paths
"$ARM_PY" -m pytest -q -p no:cacheprovider -m "not slow" $ARM64_TESTS "$@" || status=$?
echo "   tests ran in $((SECONDS - test_start)) s under emulation; exit status $status"
step "done"
exit "$status"
