#!/usr/bin/env bash
# The main job (README.md): installs what is missing, builds ember, fetches
# the default guest and boots a microVM through ember with its console on
# this terminal.
#
# Where KVM is hardware-backed it boots Debian's cloud kernel with a busybox
# initramfs (which reboots when it reaches init: pass `ember.shell` in
# EMBER_BOOT_ARGS for a shell). On PVM, which cannot boot Linux, it boots
# ember's own test guest and says so.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${BUILD_DIR:-build}

scripts/install-deps.sh
scripts/build.sh
linux_dir=$(scripts/linux-guest.sh --quiet | tail -n 1 | xargs dirname)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [[ -e /sys/module/kvm_intel || -e /sys/module/kvm_amd ]]; then
  echo "run-microvm: hardware KVM: booting Debian's cloud kernel ($(cat "$linux_dir/version"))"
  kernel=$linux_dir/vmlinuz
  initrd=",\"initrd_path\": \"$linux_dir/initramfs.cpio.gz\""
  args=${EMBER_BOOT_ARGS:-console=ttyS0 reboot=k panic=-1 pci=off}
  vcpus=2 mem=512
else
  echo "run-microvm: /dev/kvm is PVM (kvm_pvm): it cannot boot Linux (KVM's instruction"
  echo "run-microvm: emulator lacks instructions Linux needs), so this boots ember's test guest."
  kernel=$build_dir/tests/guest/guest-pvh.elf
  initrd=""
  args=${EMBER_BOOT_ARGS:-console=ttyS0 ember.tests=cmdline,e820,cpuid,mptable,smp,timer}
  vcpus=2 mem=128
fi
cat >"$work/vm.json" <<JSON
{
  "boot-source": {"kernel_image_path": "$(realpath "$kernel")", "boot_args": "$args"$initrd},
  "machine-config": {"vcpu_count": $vcpus, "mem_size_mib": $mem}
}
JSON
echo "run-microvm: $build_dir/ember --no-api --config-file vm.json --boot-timer"
cat "$work/vm.json"
exec "$build_dir/ember" --no-api --config-file "$work/vm.json" --boot-timer
