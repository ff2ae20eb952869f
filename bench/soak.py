#!/usr/bin/env python3
"""Soak: one ember serving its API to valid, invalid and hostile requests
while its guest runs, then many boots in sequence and at once.

Reports ember's RSS, open fds and threads after warm-up and at the end (they
must not grow), every unexpected answer, and boot failures. A benchmark, not
a test: it asserts nothing, it prints what it saw (exit status 1 if anything
failed, so a script can notice).

  bench/soak.py [--requests N] [--boots N] [--parallel N] [--build DIR]
"""
import argparse
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def proc_figures(pid):
    rss = threads = 0
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return {"rss_kib": rss, "fds": fds, "threads": threads}


class Client:
    """One keep-alive connection; reconnects when ember closes it."""

    def __init__(self, path):
        self.path = path
        self.sock = None

    def _connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(self.path)
        self.buffer = b""

    def close(self):
        if self.sock:
            self.sock.close()
        self.sock = None

    def _read_answer(self):
        while b"\r\n\r\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buffer += chunk
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(rest) < length:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            rest += chunk
        self.buffer = rest[length:]
        return status, rest[:length]

    def send(self, raw, fresh=False):
        """Sends raw bytes; returns (status, body) or None if no answer came."""
        if fresh:
            self.close()
        for attempt in range(2):
            try:
                if self.sock is None:
                    self._connect()
                self.sock.sendall(raw)
                if fresh:
                    # Nothing follows: say so, or an incomplete request
                    # waits out ember's 5 s per-request budget.
                    self.sock.shutdown(socket.SHUT_WR)
                answer = self._read_answer()
                if answer is None:
                    self.close()
                return answer
            except (BrokenPipeError, ConnectionResetError):
                self.close()
                if attempt:
                    return None
            except socket.timeout:
                self.close()
                return None
        return None


def request(method, path, body=None, extra=b""):
    data = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    head = f"{method} {path} HTTP/1.1\r\nHost: localhost\r\n".encode() + extra
    if body is not None:
        head += f"Content-Length: {len(data)}\r\nContent-Type: application/json\r\n".encode()
    return head + b"\r\n" + data


# Each kind: how to build it, what ember must answer (None: any answer or a
# closed connection is fine, as long as ember lives), and whether it goes on a
# fresh connection (hostile framing ruins a kept-alive one).
def hostile_bytes(rng):
    return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))


KINDS = [
    ("get /", 30, lambda r: request("GET", "/"), {200}, False),
    ("get machine-config", 10, lambda r: request("GET", "/machine-config"), {200}, False),
    ("get vm/config", 5, lambda r: request("GET", "/vm/config"), {200}, False),
    ("put after start", 10,
     lambda r: request("PUT", "/machine-config", {"vcpu_count": 2, "mem_size_mib": 64}), {400}, False),
    ("wrong types", 10,
     lambda r: request("PUT", "/drives/x", {"drive_id": 5, "is_root_device": "yes"}), {400}, False),
    ("bad json", 5, lambda r: request("PUT", "/mmds", b"{\"a\": [1, 2"), {400}, False),
    ("unknown path", 5, lambda r: request("GET", "/no/such/path"), {400}, False),
    ("non-utf8 path", 5, lambda r: b"GET /\x92\xff HTTP/1.1\r\nHost: x\r\n\r\n", {400}, False),
    ("mmds put/get", 5, lambda r: request("PUT", "/mmds", {"k": r.randrange(1 << 30)}), {204}, False),
    ("chunked", 3,
     lambda r: b"PUT /mmds HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
     {400}, True),
    ("oversized body", 2, lambda r: request("PUT", "/mmds", b"{\"a\":\"" + b"x" * 60000 + b"\"}"),
     {400}, True),
    ("header flood", 2,
     lambda r: b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(200)) + b"\r\n",
     {400}, True),
    ("random bytes", 8, hostile_bytes, None, True),
]


STALLED = 200  # more than ember's 128 connections, 16 workers and 16 queue slots


def stalled_clients(sock_path, client, failures):
    """STALLED clients send half a request and go quiet; meanwhile 1,000
    requests on the kept-alive connection and 200 on fresh ones. Reports
    how long those took and the slowest one."""
    quiet = []
    for i in range(STALLED):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(10)
        try:
            sock.connect(sock_path)
            sock.sendall(b"PUT /mmds HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"a\"" if i % 2
                         else b"GET /machine-con")
        except OSError:
            pass  # past the cap the newest may be turned away: that is the point
        quiet.append(sock)
    slowest = 0.0
    answered = 0
    begin = time.monotonic()
    for i in range(1200):
        one = time.monotonic()
        answer = client.send(request("GET", "/"), fresh=i >= 1000)
        slowest = max(slowest, time.monotonic() - one)
        if answer is not None and answer[0] == 200:
            answered += 1
        elif len(failures) < 20:
            failures.append(f"with {STALLED} stalled clients, request {i}: {answer}")
    seconds = time.monotonic() - begin
    client.close()
    for sock in quiet:
        sock.close()
    time.sleep(1)  # ember notices the closes (fds are counted next)
    return {"clients": STALLED, "requests": 1200, "answered": answered, "seconds": seconds,
            "slowest_ms": slowest * 1000}


