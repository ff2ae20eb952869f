# Sourced by the bench scripts: picks the QEMU KVM CPU model that works on
# this host. `-cpu host` is the natural peer to ember (which passes the
# host's CPUID through), but on some AMD EPYC hosts QEMU aborts setting
# MSR 0x10a (IA32_ARCH_CAPABILITIES); without that MSR it runs.
#
#   qemu_kvm_cpu QEMU_BINARY   -> prints the model, says on stderr which

qemu_kvm_cpu() {
  local qemu=$1 model
  for model in host host,-arch-capabilities; do
    if echo q | timeout 20 "$qemu" -M microvm -enable-kvm -cpu "$model" -m 16 -nodefaults \
      -no-user-config -display none -S -monitor stdio >/dev/null 2>&1; then
      printf 'qemu cpu model: %s\n' "$model" >&2
      printf '%s' "$model"
      return 0
    fi
  done
  printf 'qemu cpu model: neither host nor host,-arch-capabilities starts here\n' >&2
  return 1
}
