# Shared by bench/fs_bench.sh and bench/net_bench.sh (sourced, not run):
# options, the guest and VMM command lines that both compare, a backend
# started in its own process group and stopped by it, and medians.
#
# After sourcing: $runs, $ember, $guest, $work (removed on exit), $tsc_khz.

source "$(dirname "${BASH_SOURCE[0]}")/qemu_cpu.sh"

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BUILD_DIR:-$root/build}
runs=3
[[ ${1:-} == --runs ]] && runs=${2:?--runs needs a value}
ember=${EMBER:-$build/ember}
guest=${GUEST:-$build/tests/guest/guest-pvh.elf}
work=$(mktemp -d)
tsc_khz=$(awk '/^cpu MHz/ {printf "%d", $4 * 1000; exit}' /proc/cpuinfo)
backend_pgid=
backend_cleanup=

# start_backend SOCKET COMMAND...: runs COMMAND as the leader of its own
# process group (virtiofsd forks a sandbox child; testpmd has threads) and
# waits for SOCKET.
start_backend() {
  local socket=$1
  shift
  rm -f "$socket"
  setsid "$@" >"$work/backend.log" 2>&1 &
  backend_pgid=$!
  for _ in $(seq 1000); do [[ -S $socket ]] && return; sleep 0.01; done
  echo "${0##*/}: $1 did not start:" >&2
  cat "$work/backend.log" >&2
  exit 1
}

# Stops the backend's whole group: SIGINT first (testpmd prints its
# statistics), SIGKILL if it lingers; then $backend_cleanup, if set.
stop_backend() {
  [[ -n $backend_pgid ]] || return 0
  kill -INT -- "-$backend_pgid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 -- "-$backend_pgid" 2>/dev/null || break; sleep 0.05; done
  kill -9 -- "-$backend_pgid" 2>/dev/null || true
  backend_pgid=
  if [[ -n $backend_cleanup ]]; then eval "$backend_cleanup"; fi
}
trap 'stop_backend; rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

# run_ember TESTS DEVICES_JSON: the guest with `ember.tests=TESTS` and the
# devices (a JSON member such as "fs": [...]) in a config file.
run_ember() {
  cat >"$work/vm.json" <<JSON
{"boot-source": {"kernel_image_path": "$guest", "boot_args": "console=ttyS0 ember.tests=$1"},
 "machine-config": {"vcpu_count": 1, "mem_size_mib": 128},
 $2}
JSON
  timeout 60 "$ember" --no-api --config-file "$work/vm.json" --level Warning
}

# run_qemu TESTS DEVICE_ARGS...: the same guest on QEMU's microvm with guest
# RAM shared (vhost-user needs it) and the modern virtio-mmio transport;
# acpi=off makes microvm list its devices on the command line. The guest
# leaves through isa-debug-exit, which makes QEMU exit 1.
run_qemu() {
  local tests=$1
  shift
  [[ -n ${qemu_cpu:-} ]] || qemu_cpu=$(qemu_kvm_cpu qemu-system-x86_64) || return 1
  timeout 60 qemu-system-x86_64 \
    -M microvm,x-option-roms=off,pit=off,pic=off,rtc=off,acpi=off,memory-backend=mem \
    -enable-kvm -cpu "$qemu_cpu" -m 128 -object memory-backend-memfd,id=mem,size=128M,share=on \
    -nodefaults -no-user-config -nographic -serial stdio -global virtio-mmio.force-legacy=false \
    "$@" -kernel "$guest" -device isa-debug-exit,iobase=0xf4 \
    -append "console=ttyS0 ember.tests=$tests" || true
}

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}'; }