def api_soak(args, tmp, failures):
    sock_path = os.path.join(tmp, "api.sock")
    log = open(os.path.join(tmp, "ember.log"), "w")
    ember = subprocess.Popen([args.ember, "--api-sock", sock_path, "--level", "Warning"],
                             stdout=subprocess.DEVNULL, stderr=log)
    for _ in range(2000):
        if os.path.exists(sock_path):
            break
        time.sleep(0.005)
    client = Client(sock_path)
    setup = [
        request("PUT", "/boot-source", {"kernel_image_path": args.guest,
                                        "boot_args": "console=ttyS0 ember.tests=ctrlaltdel"}),
        request("PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 128}),
        request("PUT", "/actions", {"action_type": "InstanceStart"}),
    ]
    for raw in setup:
        answer = client.send(raw)
        if answer is None or answer[0] != 204:
            failures.append(f"set-up {raw[:40]!r}: {answer}")
            ember.kill()
            return None
    rng = random.Random(1)
    weights = [k[1] for k in KINDS]
    counts = {k[0]: 0 for k in KINDS}
    statuses = {}
    warm = None
    begin = time.monotonic()
    for i in range(args.requests):
        if i == min(1000, args.requests // 10):
            warm = proc_figures(ember.pid)
        name, _, build, expected, fresh = rng.choices(KINDS, weights)[0]
        counts[name] += 1
        answer = client.send(build(rng), fresh=fresh)
        if fresh:
            client.close()
        status = answer[0] if answer else "closed"
        statuses[status] = statuses.get(status, 0) + 1
        if expected is not None and (answer is None or answer[0] not in expected):
            if len(failures) < 20:
                failures.append(f"request {i} ({name}): {answer}")
        if ember.poll() is not None:
            failures.append(f"ember ended with {ember.returncode} at request {i} ({name})")
            return None
        if i % 5000 == 4999:
            # Pause and resume while the guest runs, as platforms do.
            for state in ("Paused", "Resumed"):
                answer = client.send(request("PATCH", "/vm", {"state": state}))
                if answer is None or answer[0] != 204:
                    failures.append(f"PATCH /vm {state}: {answer}")
    seconds = time.monotonic() - begin
    stalled = stalled_clients(sock_path, client, failures)
    end = proc_figures(ember.pid)
    client.send(request("PUT", "/actions", {"action_type": "SendCtrlAltDel"}))
    client.close()
    try:
        code = ember.wait(60)
    except subprocess.TimeoutExpired:
        ember.kill()
        code = "hung"
    if code != 0:
        failures.append(f"ember exited {code} after the soak")
    return {"requests": args.requests, "seconds": seconds, "warm": warm, "end": end,
            "statuses": statuses, "kinds": counts, "stalled": stalled, "exit": code}


def boot_once(args, config):
    result = subprocess.run([args.ember, "--no-api", "--config-file", config],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    ok = result.returncode == 0 and b"ember-guest: done" in result.stdout
    return ok, result.returncode, result.stderr[-300:]


def boots(args, tmp, failures):
    config = os.path.join(tmp, "vm.json")
    with open(config, "w") as out:
        json.dump({"boot-source": {"kernel_image_path": args.guest, "boot_args": "console=ttyS0 ember.tests=cmdline"},
                   "machine-config": {"vcpu_count": 1, "mem_size_mib": 128}}, out)
    figures = {}
    begin = time.monotonic()
    bad = 0
    for i in range(args.boots):
        ok, code, err = boot_once(args, config)
        if not ok:
            bad += 1
            if bad <= 5:
                failures.append(f"sequential boot {i}: exit {code}: {err!r}")
    figures["sequential"] = {"boots": args.boots, "failed": bad,
                             "seconds": time.monotonic() - begin}
    begin = time.monotonic()
    running = [subprocess.Popen([args.ember, "--no-api", "--config-file", config],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
               for _ in range(args.parallel)]
    bad = 0
    for i, process in enumerate(running):
        out, err = process.communicate(timeout=300)
        if process.returncode != 0 or b"ember-guest: done" not in out:
            bad += 1
            if bad <= 5:
                failures.append(f"parallel boot {i}: exit {process.returncode}: {err[-300:]!r}")
    figures["parallel"] = {"boots": args.parallel, "failed": bad,
                           "seconds": time.monotonic() - begin}
    return figures


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100000)
    parser.add_argument("--boots", type=int, default=1000)
    parser.add_argument("--parallel", type=int, default=64)
    parser.add_argument("--build", default=os.path.join(ROOT, "build"))
    args = parser.parse_args()
    args.ember = os.path.join(args.build, "ember")
    args.guest = os.path.join(args.build, "tests", "guest", "guest-pvh.elf")
    failures = []
    with tempfile.TemporaryDirectory(prefix="ember-soak-") as tmp:
        api = api_soak(args, tmp, failures)
        boot = boots(args, tmp, failures)
    if api:
        print(f"API soak: {api['requests']} requests in {api['seconds']:.1f} s "
              f"({api['requests'] / api['seconds']:.0f}/s), ember exit {api['exit']}")
        print("  answers: " + ", ".join(f"{k}: {v}" for k, v in sorted(api["statuses"].items(),
                                                                     key=lambda kv: str(kv[0]))))
        print("  kinds:   " + ", ".join(f"{k} {v}" for k, v in api["kinds"].items()))
        st = api["stalled"]
        print(f"  with {st['clients']} clients stalled half-way through a request: "
              f"{st['answered']}/{st['requests']} answered in {st['seconds']:.2f} s, "
              f"slowest {st['slowest_ms']:.1f} ms")
        print("  | figure | after warm-up | at the end |")
        print("  |---|---|---|")
        for key in ("rss_kib", "fds", "threads"):
            print(f"  | {key} | {api['warm'][key]} | {api['end'][key]} |")
    for kind, f in boot.items():
        print(f"{kind} boots: {f['boots']} in {f['seconds']:.2f} s, {f['failed']} failed")
    for failure in failures:
        print("FAILURE: " + failure)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
