#!/usr/bin/env bash
# Run one command where a hardware-style /dev/kvm exists, on machines whose
# own KVM cannot boot Linux (PVM) or that have none: inside an "outer" Linux
# VM on QEMU's software CPU (TCG, `-cpu max` emulates AMD SVM), which loads
# kvm + kvm_amd, sees the host's root read-only through virtiofs and chroots
# into it. See scripts/NESTED.md.
#
#   scripts/nested-kvm.sh [options] -- COMMAND [ARGS...]
#
# Options:
#   --timeout SECONDS       limit for the whole run (default 300)
#   --boot-timeout SECONDS  limit for the outer kernel to reach /init
#                           (default 60; never more than --timeout)
#   --mem MIB               outer VM memory (default 2048)
#   --smp N                 outer VM vCPUs (default 1: with 2, QEMU runs two
#                           TCG threads and the outer kernel sometimes oopses
#                           on live-patched code (seen in 3 of 12
#                           runs), and nested boots were no faster)
#   --scratch DIR           host directory mounted read-write at the same path
#                           inside (must exist; kept afterwards). Default: a
#                           fresh directory under ${TMPDIR:-/tmp}, removed
#                           afterwards. The command sees it as $NESTED_KVM_SCRATCH.
#   -v, --verbose           copy the outer serial console (kernel messages,
#                           boot included) and the outer init's output to
#                           stderr as they come
#   -h, --help              this text
#
# Inside, COMMAND runs as root in the host's root (read-only), in the
# caller's working directory, with the caller's exported environment (less
# PWD, OLDPWD, SHLVL and _), stdin from /dev/null, and fresh proc, sysfs,
# devtmpfs (with /dev/kvm), devpts, and tmpfs on /run and /dev/shm (the
# host's /tmp is visible read-only; write temporary files under /run).
# Its stdout and stderr both go to one virtio-serial port (not a tty, so no
# \r is added) that this script copies, unchanged, to its stdout: they are
# merged. The outer kernel's messages go to its serial console, which is
# kept in a log and shown only with --verbose or when a stage fails.
#
# Exit status: COMMAND's own status, or, when it could not run to the end:
#   2   usage error
#   90  host-side setup failed (initramfs, virtiofsd or QEMU could not start)
#   91  outer boot: the kernel did not reach /init in time, or QEMU died first
#   92  module load failed (the message names the module)
#   93  mount failed (the message names the virtiofs tag or the mount point)
#   94  command timed out (--timeout)
#   95  the outer VM stopped while the command ran (no exit status seen)
#   96  the working directory does not exist inside
#   129/130/143  interrupted by SIGHUP/SIGINT/SIGTERM
# A COMMAND that itself exits with 90-99 cannot be told from these by the
# status alone; the one-line "nested-kvm: error: ..." on stderr tells.
#
# On stderr it prints how long each stage took, e.g.
#   nested-kvm: stages: setup 0.1s boot 2.6s modules 0.5s mount 0.0s command 12.1s total 15.7s
# (setup: cached initramfs, virtiofsd; boot: QEMU start to the outer /init;
# modules: insmod; mount: virtiofs and the rest; command: COMMAND itself).
#
# Environment: EMBER_CACHE (cache root, default $HOME/.cache/ember); the
# outer kernel and its modules come from scripts/linux-guest.sh, the cached
# outer initramfs is kept in $EMBER_CACHE/nested/.

set -euo pipefail

prog=nested-kvm
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
t_start=$EPOCHREALTIME

die_code() { local code=$1; shift; printf '%s: error: %s\n' "$prog" "$*" >&2; exit "$code"; }
usage() { printf '%s: %s (see --help)\n' "$prog" "$*" >&2; exit 2; }

