#!/usr/bin/env bash
# Install the Debian packages named on the command line that are not installed yet
# (tools/check_arm64.sh, tools/check_clang.sh). Needs root for apt-get when one is missing;
# waits for another apt/dpkg run to finish rather than failing on its lock.
#
# usage: tools/ensure_packages.sh PACKAGE...
set -euo pipefail

missing=()
for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2> /dev/null | grep -q "install ok installed" \
        || missing+=("$pkg")
done
[ "${#missing[@]}" -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ]; then
    echo "ensure_packages: needs ${missing[*]}: run apt-get install ${missing[*]} as root" >&2
    exit 2
fi
echo "ensure_packages: apt-get install ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt=(apt-get -q -o DPkg::Lock::Timeout=900)
# an install from the existing package lists first; update them when that fails (a fresh
# machine has none, an old one may name versions the archive no longer has)
"${apt[@]}" install -y --no-install-recommends "${missing[@]}" > /dev/null 2>&1 \
    || { "${apt[@]}" update > /dev/null \
         && "${apt[@]}" install -y --no-install-recommends "${missing[@]}" > /dev/null; }
