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

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BUILD_DIR:-$root/build}
runs=3
[[ ${1:-} == --runs ]] && runs=${2:?--runs needs a value}
ember=${EMBER:-$build/ember}
guest=${GUEST:-$build/tests/guest/guest-pvh.elf}
testpmd=${TESTPMD:-dpdk-testpmd}
work=$(mktemp -d)
pmd_pgid=
pmd_prefix=

stop_testpmd() {
  [[ -n $pmd_pgid ]] || return 0
  kill -INT -- "-$pmd_pgid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 -- "-$pmd_pgid" 2>/dev/null || break; sleep 0.05; done
  kill -9 -- "-$pmd_pgid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 -- "-$pmd_pgid" 2>/dev/null || break; sleep 0.05; done
  rm -rf "/var/run/dpdk/$pmd_prefix"
  pmd_pgid=
}
cleanup() { stop_testpmd; rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

tsc_khz=$(awk '/^cpu MHz/ {printf "%d", $4 * 1000; exit}' /proc/cpuinfo)
run_id=0

start_testpmd() {
  run_id=$((run_id + 1))
  pmd_prefix=net_bench_$$_$run_id
  rm -f "$work/net.sock"
  # setsid: testpmd leads its own process group (its pid is the group's id).
  setsid "$testpmd" --no-huge -m 256 --no-pci --lcores '(0,1)@0' --file-prefix="$pmd_prefix" \
    --vdev "net_vhost0,iface=$work/net.sock,queues=1" -- --forward-mode=macswap \
    --auto-start --stats-period 60 --total-num-mbufs=8192 >"$work/testpmd.log" 2>&1 &
  pmd_pgid=$!
  for _ in $(seq 1000); do [[ -S $work/net.sock ]] && return; sleep 0.01; done
  echo "net_bench: testpmd did not start:" >&2; cat "$work/testpmd.log" >&2; exit 1
}

run_ember() {
  cat >"$work/vm.json" <<JSON
{"boot-source": {"kernel_image_path": "$guest", "boot_args": "console=ttyS0 ember.tests=netbench"},
 "machine-config": {"vcpu_count": 1, "mem_size_mib": 128},
 "network-interfaces": [{"iface_id": "eth0", "guest_mac": "52:54:00:00:00:02", "socket": "$work/net.sock"}]}
JSON
  timeout 60 "$ember" --no-api --config-file "$work/vm.json" --level Warning
}

run_qemu() {
  timeout 60 qemu-system-x86_64 \
    -M microvm,x-option-roms=off,pit=off,pic=off,rtc=off,acpi=off,memory-backend=mem \
    -enable-kvm -cpu host -m 128 -object memory-backend-memfd,id=mem,size=128M,share=on \
    -nodefaults -no-user-config -nographic -serial stdio -global virtio-mmio.force-legacy=false \
    -chardev socket,id=c0,path="$work/net.sock" -netdev vhost-user,id=n0,chardev=c0 \
    -device virtio-net-device,netdev=n0,mac=52:54:00:00:00:02 \
    -kernel "$guest" -device isa-debug-exit,iobase=0xf4 -append 'console=ttyS0 ember.tests=netbench' || true
}

# Median over runs of: cycles per round trip, received frames per 10^9 cycles,
# in $rtt_median and $rate_median (no subshell: testpmd's group is stopped on exit).
measure() {
  local vmm=$1 rtts=() rates=()
  for _ in $(seq "$runs"); do
    start_testpmd
    local out
    out=$("run_$vmm") || true
    stop_testpmd
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
  median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
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
