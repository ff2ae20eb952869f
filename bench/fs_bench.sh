#!/usr/bin/env bash
# virtio-fs benchmark: the test guest's `fsbench` (2000 GETATTR round trips,
# then reading a 4 MiB file in 128 KiB requests) through real virtiofsd,
# under ember and under QEMU's microvm with vhost-user-fs-device, on the
# same guest and share. Prints each side's numbers and qemu/ember ratios
# (above 1: ember is faster). Times come from the guest's TSC.
#
#   bench/fs_bench.sh [--runs N]       (expects the tree built in ${BUILD_DIR:-build})
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BUILD_DIR:-$root/build}
runs=3
[[ ${1:-} == --runs ]] && runs=${2:?--runs needs a value}
ember=${EMBER:-$build/ember}
guest=${GUEST:-$build/tests/guest/guest-pvh.elf}
virtiofsd=/usr/lib/qemu/virtiofsd
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

mkdir -p "$work/share"
head -c 4194304 /dev/urandom >"$work/share/bench.bin"
tsc_khz=$(awk '/^cpu MHz/ {printf "%d", $4 * 1000; exit}' /proc/cpuinfo)

start_virtiofsd() {
  rm -f "$work/vfs.sock"
  "$virtiofsd" --socket-path="$work/vfs.sock" -o source="$work/share" -o cache=auto \
    >"$work/virtiofsd.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 500); do [[ -S $work/vfs.sock ]] && return; sleep 0.01; done
  echo "fs_bench: virtiofsd did not start" >&2; exit 1
}

run_ember() {
  cat >"$work/vm.json" <<JSON
{"boot-source": {"kernel_image_path": "$guest", "boot_args": "console=ttyS0 ember.tests=fsbench"},
 "machine-config": {"vcpu_count": 1, "mem_size_mib": 128},
 "fs": [{"fs_id": "bench", "tag": "bench", "socket": "$work/vfs.sock"}]}
JSON
  timeout 60 "$ember" --no-api --config-file "$work/vm.json" --level Warning
}

run_qemu() {
  timeout 60 qemu-system-x86_64 \
    -M microvm,x-option-roms=off,pit=off,pic=off,rtc=off,acpi=off,memory-backend=mem \
    -enable-kvm -cpu host -m 128 -object memory-backend-memfd,id=mem,size=128M,share=on \
    -nodefaults -no-user-config -nographic -serial stdio -global virtio-mmio.force-legacy=false \
    -chardev socket,id=c0,path="$work/vfs.sock" \
    -device vhost-user-fs-device,queue-size=1024,chardev=c0,tag=bench \
    -kernel "$guest" -device isa-debug-exit,iobase=0xf4 -append 'console=ttyS0 ember.tests=fsbench' || true
}

# Median over runs of: getattr cycles per round trip, read cycles.
measure() {
  local vmm=$1 rtts=() reads=()
  for _ in $(seq "$runs"); do
    start_virtiofsd
    local out
    out=$("run_$vmm")
    local getattr read
    getattr=$(sed -n 's/.*fsbench getattr n=\([0-9]*\) cycles=\([0-9]*\).*/\2 \1/p' <<<"$out")
    read=$(sed -n 's/.*fsbench read bytes=[0-9]* cycles=\([0-9]*\).*/\1/p' <<<"$out")
    [[ -n $getattr && -n $read ]] || { echo "fs_bench: $vmm run failed:" >&2; echo "$out" >&2; exit 1; }
    rtts+=("$(awk '{printf "%.0f", $1 / $2}' <<<"$getattr")")
    reads+=("$read")
  done
  median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
  echo "$(median "${rtts[@]}") $(median "${reads[@]}")"
}

read -r ember_rtt ember_read < <(measure ember)
read -r qemu_rtt qemu_read < <(measure qemu)
awk -v khz="$tsc_khz" -v er="$ember_rtt" -v qr="$qemu_rtt" -v ed="$ember_read" -v qd="$qemu_read" -v n="$runs" 'BEGIN {
  printf "median of %d runs (guest TSC at %.0f MHz)   ember       qemu   qemu/ember\n", n, khz / 1000
  printf "GETATTR round trip (us)           %10.1f %10.1f %10.2fx\n", er / khz * 1000, qr / khz * 1000, qr / er
  printf "read 4 MiB (MB/s)                 %10.0f %10.0f %10.2fx\n", 4194.304 / (ed / khz), 4194.304 / (qd / khz), qd / ed
}'
