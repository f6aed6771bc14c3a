#!/usr/bin/python3
"""Crash-safe persistent bitmaps: what they cost (not a test; figures go to
docs/benchmarks.md, section "Crash-safe bitmaps").

1. virtio-blk rows, as bench/virtio-blk.py: the guest kit's blk workload,
   4 KiB random writes at QD1 and QD32, on a qcow2 image (1 GiB,
   preallocation=falloc, 64 KiB clusters) holding one persistent bitmap of
   64 KiB granularity: tern with crash-safe-bitmaps=off (QEMU's IN_USE
   marking), tern with it on (the default: adaptive chunk), and QEMU 7.2
   microvm (IN_USE, its only mode) in its default configuration and in its
   best for the job (iothread, aio=io_uring), alternately, --runs times
   each. The bitmap is made anew before every run, so every run pays the intents of
   a fresh bitmap (the worst case: a long-running guest pays them once).
2. Chunk study (--chunks): bench/bitmap-intent.c writes 4 KiB blocks through
   tern's block layer, 50 us apart (a guest at QD1), in three patterns
   (uniform random, 90 % in eight hot 8 MiB regions, sequential) with the
   chunk fixed at 64 KiB .. 64 MiB or adaptive, against no intents at all;
   it reports the intent syncs, the time against the baseline, and the
   granules the image's copy has set beyond those written (what a crash
   would add to the next backup).

Usage: bench/crash-safe-bitmaps.py [--runs N] [--seconds S] [--chunks
       [--chunk-runs N]] [--build DIR] [--dir DIR]   (default build: build/)
"""
import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
QEMU_IMG = shutil.which("qemu-img") or "/usr/bin/qemu-img"
RESULT = re.compile(r"TG blk iops=(\d+)")
ROWS = [("4k randwrite qd1", 1), ("4k randwrite qd32", 32)]


def run(*args):
    return subprocess.run([str(a) for a in args], check=True,
                          capture_output=True, text=True, timeout=600).stdout


def make_image(path, size="1G"):
    run(QEMU_IMG, "create", "-q", "-f", "qcow2", "-o",
        "cluster_size=64k,preallocation=falloc", path, size)
    run(QEMU_IMG, "bitmap", "--add", "-g", "64k", path, "b")


def append_line(qd, seconds):
    return (f"tg.workload=blk tg.blk.mode=iops tg.blk.rw=randwrite "
            f"tg.blk.bs=4096 tg.blk.qd={qd} tg.blk.seconds={seconds}")


