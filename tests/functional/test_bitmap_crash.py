#!/usr/bin/python3
"""Crash-safe persistent bitmaps under kill -9 and power cuts.

The guest kit's `blk` workload writes random 4 KiB blocks (queue depth 8)
to a qcow2 image holding two persistent bitmaps, b64 (64 KiB granularity)
and b4 (4 KiB), made with `qemu-img bitmap` on the base image. Then:

  kill -9   tern is SIGKILLed at a random moment (booting, laying the
            bitmaps out, mid-I/O, closing); the image is checked as it is.
  power cut tern runs once under tests/crash/write-log.so, which logs every
            write and sync to the image; the image is rebuilt as a disk
            would hold it after a cut at random points of that log (only
            what was synced, or that plus a random subset of the writes
            since: ternlib/writelog.py, ternlib/powercut.py), and each is
            checked. Both models run on sparse images (the guest's writes
            allocate clusters, L2 tables and refcount blocks) and on one
            whose clusters are preallocated.

Each check: `qemu-img check` finds no corruption (leaks allowed) and
`tern-img check` agrees; both tools see both bitmaps without in-use; every
granule whose data differs from the base image (qemu-img convert, compared
block by block) is set in the bitmap (tern-img bitmap --dump); and on some of
them `qemu-nbd --bitmap` + `qemu-img map` list the same extents as tern-img.
The granules set without a data change are counted and printed ("extra").
Runs alternate the image's cluster size (64 KiB, 4 KiB) and tern's chunk
policy (adaptive; bitmap-chunk=64K; bitmap-chunk=1M).

CI runs 50 kills and 50 cuts; for a longer run:
    TERN_BUILD=$PWD/build /usr/bin/python3 tests/functional/test_bitmap_crash.py \\
        --kills 500 --cuts 500 [--seed N]
"""
import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ternlib import paths  # noqa: E402
from ternlib.bitmaps import QEMU_NBD, qemu_extents, tern_extents  # noqa: E402
from ternlib.powercut import (blk_workload_cmd, check_consistent,  # noqa: E402
                              pick_cuts, record, run, write_log_so)

DISK = 16 << 20
BITMAPS = {"b64": 65536, "b4": 4096}
CLUSTERS = ["64k", "4k"]
CHUNKS = [None, "64K", "1M"]           # None: the adaptive default
QEMU_IO = shutil.which("qemu-io") or "/usr/bin/qemu-io"


def missing_tools():
    need = [paths.tern_binary(), paths.tern_img(), paths.guest_kit(),
            write_log_so(), paths.qemu_img(), QEMU_IO, QEMU_NBD]
    return [str(p) for p in need if not os.path.exists(p)]


class Base:
    """The image before tern runs: some data, the bitmaps, its raw bytes.
    prealloc: every guest cluster allocated up front (preallocation=metadata),
    so guest writes change no qcow2 metadata."""

    def __init__(self, workdir, cluster, prealloc=False):
        self.path = workdir / f"base-{cluster}{'-pre' if prealloc else ''}.qcow2"
        self.prealloc = prealloc
        opts = f"cluster_size={cluster}"
        if prealloc:
            opts += ",preallocation=metadata"
        run(paths.qemu_img(), "create", "-q", "-f", "qcow2", "-o", opts,
            self.path, str(DISK))
        # Allocated data under part of the disk: writes there go in place.
        run(QEMU_IO, "-c", "write -P 0x11 0 3M", "-c", "write -P 0x22 9M 1M",
            self.path)
        for name, gran in BITMAPS.items():
            run(paths.qemu_img(), "bitmap", "--add", "-g", str(gran),
                self.path, name)
        raw = workdir / f"base-{cluster}.raw"
        run(paths.qemu_img(), "convert", "-O", "raw", self.path, raw)
        self.raw = raw.read_bytes()
        raw.unlink()


def tern_cmd(img, chunk, seconds):
    return blk_workload_cmd(img, f",bitmap-chunk={chunk}" if chunk else "",
                            seconds)


def changed_granules(base_raw, raw, gran):
    return {i for i in range(0, DISK, gran)
            if raw[i:i + gran] != base_raw[i:i + gran]}


def dirty_granules(extents, gran):
    out = set()
    for start, length in extents:
        out.update(range(start - start % gran, start + length, gran))
    return out


def check_image(img, base, workdir, what, interop=False):
    """All the checks on one crashed image; returns (extra granules set,
    granules changed) per bitmap and the leaks qemu-img found."""
    leaks = check_consistent(img, what)
    info = json.loads(run(paths.qemu_img(), "info", "--output=json",
                          img).stdout)
    bitmaps = {b["name"]: b for b in
               info["format-specific"]["data"].get("bitmaps", [])}
    assert set(bitmaps) == set(BITMAPS), f"{what}: {bitmaps}"
    raw_path = workdir / "now.raw"
    run(paths.qemu_img(), "convert", "-O", "raw", img, raw_path)
    raw = raw_path.read_bytes()
    extra = {}
    for name, gran in BITMAPS.items():
        assert "in-use" not in bitmaps[name]["flags"], f"{what}: {bitmaps}"
        extents = tern_extents(img, name)
        changed = changed_granules(base.raw, raw, gran)
        dirty = dirty_granules(extents, gran)
        missed = sorted(changed - dirty)
        assert not missed, (f"{what}: bitmap {name} misses granules "
                            f"{missed[:8]} ({len(missed)} in all)")
        extra[name] = (len(dirty - changed), len(changed))
        if interop:
            assert qemu_extents(img, name, workdir) == extents, what
    return extra, leaks


