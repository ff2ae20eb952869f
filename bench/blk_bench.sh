#!/usr/bin/env bash
# Drive benchmark: the test guest's `blkbench` (2000 random 4 KiB reads,
# then 16 MiB in 1 MiB reads, one request in flight) on a 64 MiB raw image,
# through
#   ember virtio-blk, io_engine Sync and Async;
#   QEMU microvm's virtio-blk-device (-drive file=IMG,format=raw);
#   vhost-user-blk on one qemu-storage-daemon, under ember and under QEMU.
# Prints each side's numbers and the ratios (above 1: ember is faster).
# Times come from the guest's TSC. The image is in the page cache for all.
#
#   bench/blk_bench.sh [--runs N]      (expects the tree built in ${BUILD_DIR:-build})
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/vhost_user_bench_lib.sh"

qemu_cpu=$(qemu_kvm_cpu qemu-system-x86_64)  # once, not in every run's subshell
image=$work/disk.img
head -c $((64 << 20)) /dev/urandom >"$image"
socket=$work/blk.sock

run_ember_drive() {  # ENGINE | vhost-user
  local drive
  if [[ $1 == vhost-user ]]; then
    drive="{\"drive_id\": \"bench\", \"socket\": \"$socket\", \"is_root_device\": false}"
  else
    drive="{\"drive_id\": \"bench\", \"path_on_host\": \"$image\", \"is_root_device\": false, \"io_engine\": \"$1\"}"
  fi
  run_ember blkbench "\"drives\": [$drive]"
}
run_qemu_drive() {  # file | vhost-user
  if [[ $1 == vhost-user ]]; then
    run_qemu blkbench -chardev socket,id=c0,path="$socket" -device vhost-user-blk,chardev=c0
  else
    run_qemu blkbench -drive file="$image",if=none,id=d0,format=raw -device virtio-blk-device,drive=d0
  fi
}
start_daemon() {
  start_backend "$socket" qemu-storage-daemon \
    --blockdev driver=file,node-name=f,filename="$image" --blockdev driver=raw,node-name=disk0,file=f \
    --export type=vhost-user-blk,id=e0,node-name=disk0,addr.type=unix,addr.path="$socket",writable=on
}

# measure NAME VMM KIND: medians of $runs runs into rand_NAME, seq_NAME
# (cycles); no subshell, so a failure still stops the daemon.
measure() {
  local name=$1 vmm=$2 kind=$3 rands=() seqs=() out rand seq
  for _ in $(seq "$runs"); do
    [[ $kind == vhost-user ]] && start_daemon
    out=$("run_${vmm}_drive" "$kind")
    [[ $kind == vhost-user ]] && stop_backend
    rand=$(sed -n 's/.*blkbench randread n=[0-9]* cycles=\([0-9]*\).*/\1/p' <<<"$out")
    seq=$(sed -n 's/.*blkbench seqread bytes=[0-9]* cycles=\([0-9]*\).*/\1/p' <<<"$out")
    if [[ -z $rand || -z $seq ]] || ! grep -q 'blkbench ok' <<<"$out"; then
      echo "blk_bench: $name run failed:" >&2
      echo "$out" >&2
      exit 1
    fi
    rands+=("$rand") seqs+=("$seq")
  done
  printf -v "rand_$name" '%s' "$(median "${rands[@]}")"
  printf -v "seq_$name" '%s' "$(median "${seqs[@]}")"
}

measure ember_sync ember Sync
measure ember_async ember Async
measure qemu_file qemu file
measure ember_vu ember vhost-user
measure qemu_vu qemu vhost-user

report() {  # LABEL EMBER_NAME QEMU_NAME
  local er=rand_$2 qr=rand_$3 es=seq_$2 qs=seq_$3
  awk -v khz="$tsc_khz" -v l="$1" -v er="${!er}" -v qr="${!qr}" -v es="${!es}" -v qs="${!qs}" 'BEGIN {
    printf "%-44s %10.0f %10.0f %10.2fx\n", l " 4 KiB random read (IOPS)", 2000 / (er / khz / 1000), 2000 / (qr / khz / 1000), qr / er
    printf "%-44s %10.0f %10.0f %10.2fx\n", l " 1 MiB sequential read (MB/s)", 16777.216 / (es / khz), 16777.216 / (qs / khz), qs / es
  }'
}
printf '%-44s      ember       qemu qemu/ember\n' "median of $runs runs (guest TSC at $((tsc_khz / 1000)) MHz)"
report "file, Sync:" ember_sync qemu_file
report "file, Async:" ember_async qemu_file
report "vhost-user-blk:" ember_vu qemu_vu