timeout_s=300
boot_timeout_s=60
mem_mib=2048
smp=1
scratch=""
verbose=0
while (($#)); do
  case $1 in
    --timeout) (($# >= 2)) || usage "$1 needs a value"; timeout_s=$2; shift 2 ;;
    --timeout=*) timeout_s=${1#*=}; shift ;;
    --boot-timeout) (($# >= 2)) || usage "$1 needs a value"; boot_timeout_s=$2; shift 2 ;;
    --boot-timeout=*) boot_timeout_s=${1#*=}; shift ;;
    --mem) (($# >= 2)) || usage "$1 needs a value"; mem_mib=$2; shift 2 ;;
    --mem=*) mem_mib=${1#*=}; shift ;;
    --smp) (($# >= 2)) || usage "$1 needs a value"; smp=$2; shift 2 ;;
    --smp=*) smp=${1#*=}; shift ;;
    --scratch) (($# >= 2)) || usage "$1 needs a directory"; scratch=$2; shift 2 ;;
    --scratch=*) scratch=${1#*=}; shift ;;
    -v|--verbose) verbose=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    --) shift; break ;;
    *) usage "unknown argument '$1'" ;;
  esac
done
(($# >= 1)) || usage "no command given after --"
for v in timeout_s boot_timeout_s mem_mib smp; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || usage "${v%_*} must be a positive integer, not '${!v}'"
done
((boot_timeout_s <= timeout_s)) || boot_timeout_s=$timeout_s

qemu="qemu-system-x86_64"
virtiofsd=/usr/lib/qemu/virtiofsd
for tool in "$qemu" cpio gzip xz sha256sum; do
  command -v "$tool" >/dev/null 2>&1 || die_code 90 "setup: '$tool' not found (run scripts/install-deps.sh)"
done
[[ -x $virtiofsd ]] || die_code 90 "setup: $virtiofsd not found (package qemu-system-common)"

cwd=$(pwd -P)
case $cwd in *$'\n'*) die_code 90 "setup: the working directory name has a newline" ;; esac

# ---- outer kernel, modules and initramfs (cached) ----------------------------
mapfile -t guest < <("$here/linux-guest.sh" --quiet) || true
vmlinuz=${guest[0]:-}
base_initrd=${guest[1]:-}
[[ -s $vmlinuz && -s $base_initrd ]] || die_code 90 "setup: scripts/linux-guest.sh failed"
linux_dir=$(dirname "$vmlinuz")
moddir=$(readlink -f "$linux_dir/modules")
krel=$(cat "$linux_dir/version")
[[ -s $moddir/modules.dep ]] || die_code 90 "setup: no modules.dep in $moddir"

ncache="${EMBER_CACHE:-${HOME:?HOME is not set}/.cache/ember}/nested"
outer="$ncache/outer.cpio.gz"
stamp_want="script=$(sha256sum "${BASH_SOURCE[0]}" | cut -d' ' -f1) base=$(sha256sum "$base_initrd" | cut -d' ' -f1) kernel=$krel"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/nested-kvm.XXXXXX")
own_scratch=0
pids=()
# shellcheck disable=SC2317  # cleanup and on_signal run from traps
cleanup() {
  local pid i
  trap '' HUP INT TERM  # a second signal must not cut the cleanup short
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for ((i = 0; i < 30; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  pids=()
  rm -rf "$tmp"
  if ((own_scratch)); then rm -rf "$scratch"; fi
}
trap cleanup EXIT
# shellcheck disable=SC2317
on_signal() {
  trap '' HUP INT TERM
  printf '%s: %s\n' "$prog" "$1" >&2
  exit "$2"
}
trap 'on_signal "interrupted (SIGHUP)" 129' HUP
trap 'on_signal "interrupted (SIGINT)" 130' INT
trap 'on_signal "terminated (SIGTERM)" 143' TERM
trap 'exit 141' PIPE

# The outer initramfs is linux-guest.sh's (busybox and its applet links)
# followed by a second archive that replaces /init and adds the KVM modules:
# the kernel unpacks concatenated archives in order, later files win.
WANTED_MODULES=(irqbypass kvm kvm_amd virtio_ring virtio virtio_mmio fuse virtiofs tun)

build_outer() {
  local root="$tmp/overlay" line m n d w src dst
  declare -A dep_of=() path_of=() seen=() builtin=()
  local order=()
  modname() { local b=${1##*/}; b=${b%%.ko*}; printf '%s' "${b//-/_}"; }
  while IFS= read -r line; do
    m=${line%%:*}; n=$(modname "$m")
    path_of[$n]=$m; dep_of[$n]=${line#*:}
  done <"$moddir/modules.dep"
  if [[ -f $moddir/modules.builtin ]]; then
    while IFS= read -r m; do builtin[$(modname "$m")]=1; done <"$moddir/modules.builtin"
  fi
  add() {
    local n=$1 d
    [[ -n ${seen[$n]:-} ]] && return 0
    seen[$n]=1
    for d in ${dep_of[$n]:-}; do add "$(modname "$d")"; done
    order+=("${path_of[$n]}")
  }
  for w in "${WANTED_MODULES[@]}"; do
    n=${w//-/_}
    if [[ -n ${path_of[$n]:-} ]]; then add "$n"
    elif [[ -z ${builtin[$n]:-} ]]; then die_code 90 "setup: module $w is neither in modules.dep nor built into $krel"
    fi
  done
  mkdir -p "$root/etc" "$root/host" "$root/nested"
  : >"$root/etc/nested-kvm-modules"
  for m in "${order[@]}"; do
    src="$moddir/$m"
    case $m in
      *.ko.xz) dst=${m%.xz}; mkdir -p "$root/lib/modules/$krel/${dst%/*}"; xz -dc "$src" >"$root/lib/modules/$krel/$dst" ;;
      *.ko.gz) dst=${m%.gz}; mkdir -p "$root/lib/modules/$krel/${dst%/*}"; gzip -dc "$src" >"$root/lib/modules/$krel/$dst" ;;
      *.ko.zst) dst=${m%.zst}; mkdir -p "$root/lib/modules/$krel/${dst%/*}"; zstd -qdc "$src" >"$root/lib/modules/$krel/$dst" ;;
      *.ko) dst=$m; mkdir -p "$root/lib/modules/$krel/${dst%/*}"; cp "$src" "$root/lib/modules/$krel/$dst" ;;
      *) die_code 90 "setup: unexpected module file name $m" ;;
    esac || die_code 90 "setup: cannot decompress $src"
    printf '%s\n' "$dst" >>"$root/etc/nested-kvm-modules"
  done
  cat >"$root/init" <<'EOF'
#!/bin/sh
# outer VM init (generated by scripts/nested-kvm.sh)
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
IFS= read -r token </nested/token
IFS= read -r scratch </nested/scratch
M="NESTED-KVM-$token"
# Until the virtio-serial port "nested.out" exists (virtio_mmio is a module)
# markers go to the serial console (ttyS0, a log file on the host); from then
# on everything goes to that port, which the host reads: it is ~20x faster
# than ttyS0, carries no kernel messages, and unlike a virtconsole (hvc0)
# QEMU throttles it instead of dropping data when the host reads slowly.
echo "$M stage=init"
fail() {  # fail STAGE WHAT
  echo "$M fail=$1 what=$2"
  sleep 1
  poweroff -f
  sleep 10
}
kver=$(uname -r)
while read -r m; do
  [ -n "$m" ] || continue
  insmod "/lib/modules/$kver/$m" || fail module "$(basename "$m" .ko)"
done </etc/nested-kvm-modules
[ -c /dev/kvm ] || fail module "kvm (no /dev/kvm after loading; no SVM in the CPU?)"
out=""
i=0
while [ -z "$out" ] && [ $i -lt 100 ]; do
  for p in /sys/class/virtio-ports/*; do
    [ "$(cat "$p/name" 2>/dev/null)" = nested.out ] && [ -c "/dev/${p##*/}" ] && out=/dev/${p##*/}
  done
  [ -n "$out" ] || sleep 0.05
  i=$((i + 1))
done
[ -n "$out" ] || fail module "virtio_console (no virtio-serial port nested.out)"
exec >"$out" 2>&1
echo "$M stage=modules"
mount -t virtiofs -o ro hostroot /host || fail mount "virtiofs tag hostroot"
mount -t proc proc /host/proc || fail mount /proc
mount -t sysfs sysfs /host/sys || fail mount /sys
mount -t devtmpfs devtmpfs /host/dev || fail mount /dev
mkdir -p /host/dev/pts /host/dev/shm
mount -t devpts -o newinstance,ptmxmode=0666 devpts /host/dev/pts || fail mount /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /host/dev/shm || fail mount /dev/shm
mount -t tmpfs -o mode=0755 tmpfs /host/run || fail mount /run
# The host's /tmp stays visible (read-only like the rest): builds and test
# files often live there. Writable temporary space is /run.
mkdir -p "/host$scratch" 2>/dev/null
mount -t virtiofs scratch "/host$scratch" || fail mount "virtiofs tag scratch"
mkdir -p /host/run/nested-kvm && cp /nested/run.sh /host/run/nested-kvm/run.sh ||
  fail mount "/run/nested-kvm"
echo "$M stage=mounts"
chroot /host /usr/bin/env -i /bin/sh /run/nested-kvm/run.sh </dev/null
rc=$?
sync
echo "$M exit=$rc"
# The host stops the VM when it has read that line (QEMU may still hold
# output the host has not read yet: powering off now could lose it).
sleep 30
poweroff -f
sleep 10
EOF
  chmod 0755 "$root/init"
  find "$root" -exec touch -h -d @0 {} +
  (cd "$root" && find . -mindepth 1 | LC_ALL=C sort | sed 's|^\./||' |
    cpio --quiet -o -H newc -R 0:0) | gzip -n -9 >"$tmp/overlay.cpio.gz" ||
    die_code 90 "setup: creating the outer initramfs failed"
  mkdir -p "$ncache"
  # unique temporary names: two runs may rebuild at the same time
  local new_outer new_stamp
  if ! new_outer=$(mktemp "$ncache/.outer.XXXXXX") || ! new_stamp=$(mktemp "$ncache/.stamp.XXXXXX"); then
    die_code 90 "setup: cannot write to $ncache"
  fi
  cat "$base_initrd" "$tmp/overlay.cpio.gz" >"$new_outer"
  chmod 0644 "$new_outer" "$new_stamp"
  mv -f "$new_outer" "$outer"
  { printf '%s\n' "$stamp_want"; printf 'modules=%s\n' "${order[*]}"; } >"$new_stamp"
  mv -f "$new_stamp" "$ncache/.stamp"
}
if [[ ! -s $outer || ! -f $ncache/.stamp || "$(head -n1 "$ncache/.stamp")" != "$stamp_want" ]]; then
  build_outer
fi

# ---- per-run parameters: a third archive with the command script ------------
if [[ -n $scratch ]]; then
  [[ -d $scratch ]] || die_code 90 "setup: --scratch $scratch is not a directory"
  scratch=$(cd "$scratch" && pwd -P)
else
  scratch=$(mktemp -d "${TMPDIR:-/tmp}/nested-kvm-scratch.XXXXXX")
  own_scratch=1
fi
case $scratch in /|*$'\n'*) die_code 90 "setup: unusable scratch directory '$scratch'" ;; esac

token=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
M="NESTED-KVM-$token"
q() { local s=${1//\'/\'\\\'\'}; printf "'%s'" "$s"; }  # POSIX sh single-quoting
mkdir -p "$tmp/run/nested"
printf '%s\n' "$token" >"$tmp/run/nested/token"
printf '%s\n' "$scratch" >"$tmp/run/nested/scratch"
{
  printf '# generated by scripts/nested-kvm.sh\n'
  while IFS= read -r name; do
    case $name in PWD|OLDPWD|SHLVL|_|NESTED_KVM_SCRATCH) continue ;; esac
    [[ $name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || continue
    printf 'export %s=%s\n' "$name" "$(q "${!name}")"
  done < <(compgen -e)
  printf 'export NESTED_KVM_SCRATCH=%s\n' "$(q "$scratch")"
  printf 'cd -- %s || { echo %s; exit 1; }\n' "$(q "$cwd")" "$(q "$M fail=cwd")"
  printf 'echo %s\n' "$(q "$M stage=command")"
  printf 'exec'
  for a in "$@"; do printf ' %s' "$(q "$a")"; done
  printf '\n'
} >"$tmp/run/nested/run.sh"
(cd "$tmp/run" && find nested | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) | gzip -n >"$tmp/run.cpio.gz" ||
  die_code 90 "setup: creating the run archive failed"
cat "$outer" "$tmp/run.cpio.gz" >"$tmp/initrd"

# ---- virtiofsd x2 ------------------------------------------------------------
# This virtiofsd has no read-only option; the guest mounts hostroot with -o ro.
start_virtiofsd() {  # start_virtiofsd NAME SOURCE
  local sock="$tmp/$1.sock" i
  "$virtiofsd" --socket-path="$sock" -o source="$2" -o cache=auto -o sandbox=chroot \
    </dev/null >>"$tmp/virtiofsd-$1.log" 2>&1 &
  pids+=($!)
  for ((i = 0; i < 100; i++)); do
    [[ -S $sock ]] && return 0
    kill -0 "${pids[-1]}" 2>/dev/null || break
    sleep 0.05
  done
  cat "$tmp/virtiofsd-$1.log" >&2
  die_code 90 "setup: virtiofsd for $2 did not start"
}
start_virtiofsd hostroot /
start_virtiofsd scratch "$scratch"

# ---- the outer VM ------------------------------------------------------------
# ttyS0 (kernel console, early markers) goes to a file; the virtio-serial port
# nested.out (the command's output and the later markers) to QEMU's stdout,
# read below.
: >"$tmp/console.log"
# shellcheck disable=SC2054  # the commas are QEMU's
qemu_args=(
  -M microvm,x-option-roms=off,isa-serial=on,memory-backend=mem
  -accel tcg -cpu max -m "$mem_mib" -smp "$smp"
  -object memory-backend-memfd,id=mem,size="${mem_mib}M",share=on
  -nodefaults -no-user-config -display none -no-reboot
  -chardev file,id=con,path="$tmp/console.log",append=on -serial chardev:con
  -global virtio-mmio.force-legacy=false
  -device virtio-serial-device,max_ports=2
  -chardev stdio,id=out,signal=off -device virtserialport,chardev=out,nr=1,name=nested.out
  -chardev socket,id=fs0,path="$tmp/hostroot.sock"
  -device vhost-user-fs-device,queue-size=1024,chardev=fs0,tag=hostroot
  -chardev socket,id=fs1,path="$tmp/scratch.sock"
  -device vhost-user-fs-device,queue-size=1024,chardev=fs1,tag=scratch
  -kernel "$vmlinuz" -initrd "$tmp/initrd"
  -append 'console=ttyS0 quiet panic=-1 tsc_early_khz=2000000 tsc=reliable'
)
exec {clog}<"$tmp/console.log"
# QEMU's stdin must never reach EOF: the stdio chardev would report the port
# closed and the guest's writes to it would block. A FIFO that this script
# holds open for writing and never writes to.
mkfifo "$tmp/stdin"
exec {stdin_w}<>"$tmp/stdin"
t_qemu=$EPOCHREALTIME
exec {out}< <(exec {stdin_w}>&- {clog}<&-; exec "$qemu" "${qemu_args[@]}" <"$tmp/stdin" 2>"$tmp/qemu.log")
qemu_pid=$!
pids+=("$qemu_pid")

# microseconds since the epoch from $EPOCHREALTIME
us() { local t=${1:-$EPOCHREALTIME}; printf "%s" "${t//[!0-9]/}"; }
secs() { local d=$(($2 - $1)); printf '%d.%ds' $((d / 1000000)) $(((d % 1000000) / 100000)); }

t0=$(us "$t_start")
deadline=$((t0 + timeout_s * 1000000))
boot_deadline=$(($(us "$t_qemu") + boot_timeout_s * 1000000))
((boot_deadline < deadline)) || boot_deadline=$deadline
stage=boot           # boot -> modules -> mount -> run -> command -> done
t_init="" t_mod="" t_mnt="" t_cmd="" t_exit=""
status=""
fail_code="" fail_msg=""
early=()             # nested.out lines before the command starts (shown on failure)
cpart=""             # a console line not complete yet

# marker WORDS: one marker line's payload (from either channel)
marker() {
  case $1 in
    stage=init) [[ $stage == boot ]] && { t_init=$(us); stage=modules; } ;;
    stage=modules) t_mod=$(us); stage=mount ;;
    stage=mounts) t_mnt=$(us); stage=run ;;
    stage=command) t_cmd=$(us); stage="command" ;;
    fail=module*) fail_code=92 fail_msg="module load: insmod ${1#*what=} failed" ;;
    fail=mount*) fail_code=93 fail_msg="mount: ${1#*what=} failed" ;;
    fail=cwd*) fail_code=96 fail_msg="command: the working directory $cwd does not exist inside the outer VM" ;;
  esac
}

