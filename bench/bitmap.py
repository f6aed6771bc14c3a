#!/usr/bin/python3
"""Dirty-bitmap benchmark: tern vs QEMU 7.2, measured in the same run.

1. Store + load of a persistent bitmap on a 1 TiB qcow2 image, at 64 KiB
   granularity (2^24 bits, 2 MiB of bitmap data; 128 GiB dirty in one run
   plus 512 scattered chunks) and at 512 B granularity (2^31 bits, 256 MiB
   of bitmap data; 64 GiB dirty, so 16 MiB of data clusters to read and
   write). Timed: a full open-RW cycle (load, mark in-use, store on close:
   `qemu-img bitmap --enable` vs `tern-img bitmap --enable`) and a read-only
   open that loads the bitmap (`qemu-img info` vs `tern-img info`). Median
   of N runs (N/3 at 512 B), alternating tools.
2. Find-next-dirty in an almost empty 2^24-bit bitmap (tern's hbitmap, built
   here with -O2 from util/hbitmap.c and bench/bitmap-findnext.c). QEMU's
   hbitmap has no command-line entry point, so this figure has no ratio.

Usage: bench/bitmap.py [--runs N]; tern-img from $TERN_BUILD (default
<repo>/build, the optimized build). Prints a Markdown table.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BUILD = Path(os.environ.get("TERN_BUILD") or REPO / "build")
TERN_IMG = BUILD / "tools" / "tern-img"
QEMU_IMG = shutil.which("qemu-img") or "/usr/bin/qemu-img"
QEMU_IO = shutil.which("qemu-io") or "/usr/bin/qemu-io"
GIB = 1 << 30


def run(*args, stdout=subprocess.DEVNULL):
    p = subprocess.run([str(a) for a in args], stdout=stdout,
                       stderr=subprocess.PIPE, text=True, timeout=600)
    if p.returncode:
        raise SystemExit(f"{args[0]} {args[1]} failed: {p.stderr}")


def timed(*args):
    t0 = time.perf_counter()
    run(*args)
    return time.perf_counter() - t0


def make_image(path, granularity, dirty_gib, scattered):
    run(QEMU_IMG, "create", "-q", "-f", "qcow2", path, "1T")
    run(QEMU_IMG, "bitmap", "--add", "-g", granularity, path, "b")
    cmds = []
    for i in range(dirty_gib):              # one dirty run from 0
        cmds += ["-c", f"discard {i * GIB} {GIB}"]
    for i in range(scattered):              # scattered chunks past it
        cmds += ["-c", f"discard {256 * GIB + i * GIB + 65536 * (i % 7)} 64k"]
    run(QEMU_IO, *cmds, path)


def median_pair(runs, qemu_cmd, tern_cmd):
    q, t = [], []
    for _ in range(runs):
        q.append(timed(*qemu_cmd))
        t.append(timed(*tern_cmd))
    return statistics.median(q), statistics.median(t)


def findnext():
    with tempfile.TemporaryDirectory() as d:
        exe = Path(d) / "bitmap-findnext"
        flags = subprocess.run(["pkg-config", "--cflags", "--libs",
                                "glib-2.0"], check=True, capture_output=True,
                               text=True).stdout.split()
        subprocess.run(["cc", "-O2", "-std=gnu11", f"-I{REPO / 'include'}",
                        str(REPO / "bench" / "bitmap-findnext.c"),
                        str(REPO / "util" / "hbitmap.c"), "-o", str(exe)]
                       + flags, check=True)
        return json.loads(subprocess.run([str(exe)], check=True,
                                         capture_output=True,
                                         text=True).stdout)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    if not TERN_IMG.exists():
        raise SystemExit(f"{TERN_IMG} not built (ninja -C {BUILD} "
                         "tools/tern-img)")
    rows = []
    scenarios = (("64k", "64 KiB", 128, 512, args.runs),
                 ("512", "512 B", 64, 0, max(3, args.runs // 3)))
    for gran, gran_text, dirty_gib, scattered, runs in scenarios:
        with tempfile.TemporaryDirectory() as d:
            img = Path(d) / "tib.qcow2"
            make_image(img, gran, dirty_gib, scattered)
            dump = subprocess.run([str(TERN_IMG), "bitmap", "--dump",
                                   str(img), "b"], check=True,
                                  capture_output=True, text=True).stdout
            dirty = json.loads(dump)["count"] / GIB
            rw = median_pair(runs, [QEMU_IMG, "bitmap", "--enable", img, "b"],
                             [TERN_IMG, "bitmap", "--enable", img, "b"])
            ro = median_pair(runs, [QEMU_IMG, "info", img],
                             [TERN_IMG, "info", img])
            run(QEMU_IMG, "check", "-q", img)
        label = (f"{gran_text} granularity, {dirty:.0f} GiB dirty, median of "
                 f"{runs}")
        rows.append((f"open RW: load, mark in-use, store on close ({label})",
                     rw))
        rows.append((f"open RO: load, info ({label})", ro))
    fn = findnext()
    print("1 TiB qcow2, one persistent bitmap\n")
    print("| operation | QEMU 7.2 | tern | tern/QEMU |")
    print("|---|---|---|---|")
    for name, (q, t) in rows:
        print(f"| {name} | {q * 1000:.1f} ms | {t * 1000:.1f} ms | "
              f"{t / q:.2f} |")
    print(f"| find next dirty bit, 2^24-bit bitmap, from 0 | n/a | "
          f"{fn['next_set_ns']:.0f} ns | n/a |")
    print(f"| walk all 3 dirty extents from 0 | n/a | "
          f"{fn['walk_ns']:.0f} ns | n/a |")
    print(f"| set + reset one bit | n/a | {fn['set_reset_ns']:.0f} ns | "
          f"n/a |")


if __name__ == "__main__":
    main()
