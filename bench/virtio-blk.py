#!/usr/bin/python3
"""virtio-blk benchmark: the guest kit's `blk` polling workload (one queue,
ring-3 driver, no interrupts) on tern and on QEMU 7.2 microvm (pcie=on,
-device virtio-blk-pci), same image file, same cache mode, in one run
(not a test; figures go to docs/benchmarks.md, section "virtio-blk").

Rows: 4 KiB randread / randwrite at queue depth 1 and 32 (IOPS) and 1 MiB
seqread / seqwrite at QD 1 (MB/s). Each row runs both VMMs alternately
--runs times for --seconds each and reports the median and tern/QEMU.
The image is a preallocated raw file in --dir (default /var/tmp).
Usage: bench/virtio-blk.py [--runs N] [--seconds S] [--cache writeback|none]
                           [--build DIR] [--size MiB]
(default build: <repo>/build, the optimised tree).
"""
import argparse
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ROWS = [  # (label, rw, bs, qd, unit)
    ("4k randread qd1", "randread", 4096, 1, "iops"),
    ("4k randread qd32", "randread", 4096, 32, "iops"),
    ("4k randwrite qd1", "randwrite", 4096, 1, "iops"),
    ("4k randwrite qd32", "randwrite", 4096, 32, "iops"),
    ("1M seqread qd1", "seqread", 1 << 20, 1, "mbps"),
    ("1M seqwrite qd1", "seqwrite", 1 << 20, 1, "mbps"),
]
RESULT = re.compile(r"TG blk iops=(\d+) mbps=(\d+)")


def append_line(rw, bs, qd, seconds):
    return (f"tg.workload=blk tg.blk.mode=iops tg.blk.rw={rw} tg.blk.bs={bs} "
            f"tg.blk.qd={qd} tg.blk.seconds={seconds}")


def drive(img, cache):
    return ["-drive", f"file={img},format=raw,if=none,id=d0,cache={cache}",
            "-device", "virtio-blk-pci,drive=d0",
            "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]


def tern_cmd(build, kit, img, cache, append):
    return [str(build / "tern"), "-M", "virt", "-accel", "kvm", "-m", "256M",
            "-kernel", str(kit), "-append", append, "-serial", "stdio",
            "-display", "none", *drive(img, cache)]


def qemu_cmd(build, kit, img, cache, append):
    return ["qemu-system-x86_64", "-M", "microvm,pcie=on", "-accel", "kvm",
            "-cpu", "host,-arch-capabilities", "-nodefaults", "-no-user-config",
            "-m", "256M", "-kernel", str(kit), "-append", append, "-serial", "stdio",
            "-display", "none", *drive(img, cache)]


def one_run(cmd, unit, timeout):
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=timeout)
    m = RESULT.search(r.stdout)
    if not m:
        sys.exit(f"no result from {cmd[0]}:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    return int(m[1] if unit == "iops" else m[2])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=3)
    ap.add_argument("--cache", default="writeback")
    ap.add_argument("--build", default=str(REPO / "build"))
    ap.add_argument("--size", type=int, default=1024, help="image MiB")
    ap.add_argument("--dir", default="/var/tmp")
    args = ap.parse_args()
    build = Path(args.build).resolve()
    kit = build / "tests" / "guest" / "tguest.elf"
    for p in (build / "tern", kit):
        if not p.exists():
            sys.exit(f"missing {p}: build it first (ninja -C {build} tern "
                     f"tests/guest/tguest.elf)")
    qemu_ver = subprocess.run(["qemu-system-x86_64", "--version"], capture_output=True,
                              text=True).stdout.splitlines()[0]
    print(f"virtio-blk: guest kit blk polling workload, {args.runs} runs x "
          f"{args.seconds} s, cache={args.cache}, {args.size} MiB raw image; "
          f"tern ({build}) vs {qemu_ver} microvm,pcie=on")
    with tempfile.TemporaryDirectory(dir=args.dir) as d:
        img = Path(d) / "bench.raw"
        subprocess.run(["qemu-img", "create", "-q", "-f", "raw", "-o",
                        "preallocation=full", str(img), f"{args.size}M"], check=True)
        print(f"{'row':<20} {'tern':>9} {'qemu':>9} {'tern/qemu':>10}  unit")
        for label, rw, bs, qd, unit in ROWS:
            append = append_line(rw, bs, qd, args.seconds)
            tern, qemu = [], []
            for _ in range(args.runs):
                timeout = args.seconds + 30
                tern.append(one_run(tern_cmd(build, kit, img, args.cache, append),
                                    unit, timeout))
                qemu.append(one_run(qemu_cmd(build, kit, img, args.cache, append),
                                    unit, timeout))
            t, q = statistics.median(tern), statistics.median(qemu)
            ratio = t / q if q else float("inf")
            print(f"{label:<20} {t:>9.0f} {q:>9.0f} {ratio:>10.2f}  "
                  f"{'IOPS' if unit == 'iops' else 'MB/s'}", flush=True)


if __name__ == "__main__":
    main()
