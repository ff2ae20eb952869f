#!/usr/bin/env bash
# Installs what ember needs from Debian 12's packages, and nothing when it is
# all there already (idempotent). Run as root, or with sudo available.
set -euo pipefail

packages=(
  # build
  build-essential cmake pkg-config git
  # libraries ember links or includes
  libcpp-httplib-dev nlohmann-json3-dev libseccomp-dev libspdlog-dev
  # io_engine Async of drives (io_uring)
  liburing-dev
  # tests (acpica-tools: iasl, the independent parser of ember's ACPI tables)
  libgtest-dev libgmock-dev acpica-tools
  # the Linux guest (scripts/linux-guest.sh): apt-get download + initramfs
  cpio gzip xz-utils zstd kmod
  # ext4 images for drives (mke2fs -d) and reading them back (debugfs)
  e2fsprogs
  # TAP tests: namespaces and TAPs (ip), the TCP sink beside a nested guest
  iproute2 python3
  # vsock in the Linux guest: socat (VSOCK-LISTEN, VSOCK-CONNECT) is copied
  # into its initramfs with its libraries
  socat
  # peers and backends: QEMU's microvm for the benchmarks, virtiofsd (in
  # qemu-system-common) and DPDK's testpmd for the vhost-user devices
  qemu-system-x86 qemu-system-common dpdk-dev
  # the OpenAPI tests (validator and generated client, from the npm registry)
  nodejs curl
)

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done

sudo=()
if ((EUID != 0)); then
  command -v sudo >/dev/null || { echo "install-deps: run as root to install: ${missing[*]}" >&2; exit 1; }
  sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
apt_updated=0
apt_install() {
  if ((apt_updated == 0)); then
    "${sudo[@]}" apt-get update -q
    apt_updated=1
  fi
  "${sudo[@]}" apt-get install -y -q --no-install-recommends "$@"
}
if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} Debian packages present"
else
  echo "install-deps: installing ${missing[*]}"
  apt_install "${missing[@]}"
fi
# Debian's nodejs ships npm separately; other builds of nodejs include it.
command -v npm >/dev/null || apt_install npm

# Node packages for the OpenAPI tests, pinned by package-lock.json.
openapi_dir="$(dirname "$0")/../tests/openapi"
stamp="$openapi_dir/node_modules/.ember-lock-sha256"
want=$(sha256sum "$openapi_dir/package-lock.json" | cut -d' ' -f1)
if [[ ! -f $stamp || "$(cat "$stamp")" != "$want" ]]; then
  echo "install-deps: npm ci in tests/openapi"
  (cd "$openapi_dir" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" >"$stamp"
else
  echo "install-deps: tests/openapi node packages present"
fi
