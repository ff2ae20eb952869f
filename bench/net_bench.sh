#!/usr/bin/env bash
# virtio-net benchmark: the test guest's `netbench` (1000 round trips of one
# 64-byte frame, then ~0.5 s of keeping the transmit ring full of 64-byte
# frames) against DPDK testpmd in macswap mode over vhost-user, under ember
# and under QEMU's microvm with -netdev vhost-user and virtio-net-device, on
# the same guest and testpmd command line (a fresh testpmd per run). Prints
# each side's numbers and qemu/ember ratios (above 1: ember is better).
# Times come from the guest's TSC.
#
#   bench/net_bench.sh [--runs N]      (expects the tree built in ${BUILD_DIR:-build})
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/vhost_user_bench_lib.sh"

testpmd=${TESTPMD:-dpdk-testpmd}
socket=$work/net.sock
run_id=0

start_testpmd() {
  run_id=$((run_id + 1))
  local prefix=net_bench_$$_$run_id
  backend_cleanup="rm -rf /var/run/dpdk/$prefix"
  start_backend "$socket" "$testpmd" --no-huge -m 256 --no-pci --lcores '(0,1)@0' \
    --file-prefix="$prefix" --vdev "net_vhost0,iface=$socket,queues=1" -- \
    --forward-mode=macswap --auto-start --stats-period 60 --total-num-mbufs=8192
}

run_ember_net() {
  run_ember netbench "\"network-interfaces\": [{\"iface_id\": \"eth0\", \"guest_mac\": \"52:54:00:00:00:02\", \"socket\": \"$socket\"}]"
}
run_qemu_net() {
  run_qemu netbench -chardev socket,id=c0,path="$socket" -netdev vhost-user,id=n0,chardev=c0 \
    -device virtio-net-device,netdev=n0,mac=52:54:00:00:00:02
}

# Median over runs of: cycles per round trip, received frames per 10^9 cycles,
# in $rtt_median and $rate_median (no subshell: testpmd's group is stopped on exit).
measure() {
  local vmm=$1 rtts=() rates=()
  for _ in $(seq "$runs"); do
    start_testpmd
    local out
    out=$("run_${vmm}_net") || true
    stop_backend
    local rtt burst
    rtt=$(sed -n 's/.*netbench rtt n=\([0-9]*\) cycles=\([0-9]*\).*/\2 \1/p' <<<"$out")
    burst=$(sed -n 's/.*netbench burst sent=[0-9]* received=\([0-9]*\) cycles=\([0-9]*\).*/\1 \2/p' <<<"$out")
    if [[ -z $rtt || -z $burst || $out != *"netbench ok"* ]]; then
      echo "net_bench: $vmm run failed:" >&2; echo "$out" >&2; exit 1
    fi
    echo "$vmm: $(grep -o 'netbench burst.*' <<<"$out")" >&2
    rtts+=("$(awk '{printf "%.0f", $1 / $2}' <<<"$rtt")")
    rates+=("$(awk '{printf "%.0f", $1 / $2 * 1e9}' <<<"$burst")")
  done
  rtt_median=$(median "${rtts[@]}")
  rate_median=$(median "${rates[@]}")
}

measure ember
ember_rtt=$rtt_median ember_rate=$rate_median
measure qemu
qemu_rtt=$rtt_median qemu_rate=$rate_median
awk -v khz="$tsc_khz" -v er="$ember_rtt" -v qr="$qemu_rtt" -v ef="$ember_rate" -v qf="$qemu_rate" -v n="$runs" 'BEGIN {
  printf "median of %d runs (guest TSC at %.0f MHz)   ember       qemu   qemu/ember\n", n, khz / 1000
  printf "64-byte frame round trip (us)     %10.1f %10.1f %10.2fx\n", er / khz * 1000, qr / khz * 1000, qr / er
  printf "64-byte frames/s (echoed)         %10.0f %10.0f %10.2fx\n", ef / 1e9 * khz * 1000, qf / 1e9 * khz * 1000, ef / qf
}'
