#!/usr/bin/python3
"""Migration benchmark: tern -> tern vs QEMU 7.2 -> QEMU 7.2 in one run (not
a test; figures go to docs/benchmarks.md, section "Migration").

  paused  2 GiB guest holding 1 GiB of random data at 1 GiB, paused (-S),
          over a unix socket, unthrottled (max-bandwidth 1 TiB/s). QEMU's
          guest gets the data with -device loader,force-raw=on; tern's with
          the test aid QMP x-ram-load (the same bytes at the same address).
          Reported: query-migrate's total-time and the wall time from the
          migrate command to 'completed', and payload GB/s (1 GiB / time).
  live    1 GiB guest running the guest kit's dirty workload over 256 MiB
          at 64 MiB/s, max-bandwidth 1 GiB/s, downtime-limit 300 ms (QEMU's
          default): total-time, downtime, passes, and the guest's own
          verification on the destination (no TG FAIL).
Both VMMs boot the same guest kit ELF; QEMU runs -M microvm.
Usage: bench/migration.py [--build DIR] [--runs N]  (default build: build/)
"""
import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "functional"))

GiB = 1 << 30
DATA_ADDR = 1 * GiB


def wait_status(vm, timeout=120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = vm.qmp().execute("query-migrate")
        if info.get("status") in ("completed", "failed", "cancelled"):
            return info
        time.sleep(0.002)
    raise RuntimeError(f"{vm.name}: migration did not finish")


def wait_inmigrate(vm):
    deadline = time.monotonic() + 30
    while vm.qmp().execute("query-status")["status"] != "inmigrate":
        if time.monotonic() > deadline:
            raise RuntimeError(f"{vm.name} never reached inmigrate")
        time.sleep(0.01)


def pair(kind, tmp, tag, **kw):
    from ternlib import QemuVm, TernVm
    cls = TernVm if kind == "tern" else QemuVm
    src = cls(tmp, name=f"{kind}-{tag}-a", qmp=True, **kw)
    uri = "unix:" + src.sock_path("mig")
    dst = cls(tmp, name=f"{kind}-{tag}-b", qmp=True, incoming=uri, **kw)
    return src, dst, uri


def migrate(src, dst, uri, params):
    wait_inmigrate(dst)
    src.qmp().execute("migrate-set-parameters", **params)
    t0 = time.monotonic()
    src.qmp().execute("migrate", uri=uri)
    info = wait_status(src)
    wall = time.monotonic() - t0
    if info["status"] != "completed":
        raise RuntimeError(f"{src.name}: {info}")
    return info, wall


def paused_run(kind, tmp, data):
    from ternlib import guestkit
    extra = []
    if kind == "qemu":
        extra = ["-device", f"loader,file={data},addr={DATA_ADDR:#x},force-raw=on"]
    src, dst, uri = pair(kind, tmp, "paused", memory="2G", paused=True,
                         append=guestkit.cmdline("idle"), extra_args=extra)
    with src, dst:
        from ternlib import QmpClient
        # QEMU's loader reads the 1 GiB before its monitor greets: wait longer.
        src._qmp = QmpClient(src.qmp_path, connect_timeout=120, timeout=120)
        if kind == "tern":
            src.qmp().execute("x-ram-load", filename=str(data), addr=DATA_ADDR)
        info, wall = migrate(src, dst, uri, {"max-bandwidth": 1 << 40})
    return info["total-time"], wall * 1000


def live_run(kind, tmp):
    from ternlib import guestkit
    append = guestkit.cmdline("dirty", mem="256M", rate="64M", report=100)
    src, dst, uri = pair(kind, tmp, "live", memory="1G", append=append)
    with src, dst:
        guestkit.wait_dirty_passes(src.serial, 2, timeout=60)
        info, _ = migrate(src, dst, uri, {"max-bandwidth": GiB,
                                          "downtime-limit": 300})
        last = guestkit.last_dirty_pass(src.serial) or 0
        guestkit.wait_dirty_passes(dst.serial, last + 2, timeout=60)
        dst.serial.assert_no_fail()
    return info["total-time"], info["downtime"], info["ram"]["dirty-sync-count"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=str(REPO / "build"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--only", choices=("paused", "live"))
    args = ap.parse_args()
    os.environ["TERN_BUILD"] = str(Path(args.build).resolve())
    results = {("tern", "paused"): [], ("qemu", "paused"): [],
               ("tern", "live"): [], ("qemu", "live"): []}
    with tempfile.TemporaryDirectory(prefix="tern-bench-mig-") as tmp:
        data = Path(tmp) / "random.bin"
        if args.only != "live":
            with open(data, "wb") as f:
                for _ in range(64):
                    f.write(os.urandom(16 << 20))
        for r in range(args.runs):
            for kind in ("tern", "qemu") if r % 2 == 0 else ("qemu", "tern"):
                if args.only != "live":
                    results[(kind, "paused")].append(paused_run(kind, tmp, data))
                if args.only != "paused":
                    results[(kind, "live")].append(live_run(kind, tmp))
    if args.only != "live":
        print_paused(results, args.runs)
    if args.only != "paused":
        print_live(results, args.runs)
    return 0


def print_paused(results, runs):
    print(f"paused, 2 GiB guest, 1 GiB random data, unix socket, unthrottled "
          f"(median of {runs})")
    med = {}
    for kind in ("tern", "qemu"):
        tt = statistics.median(x[0] for x in results[(kind, "paused")])
        wall = statistics.median(x[1] for x in results[(kind, "paused")])
        med[kind] = wall
        print(f"  {kind:5} total-time {tt:6.0f} ms  wall {wall:6.0f} ms  "
              f"payload {GiB / (wall / 1000) / 1e9:5.2f} GB/s")
    print(f"  tern/QEMU speed-up (wall): {med['qemu'] / med['tern']:.2f}x")


def print_live(results, runs):
    print(f"live, 1 GiB guest, dirty 256 MiB region at 64 MiB/s, max-bandwidth "
          f"1 GiB/s, downtime-limit 300 ms (median of {runs})")
    for kind in ("tern", "qemu"):
        rows = results[(kind, "live")]
        print(f"  {kind:5} total-time {statistics.median(x[0] for x in rows):6.0f} ms"
              f"  downtime {statistics.median(x[1] for x in rows):5.0f} ms"
              f"  passes {statistics.median(x[2] for x in rows):3.0f}"
              f"  (all downtimes: {[x[1] for x in rows]})")


if __name__ == "__main__":
    sys.exit(main())
