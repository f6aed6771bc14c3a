"""Power cuts for crash tests: a process runs under tests/crash/write-log.so,
which logs every write and sync it makes to one image file; the image is
then rebuilt as a disk would hold it after a cut at chosen points of that
log (writelog.py: only what was synced, or that plus any subset of the
writes since) and checked with qemu-img and tern-img.

    wlog, before = record(cmd, img)          # cmd writes img
    for cut in pick_cuts(wlog, 20, rng):
        cut_img.write_bytes(wlog.image_at(before, cut, "reorder", rng))
        leaks = check_consistent(cut_img, f"cut {cut}")

Also the command line of the guest kit's `blk` random-write workload on
tern, the writer both crash tests use.
"""
import json
import os
import subprocess

from . import paths
from .writelog import WriteLog

TIMEOUT = 60


def write_log_so():
    return paths.build_dir() / "tests" / "crash" / "write-log.so"


def run(*args, ok=True, env=None, timeout=TIMEOUT):
    p = subprocess.run([str(a) for a in args], capture_output=True, text=True,
                       timeout=timeout, env=env, stdin=subprocess.DEVNULL)
    if ok and p.returncode != 0:
        raise AssertionError(f"{args} failed ({p.returncode}):\n{p.stdout}\n"
                             f"{p.stderr}")
    return p


def blk_workload_cmd(img, drive_opts="", seconds=1):
    """tern booting the guest kit's `blk` workload: 4 KiB random writes at
    queue depth 8 for `seconds` to img (qcow2) on virtio-blk."""
    drive = f"file={img},format=qcow2,if=none,id=d0{drive_opts}"
    append = ("tg.workload=blk tg.blk.mode=iops tg.blk.rw=randwrite "
              f"tg.blk.bs=4096 tg.blk.qd=8 tg.blk.seconds={seconds}")
    return [str(paths.tern_binary()), "-M", "virt", "-accel", "kvm", "-m",
            "256M", "-kernel", str(paths.guest_kit()), "-append", append,
            "-serial", "stdio", "-display", "none", "-drive", drive,
            "-device", "virtio-blk-pci,drive=d0",
            "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]


def record(cmd, img, done=None):
    """Runs cmd (which writes img) under the write log. It must exit 0, or
    print `done` on stdout when given (the guest kit exits through
    isa-debug-exit). Returns (log, the image's bytes before)."""
    before = img.read_bytes()
    logfile = img.with_suffix(".log")
    env = dict(os.environ, LD_PRELOAD=str(write_log_so()),
               TERN_WRITE_LOG=str(logfile), TERN_WRITE_LOG_TARGET=str(img),
               ASAN_OPTIONS=os.environ.get("ASAN_OPTIONS", "") +
               ":verify_asan_link_order=0")
    p = run(*cmd, ok=done is None, env=env)
    if done is not None:
        assert done in p.stdout, p.stdout[-2000:] + p.stderr[-2000:]
    wlog = WriteLog.read(logfile)
    logfile.unlink()
    # The log must be whole: replaying all of it gives the image left.
    assert wlog.image_at(before, len(wlog)) == img.read_bytes()
    return wlog, before


def pick_cuts(wlog, n, rng, guest_len=4096):
    """A third anywhere, a third on records other than guest writes of
    guest_len bytes (metadata, intents: where the order matters), a third
    just before a sync (so every write since the one before may or may not
    have landed)."""
    meta = [i for i, r in enumerate(wlog.records)
            if not (r.kind == "W" and r.length == guest_len)]
    syncs = [i for i, r in enumerate(wlog.records) if r.kind == "S"]
    k = n // 3
    cuts = [rng.randrange(len(wlog) + 1) for _ in range(n - 2 * k)]
    for pool in (meta, syncs):
        cuts += [rng.choice(pool or meta or [len(wlog)]) for _ in range(k)]
    return cuts


def check_consistent(img, what, copied_ok=False):
    """qemu-img check and tern-img check find no corruption and no check
    error (leaks allowed); returns the leaks qemu-img counted.

    copied_ok: a cut inside an internal snapshot's creation or deletion may
    leave COPIED flags of active L2 entries that disagree with refcounts
    raised (or lowered) a moment earlier. qemu-img counts those as
    corruptions, though the snapshot is not in the header yet (or no longer)
    and repairing them (check -r all) changes nothing else; QEMU's own
    snapshots leave the same window. They are allowed then, nothing else."""
    p = run(paths.qemu_img(), "check", "--output=json", img, ok=False)
    report = json.loads(p.stdout) if p.stdout.strip() else {}
    copied = p.stderr.count("OFLAG_COPIED") if copied_ok else 0
    assert p.returncode in (0, 2, 3) if copied else p.returncode in (0, 3), \
        f"{what}: qemu-img check: {p.stdout}{p.stderr}"
    assert report.get("corruptions", 0) == copied, \
        f"{what}: {report}{p.stderr}"
    assert report.get("check-errors", 0) == 0, f"{what}: {report}{p.stderr}"
    t = run(paths.tern_img(), "check", "--output=json", img, ok=False)
    assert t.returncode in ((0, 2, 3) if copied else (0, 3)), \
        f"{what}: tern-img check: {t.stdout}{t.stderr}"
    if copied:
        run(paths.qemu_img(), "check", "-r", "all", img, ok=False)
        again = run(paths.qemu_img(), "check", img, ok=False)
        assert again.returncode in (0, 3), \
            f"{what}: after repair: {again.stdout}{again.stderr}"
    return report.get("leaks", 0)
