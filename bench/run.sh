#!/usr/bin/env bash
# Boot benchmark: ember vs QEMU microvm on the tiny test guest.
#
#   bench/run.sh [--runs N] [--warmup N] [--timeout SEC] [--json FILE] [--only ember|qemu]
#
# Builds nothing: expects the tree to be built in ${BUILD_DIR:-build}
# (cmake -S . -B build && cmake --build build). Runs boot_bench for each VMM,
# one after the other, and prints a table of medians and qemu/ember ratios.
#
# Environment (all optional):
#   BUILD_DIR    build tree (default: build, relative to the repo root)
#   BOOT_BENCH   boot_bench binary   (default: $BUILD_DIR/bench/boot_bench)
#   EMBER        ember binary        (default: $BUILD_DIR/vmm/ember or $BUILD_DIR/ember)
#   QEMU         QEMU binary         (default: qemu-system-x86_64 from PATH)
#   GUEST        guest kernel        (default: $BUILD_DIR/tests/guest/guest-pvh.elf)
#   RUNS, WARMUP, TIMEOUT            same as the options (defaults 20, 1, 10)
#   EXPECT       text every run must print (default "ember-guest: done"; empty: no check)
#   QEMU_OK_STATUS  QEMU exit codes counted as success (default 0,1: the guest
#                   leaves through isa-debug-exit, which makes QEMU exit with 1)

set -euo pipefail

prog=${0##*/}
die() { printf '%s: error: %s\n' "$prog" "$*" >&2; exit 1; }

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
runs=${RUNS:-20}
warmup=${WARMUP:-1}
timeout=${TIMEOUT:-10}
json_out=""
only=""
while (($#)); do
  case $1 in
    -n|--runs) runs=${2:?--runs needs a value}; shift 2 ;;
    -w|--warmup) warmup=${2:?--warmup needs a value}; shift 2 ;;
    -t|--timeout) timeout=${2:?--timeout needs a value}; shift 2 ;;
    --json) json_out=${2:?--json needs a file}; shift 2 ;;
    --only) only=${2:?--only needs ember or qemu}; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
case $only in ""|ember|qemu) ;; *) die "--only takes ember or qemu" ;; esac

