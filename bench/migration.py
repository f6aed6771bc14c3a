#!/usr/bin/python3
"""Migration benchmark: the limit of the transport, tern -> tern and QEMU 7.2
-> QEMU 7.2, in one run (not a test; figures go to docs/benchmarks.md,
section "Migration").

  limit   bench/migration-limit.c (built here with cc -O2): 1 GiB of pages
          moved from a populated memfd in one process into a fresh memfd
          in another over a unix socket, nothing else done. One stream of
          RAM records (write from the mapping; read, pwrite into the memfd)
          and N streams of multifd packets (splice from the memfd; splice
          into the memfd, as tern's channels do).
  paused  2 GiB guest holding 1 GiB of random data at 1 GiB, paused (-S),
          over a unix socket, unthrottled (max-bandwidth 1 TiB/s); single
          stream and multifd with N channels, for both VMMs. QEMU's guest
          gets the data with -device loader,force-raw=on; tern's with the
          test aid QMP x-ram-load (the same bytes at the same address).
          Reported: query-migrate's total-time, the wall time from the
          migrate command to 'completed', payload GB/s (1 GiB / wall).
  live    1 GiB guest running the guest kit's dirty workload over 256 MiB
          at 64 MiB/s, max-bandwidth 1 GiB/s, downtime-limit 300 ms (QEMU's
          default), single stream and multifd (2 channels): total-time,
          downtime, dirty syncs, and the guest's own verification on the
          destination (no TG FAIL).
Ratios: tern against QEMU's default and against QEMU's best configuration
(the fastest of its single stream and multifd rows), and each tern row as a
share of the one-stream limit. Both VMMs boot the same guest kit ELF; QEMU
runs -M microvm. Runs alternate which VMM goes first; medians.

Usage: /usr/bin/python3 bench/migration.py [--build DIR] [--runs N]
           [--channels 2,4] [--only limit|paused|live] [--quick]
  default: build/, 3 runs, channels 2 and 4; --quick: 1 run, 2 channels.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cprog

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "functional"))

GiB = 1 << 30
DATA_ADDR = 1 * GiB


# ---- the limit -------------------------------------------------------------

def limit_run(exe, streams):
    """Wall ms to move 1 GiB: one plain stream (streams == 0) or multifd."""
    args = (["-f", "plain"] if streams == 0 else
            ["-f", "multifd", "-n", str(streams), "-S", "splice",
             "-R", "splice"])
    out = subprocess.run([str(exe), "-t", "unix", "-m", "1024", *args],
                         check=True, capture_output=True, text=True).stdout
    r = json.loads(out)
    if not r["ok"]:
        raise RuntimeError(f"migration-limit {args}: bytes differ")
    return r["ms"]


# ---- VMs -------------------------------------------------------------------

def wait_status(vm, timeout=180.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = vm.qmp().execute("query-migrate")
        if info.get("status") in ("completed", "failed", "cancelled"):
            return info
        time.sleep(0.002)
    raise RuntimeError(f"{vm.name}: migration did not finish")


def wait_inmigrate(vm):
    deadline = time.monotonic() + 60
    while vm.qmp().execute("query-status")["status"] != "inmigrate":
        if time.monotonic() > deadline:
            raise RuntimeError(f"{vm.name} never reached inmigrate")
        time.sleep(0.01)


def set_channels(vm, channels):
    """multifd with 'channels' channels; 0: a single stream."""
    if channels:
        vm.qmp().execute("migrate-set-capabilities", capabilities=[
            {"capability": "multifd", "state": True}])
        vm.qmp().execute("migrate-set-parameters",
                         **{"multifd-channels": channels})


def pair(kind, tmp, tag, **kw):
    from ternlib import QemuVm, TernVm
    cls = TernVm if kind == "tern" else QemuVm
    src = cls(tmp, name=f"{kind}-{tag}-a", qmp=True, **kw)
    uri = "unix:" + src.sock_path("mig")
    # Deferred: the destination's capabilities are set before it listens.
    dst = cls(tmp, name=f"{kind}-{tag}-b", qmp=True, incoming="defer", **kw)
    return src, dst, uri


def migrate(src, dst, uri, channels, params):
    wait_inmigrate(dst)
    set_channels(dst, channels)
    dst.qmp().execute("migrate-incoming", uri=uri)
    set_channels(src, channels)
    src.qmp().execute("migrate-set-parameters", **params)
    t0 = time.monotonic()
    src.qmp().execute("migrate", uri=uri)
    info = wait_status(src)
    wall = time.monotonic() - t0
    if info["status"] != "completed":
        raise RuntimeError(f"{src.name}: {info}")
    return info, wall


def paused_run(kind, channels, tmp, data):
    from ternlib import QmpClient, guestkit
    extra = []
    if kind == "qemu":
        extra = ["-device",
                 f"loader,file={data},addr={DATA_ADDR:#x},force-raw=on"]
    src, dst, uri = pair(kind, tmp, f"paused{channels}", memory="2G",
                         paused=True, append=guestkit.cmdline("idle"),
                         extra_args=extra)
    with src, dst:
        # QEMU's loader reads the 1 GiB before its monitor greets.
        src._qmp = QmpClient(src.qmp_path, connect_timeout=120, timeout=120)
        if kind == "tern":
            src.qmp().execute("x-ram-load", filename=str(data),
                              addr=DATA_ADDR)
        info, wall = migrate(src, dst, uri, channels,
                             {"max-bandwidth": 1 << 40})
    return info["total-time"], wall * 1000


def live_run(kind, channels, tmp):
    from ternlib import guestkit
    append = guestkit.cmdline("dirty", mem="256M", rate="64M", report=100)
    src, dst, uri = pair(kind, tmp, f"live{channels}", memory="1G",
                         append=append)
    with src, dst:
        guestkit.wait_dirty_passes(src.serial, 2, timeout=60)
        info, _ = migrate(src, dst, uri, channels,
                          {"max-bandwidth": GiB, "downtime-limit": 300})
        last = guestkit.last_dirty_pass(src.serial) or 0
        guestkit.wait_dirty_passes(dst.serial, last + 2, timeout=60)
        dst.serial.assert_no_fail()
    return (info["total-time"], info["downtime"],
            info["ram"]["dirty-sync-count"])


# ---- the run ---------------------------------------------------------------

def random_file(path):
    with open(path, "wb") as f:
        for _ in range(64):
            f.write(os.urandom(16 << 20))


def measure(args, tmp):
    """{(what, kind, channels): [sample, ...]}, runs interleaved."""
    res = {}
    rows = [0, *args.channels]
    data = Path(tmp) / "random.bin"
    exe = (cprog.build("migration-limit", tmp)
           if args.only in (None, "limit") else None)
    if args.only in (None, "paused"):
        random_file(data)
    for r in range(args.runs):
        if exe:
            for n in (0, 1, *args.channels):
                res.setdefault(("limit", "limit", n), []).append(
                    limit_run(exe, n))
        kinds = ("tern", "qemu") if r % 2 == 0 else ("qemu", "tern")
        for kind in kinds:
            for ch in rows if args.only in (None, "paused") else ():
                res.setdefault(("paused", kind, ch), []).append(
                    paused_run(kind, ch, tmp, data))
            for ch in rows[:2] if args.only in (None, "live") else ():
                res.setdefault(("live", kind, ch), []).append(
                    live_run(kind, ch, tmp))
    return res


def label(kind, ch):
    return f"{kind} {'single stream' if not ch else f'multifd {ch}'}"


def print_limit(res, runs):
    print(f"limit, 1 GiB of pages memfd -> memfd, unix socket "
          f"(bench/migration-limit.c, median of {runs})")
    for (what, _, n), xs in sorted(res.items()):
        if what == "limit":
            how = ("1 stream, write -> read+pwrite" if n == 0 else
                   f"multifd {n} stream{'s' * (n > 1)}, splice -> splice")
            print(f"  {how:36} {statistics.median(xs):6.0f} ms  "
                  f"{GiB / statistics.median(xs) / 1e6:5.2f} GB/s")


def print_paused(res, runs):
    print(f"paused, 2 GiB guest, 1 GiB random data, unix socket, "
          f"unthrottled (median of {runs})")
    wall = {}
    for (what, kind, ch), xs in sorted(res.items(),
                                       key=lambda kv: (kv[0][1] != "tern",
                                                       kv[0][2])):
        if what != "paused":
            continue
        tt = statistics.median(x[0] for x in xs)
        wall[(kind, ch)] = statistics.median(x[1] for x in xs)
        print(f"  {label(kind, ch):22} total-time {tt:6.0f} ms  wall "
              f"{wall[(kind, ch)]:6.0f} ms  payload "
              f"{GiB / wall[(kind, ch)] / 1e6:5.2f} GB/s  "
              f"(all: {[round(x[1]) for x in xs]})")
    qemu = {ch: w for (k, ch), w in wall.items() if k == "qemu"}
    tern = {ch: w for (k, ch), w in wall.items() if k == "tern"}
    if not qemu or not tern:
        return
    best_ch = min(qemu, key=qemu.get)
    best = min(tern, key=tern.get)
    print(f"  QEMU's best: {label('qemu', best_ch)}")
    for ch, w in sorted(tern.items()):
        print(f"  {label('tern', ch):22} vs QEMU default {qemu[0] / w:4.2f}x"
              f"  vs QEMU best {qemu[best_ch] / w:4.2f}x")
    limit = {n: statistics.median(xs)
             for (what, _, n), xs in res.items() if what == "limit"}
    if 0 in limit:
        print(f"  tern single stream reaches {limit[0] / tern[0]:.0%} of "
              f"the one-stream limit")
    if best in limit:
        print(f"  {label('tern', best)} reaches {limit[best] / tern[best]:.0%}"
              f" of the {best}-stream multifd limit")


def print_live(res, runs):
    print(f"live, 1 GiB guest, dirty 256 MiB region at 64 MiB/s, "
          f"max-bandwidth 1 GiB/s, downtime-limit 300 ms (median of {runs})")
    for (what, kind, ch), rows in sorted(res.items(),
                                         key=lambda kv: (kv[0][1] != "tern",
                                                         kv[0][2])):
        if what == "live":
            print(f"  {label(kind, ch):22} total-time "
                  f"{statistics.median(x[0] for x in rows):6.0f} ms  "
                  f"downtime {statistics.median(x[1] for x in rows):5.0f} ms"
                  f"  syncs {statistics.median(x[2] for x in rows):3.0f}  "
                  f"(all downtimes: {[x[1] for x in rows]})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=str(REPO / "build"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--channels", default="2,4",
                    help="multifd channel counts, comma separated")
    ap.add_argument("--only", choices=("limit", "paused", "live"))
    ap.add_argument("--quick", action="store_true",
                    help="one run, 2 channels")
    args = ap.parse_args()
    args.channels = [int(c) for c in args.channels.split(",") if c]
    if args.quick:
        args.runs, args.channels = 1, [2]
    os.environ["TERN_BUILD"] = str(Path(args.build).resolve())
    print(f"load average at start: {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(prefix="tern-bench-mig-") as tmp:
        res = measure(args, tmp)
    if args.only in (None, "limit"):
        print_limit(res, args.runs)
    if args.only in (None, "paused"):
        print_paused(res, args.runs)
    if args.only in (None, "live"):
        print_live(res, args.runs)
    print(f"load average at end: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
