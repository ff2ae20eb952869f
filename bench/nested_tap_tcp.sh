#!/usr/bin/env bash
# Linux TCP throughput through a TAP, ember vs QEMU's microvm
# (-netdev tap,vhost=off -device virtio-net-device), inside the same outer
# VM of scripts/nested-kvm.sh: Debian's cloud kernel (scripts/linux-guest.sh)
# with one vCPU sends an N MiB stream (default 16) to a listener on the
# outer side of the same TAP; the listener times it from accept to EOF and
# checks the md5 the guest prints. Prints both rates and the ember/qemu
# ratio (above 1: ember is faster). Needs root.
#
#   bench/nested_tap_tcp.sh [--runs N] [--mib M]   (expects the tree built in ${BUILD_DIR:-build})
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BUILD_DIR:-$root/build}
runs=2 mib=16
while [[ $# -gt 0 ]]; do
  case $1 in
    --runs) runs=${2:?--runs needs a value}; shift 2 ;;
    --mib) mib=${2:?--mib needs a value}; shift 2 ;;
    *) echo "usage: $0 [--runs N] [--mib M]" >&2; exit 2 ;;
  esac
done
linux=$("$root/scripts/linux-guest.sh" --quiet | head -n 1 | xargs dirname)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

args="console=ttyS0 quiet panic=-1 ember.ip=10.79.0.2/24 ember.ping=10.79.0.1 ember.tcp=10.79.0.1 ember.tcpmb=$mib ember.poweroff"
cat >"$scratch/vm.json" <<JSON
{"boot-source": {"kernel_image_path": "$linux/vmlinuz", "initrd_path": "$linux/initramfs.cpio.gz",
  "boot_args": "$args reboot=k pci=off"},
 "machine-config": {"vcpu_count": 1, "mem_size_mib": 256},
 "network-interfaces": [{"iface_id": "eth0", "guest_mac": "06:00:0a:4f:00:02", "host_dev_name": "tap0"}]}
JSON
# The listener: one stream, timed from accept to EOF; then the guest's ack.
cat >"$scratch/sink.py" <<'PY'
import hashlib, socket, sys, time
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("10.79.0.1", 5000))
server.listen(1)
server.settimeout(600)
conn, _ = server.accept()
start, digest, size = time.monotonic(), hashlib.md5(), 0
while True:
    data = conn.recv(1 << 16)
    if not data:
        break
    digest.update(data)
    size += len(data)
print("%s %d %s %.3f" % (sys.argv[1], size, digest.hexdigest(), time.monotonic() - start), flush=True)
for _ in range(30):
    try:
        socket.create_connection(("10.79.0.2", 5001), timeout=2).sendall(b"received\n")
        break
    except OSError:
        time.sleep(1)
PY
cat >"$scratch/run.sh" <<SCRIPT
S=$scratch
ip tuntap add tap0 mode tap && ip addr add 10.79.0.1/24 dev tap0 && ip link set tap0 up
for i in \$(seq $runs); do
  python3 \$S/sink.py ember > \$S/sink-ember-\$i 2>&1 & sink=\$!
  sleep 0.5
  "$build/ember" --no-api --config-file \$S/vm.json --level Warning > \$S/console-ember-\$i 2>&1
  wait \$sink; cat \$S/sink-ember-\$i
  python3 \$S/sink.py qemu > \$S/sink-qemu-\$i 2>&1 & sink=\$!
  sleep 0.5
  qemu-system-x86_64 -M microvm,x-option-roms=off -enable-kvm -cpu host -smp 1 -m 256 \\
    -nodefaults -no-user-config -nographic -serial stdio -no-reboot \\
    -netdev tap,id=n0,ifname=tap0,script=no,downscript=no,vhost=off \\
    -device virtio-net-device,netdev=n0,mac=06:00:0a:4f:00:02 \\
    -kernel "$linux/vmlinuz" -initrd "$linux/initramfs.cpio.gz" \\
    -append '$args reboot=t' > \$S/console-qemu-\$i 2>&1
  wait \$sink; cat \$S/sink-qemu-\$i
done
ip tuntap del tap0 mode tap
SCRIPT
"$root/scripts/nested-kvm.sh" --timeout 1500 --scratch "$scratch" -- sh "$scratch/run.sh" | tee "$scratch/rates"
# Each run must have moved the whole stream with the md5 its guest printed.
for vmm in ember qemu; do
  for i in $(seq "$runs"); do
    read -r _ size md5 _ <"$scratch/sink-$vmm-$i" || true
    if [[ ${size:-} != $((mib << 20)) ]] || ! grep -q "tcp sent $size bytes md5=$md5" "$scratch/console-$vmm-$i"; then
      echo "nested_tap_tcp: $vmm run $i did not move the stream intact:" >&2
      cat "$scratch/sink-$vmm-$i" "$scratch/console-$vmm-$i" >&2
      exit 1
    fi
  done
done
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}'; }
rate() { awk -v v="$1" '$1 == v {printf "%.3f\n", $2 / 1048576 / $4}' "$scratch/rates" | median; }
awk -v e="$(rate ember)" -v q="$(rate qemu)" -v n="$runs" -v m="$mib" 'BEGIN {
  printf "median of %d runs, %d MiB guest->host over TCP    ember %.2f MiB/s   qemu %.2f MiB/s   ember/qemu %.2fx\n", n, m, e, q, e / q
}'