build=${BUILD_DIR:-build}
[[ $build == /* ]] || build="$root/$build"
[[ -d $build ]] || die "build directory $build not found (build the tree first, or set BUILD_DIR)"

boot_bench=${BOOT_BENCH:-$build/bench/boot_bench}
[[ -x $boot_bench ]] || die "boot_bench not found at $boot_bench (build target 'boot_bench', or set BOOT_BENCH)"

guest=${GUEST:-$build/tests/guest/guest-pvh.elf}
[[ -f $guest ]] || die "test guest not found at $guest (build target 'ember-guest', or set GUEST)"
guest=$(cd "$(dirname "$guest")" && pwd)/$(basename "$guest")

if [[ -n ${EMBER:-} ]]; then
  ember=$EMBER
elif [[ -x $build/vmm/ember ]]; then
  ember=$build/vmm/ember
else
  ember=$build/ember
fi
qemu=${QEMU:-qemu-system-x86_64}
expect=${EXPECT-ember-guest: done}
qemu_ok=${QEMU_OK_STATUS:-0,1}

want_ember=1 want_qemu=1
[[ $only == qemu ]] && want_ember=0
[[ $only == ember ]] && want_qemu=0
if ((want_ember)); then
  [[ -x $ember ]] || die "ember binary not found at $ember (set EMBER=...)"
fi
if ((want_qemu)); then
  command -v "$qemu" >/dev/null 2>&1 || die "QEMU not found ('$qemu'); set QEMU=... or use --only ember"
fi
[[ -r /dev/kvm && -w /dev/kvm ]] || die "/dev/kvm is not accessible"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ember-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# JSON string escaping for the guest path in the config file.
json_escape() { local s=${1//\\/\\\\}; s=${s//\"/\\\"}; printf '%s' "$s"; }
cat >"$tmp/vm.json" <<EOF
{"boot-source":{"kernel_image_path":"$(json_escape "$guest")","boot_args":"console=ttyS0"},"machine-config":{"vcpu_count":1,"mem_size_mib":128}}
EOF

bench_args=(--runs "$runs" --warmup "$warmup" --timeout "$timeout" --json --quiet)
[[ -n $expect ]] && bench_args+=(--expect "$expect")

# run_bench NAME EXTRA_ARGS... -- CMD...   -> $tmp/NAME.json
run_bench() {
  local name=$1; shift
  printf '%s: %s: %s runs (+%s warmup)...\n' "$prog" "$name" "$runs" "$warmup" >&2
  local rc=0
  "$boot_bench" "${bench_args[@]}" --name "$name" --stderr "$tmp/$name.stderr" \
    --stdout "$tmp/$name.stdout" "$@" >"$tmp/$name.json" || rc=$?
  if ((rc == 2)) || [[ ! -s $tmp/$name.json ]]; then
    die "boot_bench failed for $name"
  fi
  if ((rc != 0)); then
    any_failed=1
    printf '%s: warning: some %s runs failed:\n' "$prog" "$name" >&2
    grep -o '"error":"[^"]*"' "$tmp/$name.json" | sort | uniq -c | sed 's/^/    /' >&2 || true
    if [[ -s $tmp/$name.stderr ]]; then
      printf '  last lines of its stderr:\n' >&2
      tail -n 5 "$tmp/$name.stderr" | sed 's/^/    /' >&2
    fi
    if [[ -s $tmp/$name.stdout ]]; then
      printf '  last lines of its stdout:\n' >&2
      tail -n 5 "$tmp/$name.stdout" | sed 's/^/    /' >&2
    fi
  fi
}
any_failed=0

if ((want_ember)); then
  run_bench ember -- "$ember" --no-api --config-file "$tmp/vm.json"
fi
if ((want_qemu)); then
  source "$root/bench/qemu_cpu.sh"
  qemu_cpu=$(qemu_kvm_cpu "$qemu") || die "QEMU cannot start a KVM guest here"
  run_bench qemu --ok-status "$qemu_ok" -- \
    "$qemu" -M microvm,x-option-roms=off,pit=off,pic=off,rtc=off -enable-kvm -cpu "$qemu_cpu" \
    -m 128 -nodefaults -no-user-config -nographic -serial stdio \
    -kernel "$guest" -append console=ttyS0 -device isa-debug-exit,iobase=0xf4
fi

# median NAME METRIC -> the median from boot_bench's JSON, or "n/a"
median() {
  local v
  v=$(grep -o "\"$2\":{\"median\":[^,}]*" "$tmp/$1.json" | head -n1 | sed 's/.*"median"://')
  [[ -n $v && $v != null ]] && printf '%s' "$v" || printf 'n/a'
}
count() { grep -o "\"$2\":[0-9]*" "$tmp/$1.json" | head -n1 | cut -d: -f2; }

echo
printf 'guest: %s\n' "$guest"
((want_ember)) && printf 'ember: %s (%s/%s runs ok)\n' "$ember" "$(count ember ok)" "$(count ember runs)"
((want_qemu)) && printf 'qemu:  %s (%s/%s runs ok)\n' "$("$qemu" --version | head -n1)" "$(count qemu ok)" "$(count qemu runs)"
echo
printf '%-20s %12s %12s %12s\n' "median" "ember" "qemu" "qemu/ember"
for row in "first output (ms):first_output_ms" "exit (ms):exit_ms" "CPU user+sys (ms):cpu_ms" "peak RSS (KiB):peak_rss_kib"; do
  label=${row%%:*} key=${row#*:}
  e=n/a q=n/a
  ((want_ember)) && e=$(median ember "$key")
  ((want_qemu)) && q=$(median qemu "$key")
  ratio=$(awk -v e="$e" -v q="$q" 'BEGIN {
    if (e == "n/a" || q == "n/a" || e + 0 <= 0) print "n/a"; else printf "%.2fx", q / e }')
  printf '%-20s %12s %12s %12s\n' "$label" "$e" "$q" "$ratio"
done

if [[ -n $json_out ]]; then
  {
    printf '{"guest":"%s"' "$(json_escape "$guest")"
    ((want_ember)) && printf ',"ember":%s' "$(cat "$tmp/ember.json")"
    ((want_qemu)) && printf ',"qemu":%s' "$(cat "$tmp/qemu.json")"
    printf '}\n'
  } >"$json_out"
  printf '\nJSON written to %s\n' "$json_out"
fi
exit "$any_failed"
