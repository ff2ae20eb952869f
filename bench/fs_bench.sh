#!/usr/bin/env bash
# virtio-fs benchmark: the test guest's `fsbench` (2000 GETATTR round trips,
# then reading a 4 MiB file in 128 KiB requests) through real virtiofsd,
# under ember and under QEMU's microvm with vhost-user-fs-device, on the
# same guest and share (a fresh virtiofsd per run: it serves one frontend).
# Prints each side's numbers and qemu/ember ratios (above 1: ember is
# faster). Times come from the guest's TSC.
#
#   bench/fs_bench.sh [--runs N]       (expects the tree built in ${BUILD_DIR:-build})
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/vhost_user_bench_lib.sh"

mkdir -p "$work/share"
head -c 4194304 /dev/urandom >"$work/share/bench.bin"
socket=$work/vfs.sock

run_ember_fs() { run_ember fsbench "\"fs\": [{\"fs_id\": \"bench\", \"tag\": \"bench\", \"socket\": \"$socket\"}]"; }
run_qemu_fs() {
  run_qemu fsbench -chardev socket,id=c0,path="$socket" \
    -device vhost-user-fs-device,queue-size=1024,chardev=c0,tag=bench
}

# Medians over runs, in $rtt_median (cycles per GETATTR) and $read_median
# (cycles for 4 MiB); no subshell, so a failure still stops virtiofsd.
measure() {
  local vmm=$1 rtts=() reads=()
  for _ in $(seq "$runs"); do
    start_backend "$socket" /usr/lib/qemu/virtiofsd --socket-path="$socket" \
      -o source="$work/share" -o cache=auto
    local out getattr read
    out=$("run_${vmm}_fs")
    stop_backend
    getattr=$(sed -n 's/.*fsbench getattr n=\([0-9]*\) cycles=\([0-9]*\).*/\2 \1/p' <<<"$out")
    read=$(sed -n 's/.*fsbench read bytes=[0-9]* cycles=\([0-9]*\).*/\1/p' <<<"$out")
    [[ -n $getattr && -n $read ]] || { echo "fs_bench: $vmm run failed:" >&2; echo "$out" >&2; exit 1; }
    rtts+=("$(awk '{printf "%.0f", $1 / $2}' <<<"$getattr")")
    reads+=("$read")
  done
  rtt_median=$(median "${rtts[@]}")
  read_median=$(median "${reads[@]}")
}

measure ember
ember_rtt=$rtt_median ember_read=$read_median
measure qemu
qemu_rtt=$rtt_median qemu_read=$read_median
awk -v khz="$tsc_khz" -v er="$ember_rtt" -v qr="$qemu_rtt" -v ed="$ember_read" -v qd="$qemu_read" -v n="$runs" 'BEGIN {
  printf "median of %d runs (guest TSC at %.0f MHz)   ember       qemu   qemu/ember\n", n, khz / 1000
  printf "GETATTR round trip (us)           %10.1f %10.1f %10.2fx\n", er / khz * 1000, qr / khz * 1000, qr / er
  printf "read 4 MiB (MB/s)                 %10.0f %10.0f %10.2fx\n", 4194.304 / (ed / khz), 4194.304 / (qd / khz), qd / ed
}'
