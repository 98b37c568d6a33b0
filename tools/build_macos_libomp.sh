#!/usr/bin/env bash
# Build LLVM's OpenMP runtime (libomp) for the macOS wheels, from source, for the wheels'
# deployment target. Run by cibuildwheel's before-all (pyproject.toml [tool.cibuildwheel.macos]).
#
#   tools/build_macos_libomp.sh [PREFIX]      (default PREFIX: /tmp/nnfs_libomp)
#
# Result: PREFIX/include/omp.h and PREFIX/lib/libomp.dylib (install name @rpath/libomp.dylib),
# which the wheel build finds through CPPFLAGS/LDFLAGS and delocate then copies into the wheel.
#
# Why not Homebrew's libomp: a bottle is built for the runner's own macOS (14, 15, ...), so a
# wheel tagged macosx_10_13 / macosx_11_0 would bundle a library that needs a newer macOS than
# its tag promises (delocate rejects that; a user on an older macOS would get a load error).
# Here every slice is built with the deployment target of the wheels that bundle it:
#   x86_64: 10.13, arm64: 11.0  -- keep in step with [[tool.cibuildwheel.overrides]].
#
# NNFS_LIBOMP_ARCHS: the architectures to build (default: this machine's, `uname -m`); several,
# e.g. "x86_64 arm64", give a universal library for cross builds.
set -euo pipefail

LLVM_VERSION=20.1.8
# SHA-256 of the LLVM release tarballs (the same pins as Homebrew's libomp formula).
OPENMP_SHA256=b21c04ee9cbe56e200c5d83823765a443ee6389bbc3f64154c96e94016e6cee9
CMAKE_SHA256=3319203cfd1172bbac50f06fa68e318af84dcb5d65353310c0586354069d6634
RELEASES=https://github.com/llvm/llvm-project/releases/download/llvmorg-$LLVM_VERSION

PREFIX=${1:-/tmp/nnfs_libomp}
read -r -a ARCHS <<< "${NNFS_LIBOMP_ARCHS:-$(uname -m)}"

deployment_target() {
    case "$1" in
        x86_64) echo 10.13 ;;
        arm64) echo 11.0 ;;
        *) echo "build_macos_libomp: unsupported architecture '$1'" >&2; exit 1 ;;
    esac
}

libomp_arch() {  # LLVM's name for the architecture
    case "$1" in x86_64) echo x86_64 ;; arm64) echo aarch64 ;; esac
}

if [[ "$(uname -s)" != Darwin ]]; then
    echo "build_macos_libomp: this script builds the macOS libomp; nothing to do on $(uname -s)" >&2
    exit 1
fi

if [[ -f "$PREFIX/lib/libomp.dylib" ]]; then
    echo "build_macos_libomp: $PREFIX/lib/libomp.dylib exists:"
    lipo -info "$PREFIX/lib/libomp.dylib"
    exit 0
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/libomp.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

fetch() {  # fetch NAME SHA256: download NAME-<version>.src.tar.xz, check it, unpack to $WORK/NAME
    local name=$1 sha=$2 tarball="$WORK/$1.tar.xz"
    curl --fail --location --silent --show-error --retry 3 \
        "$RELEASES/$name-$LLVM_VERSION.src.tar.xz" -o "$tarball"
    echo "$sha  $tarball" | shasum -a 256 --check
    mkdir -p "$WORK/$name"
    tar -xf "$tarball" -C "$WORK/$name" --strip-components=1
}
fetch openmp "$OPENMP_SHA256"
fetch cmake "$CMAKE_SHA256"     # LLVM's shared CMake modules, expected at ../cmake by openmp

CMAKE=$(command -v cmake || true)
if [[ -z "$CMAKE" ]]; then
    python3 -m venv "$WORK/venv"
    "$WORK/venv/bin/pip" install --quiet cmake
    CMAKE="$WORK/venv/bin/cmake"
fi

# The wheel build's flags (cibuildwheel's environment) are not for this library.
unset CFLAGS CXXFLAGS CPPFLAGS LDFLAGS MACOSX_DEPLOYMENT_TARGET

slices=()
for arch in "${ARCHS[@]}"; do
    target=$(deployment_target "$arch")
    echo "build_macos_libomp: libomp $LLVM_VERSION for $arch, macOS >= $target"
    "$CMAKE" -S "$WORK/openmp" -B "$WORK/build-$arch" \
        -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_INSTALL_PREFIX="$WORK/install-$arch" \
        -DCMAKE_OSX_ARCHITECTURES="$arch" \
        -DCMAKE_OSX_DEPLOYMENT_TARGET="$target" \
        -DLIBOMP_ARCH="$(libomp_arch "$arch")" \
        -DLIBOMP_ENABLE_SHARED=ON \
        -DLIBOMP_INSTALL_ALIASES=OFF \
        -DOPENMP_ENABLE_LIBOMPTARGET=OFF
    "$CMAKE" --build "$WORK/build-$arch" --parallel "$(sysctl -n hw.ncpu)"
    "$CMAKE" --install "$WORK/build-$arch"
    slices+=("$WORK/install-$arch/lib/libomp.dylib")
done

mkdir -p "$PREFIX/lib" "$PREFIX/include"
cp "$WORK/install-${ARCHS[0]}/include/"omp*.h "$PREFIX/include/"
if (( ${#slices[@]} == 1 )); then
    cp "${slices[0]}" "$PREFIX/lib/libomp.dylib"
else
    lipo -create "${slices[@]}" -output "$PREFIX/lib/libomp.dylib"
fi

# Proof: each slice's minimum macOS (LC_BUILD_VERSION minos, or LC_VERSION_MIN_MACOSX version
# below 10.14) is the wheels' deployment target.
for arch in "${ARCHS[@]}"; do
    minos=$(otool -arch "$arch" -l "$PREFIX/lib/libomp.dylib" | awk '
        /cmd LC_BUILD_VERSION|cmd LC_VERSION_MIN_MACOSX/ { found = 1 }
        found && ($1 == "minos" || $1 == "version") { print $2; exit }')
    if [[ "$minos" != "$(deployment_target "$arch")" ]]; then
        echo "build_macos_libomp: $arch slice targets macOS '$minos'," \
             "expected $(deployment_target "$arch")" >&2
        exit 1
    fi
    echo "build_macos_libomp: $arch slice: minimum macOS $minos"
done
echo "build_macos_libomp: installed $PREFIX/lib/libomp.dylib ($(otool -D "$PREFIX/lib/libomp.dylib" | tail -1))"
