#!/usr/bin/env bash
# AddressSanitizer check of the compiled kernels (docs/GUARANTEES.md).
#
# Copies the package sources and tests to a temporary directory, builds every extension there
# with gcc -fsanitize=address (the checkout's own build is left alone), then runs the kernel
# tests against that build with libasan preloaded into Python. Any out-of-bounds read or
# write, use after free or double free in a kernel aborts the run with ASan's report.
# Leak detection is off: CPython keeps objects alive until exit by design.
#
# usage: tools/asan_check.sh [extra pytest arguments]
#   PYTHON  interpreter with the build and test dependencies (default: python3)
#   ASAN_TESTS  test files to run (default: the kernel tests, the training tests and the
#               races below: threads rewriting a kernel's label array while it runs)
# Exit status: pytest's (0: clean), 2 when gcc's libasan is not available.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
CC="${CC:-gcc}"
ASAN_TESTS="${ASAN_TESTS:-tests/kernels/test_dense.py tests/kernels/test_activations.py tests/kernels/test_losses.py
            tests/kernels/test_optimizers.py tests/kernels/test_dropout.py tests/kernels/test_binomial.py
            tests/api/test_layer_dense_api.py tests/api/test_model.py tests/guarantees/test_numerics.py
            tests/guarantees/test_validation.py tests/guarantees/test_races.py tests/api/test_plan.py}"

libasan="$("$CC" -print-file-name=libasan.so 2>/dev/null || true)"
if [ -z "$libasan" ] || [ ! -e "$libasan" ]; then
    echo "asan_check: $CC has no libasan.so (install gcc with AddressSanitizer)" >&2
    exit 2
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/nnfs-fast-asan.XXXXXX")"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/src"
cp setup.py pyproject.toml "$work/"
cp -r tests "$work/tests"
cp -r src/nnfs_fast "$work/src/nnfs_fast"
find "$work/src/nnfs_fast" \( -name '*.so' -o -name '*.c' -o -name __pycache__ \) -prune \
    -exec rm -rf {} +   # rebuilt from the .pyx
rm -rf "$work"/tests/__pycache__

echo "== asan_check: building with -fsanitize=address in $work"
start=$SECONDS
(
    cd "$work"
    CC="$CC" CFLAGS="-fsanitize=address -fno-omit-frame-pointer -g" \
        LDFLAGS="-fsanitize=address" NNFS_FAST_CYTHON_JOBS=2 \
        "$PYTHON" setup.py build_ext --inplace -j 2 > build.log 2>&1
) || { tail -40 "$work/build.log"; echo "asan_check: build failed" >&2; exit 1; }
if ! grep -q __asan_report "$work"/src/nnfs_fast/kernels/gemm/dense_baseline*.so; then
    echo "asan_check: the extensions were built without AddressSanitizer" >&2
    exit 1
fi
echo "   built in $((SECONDS - start)) s"

export LD_PRELOAD="$libasan"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:allocator_may_return_null=1:${ASAN_OPTIONS:-}"
export PYTHONMALLOC=malloc PYTHONPATH="$work/src"

# canary: an overflow must be reported, or the run below would prove nothing
if ("$PYTHON" -c 'import ctypes; libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
ctypes.string_at(libc.malloc(8), 64)') > /dev/null 2>&1; then
    echo "asan_check: AddressSanitizer is not active (an 8-byte overflow went unreported)" >&2
    exit 1
fi
echo "   canary: an 8-byte heap overflow is reported"

echo "== asan_check: $ASAN_TESTS"
start=$SECONDS
cd "$work"
status=0
# --capture=sys: ASan writes its report to file descriptor 2 and aborts; under pytest's default
# fd capture that report went to a temporary file that the abort left unprinted
# shellcheck disable=SC2086  # ASAN_TESTS is a list of paths
"$PYTHON" -m pytest -x -q -p no:cacheprovider --capture=sys $ASAN_TESTS "$@" || status=$?
echo "   tests ran in $((SECONDS - start)) s; exit status $status"
exit "$status"
