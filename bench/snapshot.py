#!/usr/bin/python3
"""Snapshot benchmark: HMP savevm and loadvm of tern vs QEMU 7.2 in one run
(not a test; figures go to docs/benchmarks.md, section "Snapshots").

A 2 GiB guest holding 1 GiB of random data at 1 GiB, paused (-S), with one
qcow2 drive (64 KiB clusters, fresh for every run). QEMU's guest gets the
data with -device loader,force-raw=on, tern's with the test aid QMP
x-ram-load (the same bytes at the same address). Each run takes 'savevm s1'
into a fresh image, then 'loadvm s1', then both again (the second savevm
replaces s1, as HMP's does, in an image that has its freed clusters and
their page cache), each timed as the wall time of the human-monitor-command
round trip; then the image must be clean (qemu-img check) and list s1 with
VM SIZE over 1 GiB. Both VMMs make the snapshot durable (flushed) before
savevm returns. Runs alternate which VMM goes first; medians are reported
with the tern/QEMU speed-up.
Both VMMs boot the same guest kit ELF; QEMU runs -M microvm.
Usage: bench/snapshot.py [--build DIR] [--runs N]  (default build: build/)
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "functional"))

GiB = 1 << 30
DATA_ADDR = 1 * GiB
# savevm into the fresh image, loadvm of it, savevm again (HMP replaces
# the snapshot: the image reuses the clusters it freed), loadvm again.
COLUMNS = ("savevm", "loadvm", "re-savevm", "re-loadvm")


def hmp(vm, line):
    """Runs an HMP command; returns its wall time in ms."""
    t0 = time.monotonic()
    out = vm.qmp().execute("human-monitor-command", **{"command-line": line})
    ms = (time.monotonic() - t0) * 1000
    if out:
        raise RuntimeError(f"{vm.name}: {line}: {out!r}")
    return ms


def check_image(img):
    r = subprocess.run(["qemu-img", "check", str(img)], capture_output=True,
                       text=True, timeout=120)
    if r.returncode != 0 or "No errors were found" not in r.stdout:
        raise RuntimeError(f"{img}: {r.stdout}{r.stderr}")
    r = subprocess.run(["qemu-img", "snapshot", "-l", str(img)],
                       capture_output=True, text=True, timeout=60)
    if " s1 " not in r.stdout or " GiB " not in r.stdout:
        raise RuntimeError(f"{img}: {r.stdout}")


def one_run(kind, tmp, data):
    from ternlib import QemuVm, QmpClient, TernVm, guestkit
    img = Path(tmp) / f"{kind}.qcow2"
    img.unlink(missing_ok=True)
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(img), "1G"],
                   check=True, timeout=60)
    extra = ["-drive", f"file={img},format=qcow2,if=none,id=d0"]
    if kind == "qemu":
        extra += ["-device",
                  f"loader,file={data},addr={DATA_ADDR:#x},force-raw=on"]
    cls = TernVm if kind == "tern" else QemuVm
    vm = cls(tmp, name=f"{kind}-snap", qmp=True, memory="2G", paused=True,
             append=guestkit.cmdline("idle"), extra_args=extra)
    with vm:
        # QEMU's loader reads the 1 GiB before its monitor greets.
        vm._qmp = QmpClient(vm.qmp_path, connect_timeout=120, timeout=300)
        if kind == "tern":
            vm.qmp().execute("x-ram-load", filename=str(data), addr=DATA_ADDR)
        save = hmp(vm, "savevm s1")
        load = hmp(vm, "loadvm s1")
        resave = hmp(vm, "savevm s1")
        reload = hmp(vm, "loadvm s1")
        vm.qmp().execute("quit")
        vm.wait_exit(60)
    check_image(img)
    img.unlink()
    return save, load, resave, reload


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=str(REPO / "build"))
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    os.environ["TERN_BUILD"] = str(Path(args.build).resolve())
    results = {"tern": [], "qemu": []}
    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="tern-bench-snap-",
                                     dir="/var/tmp") as tmp:
        data = Path(tmp) / "random.bin"
        with open(data, "wb") as f:
            for _ in range(64):
                f.write(os.urandom(16 << 20))
        for r in range(args.runs):
            for kind in ("tern", "qemu") if r % 2 == 0 else ("qemu", "tern"):
                results[kind].append(one_run(kind, tmp, data))
                print(f"  run {r} {kind:5} " + "  ".join(
                    f"{n} {v:6.0f} ms" for n, v in
                    zip(COLUMNS, results[kind][-1])), flush=True)
    print(f"2 GiB guest, 1 GiB random data, paused, qcow2 64 KiB clusters "
          f"(median of {args.runs}; load average {load_start:.1f} at the start, "
          f"{os.getloadavg()[0]:.1f} at the end)")
    med = {}
    for kind in ("tern", "qemu"):
        med[kind] = [statistics.median(x[i] for x in results[kind])
                     for i in range(len(COLUMNS))]
        print(f"  {kind:5} " + "  ".join(f"{n} {v:6.0f} ms"
                                         for n, v in zip(COLUMNS, med[kind])))
    print("  tern/QEMU speed-up: " + "  ".join(
        f"{n} {q / t:.2f}x" for n, t, q in zip(COLUMNS, med["tern"], med["qemu"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
