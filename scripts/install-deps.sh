#!/usr/bin/env bash
# Installs what ember needs from Debian 12's packages, and nothing when it is
# all there already (idempotent). Run as root, or with sudo available.
set -euo pipefail

packages=(
  # build
  build-essential cmake pkg-config git
  # libraries ember links or includes
  libcpp-httplib-dev nlohmann-json3-dev libseccomp-dev libspdlog-dev
  # tests
  libgtest-dev libgmock-dev
  # the Linux guest (scripts/linux-guest.sh): apt-get download + initramfs
  cpio gzip xz-utils zstd kmod
  # peers: QEMU's microvm for the side-by-side benchmark
  qemu-system-x86 qemu-system-common
)

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo=()
if ((EUID != 0)); then
  command -v sudo >/dev/null || { echo "install-deps: run as root to install: ${missing[*]}" >&2; exit 1; }
  sudo=(sudo)
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q
"${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
