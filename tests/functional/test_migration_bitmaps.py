"""Dirty-bitmap migration (capability dirty-bitmaps): a bitmap that recorded
the guest's virtio-blk writes on tern A arrives on tern B with the same name,
granularity, flags and dirty count, and keeps recording there; also when
the migration switches to RAM postcopy (the bits then follow RUN; more in
test_migration_bitmap_postcopy.py)."""
import json
import subprocess
import time

import pytest

from ternlib import TernVm, has_kvm, qemu_img

from test_migration_tern import MEM, migrate, unlimited, wait_runstate
from ternlib.bitmaps import tern_extents
from ternlib.migration import wait_status

pytestmark = pytest.mark.skipif(not has_kvm(), reason="needs /dev/kvm")


def drive_args(img):
    return ["-drive", f"file={img},format=qcow2,if=none,id=d0",
            "-device", "virtio-blk-pci,drive=d0"]


def bitmaps(vm):
    for dev in vm.qmp().execute("query-block"):
        if dev["device"] == "d0":
            return {b["name"]: b for b in dev["inserted"].get("dirty-bitmaps", [])}
    raise AssertionError("no drive d0")


def make_image(path):
    subprocess.run([qemu_img(), "create", "-q", "-f", "qcow2", str(path), "64M"],
                   check=True)


@pytest.mark.parametrize("enabled,postcopy", [(True, False), (False, False),
                                              (True, True)])
def test_dirty_bitmap_travels_with_the_guest(tmp_path, enabled, postcopy):
    src_img, dst_img = tmp_path / "a.qcow2", tmp_path / "b.qcow2"
    make_image(src_img)
    make_image(dst_img)
    append = ("tg.workload=blk tg.blk.mode=verify tg.blk.count=32 "
              "tg.blk.offset=0x100000 tg.blk.hold=1")
    with TernVm(tmp_path, append=append, memory=MEM, qmp=True, name="a",
                paused=True, extra_args=drive_args(src_img)) as a:
        a.qmp().execute("block-dirty-bitmap-add",
                        {"node": "d0", "name": "b0", "granularity": 65536})
        a.qmp().execute("cont")
        a.serial.wait_for(r"^TG blk holding", timeout=30)
        if not enabled:
            a.qmp().execute("block-dirty-bitmap-disable", {"node": "d0", "name": "b0"})
        before = bitmaps(a)["b0"]
        assert before["count"] > 0
        uri = "unix:" + a.sock_path("mig")
        with TernVm(tmp_path, append=append, memory=MEM, qmp=True, name="b",
                    incoming=uri, extra_args=drive_args(dst_img)) as b:
            wait_runstate(b, "inmigrate")
            caps = ["dirty-bitmaps"] + (["postcopy-ram"] if postcopy else [])
            for vm in (a, b):
                vm.qmp().execute("migrate-set-capabilities", capabilities=[
                    {"capability": c, "state": True} for c in caps])
            if postcopy:
                a.qmp().execute("migrate-set-parameters",
                                **{"max-bandwidth": 16 << 20})
                a.qmp().execute("migrate", uri=uri)
                a.qmp().execute("migrate-start-postcopy")
                info = wait_status(a, ("completed", "failed"), 60)
                assert info["status"] == "completed", info
            else:
                unlimited(a)
                migrate(a, b, uri)
            wait_runstate(b, "running")
            after = bitmaps(b)["b0"]
            for key in ("count", "granularity", "recording", "persistent"):
                assert after[key] == before[key], (key, before, after)
            assert after["recording"] is enabled


@pytest.mark.parametrize("crash_safe", ["off", "on"])
def test_failed_migration_gives_the_bitmap_back_to_its_image(tmp_path,
                                                              crash_safe):
    """A migration with dirty-bitmaps that fails leaves the source owning its
    persistent bitmap: it is stored exactly at close, not left IN_USE (off)
    or as the write-intent superset (on), so the next incremental backup
    still starts from it."""
    img = tmp_path / "a.qcow2"
    make_image(img)
    append = ("tg.workload=blk tg.blk.mode=verify tg.blk.count=8 "
              "tg.blk.offset=0x100000 tg.blk.hold=1")
    args = ["-drive", f"file={img},format=qcow2,if=none,id=d0,"
            f"crash-safe-bitmaps={crash_safe}",
            "-device", "virtio-blk-pci,drive=d0"]
    with TernVm(tmp_path, append=append, memory=MEM, qmp=True, name="a",
                paused=True, extra_args=args) as a:
        q = a.qmp()
        q.execute("block-dirty-bitmap-add", {"node": "d0", "name": "b0",
                                             "granularity": 65536,
                                             "persistent": True})
        q.execute("cont")
        a.serial.wait_for(r"^TG blk holding", timeout=30)
        count = bitmaps(a)["b0"]["count"]
        assert count > 0
        q.execute("migrate-set-capabilities", capabilities=[
            {"capability": "dirty-bitmaps", "state": True}])
        unlimited(a)
        # The reader takes a little and goes: the source's writes fail.
        q.execute("migrate", uri="exec:head -c 4096 >/dev/null")
        assert wait_status(a, ("completed", "failed"), 60)["status"] == "failed"
        # The main loop takes the failure in a moment after the job's end.
        deadline = time.monotonic() + 30
        while not bitmaps(a)["b0"]["persistent"]:
            assert time.monotonic() < deadline, bitmaps(a)
            time.sleep(0.1)
        q.execute("stop")
        count = bitmaps(a)["b0"]["count"]
        q.execute("quit")
        a.wait_exit(timeout=30)
    info = json.loads(subprocess.run(
        [qemu_img(), "info", "--output=json", str(img)], check=True,
        capture_output=True, text=True).stdout)
    bms = info["format-specific"]["data"]["bitmaps"]
    assert [(b["name"], b["flags"]) for b in bms] == [("b0", ["auto"])], bms
    # Exactly the bits the source had, not a superset.
    dirty = sum(length for _, length in tern_extents(img, "b0"))
    assert dirty == count, (dirty, count)
