#!/usr/bin/env bash
# nnfs_fast built with clang passes the test suite (docs/INSTALL.md; .ci/run calls it).
#
# Copies the checkout (its tracked and untracked files) to a temporary directory, so that the
# checkout's own build is left alone; builds every extension there with clang and LLVM's
# OpenMP (apt-get installs clang and libomp-dev when missing, tools/ensure_packages.sh);
# checks that show_config names clang; then runs the suite against that build (-m "not slow").
# When PYTHON also imports an nnfs_fast built by another compiler (.ci/run: the gcc build it
# installed), a short training run (L2 regularization, dropout, softmax cross-entropy, Adam)
# must end with the same bits in both builds on every instruction-set level (docs/INSTALL.md,
# "Floating point").
#
# usage: tools/check_clang.sh [extra pytest arguments]
#   PYTHON  interpreter with the build and test dependencies (default: python3)
#   CLANG   the compiler (default: clang)
#   REFERENCE_BUILD  a source directory whose nnfs_fast build to compare with (e.g. src, an
#           in-place gcc build); default: the nnfs_fast installed for PYTHON, if any
# Exit status: pytest's.
set -euo pipefail
REFERENCE_BUILD="${REFERENCE_BUILD:+$(cd "$REFERENCE_BUILD" && pwd)}"   # before the cd below
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
CLANG="${CLANG:-clang}"
START=$SECONDS
step() { printf '== check_clang [%ss] %s\n' "$((SECONDS - START))" "$*"; }
fail() { printf 'check_clang: FAIL: %s\n' "$*" >&2; exit 1; }
unset PYTHONPATH NNFS_FAST_ISA NNFS_FAST_DEBUG NNFS_FAST_USE_OPENMP

step "tools: clang, libomp-dev"
if [ "$CLANG" = clang ]; then
    bash tools/ensure_packages.sh clang libomp-dev
fi
command -v "$CLANG" > /dev/null || fail "$CLANG is not on PATH"

work="$(mktemp -d "${TMPDIR:-/tmp}/nnfs-fast-clang.XXXXXX")"
trap 'rm -rf "$work"' EXIT
# the checkout's tracked and untracked files, not ignored ones (no in-place build, no .c)
git ls-files -z --cached --others --exclude-standard \
    | tar --null --files-from=- --ignore-failed-read -cf - 2> /dev/null | tar -C "$work" -xf -

step "build with $CLANG in $work (OpenMP required)"
(
    cd "$work"
    CC="$CLANG" LDSHARED="$CLANG -shared" NNFS_FAST_USE_OPENMP=1 NNFS_FAST_CYTHON_JOBS=2 \
        "$PYTHON" setup.py build_ext --inplace -j 2 > build.log 2>&1
) || { tail -40 "$work/build.log"; fail "clang build"; }

cd "$work"
export PYTHONPATH="$work/src"
"$PYTHON" - <<'EOF' || fail "the build in $work is not clang's"
import nnfs_fast
from nnfs_fast.runtime.config import config

nnfs_fast.show_config()
cfg = config()
assert nnfs_fast.__file__.startswith(__import__("os").environ["PYTHONPATH"]), nnfs_fast.__file__
assert cfg["compiler"].startswith("clang "), cfg["compiler"]
assert cfg["openmp"], "built without OpenMP"
EOF

# the fingerprint of a short training run on one level (NNFS_FAST_ISA) of one build
cat > "$work/fingerprint.py" <<'EOF'
import hashlib
import numpy as np
import nnfs_fast
from nnfs_fast import (Activation_ReLU, Activation_Softmax_Loss_CategoricalCrossentropy,
                       Layer_Dense, Layer_Dropout, Optimizer_Adam)
from nnfs_fast.datasets import spiral_data

nnfs_fast.init()
X, y = spiral_data(100, 3)
dense1 = Layer_Dense(2, 64, weight_regularizer_l2=5e-4, bias_regularizer_l2=5e-4)
relu, dropout, dense2 = Activation_ReLU(), Layer_Dropout(0.1), Layer_Dense(64, 3)
loss_activation = Activation_Softmax_Loss_CategoricalCrossentropy()
optimizer = Optimizer_Adam(learning_rate=0.05, decay=5e-5)
for epoch in range(30):
    dense1.forward(X)
    relu.forward(dense1.output)
    dropout.forward(relu.output)
    dense2.forward(dropout.output)
    loss = loss_activation.forward(dense2.output, y)
    loss_activation.backward(loss_activation.output, y)
    dense2.backward(loss_activation.dinputs)
    dropout.backward(dense2.dinputs)
    relu.backward(dropout.dinputs)
    dense1.backward(relu.dinputs)
    optimizer.pre_update_params()
    optimizer.update_params(dense1)
    optimizer.update_params(dense2)
    optimizer.post_update_params()
digest = hashlib.sha256()
for a in (dense1.weights, dense1.biases, dense2.weights, dense2.biases, np.float32(loss)):
    digest.update(np.ascontiguousarray(a).tobytes())
print(digest.hexdigest()[:16])
EOF
if [ -n "${REFERENCE_BUILD:-}" ]; then
    reference=(env PYTHONPATH="$REFERENCE_BUILD")
else
    reference=(env -u PYTHONPATH)
fi
if other=$(cd / && "${reference[@]}" "$PYTHON" -c 'from nnfs_fast.runtime.config import config
print(config()["compiler"])' 2> /dev/null) && [[ "$other" != clang* ]]; then
    step "the same bits as the installed build ($other), on every level"
    for level in $("$PYTHON" -c 'from nnfs_fast import _dispatch; print(*_dispatch.usable_levels())'); do
        mine=$(NNFS_FAST_ISA=$level "$PYTHON" fingerprint.py)
        theirs=$(cd / && NNFS_FAST_ISA=$level "${reference[@]}" "$PYTHON" "$work/fingerprint.py")
        echo "   $level: clang $mine, $other $theirs"
        [ "$mine" = "$theirs" ] || fail "level $level: the clang build trains to other bits than $other"
    done
else
    echo "   (no installed nnfs_fast built by another compiler: fingerprint comparison skipped)"
fi

step "test suite against the clang build (-m 'not slow')"
status=0
"$PYTHON" -m pytest -q -p no:cacheprovider -m "not slow" tests "$@" || status=$?
step "exit status $status"
exit "$status"
