"""Dirty bitmaps in postcopy, tern -> tern with real VMs: a qcow2 disk (1
GiB, the guest kit's blk workload writing 512-byte blocks one after the
other) holding bitmaps persistent and not, enabled and disabled, of 512 B
to 1 MiB granularity, empty, full and sparse, and a 4 TiB drive with its
own bitmap. The source's guest writes, is stopped, and migrates with
capability dirty-bitmaps and migrate-start-postcopy: the bitmaps alone, or
with postcopy-ram, or with postcopy-ram cut by migrate-pause and recovered
while the bitmaps still stream (max-postcopy-bandwidth keeps them
streaming for seconds). The destination's guest runs at once and goes on
writing where the source stopped, while its bitmaps still arrive (seen
through query-block: a witness bitmap of the destination's own image
records, a migrated one is busy). At the end every bitmap has its name,
granularity and flags, and its bits: the source's (x-debug-block-dirty-
bitmap-sha256 on both ends) plus, for those that record, the destination
guest's writes - exact extents from tern-img after the destination quit,
with its persistent bitmaps in its qcow2 (qemu-img info) and none stored
by the source."""
import json
import subprocess
import time

import pytest

from ternlib import TernVm, has_kvm, imgtools, paths
from ternlib.migration import wait_runstate
from ternlib import postcopy as pc

pytestmark = [pytest.mark.skipif(not has_kvm(), reason="needs /dev/kvm"),
              pytest.mark.skipif(bool(imgtools.missing()),
                                 reason=imgtools.missing() or "")]

MEM = 64
DISK = 1 << 30
BIG = 4 << 40
KiB, MiB, GiB, TiB = 1 << 10, 1 << 20, 1 << 30, 1 << 40
# Bits stream at this rate after the switchover: seconds of bitmaps.
POSTCOPY_BW = 64 * KiB
# The guest's writes: 512-byte blocks from offset 0 on, for 4 s of guest
# time, whether it runs on the source or on the destination.
APPEND = ("tg.workload=blk tg.blk.mode=iops tg.blk.rw=seqwrite tg.blk.bs=512 "
          "tg.blk.qd=1 tg.blk.seconds=4")

# What qemu-io wrote on the source's images while the bitmaps recorded.
PRE = [(900 * MiB, 4096), (950 * MiB, 512), (1000 * MiB + 512, 100 * KiB),
       (DISK - 512, 512)]
PRE_HUGE = [(0, 4096), (2 * TiB, 64 * KiB), (BIG - 64 * KiB, 64 * KiB)]
# name: (drive, granularity, enabled, bits before the guest ran)
PERSISTENT = {
    "p512": ("d0", 512, True, PRE),
    "full64k": ("d0", 64 * KiB, True, [(0, DISK)]),
    "dis1m": ("d0", 1 * MiB, False, PRE),
    "empty4k": ("d0", 4 * KiB, True, []),
    "huge": ("big", 64 * KiB, True, PRE_HUGE),
}
# Added through QMP on the source: (granularity, disabled before migrating).
TRANSIENT = {"np-en": (64 * KiB, False), "np-dis": (128 * KiB, True)}


def run(*args):
    r = imgtools.run(*args)
    assert r.returncode == 0, (args, r.stdout, r.stderr)
    return r.stdout


def qemu_io(img, *writes, zeroes=False):
    cmds = []
    for off, length in writes:
        cmds += ["-c", f"write {'-z ' if zeroes else ''}{off} {length}"]
    run(imgtools.QEMU_IO, "-f", "qcow2", *cmds, img)


def add(img, name, gran):
    run(imgtools.QEMU_IMG, "bitmap", "--add", "-g", str(gran), img, name)