# poll_console: take the new complete lines of the serial console log
poll_console() {
  local l
  while IFS= read -r -u "$clog" l; do
    l=${cpart}${l%$'\r'}
    cpart=""
    ((verbose)) && printf '  console| %s\n' "$l" >&2
    if [[ $stage == boot || $stage == modules ]] && [[ $l == *"$M "* ]]; then
      marker "${l#*"$M "}"
    fi
  done
  cpart+=$l
}

show_failure_context() {
  local l from
  if ((!verbose)); then
    if [[ -s $tmp/console.log ]]; then
      printf '%s: outer serial console (last lines):\n' "$prog" >&2
      tail -n 30 "$tmp/console.log" | tr -d '\r' | sed 's/^/  | /' >&2
    fi
    if ((${#early[@]})); then
      printf '%s: outer init output:\n' "$prog" >&2
      from=$((${#early[@]} > 30 ? ${#early[@]} - 30 : 0))
      for l in "${early[@]:from}"; do printf '  | %s\n' "$l" >&2; done
    fi
  fi
  if [[ -s $tmp/qemu.log ]]; then
    printf '%s: qemu stderr:\n' "$prog" >&2
    tail -n 20 "$tmp/qemu.log" | sed 's/^/  | /' >&2
  fi
}

while [[ -z $fail_code ]]; do
  poll_console
  [[ -z $fail_code ]] || break
  now=${EPOCHREALTIME//[!0-9]/}  # no forks in this loop: it runs once a line
  limit=$deadline
  [[ $stage == boot ]] && limit=$boot_deadline
  if ((now >= limit)); then
    case $stage in
      boot) fail_code=91 fail_msg="outer boot: the kernel did not reach /init within ${boot_timeout_s}s" ;;
      modules) fail_code=92 fail_msg="module load: timed out" ;;
      mount) fail_code=93 fail_msg="mount: timed out" ;;
      *) fail_code=94 fail_msg="command: timed out (--timeout ${timeout_s}s)" ;;
    esac
    break
  fi
  left=$((limit - now))
  # the console log is a file: look at it every 0.1 s while it matters
  if [[ $stage == boot || $stage == modules ]] || ((verbose)); then
    ((left < 100000)) || left=100000
  fi
  line=""
  rc=0
  printf -v tmo '%d.%06d' $((left / 1000000)) $((left % 1000000))
  IFS= read -r -t "$tmo" -u "$out" line || rc=$?
  if ((rc > 128)); then
    # timed out; a partial line is printed as it is (only seen at the deadline)
    [[ -n $line && $stage == command ]] && printf '%s' "$line"
    continue
  fi
  if ((rc != 0)) && [[ -z $line ]]; then
    poll_console
    break  # EOF: QEMU exited
  fi
  if [[ $line == *"$M "* ]]; then
    pre=${line%%"$M "*}
    word=${line#*"$M "}
    if [[ $stage == command && $word == exit=* ]]; then
      printf '%s' "$pre"  # the command's last line had no newline
      status=${word#exit=}; status=${status%% *}
      t_exit=$(us); stage="done"
      break
    fi
    marker "$word"
    continue
  fi
  if [[ $stage == command ]]; then
    printf '%s\n' "$line"
  else
    early+=("$line")
    ((verbose)) && printf '  init| %s\n' "$line" >&2
  fi
done
t_end=$(us)

if [[ -z $status && -z $fail_code ]]; then
  case $stage in
    boot) fail_code=91 fail_msg="outer boot: QEMU exited before the kernel reached /init" ;;
    modules) fail_code=92 fail_msg="module load: the outer VM stopped while loading modules" ;;
    mount) fail_code=93 fail_msg="mount: the outer VM stopped while mounting" ;;
    *) fail_code=95 fail_msg="command: the outer VM stopped before the command's exit status arrived" ;;
  esac
fi

stages="setup $(secs "$t0" "$(us "$t_qemu")")"
stages+=" boot $( [[ -n $t_init ]] && secs "$(us "$t_qemu")" "$t_init" || echo -)"
stages+=" modules $( [[ -n $t_mod ]] && secs "$t_init" "$t_mod" || echo -)"
stages+=" mount $( [[ -n $t_mnt ]] && secs "$t_mod" "$t_mnt" || echo -)"
stages+=" command $( [[ -n $t_cmd ]] && secs "$t_cmd" "${t_exit:-$t_end}" || echo -)"
stages+=" total $(secs "$t0" "$t_end")"
printf '%s: stages: %s\n' "$prog" "$stages" >&2

if [[ -n $fail_code ]]; then
  case $fail_code in 91|92|93|95) show_failure_context ;; esac
  printf '%s: error: %s\n' "$prog" "$fail_msg" >&2
  exit "$fail_code"
fi
exit "$status"
