#!/usr/bin/env python3
"""Block benchmark: tern-img vs QEMU 7.2's qemu-img/qemu-io in one run, on the
same host and file system. Creates a 4 GiB qcow2 (64 KiB clusters), fills it
with 1 MiB sequential writes, then does 4 KiB random writes into a fresh
image; both tools run the identical command list and end with a flush.
Prints seconds per phase and the ratio tern/QEMU (lower is better for tern).
Two phases where metadata ordering costs syncs: "rand 4k f16", 4 KiB random
writes into a fresh image with a flush every 16 writes (each flush writes
refcounts, syncs, then L2 tables), and "cow 4k f16", the same into the
filled image after an internal snapshot (every write copies a cluster and
lets the shared one go). --baseline DIR times a second tern build (say,
before a change) in the same run; --rounds N repeats everything N times,
turning the order, and prints medians.

--overlap instead measures what qcow2's metadata-overlap check costs a
write: bench/qcow2-overlap.c, built against DIR's libternblock.a, times the
same writes with the node's metadata map and without it (in --dir, default
/dev/shm, so the disk does not drown the difference).

usage: bench/block.py [--build DIR] [--baseline DIR] [--rounds N]
                      [--size-gib N] [--random N] [--dir DIR]
       bench/block.py --overlap [--build DIR] [--dir DIR]
"""
import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def timed(args):
    t = time.perf_counter()
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def io_args(tool, img, cmds):
    args = [tool] if tool.endswith("qemu-io") else [tool, "io"]
    if tool.endswith("qemu-io"):
        # qemu-io defaults to writethrough (a sync per write); tern-img io
        # writes back and syncs on 'flush', so compare like with like.
        args += ["-f", "qcow2", "-t", "writeback"]
    for c in cmds:
        args += ["-c", c]
    return args + [str(img)]


def overlap(build, scratch):
    """Builds and runs bench/qcow2-overlap.c; prints its cases as a table."""
    with tempfile.TemporaryDirectory() as d, \
            tempfile.TemporaryDirectory(dir=scratch) as work:
        exe = Path(d) / "qcow2-overlap"
        flags = subprocess.run(["pkg-config", "--cflags", "--libs",
                                "glib-2.0", "zlib"], check=True,
                               capture_output=True, text=True).stdout.split()
        subprocess.run(["cc", "-O2", "-std=gnu11", f"-I{REPO / 'include'}",
                        f"-I{REPO}", str(REPO / "bench" / "qcow2-overlap.c"),
                        str(Path(build) / "libternblock.a"),
                        str(Path(build) / "libternutil.a"), "-lpthread",
                        "-o", str(exe)] + flags, check=True)
        out = subprocess.run([str(exe), work], check=True,
                             capture_output=True, text=True).stdout
    print(f"{'case':<28} {'map entries':>11} {'with (ns)':>10} "
          f"{'without (ns)':>12} {'overhead':>9} {'ns/lookup':>9}")
    for line in out.splitlines():
        r = json.loads(line)
        print(f"{r['case']:<28} {r['map_entries']:>11} {r['ns_with']:>10.0f} "
              f"{r['ns_without']:>12.0f} {r['overhead_pct']:>8.1f}% "
              f"{r['ns_per_lookup']:>9.1f}")


def run_tool(img, img_tool, io, size_gib, seq, rnd, rnd_f16):
    """One tool through every phase; seconds per phase."""
    create = [img_tool, "create", "-f", "qcow2"]
    r = {"create": timed(create + [str(img), f"{size_gib}G"]),
         "seq 1M": timed(io_args(io, img, seq))}
    subprocess.run([img_tool, "snapshot", "-c", "s", str(img)],
                   check=True, stdout=subprocess.DEVNULL)
    r["cow 4k f16"] = timed(io_args(io, img, rnd_f16))
    for phase, cmds in (("rand 4k", rnd), ("rand 4k f16", rnd_f16)):
        img.unlink()
        subprocess.run(create + [str(img), f"{size_gib}G"], check=True,
                       stdout=subprocess.DEVNULL)
        r[phase] = timed(io_args(io, img, cmds))
    img.unlink()
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=str(REPO / "build"),
                    help="non-sanitized build dir with tools/tern-img")
    ap.add_argument("--baseline", default=None,
                    help="another tern build to time in the same run")
    ap.add_argument("--rounds", type=int, default=1,
                    help="repeat, turning the tools' order; medians")
    ap.add_argument("--size-gib", type=int, default=4)
    ap.add_argument("--random", type=int, default=20000,
                    help="number of 4 KiB random writes")
    ap.add_argument("--dir", default=None, help="scratch directory")
    ap.add_argument("--overlap", action="store_true",
                    help="time the metadata-overlap check instead")
    a = ap.parse_args()
    if a.overlap:
        overlap(a.build, a.dir or "/dev/shm")
        return

    tools = [("QEMU 7.2", shutil.which("qemu-img"), shutil.which("qemu-io")),
             ("tern", str(Path(a.build) / "tools" / "tern-img"), None)]
    if a.baseline:
        tools.append(("baseline", str(Path(a.baseline) / "tools" /
                                      "tern-img"), None))
    size = a.size_gib << 30
    seq = [f"write -P 0x5a {o} 1M" for o in range(0, size, 1 << 20)]
    seq.append("flush")
    rnd_gen = random.Random(1)
    rnd = [f"write -P 0x33 {rnd_gen.randrange(size >> 12) << 12} 4k"
           for _ in range(a.random)]
    rnd_f16 = []
    for i, c in enumerate(rnd):
        rnd_f16 += [c] + (["flush"] if i % 16 == 15 else [])
    rnd.append("flush")
    rnd_f16.append("flush")

    phases = ("create", "seq 1M", "rand 4k", "rand 4k f16", "cow 4k f16")
    runs = {t[0]: {p: [] for p in phases} for t in tools}
    with tempfile.TemporaryDirectory(dir=a.dir) as d:
        for rnd_no in range(a.rounds):
            # The order turns each round: a tool's writeback still under way
            # slows whichever runs next.
            k = rnd_no % len(tools)
            for name, img_tool, qio in tools[k:] + tools[:k]:
                r = run_tool(Path(d) / "bench.qcow2", img_tool, qio or img_tool,
                             a.size_gib, seq, rnd, rnd_f16)
                for p in phases:
                    runs[name][p].append(r[p])
    results = {n: {p: statistics.median(v) for p, v in ph.items()}
               for n, ph in runs.items()}

    names = [t[0] for t in tools]
    print(f"Block: {a.size_gib} GiB qcow2, 64 KiB clusters, "
          f"{a.random} random 4 KiB writes, median of {a.rounds}")
    print(f"{'phase':<12}" + "".join(f"{n + ' (s)':>15}" for n in names) +
          "".join(f"{n + '/QEMU':>15}" for n in names[1:]))
    for phase in phases:
        q = results[names[0]][phase]
        print(f"{phase:<12}" +
              "".join(f"{results[n][phase]:>15.3f}" for n in names) +
              "".join(f"{results[n][phase] / q:>15.2f}" for n in names[1:]))
    mib = a.size_gib * 1024
    print("seq throughput (MiB/s): " +
          ", ".join(f"{n} {mib / results[n]['seq 1M']:.0f}" for n in names))
    for phase in phases[2:]:
        print(f"{phase} IOPS: " + ", ".join(
            f"{n} {a.random / results[n][phase]:.0f}" for n in names))


if __name__ == "__main__":
    main()