def make_images(tmp_path):
    """The source's images with their persistent bitmaps (QEMU's tools
    write them, so the source loads them from the qcow2), and the
    destination's, empty but for a witness bitmap of its own."""
    imgs = {}
    for side in ("src", "dst"):
        for drive, size in (("d0", DISK), ("big", BIG)):
            path = tmp_path / f"{side}-{drive}.qcow2"
            run(imgtools.QEMU_IMG, "create", "-q", "-f", "qcow2", path, str(size))
            imgs[side, drive] = path
    d0, big = imgs["src", "d0"], imgs["src", "big"]
    add(d0, "full64k", 64 * KiB)
    qemu_io(d0, (0, DISK), zeroes=True)
    add(d0, "p512", 512)
    add(d0, "dis1m", 1 * MiB)
    qemu_io(d0, *PRE)
    run(imgtools.QEMU_IMG, "bitmap", "--disable", d0, "dis1m")
    add(d0, "empty4k", 4 * KiB)
    add(big, "huge", 64 * KiB)
    qemu_io(big, *PRE_HUGE)
    add(imgs["dst", "d0"], "witness", 512)
    return imgs


def drive_args(imgs, side):
    return ["-drive", f"file={imgs[side, 'd0']},format=qcow2,if=none,id=d0",
            "-device", "virtio-blk-pci,drive=d0",
            "-drive", f"file={imgs[side, 'big']},format=qcow2,if=none,id=big"]


def bitmaps(vm):
    """query-block's bitmaps of both drives, by name."""
    out = {}
    for dev in vm.qmp().execute("query-block"):
        for b in dev.get("inserted", {}).get("dirty-bitmaps", []):
            out[b["name"]] = dict(b, drive=dev["device"])
    return out


def sha256(vm, node, name):
    return vm.qmp().execute("x-debug-block-dirty-bitmap-sha256",
                            {"node": node, "name": name})["sha256"]


def start_source(tmp_path, imgs):
    src = TernVm(tmp_path, append=APPEND, memory=MEM, qmp=True, name="src",
                 paused=True, debug_exit=False,
                 extra_args=drive_args(imgs, "src")).start()
    q = src.qmp()
    for name, (gran, _) in TRANSIENT.items():
        q.execute("block-dirty-bitmap-add", {"node": "d0", "name": name,
                                             "granularity": gran})
    q.execute("cont")
    # The guest writes for a moment, then stands still: what it wrote is
    # the source's part of every recording bitmap.
    src.serial.wait_for(r"^TG blk device", timeout=30)
    time.sleep(0.5)
    q.execute("stop")
    for name, (_, disable) in TRANSIENT.items():
        if disable:
            q.execute("block-dirty-bitmap-disable", {"node": "d0", "name": name})
    return src


def migrate(src, dst, caps, uri):
    pc.prepare_destination(dst, uri, caps)
    pc.set_caps(src, caps)
    # A slow first pass, so migrate-start-postcopy comes before the source
    # could converge; then the bits at POSTCOPY_BW.
    src.qmp().execute("migrate-set-parameters", **{
        "max-bandwidth": 256 * KiB, "downtime-limit": 1,
        "max-postcopy-bandwidth": POSTCOPY_BW})
    src.qmp().execute("migrate", uri=uri)
    src.qmp().execute("migrate-start-postcopy")


