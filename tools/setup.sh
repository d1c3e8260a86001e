#!/usr/bin/env bash
# Installs the Debian packages the project needs when they are missing (a fresh machine has no
# package lists, so `apt-get update` runs first). Safe to run again: it does nothing when all is there.
set -euo pipefail
packages=(liblmdb-dev libjemalloc-dev lmdb-utils)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]} > 0)); then
    echo "setup: installing ${missing[*]}" >&2
    SUDO=""
    if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
