#!/usr/bin/env bash
# vsock benchmark, host <-> the test guest through ember's hybrid vsock:
# the guest's `vsock` test echoes port 1024. The host (Python) connects to
# uds_path with Kata's handshake and measures the round trip of a 64-byte
# message (1000 times, one at a time) and the throughput of an N MiB
# stream (default 64) echoed back, both directions at once. With
# /dev/vhost-vsock QEMU's vhost-vsock-device would be the peer; this
# machine has none (no vhost modules for PVM), so the numbers are ember's
# alone.
#
#   bench/vsock_bench.sh [--runs N] [--mib M]   (expects the tree built in ${BUILD_DIR:-build})
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BUILD_DIR:-$root/build}
runs=3 mib=64
while [[ $# -gt 0 ]]; do
  case $1 in
    --runs) runs=${2:?--runs needs a value}; shift 2 ;;
    --mib) mib=${2:?--mib needs a value}; shift 2 ;;
    *) echo "usage: $0 [--runs N] [--mib M]" >&2; exit 2 ;;
  esac
done
work=$(mktemp -d)
ember_pid=
trap '[[ -n $ember_pid ]] && kill "$ember_pid" 2>/dev/null; rm -rf "$work"' EXIT
[[ -e /dev/vhost-vsock ]] && echo "vsock_bench: /dev/vhost-vsock exists, but the QEMU side is not written yet" >&2

cat >"$work/vm.json" <<JSON
{"boot-source": {"kernel_image_path": "$build/tests/guest/guest-pvh.elf",
                 "boot_args": "console=ttyS0 ember.tests=vsock"},
 "machine-config": {"vcpu_count": 1, "mem_size_mib": 128},
 "vsock": {"guest_cid": 3, "uds_path": "$work/v.sock"}}
JSON
cat >"$work/client.py" <<'PY'
import os, socket, statistics, sys, threading, time
uds, mib = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_UNIX)
s.connect(uds)
s.sendall(b"CONNECT 1024\n")
reply = b""
while not reply.endswith(b"\n"):
    reply += s.recv(1)
assert reply.startswith(b"OK "), reply
def recv_exactly(n):
    got = bytearray()
    while len(got) < n:
        chunk = s.recv(n - len(got))
        if not chunk:
            sys.exit("stream closed")
        got += chunk
    return bytes(got)
message = os.urandom(64)
rtts = []
for _ in range(1000):
    t0 = time.perf_counter()
    s.sendall(message)
    assert recv_exactly(64) == message
    rtts.append(time.perf_counter() - t0)
data = os.urandom(1 << 20) * mib
t0 = time.perf_counter()
sender = threading.Thread(target=s.sendall, args=(data,))
sender.start()
got = recv_exactly(len(data))
elapsed = time.perf_counter() - t0
sender.join()
assert got == data
print("rtt_us %.1f mib_s %.2f" % (statistics.median(rtts) * 1e6, mib / elapsed))
PY
rtts=() rates=()
for _ in $(seq "$runs"); do
  rm -f "$work/v.sock"
  "$build/ember" --no-api --config-file "$work/vm.json" --level Warning >"$work/console" 2>&1 &
  ember_pid=$!
  for _ in $(seq 300); do grep -q 'vsock ready' "$work/console" 2>/dev/null && break; sleep 0.1; done
  out=$(python3 "$work/client.py" "$work/v.sock" "$mib")
  kill "$ember_pid"; wait "$ember_pid" 2>/dev/null || true; ember_pid=
  echo "$out"
  rtts+=("$(awk '{print $2}' <<<"$out")")
  rates+=("$(awk '{print $4}' <<<"$out")")
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}'; }
echo "median of $runs runs: 64-byte round trip $(median "${rtts[@]}") us, $mib MiB echoed at $(median "${rates[@]}") MiB/s each way (no peer: no /dev/vhost-vsock here)"