def tern_cmd(build, img, crash_safe, append):
    return [str(build / "tern"), "-M", "virt", "-accel", "kvm", "-m", "256M",
            "-kernel", str(build / "tests" / "guest" / "tguest.elf"),
            "-append", append, "-serial", "stdio", "-display", "none",
            "-drive", f"file={img},format=qcow2,if=none,id=d0,"
            f"crash-safe-bitmaps={'on' if crash_safe else 'off'}",
            "-device", "virtio-blk-pci,drive=d0",
            "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]


def qemu_cmd(build, img, append, best=False):
    """QEMU 7.2's default, or its best for this job (best=True): the disk
    on an iothread, with io_uring."""
    drive = f"file={img},format=qcow2,if=none,id=d0"
    dev = "virtio-blk-pci,drive=d0"
    extra = []
    if best:
        drive += ",aio=io_uring"
        dev += ",iothread=io0"
        extra = ["-object", "iothread,id=io0"]
    return ["qemu-system-x86_64", "-M", "microvm,pcie=on", "-accel", "kvm",
            "-cpu", "host,-arch-capabilities", "-nodefaults",
            "-no-user-config", "-m", "256M", *extra,
            "-kernel", str(build / "tests" / "guest" / "tguest.elf"),
            "-append", append, "-serial", "stdio", "-display", "none",
            "-drive", drive, "-device", dev,
            "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]


def fresh_bitmap(img):
    """An empty bitmap "b": QEMU leaves it IN_USE when isa-debug-exit ends
    it (no clean close), so it is made anew before every run."""
    run(QEMU_IMG, "bitmap", "--remove", img, "b")
    run(QEMU_IMG, "bitmap", "--add", "-g", "64k", img, "b")


def iops(cmd, img, seconds):
    fresh_bitmap(img)
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=seconds + 60)
    m = RESULT.search(r.stdout)
    if not m:
        sys.exit(f"no result from {cmd[0]}:\n{r.stdout[-2000:]}\n"
                 f"{r.stderr[-2000:]}")
    return int(m[1])


def virtio_rows(build, workdir, runs, seconds):
    img = workdir / "bench.qcow2"
    make_image(img)
    print(f"virtio-blk 4 KiB random writes, 1 GiB qcow2 (falloc, 64 KiB "
          f"clusters), one persistent bitmap (64 KiB), {runs} runs x "
          f"{seconds} s, cache=writeback")
    print(f"{'row':<20} {'tern off':>9} {'tern on':>9} {'qemu':>9} "
          f"{'qemu best':>10} {'on/off':>7} {'on/best':>8}  unit")
    for label, qd in ROWS:
        append = append_line(qd, seconds)
        off, on, qemu, best = [], [], [], []
        for _ in range(runs):
            off.append(iops(tern_cmd(build, img, False, append), img, seconds))
            on.append(iops(tern_cmd(build, img, True, append), img, seconds))
            qemu.append(iops(qemu_cmd(build, img, append), img, seconds))
            best.append(iops(qemu_cmd(build, img, append, True), img, seconds))
        o, n, q, b = (statistics.median(x) for x in (off, on, qemu, best))
        print(f"{label:<20} {o:>9.0f} {n:>9.0f} {q:>9.0f} {b:>10.0f} "
              f"{n / o:>7.2f} {n / max(b, q):>8.2f}  IOPS", flush=True)
    print("(qemu: its default; qemu best: iothread + aio=io_uring; on/best "
          "is against the faster of the two)")


def build_helper(build, workdir):
    exe = workdir / "bitmap-intent"
    glib = run("pkg-config", "--cflags", "--libs", "glib-2.0").split()
    run("cc", "-O2", "-std=gnu11", "-D_GNU_SOURCE", "-D_FILE_OFFSET_BITS=64",
        f"-I{REPO / 'include'}", REPO / "bench" / "bitmap-intent.c",
        build / "libternblock.a", build / "libternutil.a", "-o", exe,
        "-lz", "-pthread", *glib)
    return exe


POLICIES = [("off", -1, -1), ("64K", 64 << 10, 64 << 10),
            ("1M", 1 << 20, 1 << 20), ("16M", 16 << 20, 16 << 20),
            ("64M", 64 << 20, 64 << 20), ("adaptive", 0, 0)]


def chunk_study(build, workdir, runs, writes=10000, think_us=50):
    exe = build_helper(build, workdir)
    img = workdir / "study.qcow2"
    make_image(img)
    print(f"\nchunk study: {writes} x 4 KiB writes through the block layer, "
          f"{think_us} us between them (a guest at QD1), 1 GiB qcow2, bitmap "
          f"of 64 KiB granularity (16384 granules), median of {runs}; 'sync "
          f"share' is the time in intent syncs over the run time without "
          f"intents")
    print(f"{'pattern':<8} {'chunk':<9} {'syncs':>6} {'sync ms':>8} "
          f"{'share':>6} {'dirty':>6} {'in image':>9} {'extra':>6}")
    for pattern in ("random", "hot", "seq"):
        base = None
        for name, cmin, cmax in POLICIES:
            res = []
            for k in range(runs):
                fresh_bitmap(img)
                res.append(json.loads(run(exe, img, pattern, cmin, cmax,
                                          writes, 1000 + k, think_us)))
            if base is None:
                base = statistics.median(r["seconds"] for r in res)
                continue
            res.sort(key=lambda r: r["sync_seconds"])
            r = res[len(res) // 2]
            print(f"{pattern:<8} {name:<9} {r['syncs']:>6} "
                  f"{1000 * r['sync_seconds']:>8.1f} "
                  f"{100 * r['sync_seconds'] / base:>5.1f}% {r['dirty']:>6} "
                  f"{r['image']:>9} {r['image'] - r['dirty']:>6}", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=3)
    ap.add_argument("--chunks", action="store_true")
    ap.add_argument("--chunk-runs", type=int, default=3)
    ap.add_argument("--build", default=str(REPO / "build"))
    ap.add_argument("--dir", default="/var/tmp")
    args = ap.parse_args()
    build = Path(args.build).resolve()
    for p in (build / "tern", build / "tests" / "guest" / "tguest.elf"):
        if not p.exists():
            sys.exit(f"missing {p}: build it first (ninja -C {build})")
    with tempfile.TemporaryDirectory(dir=args.dir) as d:
        virtio_rows(build, Path(d), args.runs, args.seconds)
        if args.chunks:
            chunk_study(build, Path(d), args.chunk_runs)


if __name__ == "__main__":
    main()
