#!/usr/bin/python3
"""Postcopy benchmark: tern -> tern vs QEMU 7.2 -> QEMU 7.2 in one run, with
and without postcopy-preempt (not a test; figures go to docs/benchmarks.md,
section "Postcopy").

Workload: a 512 MiB guest running the guest kit's dirty workload over a
256 MiB region flat out (random walk), which a 64 MiB/s precopy link can
never converge on; after the first pass migrate-start-postcopy switches over
and the rest of RAM streams unthrottled over a unix socket. Reported per
configuration (medians over the runs):
  total     query-migrate total-time on the source (ms)
  postcopy  wall time from migrate-start-postcopy to 'completed' (ms)
  downtime  query-migrate downtime on the source (ms)
  requests  the source's postcopy-requests
  stall     what the guest itself saw: every page access slower than
            tg.stall (20 us) timed with its TSC (the difference of the
            guest's cumulative histograms): count, p50, p99, max (us), from
            migrate-start-postcopy to the end (the postcopy phase and its
            switchover) and over the whole migration; the same measure on
            both VMMs. 'idle' is the same guest over 2 s before migrating:
            the host's own noise (dirty logging off).
  fault     tern only: the destination's fault -> page placed latency
            (x-postcopy-fault-latency): p50 p90 p99 max (us)
  blocktime the destination's postcopy-blocktime (capability on), ms
Both VMMs boot the same guest kit ELF; QEMU runs -M microvm.
The limit for 'fault' (bench/postcopy-limit.c, built here with cc -O2, run
LIMIT_RUNS times per run): the same chain of hops (fault thread, the
source's request thread, the page receiver's UFFDIO_COPY) in two bare
processes doing nothing else, with the two bulk streams beside it (as in a
postcopy) and without them (requests alone on an otherwise idle host).
Usage: bench/postcopy.py [--build DIR] [--runs N] [--vmm tern|qemu|both]
                         [--preempt on|off|both]   (default build: build/)
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cprog

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "functional"))

MEM = "512M"
REGION = "256M"
PRECOPY_BW = 64 << 20
STALL_US = 20
STALL_SUB = 2                   # tests/guest/dirty.c's buckets
STALL_RE = r"^TG dirty stall count=(\d+) p50=(\d+) p99=(\d+) max=(\d+)$"
LIMIT_RUNS = 3
LIMIT_MODES = {"limit": [], "limit, requests alone": ["--no-bulk"]}


def limit_run(exe, args):
    """The bare chain's fault -> placed p50/p90/p99/max (us)."""
    out = subprocess.run([str(exe), *args], check=True, capture_output=True,
                         text=True).stdout
    r = json.loads(out)
    if not r["ok"]:
        raise RuntimeError(f"postcopy-limit {args}: pages missing")
    return {"faults": r["faults"],
            "fault": tuple(r[k] for k in ("p50", "p90", "p99", "max"))}


def bucket_top(b):
    if b < (1 << STALL_SUB):
        return b
    e = (b >> STALL_SUB) + STALL_SUB - 1
    sub = b & ((1 << STALL_SUB) - 1)
    return (((1 << STALL_SUB) | sub) << (e - STALL_SUB)) + \
        (1 << (e - STALL_SUB)) - 1


def histograms(lines):
    """Each report's cumulative stall histogram, in order."""
    out = []
    for line in lines:
        if re.match(STALL_RE, line):
            out.append({})
        elif line.startswith("TG dirty stallhist ") and out:
            for item in line.split()[3].split(","):
                b, c = item.split(":")
                out[-1][int(b)] = int(c)
    return out


def stall_stats(before, after):
    diff = {b: after.get(b, 0) - before.get(b, 0) for b in after}
    diff = {b: c for b, c in diff.items() if c > 0}
    n = sum(diff.values())

    def quantile(pct):
        want, seen = (n * pct + 99) // 100, 0
        for b in sorted(diff):
            seen += diff[b]
            if seen >= want:
                return bucket_top(b)
        return 0
    top = bucket_top(max(diff)) if diff else 0
    return n, quantile(50), quantile(99), top


def last_report(vm):
    """The last complete cumulative histogram (the newest report may still
    be printing its buckets; reports come every 200 ms)."""
    n = max(len(histograms(vm.serial.lines())) + 1, 2)
    vm.serial.wait_for(STALL_RE, timeout=10, where=lambda m: len(
        histograms(vm.serial.lines())) >= n)
    return histograms(vm.serial.lines())[-2]


