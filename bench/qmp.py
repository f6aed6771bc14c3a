#!/usr/bin/python3
"""QMP benchmark: tern vs QEMU 7.2 microvm, both running the guest kit's idle
workload, measured in one run (not a test; figures for docs/benchmarks.md).

  connect_ms   connect() -> greeting read -> qmp_capabilities answered,
               median over --connects fresh connections
  rtt_us       one query-status round trip on a negotiated session, median
               over --calls sequential calls
  pipelined/s  --pipelined query-status requests written at once, all
               replies read: requests per second
  bad/s        the same with malformed JSON ('{"execute": }'): error replies
               per second
Usage: bench/qmp.py [--build DIR] [--calls N] [--connects N] [--pipelined N]
(default build: <repo>/build, the optimised tree).
"""
import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def tern_cmd(build, kit, sock):
    return [str(build / "tern"), "-M", "virt", "-accel", "kvm", "-m", "64M",
            "-kernel", str(kit), "-append", "tg.workload=idle", "-serial", "null",
            "-display", "none", "-qmp", f"unix:{sock},server=on,wait=off"]


def qemu_cmd(build, kit, sock):
    return ["qemu-system-x86_64", "-M", "microvm", "-accel", "kvm",
            "-cpu", "host,-arch-capabilities", "-nodefaults", "-no-user-config",
            "-m", "64M", "-kernel", str(kit), "-append", "tg.workload=idle",
            "-serial", "null", "-display", "none",
            "-qmp", f"unix:{sock},server=on,wait=off"]


class Conn:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(30)
        self.s.connect(str(path))
        self.buf = b""

    def lines(self, n):
        while self.buf.count(b"\n") < n:
            chunk = self.s.recv(1 << 20)
            if not chunk:
                raise EOFError("QMP closed")
            self.buf += chunk
        out = self.buf.split(b"\n")
        self.buf = b"\n".join(out[n:])
        return out[:n]

    def negotiate(self):
        self.lines(1)
        self.s.sendall(b'{"execute": "qmp_capabilities"}\n')
        self.lines(1)

    def close(self):
        self.s.close()


def wait_socket(path, proc, timeout=20):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"no QMP socket at {path}")
        time.sleep(0.01)


def measure(cmd_fn, build, kit, args):
    d = Path(tempfile.mkdtemp(prefix="qmpbench-", dir="/tmp"))
    sock = d / "q.sock"
    proc = subprocess.Popen(cmd_fn(build, kit, sock), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_socket(sock, proc)
        time.sleep(0.3)
        connects = []
        for _ in range(args.connects):
            t0 = time.perf_counter()
            c = Conn(sock)
            c.negotiate()
            connects.append((time.perf_counter() - t0) * 1e3)
            c.close()
        c = Conn(sock)
        c.negotiate()
        rtts = []
        for _ in range(args.calls):
            t0 = time.perf_counter()
            c.s.sendall(b'{"execute": "query-status"}\n')
            c.lines(1)
            rtts.append((time.perf_counter() - t0) * 1e6)
        rates = {}
        for name, msg in (("pipelined", b'{"execute": "query-status"}\n'),
                          ("bad", b'{"execute": }\n')):
            t0 = time.perf_counter()
            c.s.sendall(msg * args.pipelined)
            c.lines(args.pipelined)
            rates[name] = args.pipelined / (time.perf_counter() - t0)
        c.close()
        return {"connect_ms": statistics.median(connects),
                "rtt_us": statistics.median(rtts), **rates}
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(d, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.environ.get("TERN_BUILD", REPO / "build"))
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--connects", type=int, default=200)
    ap.add_argument("--pipelined", type=int, default=5000)
    args = ap.parse_args()
    build = Path(args.build)
    kit = build / "tests" / "guest" / "tguest.elf"
    for p in (build / "tern", kit):
        if not p.exists():
            sys.exit(f"missing {p}: build it first (scripts/build build)")
    t = measure(tern_cmd, build, kit, args)
    q = measure(qemu_cmd, build, kit, args)
    print(f"{'':14} {'tern':>12} {'QEMU 7.2':>12} {'ratio':>8}")
    rows = [("connect_ms", "connect+negotiate ms", False),
            ("rtt_us", "query-status µs", False),
            ("pipelined", "pipelined req/s", True),
            ("bad", "malformed req/s", True)]
    for key, label, higher_better in rows:
        ratio = t[key] / q[key] if higher_better else q[key] / t[key]
        print(f"{label:22} {t[key]:12.1f} {q[key]:12.1f} {ratio:7.1f}x")
    print("(ratio > 1: tern is better)")


main()