def busy_while_writing(dst, timeout=60):
    """The destination's guest writes (its witness records) while a migrated
    bitmap is still busy: its bits have not all arrived."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        bm = bitmaps(dst)
        if bm.get("witness", {}).get("count", 0) and bm.get("huge", {}).get("busy"):
            return bm
        time.sleep(0.02)
    raise AssertionError(f"no write while the bitmaps streamed: {bitmaps(dst)}")


def merged(extents, gran):
    """Byte extents rounded out to whole granules, joined."""
    out = []
    for off, length in sorted((o // gran * gran,
                               -(-(o + n) // gran) * gran - o // gran * gran)
                              for o, n in extents):
        if out and off <= out[-1][0] + out[-1][1]:
            out[-1][1] = max(out[-1][1], off + length - out[-1][0])
        else:
            out.append([off, length])
    return out


def dump(img, name):
    return json.loads(imgtools.tern_img("bitmap", "--dump", img, name).stdout)


def check_source_side(src, imgs, shas):
    """The source keeps its bits, stored nothing: its image's entries are
    the stale ones it opened (in use), the transient ones are not there."""
    for name, sha in shas.items():
        drive = PERSISTENT.get(name, ("d0",))[0]
        assert sha256(src, drive, name) == sha, name
    src.qmp().execute("quit")
    src.wait_exit(timeout=30)
    info = json.loads(run(imgtools.QEMU_IMG, "info", "-U", "--output=json",
                          imgs["src", "d0"]))
    entries = {b["name"]: b for b in info["format-specific"]["data"]["bitmaps"]}
    assert set(entries) == {"p512", "full64k", "dis1m", "empty4k"}, entries
    for b in entries.values():
        assert "in-use" in b["flags"], entries


def check_destination(dst, imgs, shas):
    bm = bitmaps(dst)
    for name, (drive, gran, enabled, _) in PERSISTENT.items():
        b = bm[name]
        assert (b["drive"], b["granularity"], b["recording"], b["persistent"],
                b["busy"]) == (drive, gran, enabled, True, False), b
    for name, (gran, disabled) in TRANSIENT.items():
        b = bm[name]
        assert (b["granularity"], b["recording"], b["persistent"],
                b["busy"]) == (gran, not disabled, False, False), b
    # No write reaches them: the source's bits, bit for bit.
    for name in ("dis1m", "huge", "np-dis"):
        drive = PERSISTENT.get(name, ("d0",))[0]
        assert sha256(dst, drive, name) == shas[name], name
    # np-en recorded what empty4k did, at its own granularity.
    q = dst.qmp()
    q.execute("block-dirty-bitmap-add", {"node": "d0", "name": "check",
                                         "granularity": 64 * KiB})
    q.execute("block-dirty-bitmap-merge", {"node": "d0", "target": "check",
                                           "bitmaps": ["empty4k"]})
    assert sha256(dst, "d0", "check") == sha256(dst, "d0", "np-en")


def check_stored(imgs):
    """After the destination quit: its persistent bitmaps in its images,
    each with the source's bits plus, when recording, its guest's writes -
    which continued exactly where the source's stopped."""
    witness = dump(imgs["dst", "d0"], "witness")["extents"]
    assert len(witness) == 1 and witness[0][0] > 0, witness
    end = witness[0][0] + witness[0][1]
    guest = [(0, end)]
    for name, (drive, gran, enabled, pre) in PERSISTENT.items():
        d = dump(imgs["dst", drive], name)
        want = merged(pre + (guest if enabled and drive == "d0" else []), gran)
        assert d["granularity"] == gran and d["enabled"] == enabled, d
        assert d["extents"] == want, (name, d["extents"], want)
    info = json.loads(run(imgtools.QEMU_IMG, "info", "--output=json",
                          imgs["dst", "d0"]))
    names = {b["name"] for b in info["format-specific"]["data"]["bitmaps"]}
    assert names == {"p512", "full64k", "dis1m", "empty4k", "witness"}, info


def source_shas(src):
    shas = {}
    for name in list(PERSISTENT) + list(TRANSIENT):
        drive = PERSISTENT.get(name, ("d0",))[0]
        shas[name] = sha256(src, drive, name)
    return shas


