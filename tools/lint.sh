#!/usr/bin/env bash
# Lint the Python and Cython sources with the settings in pyproject.toml ([tool.ruff],
# [tool.cython-lint]): ruff over src, tests, benchmarks, examples and tools, cython-lint
# (with pycodestyle) over every .pyx/.pxd/.pxi under src. .pre-commit-config.yaml runs the same.
#
# usage: tools/lint.sh [extra ruff check arguments, e.g. --fix or --statistics]
#   PYTHON  interpreter whose environment holds the tools (default: python3); when ruff or
#           cython-lint is missing there, it is pip-installed into that environment first, at
#           the versions .pre-commit-config.yaml pins (tools already there are used as they are)
# Exit status: 0 when both tools find nothing, 1 otherwise (both always run).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"

# cython-lint and the pycodestyle it runs are commands: this environment's scripts come first.
PATH="$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_path("scripts"))'):$PATH"
export PATH
if ! "$PYTHON" -m ruff --version >/dev/null 2>&1 || ! command -v cython-lint >/dev/null \
        || ! command -v pycodestyle >/dev/null; then
    echo "lint: installing ruff and cython-lint into $("$PYTHON" -c 'import sys; print(sys.prefix)')"
    pinned() { sed -n "\\#repo: .*/$1\$#{n;s/^ *rev: *v//p;}" .pre-commit-config.yaml; }
    "$PYTHON" -m pip install --quiet "ruff==$(pinned ruff-pre-commit)" \
        "cython-lint==$(pinned cython-lint)"
fi

status=0
echo "lint: ruff $("$PYTHON" -m ruff --version | cut -d' ' -f2)"
"$PYTHON" -m ruff check "$@" src tests benchmarks examples tools || status=1

mapfile -t cython_files < <(find src -name '*.pyx' -o -name '*.pxd' -o -name '*.pxi' | sort)
echo "lint: cython-lint $(cython-lint --version) on ${#cython_files[@]} files"
cython-lint "${cython_files[@]}" || status=1

exit "$status"