def run(kind, preempt, tmp, tag):
    from ternlib import QemuVm, TernVm, guestkit
    from ternlib.migration import wait_runstate
    from ternlib import postcopy as pc
    cls = TernVm if kind == "tern" else QemuVm
    append = guestkit.cmdline("dirty", mem=REGION, rate=0, walk="random",
                              report=200, stall=STALL_US)
    caps = pc.caps_for(preempt=preempt, blocktime=True, events=False)
    src = cls(tmp, name=f"{tag}-a", qmp=True, memory=MEM, append=append)
    dst = cls(tmp, name=f"{tag}-b", qmp=True, memory=MEM, append=append,
              incoming="defer")
    with src, dst:
        guestkit.wait_dirty_passes(src.serial, 2, timeout=60)
        uri = "unix:" + src.sock_path("mig")
        pc.prepare_destination(dst, uri, caps)
        pc.set_caps(src, caps)
        src.qmp().execute("migrate-set-parameters",
                          **{"max-bandwidth": PRECOPY_BW})
        idle0 = last_report(src)
        time.sleep(2)
        idle1 = last_report(src)
        src.qmp().execute("migrate", uri=uri)
        pc.wait_first_pass(src, timeout=120)
        switch = last_report(src)
        t0 = time.monotonic()
        src.qmp().execute("migrate-start-postcopy")
        si = pc.wait_migrate_status(src, ("completed", "failed"), 180)
        phase = (time.monotonic() - t0) * 1000
        if si["status"] != "completed":
            raise RuntimeError(f"{src.name}: {si}")
        di = pc.wait_migrate_status(dst, ("completed", "failed"), 180)
        wait_runstate(dst, "running")
        # Two more reports, so the last one covers the whole migration.
        n = len(histograms(dst.serial.lines()))
        dst.serial.wait_for(STALL_RE, timeout=10,
                            where=lambda m: len(histograms(
                                dst.serial.lines())) >= n + 2)
        dst.serial.assert_no_fail()
        after = histograms(dst.serial.lines())[-2]
    lat = di.get("x-postcopy-fault-latency", {})
    return {
        "total": si["total-time"], "downtime": si["downtime"],
        "phase": phase,
        "requests": si["ram"]["postcopy-requests"],
        "stall": stall_stats(switch, after),
        "stall_all": stall_stats(idle1, after),
        "idle": stall_stats(idle0, idle1),
        "fault": tuple(lat.get(k, 0) / 1000 for k in
                       ("p50-ns", "p90-ns", "p99-ns", "max-ns")),
        "blocktime": di.get("postcopy-blocktime", 0),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=str(REPO / "build"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--vmm", choices=("both", "tern", "qemu"), default="both",
                    help="run one VMM only (figures without the other side "
                    "are not a comparison)")
    ap.add_argument("--preempt", choices=("both", "on", "off"),
                    default="both")
    args = ap.parse_args()
    os.environ["TERN_BUILD"] = str(Path(args.build).resolve())
    kinds = ("tern", "qemu") if args.vmm == "both" else (args.vmm,)
    modes = {"both": (False, True), "on": (True,), "off": (False,)}
    configs = [(k, p) for k in kinds for p in modes[args.preempt]]
    results = {c: [] for c in configs}
    limits = {name: [] for name in LIMIT_MODES}
    with tempfile.TemporaryDirectory(prefix="tern-bench-pc-") as tmp:
        exe = cprog.build("postcopy-limit", tmp)
        for r in range(args.runs):
            order = configs if r % 2 == 0 else configs[::-1]
            for kind, preempt in order:
                tag = f"{kind}{'-pre' if preempt else ''}-{r}"
                results[(kind, preempt)].append(run(kind, preempt, tmp, tag))
            for name, largs in LIMIT_MODES.items():
                limits[name] += [limit_run(exe, largs)
                                 for _ in range(LIMIT_RUNS)]
    report(results, args.runs)
    report_limits(limits)
    return 0


def med(rows, key, i=None):
    vals = [r[key] if i is None else r[key][i] for r in rows]
    return statistics.median(vals)


def report(results, runs):
    print(f"postcopy, {MEM} guest, dirty {REGION} flat out, precopy "
          f"{PRECOPY_BW >> 20} MiB/s then postcopy after the first pass, unix "
          f"socket (median of {runs})")
    print("  config         total postcopy downtime requests | postcopy stalls: "
          "n p50 p99 max | whole migration: n p99 | idle 2 s: n p99 | fault "
          "p50/p90/p99/max us | blocktime")
    for (kind, preempt), rows in results.items():
        name = f"{kind}{' preempt' if preempt else ''}"
        fault = "/".join(f"{med(rows, 'fault', i):.0f}" for i in range(4)) \
            if kind == "tern" else "-"
        st = " ".join(f"{med(rows, 'stall', i):.0f}" for i in range(4))
        print(f"  {name:14} {med(rows, 'total'):5.0f} {med(rows, 'phase'):8.0f}"
              f" {med(rows, 'downtime'):8.0f}"
              f" {med(rows, 'requests'):8.0f} | {st:>24} |"
              f" {med(rows, 'stall_all', 0):.0f} {med(rows, 'stall_all', 2):.0f} |"
              f" {med(rows, 'idle', 0):.0f} {med(rows, 'idle', 2):.0f} |"
              f" {fault} | {med(rows, 'blocktime'):.0f}")
        print(f"    per run: downtime {[r['downtime'] for r in rows]}, postcopy"
              f" p99 stall {[r['stall'][2] for r in rows]}, requests "
              f"{[r['requests'] for r in rows]}")


def report_limits(limits):
    print("  the limit for fault -> placed (bench/postcopy-limit.c, median of "
          f"{LIMIT_RUNS} per run): p50/p90/p99/max us")
    for name, rows in limits.items():
        fault = "/".join(f"{med(rows, 'fault', i):.0f}" for i in range(4))
        p99s = sorted(round(r["fault"][2]) for r in rows)
        print(f"  {name:22} {fault}  (faults {med(rows, 'faults'):.0f}; "
              f"p99 per run {p99s})")


if __name__ == "__main__":
    sys.exit(main())