def run_migration(tmp_path, caps, recover=False):
    imgs = make_images(tmp_path)
    src = start_source(tmp_path, imgs)
    dst = TernVm(tmp_path, append=APPEND, memory=MEM, qmp=True, name="dst",
                 incoming="defer", debug_exit=False,
                 extra_args=drive_args(imgs, "dst")).start()
    with src, dst:
        shas = source_shas(src)
        migrate(src, dst, caps, "unix:" + dst.sock_path("mig"))
        wait_runstate(dst, "running", timeout=60)
        busy_while_writing(dst)
        # Nor the destination's, until they are complete.
        r = dst.qmp().cmd("block-dirty-bitmap-remove", {"node": "big", "name": "huge"})
        assert "in use by another operation" in r["error"]["desc"], r
        # The source's bitmaps are the migration's: QMP may not touch them.
        r = src.qmp().cmd("block-dirty-bitmap-clear",
                              {"node": "d0", "name": "p512"})
        assert "in use by another operation" in r["error"]["desc"], r
        if recover:
            src.qmp().execute("migrate-pause")
            pc.wait_migrate_status(src, ("postcopy-paused",))
            pc.wait_migrate_status(dst, ("postcopy-paused",))
            assert bitmaps(dst)["huge"]["busy"]
            r = src.qmp().cmd("block-dirty-bitmap-clear",
                              {"node": "d0", "name": "p512"})
            assert "in use by another operation" in r["error"]["desc"], r
            uri = "unix:" + dst.sock_path("mig2")
            dst.qmp().execute("migrate-recover", uri=uri)
            src.qmp().execute("migrate", uri=uri, resume=True)
        pc.wait_completed(src, dst)
        assert "postcopy-active" in pc.migration_events(src)
        dst.serial.wait_for(r"^TG blk iops", timeout=60)    # writes over
        check_destination(dst, imgs, shas)
        dst.qmp().execute("quit")
        assert dst.wait_exit(timeout=60) == 0
        check_source_side(src, imgs, shas)
        check_stored(imgs)
        for vm in (src, dst):
            assert "ERROR: AddressSanitizer" not in vm.stderr_text()


def test_bitmaps_alone_in_postcopy(tmp_path):
    run_migration(tmp_path, ["dirty-bitmaps", "events"])


def test_bitmaps_with_postcopy_ram(tmp_path):
    run_migration(tmp_path, ["dirty-bitmaps", "postcopy-ram", "events"])


def test_bitmaps_with_postcopy_ram_recovered(tmp_path):
    run_migration(tmp_path, ["dirty-bitmaps", "postcopy-ram", "events"],
                  recover=True)


def test_bitmap_postcopy_stream_in_tern_stream(tmp_path):
    """The same migration into a file (a postcopy of bitmaps alone needs no
    return path): tern-stream reads QEMU's order in it - ADVISE with no
    payload, the package with LISTEN and RUN, the bits after RUN, each
    bitmap's COMPLETE at the end."""
    imgs = make_images(tmp_path)
    src = start_source(tmp_path, imgs)
    out = tmp_path / "bitmaps.stream"
    with src:
        pc.set_caps(src, ["dirty-bitmaps"])
        src.qmp().execute("migrate-set-parameters", {
            "max-bandwidth": 256 * KiB, "downtime-limit": 1})
        src.qmp().execute("migrate", uri=f"exec:cat > {out}")
        src.qmp().execute("migrate-start-postcopy")
        info = pc.wait_migrate_status(src, ("completed", "failed"))
        assert info["status"] == "completed", info
    r = subprocess.run([str(paths.tern_stream()), "-v", str(out)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    text = r.stdout
    advise = text.index("command POSTCOPY_ADVISE length 0")
    run_at = text.index("command POSTCOPY_RUN length 0")
    assert advise < text.index("command POSTCOPY_LISTEN length 0") < run_at
    assert "POSTCOPY_RAM_DISCARD" not in text and "PING" not in text
    after = text[run_at:]
    assert "dirty-bitmap: BITS 'huge'" in after and "BITS 'p512'" in after
    assert "dirty-bitmap: BITS" not in text[:run_at]
    for name, (drive, gran, enabled, _) in PERSISTENT.items():
        flags = (1 if enabled else 0) | 2
        assert (f"bitmap: node '{drive}' name '{name}' granularity {gran} "
                f"flags 0x{flags:02x} complete") in text, name
    for name, (gran, disabled) in TRANSIENT.items():
        assert (f"bitmap: node 'd0' name '{name}' granularity {gran} "
                f"flags 0x{0 if disabled else 1:02x} complete") in text, name
