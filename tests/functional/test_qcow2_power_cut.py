#!/usr/bin/python3
"""qcow2 metadata order at power cuts, without bitmaps.

A writer runs once under tests/crash/write-log.so (ternlib/powercut.py);
the image is rebuilt as a disk would hold it after a cut at random points
of the log, mostly with the "reorder" model (every write since the last
sync survives or not, independently: a disk may reorder what it was not
told to order), else only what was synced. After every cut `qemu-img
check` and `tern-img check` must find no corruption and no check error;
leaks are allowed, as after a crash of QEMU. (Inside the snapshot's
creation, COPIED flags that disagree with a refcount changed a moment
before are allowed too, and must repair cleanly: see check_consistent.)

Writers:
  vm    tern booting the guest kit's `blk` workload, 4 KiB random writes at
        queue depth 8 into a sparse image (64 KiB, 4 KiB and 512-byte
        clusters: data clusters, L2 tables, refcount blocks and, with small
        clusters, refcount-table growth as the file grows);
  img   tern-img on a 512-byte-cluster image, in three processes: random
        writes with a flush every 16 and VM state past the disk (L1 table
        growth), an internal snapshot, then writes that copy the
        snapshot's clusters and a discard (clusters let go, refcounts
        lowered, L2 tables copied). A cut falls into one of the three.

For a longer run:
    TERN_BUILD=$PWD/build /usr/bin/python3 tests/functional/test_qcow2_power_cut.py \\
        --cuts 500 [--seed N]
"""
import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ternlib import paths  # noqa: E402
from ternlib.powercut import (blk_workload_cmd, check_consistent,  # noqa: E402
                              pick_cuts, record, run, write_log_so)

DISK = 16 << 20
VM_CLUSTERS = ["64k", "4k", "512"]
IMG_STEPS = [
    ["io", "-c", "stress 1 300 8k 16", "-c", "vmsave -P 0x44 0 64k",
     "-c", "stress 2 100 4k 16"],
    ["snapshot", "-c", "s1"],
    ["io", "-c", "stress 3 200 4k 16", "-c", "discard 2M 3M",
     "-c", "stress 4 100 2k 16"],
]


def create(img, cluster):
    run(paths.qemu_img(), "create", "-q", "-f", "qcow2", "-o",
        f"cluster_size={cluster}", img, str(DISK))


def cut_and_check(wlog, before, cuts, rng, workdir, label, tally,
                  snapshot=False):
    img = workdir / "cut.qcow2"
    for k, cut in enumerate(cuts):
        model = "synced" if k % 4 == 3 else "reorder"
        img.write_bytes(wlog.image_at(before, cut, model, rng))
        what = f"{label}: cut before record {cut}/{len(wlog)} ({model})"
        tally["leaks"] += check_consistent(img, what, copied_ok=snapshot)
        tally["cuts"] += 1


def vm_runs(workdir, n, rng, tally):
    per = [n // len(VM_CLUSTERS) + (k < n % len(VM_CLUSTERS))
           for k in range(len(VM_CLUSTERS))]
    for cluster, count in zip(VM_CLUSTERS, per):
        img = workdir / f"vm-{cluster}.qcow2"
        create(img, cluster)
        wlog, before = record(blk_workload_cmd(img), img, done="TG done rc=0")
        cut_and_check(wlog, before, pick_cuts(wlog, count, rng), rng, workdir,
                      f"vm, {cluster} clusters", tally)


def img_runs(workdir, n, rng, tally):
    img = workdir / "img.qcow2"
    create(img, "512")
    logs = [record([paths.tern_img()] + step + [img], img)
            for step in IMG_STEPS]
    per = [n // len(logs) + (k < n % len(logs)) for k in range(len(logs))]
    for (wlog, before), step, count in zip(logs, IMG_STEPS, per):
        cut_and_check(wlog, before, pick_cuts(wlog, count, rng, 2048), rng,
                      workdir, f"tern-img {' '.join(step[:3])}", tally,
                      snapshot=step[0] == "snapshot")


def _skip_reason(vm):
    need = [paths.tern_img(), write_log_so(), paths.qemu_img()]
    if vm:
        need += [paths.tern_binary(), paths.guest_kit()]
    missing = [str(p) for p in need if not os.path.exists(p)]
    if missing:
        return f"not built or not installed: {', '.join(missing)}"
    if vm and not paths.has_kvm():
        return "/dev/kvm is missing or not accessible"
    return None


def report(label, tally):
    return (f"{label}: {tally['cuts']} cuts, no corruption; "
            f"leaked clusters {tally['leaks']}")


def _run(tmp_path, capsys, vm, seed, label):
    import pytest
    if _skip_reason(vm):
        pytest.skip(_skip_reason(vm))
    tally = {"cuts": 0, "leaks": 0}
    (vm_runs if vm else img_runs)(tmp_path, 60, random.Random(seed), tally)
    with capsys.disabled():
        print("\n" + report(label, tally))


def test_power_cut_vm_writer_leaves_no_corruption(tmp_path, capsys):
    _run(tmp_path, capsys, True, 31, "qcow2 power cut, guest writer")


def test_power_cut_snapshot_cow_discard_leaves_no_corruption(tmp_path,
                                                             capsys):
    _run(tmp_path, capsys, False, 37, "qcow2 power cut, tern-img writer")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cuts", type=int, default=120)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    args = ap.parse_args()
    print(f"seed {args.seed}, build {paths.build_dir()}")
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="tern-qcow2-cut-") as d:
        for vm, fn in ((True, vm_runs), (False, img_runs)):
            if _skip_reason(vm):
                print(_skip_reason(vm))
                continue
            tally = {"cuts": 0, "leaks": 0}
            fn(Path(d), args.cuts, rng, tally)
            print(report("guest writer" if vm else "tern-img writer", tally))


if __name__ == "__main__":
    main()
