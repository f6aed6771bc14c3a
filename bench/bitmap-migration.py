#!/usr/bin/python3
"""Dirty-bitmap migration benchmark: tern vs QEMU 7.2 writing the same
bitmaps into a migration stream, in one run (not a test; figures go to
docs/benchmarks.md, section "Dirty-bitmap migration").

The bitmaps: a 1 TiB qcow2 with two persistent bitmaps at 64 KiB
granularity, 2 MiB of bits each: "half" with every other 256 MiB dirty
(every 1 KiB chunk of bits carries data), "empty" with nothing (every chunk
goes as ZEROES). QEMU 7.2: paused `-M none -accel tcg -m 4M`, the image as
node disk0. tern: paused (-S) guest kit, `-m 16M`, the image as drive
disk0. Both: capability dirty-bitmaps, max-bandwidth 1 TiB/s, downtime-limit
100 s (QEMU 7.2 counts the bits as pending bytes that precopy never sends,
so with its default limit it never completes), `migrate exec:cat > FILE`
(the bits in the completion, as a paused source sends them). Reported, median of N runs, alternating VMMs on fresh copies of the
image: query-migrate's total-time, the stream's bytes and the dirty-bitmap
section's bytes, all parts and START + END alone (tern-stream reads both
streams).

Usage: bench/bitmap-migration.py [--build DIR] [--runs N]
(default build: build/, the optimized one)
"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "functional"))

GiB = 1 << 30
QEMU_IMG = shutil.which("qemu-img") or "/usr/bin/qemu-img"
QEMU_IO = shutil.which("qemu-io") or "/usr/bin/qemu-io"
QEMU = shutil.which("qemu-system-x86_64") or "/usr/bin/qemu-system-x86_64"


def run(*args):
    p = subprocess.run([str(a) for a in args], capture_output=True, text=True,
                       timeout=600)
    if p.returncode:
        raise SystemExit(f"{args[0]} failed: {p.stderr}")
    return p.stdout


def make_image(path):
    run(QEMU_IMG, "create", "-q", "-f", "qcow2", path, "1T")
    run(QEMU_IMG, "bitmap", "--add", "-g", "65536", path, "half")
    cmds = []
    for i in range(0, 1024 * GiB, 512 << 20):
        cmds += ["-c", f"discard {i} 256M"]
    run(QEMU_IO, "-f", "qcow2", *cmds, path)
    run(QEMU_IMG, "bitmap", "--add", "-g", "65536", path, "empty")


def wait_completed(qmp, timeout=300.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = qmp.execute("query-migrate")
        if info.get("status") in ("completed", "failed", "cancelled"):
            if info["status"] != "completed":
                raise RuntimeError(info)
            return info
        time.sleep(0.002)
    raise RuntimeError("migration did not finish")


def migrate_to_file(qmp, out):
    qmp.execute("migrate-set-capabilities", capabilities=[
        {"capability": "dirty-bitmaps", "state": True}])
    # QEMU 7.2 counts the bitmaps' bits as pending bytes it never sends in
    # precopy: it completes only when they fit bandwidth x downtime-limit.
    qmp.execute("migrate-set-parameters", **{"max-bandwidth": 1 << 40,
                                              "downtime-limit": 100000})
    t0 = time.monotonic()
    qmp.execute("migrate", uri=f"exec:cat > {out}")
    info = wait_completed(qmp)
    return info["total-time"], time.monotonic() - t0


def qemu_run(img, out, tmp):
    from ternlib import QmpClient
    sock = Path(tempfile.mkdtemp(prefix="tern-bm-", dir="/tmp")) / "qmp"
    proc = subprocess.Popen(
        [QEMU, "-M", "none", "-accel", "tcg", "-nodefaults", "-no-user-config",
         "-display", "none", "-S", "-m", "4M",
         "-blockdev", f"driver=qcow2,node-name=disk0,file.driver=file,"
         f"file.filename={img}",
         "-qmp", f"unix:{sock},server=on,wait=off"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    try:
        qmp = QmpClient(str(sock), connect_timeout=10.0, timeout=60.0)
        result = migrate_to_file(qmp, out)
        qmp.close()
        return result
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(sock.parent, ignore_errors=True)


def tern_run(img, out, tmp):
    from ternlib import TernVm, guestkit
    vm = TernVm(tmp, name="tern-bm", qmp=True, paused=True, memory=16,
                append=guestkit.cmdline("idle"),
                extra_args=["-drive", f"file={img},format=qcow2,if=none,"
                            "id=disk0"])
    with vm.start():
        return migrate_to_file(vm.qmp(), out)


def bitmap_bytes(stream_tool, stream):
    """The dirty-bitmap section's bytes as tern-stream -v reports them: all
    its parts, and its START and END alone (the bitmaps themselves, without
    the empty PARTs a source sends while it waits to converge)."""
    total = whole = 0
    kind = idstr = None
    for line in run(stream_tool, "-v", stream).splitlines():
        m = re.match(r"@\d+ (START|PART|END|FULL) section \d+ '([^']+)'", line)
        if m:
            kind, idstr = m.groups()
        m = re.match(r"  size (\d+)$", line)
        if m and idstr == "dirty-bitmap":
            total += int(m.group(1))
            whole += int(m.group(1)) if kind in ("START", "END") else 0
    return total, whole


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=str(REPO / "build"))
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    os.environ["TERN_BUILD"] = str(Path(args.build).resolve())
    stream_tool = Path(args.build) / "tools" / "tern-stream"
    tmp = Path(tempfile.mkdtemp(prefix="bitmap-migration-"))
    base = tmp / "base.qcow2"
    make_image(base)
    res = {"qemu": [], "tern": []}
    try:
        for i in range(args.runs):
            for kind, fn in (("qemu", qemu_run), ("tern", tern_run)):
                img = tmp / f"{kind}.qcow2"
                shutil.copyfile(base, img)
                out = tmp / f"{kind}.stream"
                total_ms, wall = fn(img, out, tmp)
                res[kind].append((total_ms, wall, out.stat().st_size,
                                  *bitmap_bytes(stream_tool, out)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    med = {k: [statistics.median(r[i] for r in v) for i in range(5)]
           for k, v in res.items()}
    print(f"load average {os.getloadavg()[0]:.1f}, {args.runs} runs each\n")
    print("| 1 TiB, 2 x 2^24 bits at 64 KiB (half dirty + empty) | QEMU 7.2 "
          "| tern | tern/QEMU |")
    print("|---|---:|---:|---:|")
    rows = [("migration total-time", 0, "ms"), ("wall, migrate to completed", 1, "s"),
            ("stream bytes", 2, ""), ("dirty-bitmap section, all parts", 3, ""),
            ("dirty-bitmap START + END (the bitmaps)", 4, "")]
    for label, i, unit in rows:
        q, t = med["qemu"][i], med["tern"][i]
        fmt = (lambda v: f"{v:.3f} s") if unit == "s" else \
              (lambda v: f"{v:.0f} ms") if unit == "ms" else (lambda v: f"{v:.0f}")
        print(f"| {label} | {fmt(q)} | {fmt(t)} | {t / q if q else 0:.2f} |")


if __name__ == "__main__":
    main()
