#!/usr/bin/env bash
# TAP network benchmark: the test guest's `nettapbench` (1000 pings one at
# a time to the host kernel on the other side of a TAP, then a ~500 ms
# burst of pings as fast as the ring takes) under ember (host_dev_name)
# and under QEMU's microvm (-netdev tap,vhost=off -device virtio-net-device)
# on the same TAP, in a network namespace of its own. Prints each side's
# numbers and the ratios (above 1: ember is faster). Needs root.
#
#   bench/tap_bench.sh [--runs N]      (expects the tree built in ${BUILD_DIR:-build})
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/vhost_user_bench_lib.sh"

qemu_cpu=$(qemu_kvm_cpu qemu-system-x86_64)
ns=ember-tapbench-$$
ip netns add "$ns"
backend_cleanup="true"
trap 'ip netns del "$ns" 2>/dev/null || true; rm -rf "$work"' EXIT
ip -n "$ns" tuntap add tap0 mode tap
ip -n "$ns" addr add 10.77.0.1/24 dev tap0
ip -n "$ns" link set tap0 up

run_ember_tap() {
  run_ember nettapbench '"network-interfaces": [{"iface_id": "eth0", "guest_mac": "06:00:0a:4d:00:02", "host_dev_name": "tap0"}]'
}
run_qemu_tap() {
  run_qemu nettapbench -netdev tap,id=n0,ifname=tap0,script=no,downscript=no,vhost=off \
    -device virtio-net-device,netdev=n0,mac=06:00:0a:4d:00:02
}

measure() {  # VMM: medians into rtt_median (cycles per ping), fps_median (replies/s)
  local vmm=$1 rtts=() rates=() out rtt burst
  for _ in $(seq "$runs"); do
    out=$(ip netns exec "$ns" bash -c "$(declare -f run_ember run_qemu run_ember_tap run_qemu_tap); \
      ember=$ember guest=$guest work=$work qemu_cpu=$qemu_cpu; run_${vmm}_tap")
    rtt=$(sed -n 's/.*nettapbench rtt n=\([0-9]*\) cycles=\([0-9]*\).*/\2 \1/p' <<<"$out")
    burst=$(sed -n 's/.*nettapbench burst sent=[0-9]* received=\([0-9]*\) cycles=\([0-9]*\).*/\1 \2/p' <<<"$out")
    if [[ -z $rtt || -z $burst ]] || ! grep -q 'nettapbench ok' <<<"$out"; then
      echo "tap_bench: $vmm run failed:" >&2
      echo "$out" >&2
      exit 1
    fi
    rtts+=("$(awk '{printf "%.0f", $1 / $2}' <<<"$rtt")")
    rates+=("$(awk -v khz="$tsc_khz" '{printf "%.0f", $1 / ($2 / khz / 1000)}' <<<"$burst")")
  done
  rtt_median=$(median "${rtts[@]}")
  fps_median=$(median "${rates[@]}")
}

measure ember
ember_rtt=$rtt_median ember_fps=$fps_median
measure qemu
awk -v khz="$tsc_khz" -v er="$ember_rtt" -v qr="$rtt_median" -v ef="$ember_fps" -v qf="$fps_median" -v n="$runs" 'BEGIN {
  printf "median of %d runs (guest TSC at %.0f MHz)   ember       qemu   qemu/ember\n", n, khz / 1000
  printf "ping round trip (us)              %10.1f %10.1f %10.2fx\n", er / khz * 1000, qr / khz * 1000, qr / er
  printf "ping replies/s in a burst         %10.0f %10.0f %10.2fx\n", ef, qf, ef / qf
}'
