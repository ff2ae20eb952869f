#!/usr/bin/env bash
# Linux boot, ember vs QEMU's microvm, inside the same outer VM of
# scripts/nested-kvm.sh (its kvm_amd is hardware-style): Debian's cloud
# kernel with the busybox initramfs (scripts/linux-guest.sh), 2 vCPUs,
# 512 MiB, from process start until the guest's reboot ends the VMM.
# Prints both times and the qemu/ember ratio (above 1: ember is faster).
#
#   bench/nested_boot.sh [--runs N]     (expects the tree built in ${BUILD_DIR:-build})
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BUILD_DIR:-$root/build}
runs=2
[[ ${1:-} == --runs ]] && runs=${2:?--runs needs a value}
linux=$("$root/scripts/linux-guest.sh" --quiet | head -n 1 | xargs dirname)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

cat >"$scratch/vm.json" <<JSON
{"boot-source": {"kernel_image_path": "$linux/vmlinuz", "initrd_path": "$linux/initramfs.cpio.gz",
  "boot_args": "console=ttyS0 reboot=k panic=-1 pci=off"},
 "machine-config": {"vcpu_count": 2, "mem_size_mib": 512}}
JSON
# QEMU resets with reboot=t here (its microvm has no i8042) and exits on it.
cat >"$scratch/run.sh" <<SCRIPT
ms() { echo \$((\$(date +%s%N) / 1000000)); }
for i in \$(seq $runs); do
  t0=\$(ms); "$build/ember" --no-api --config-file "$scratch/vm.json" --level Warning >/dev/null 2>&1; t1=\$(ms)
  echo "ember \$((t1 - t0))"
  t0=\$(ms)
  qemu-system-x86_64 -M microvm,x-option-roms=off -enable-kvm -cpu host -smp 2 -m 512 \\
    -nodefaults -no-user-config -nographic -serial stdio -no-reboot \\
    -kernel "$linux/vmlinuz" -initrd "$linux/initramfs.cpio.gz" \\
    -append 'console=ttyS0 reboot=t panic=-1' >/dev/null 2>&1
  t1=\$(ms)
  echo "qemu \$((t1 - t0))"
done
SCRIPT
"$root/scripts/nested-kvm.sh" --scratch "$scratch" -- sh "$scratch/run.sh" | tee "$scratch/times"
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}'; }
ember_ms=$(awk '/^ember/ {print $2}' "$scratch/times" | median)
qemu_ms=$(awk '/^qemu/ {print $2}' "$scratch/times" | median)
awk -v e="$ember_ms" -v q="$qemu_ms" -v n="$runs" 'BEGIN {
  printf "median of %d runs    ember %.1f s   qemu %.1f s   qemu/ember %.2fx\n", n, e / 1000, q / 1000, q / e
}'