class Tally:
    """Extra granules and leaks over many checks, for the report."""

    def __init__(self, label):
        self.label, self.n, self.leaks = label, 0, 0
        self.extra = {name: [] for name in BITMAPS}
        self.changed = {name: [] for name in BITMAPS}
        self.kinds = {}

    def add(self, extra, leaks, kind):
        self.n += 1
        self.leaks += leaks
        self.kinds[kind] = self.kinds.get(kind, 0) + 1
        for name, (more, changed) in extra.items():
            self.extra[name].append(more)
            self.changed[name].append(changed)

    def report(self):
        parts = [f"{self.label}: {self.n} checked, no missed granule"]
        for name, v in self.extra.items():
            total, c = DISK // BITMAPS[name], self.changed[name]
            if v:
                parts.append(f"{name}: changed granules mean "
                             f"{sum(c) / len(c):.0f}, extra set mean "
                             f"{sum(v) / len(v):.0f} max {max(v)}, of {total}")
        parts.append(f"leaked clusters {self.leaks}")
        parts.append(", ".join(f"{k} {v}" for k, v in sorted(self.kinds.items())))
        return "; ".join(parts)


def one_kill(base, workdir, rng, i, chunk, tally, interop):
    img = workdir / "k.qcow2"
    shutil.copyfile(base.path, img)
    out = workdir / "serial.txt"
    when = rng.uniform(0.0, 1.15)
    with open(out, "w") as serial:
        proc = subprocess.Popen(tern_cmd(img, chunk, 1), stdout=serial,
                                stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
        time.sleep(when)
        exited = proc.poll() is not None
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    text = out.read_text(errors="replace")
    assert "TG FAIL" not in text, text[-2000:]
    kind = ("after exit" if exited else "during close" if "TG blk iops=" in text
            else "mid-I/O" if "TG blk device" in text else "before I/O")
    what = f"kill {i} at {when:.3f}s ({kind}, chunk {chunk}, {base.path.name})"
    extra, leaks = check_image(img, base, workdir, what, interop)
    tally.add(extra, leaks, kind)


def run_kills(workdir, n, rng, log=print):
    bases = [Base(workdir, c) for c in CLUSTERS]
    tally = Tally("kill -9")
    for i in range(n):
        one_kill(bases[i % 2], workdir, rng, i, CHUNKS[i % 3], tally,
                 interop=i % 10 == 0)
    log(tally.report())
    return tally


def record_run(base, workdir, chunk):
    """One tern run under the write log; returns (log, image bytes before)."""
    img = workdir / "rec.qcow2"
    shutil.copyfile(base.path, img)
    wlog, before = record(tern_cmd(img, chunk, 1), img, done="TG done rc=0")
    assert wlog.syncs() >= 2
    return wlog, before


# (cluster size, preallocated, chunk): both models on each; the sparse
# images have the guest's writes allocate qcow2 metadata as they go.
CUT_RUNS = [("64k", False, None), ("4k", False, "64K"), ("64k", True, "1M"),
            ("4k", False, None)]


def run_cuts(workdir, n, rng, log=print):
    tally = Tally("power cut")
    per = [n // len(CUT_RUNS) + (k < n % len(CUT_RUNS))
           for k in range(len(CUT_RUNS))]
    for (cluster, prealloc, chunk), count in zip(CUT_RUNS, per):
        base = Base(workdir, cluster, prealloc)
        wlog, before = record_run(base, workdir, chunk)
        img = workdir / "cut.qcow2"
        for k, cut in enumerate(pick_cuts(wlog, count, rng)):
            model = "reorder" if k % 2 else "synced"
            img.write_bytes(wlog.image_at(before, cut, model, rng))
            what = (f"cut before record {cut}/{len(wlog)} ({model}, chunk "
                    f"{chunk}, {base.path.name})")
            extra, leaks = check_image(img, base, workdir, what,
                                       interop=k % 8 == 0)
            tally.add(extra, leaks, model)
    log(tally.report())
    return tally


def _skip_reason():
    missing = missing_tools()
    if missing:
        return f"not built or not installed: {', '.join(missing)}"
    if not paths.has_kvm():
        return "/dev/kvm is missing or not accessible"
    return None


def test_kill9_keeps_bitmaps_consistent(tmp_path, capsys):
    import pytest
    if _skip_reason():
        pytest.skip(_skip_reason())
    tally = run_kills(tmp_path, 50, random.Random(17), log=lambda line: None)
    with capsys.disabled():
        print("\n" + tally.report())


def test_power_cut_keeps_bitmaps_consistent(tmp_path, capsys):
    import pytest
    if _skip_reason():
        pytest.skip(_skip_reason())
    tally = run_cuts(tmp_path, 50, random.Random(23), log=lambda line: None)
    with capsys.disabled():
        print("\n" + tally.report())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kills", type=int, default=50)
    ap.add_argument("--cuts", type=int, default=50)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    args = ap.parse_args()
    if _skip_reason():
        sys.exit(_skip_reason())
    print(f"seed {args.seed}, build {paths.build_dir()}")
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="tern-bitmap-crash-") as d:
        if args.kills:
            run_kills(Path(d), args.kills, rng)
        if args.cuts:
            run_cuts(Path(d), args.cuts, rng)


if __name__ == "__main__":
    main()
