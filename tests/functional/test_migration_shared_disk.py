"""Live migration with disk I/O on a shared qcow2 image, QEMU's way: the
destination (-incoming) opens the image inactive (no write lock, metadata
only), the source flushes and lets go after the final copy, and the
destination takes the image and rereads its metadata before the guest runs
on. The guest kit's blk workload writes, flushes and verifies blocks in a
loop while it hops A -> B -> C; no round may fail, each hop's destination
must go on with the rounds, and `qemu-img check` finds the image clean."""
import subprocess
import time

import pytest

from ternlib import QmpError, TernVm, has_kvm
from ternlib.migration import wait_status, wait_runstate

pytestmark = pytest.mark.skipif(not has_kvm(), reason="needs /dev/kvm")

MEM = 128
ROUND_RE = r"^TG blk round=(\d+) ok$"
APPEND = ("tg.workload=blk tg.blk.mode=verify tg.blk.rounds=0 "
          "tg.blk.bs=65536 tg.blk.count=32 tg.blk.offset=1048576")


def last_round(vm):
    found = vm.serial.findall(ROUND_RE)
    return int(found[-1][1]) if found else 0


def wait_round(vm, n, timeout=30.0):
    m = vm.serial.wait_for(ROUND_RE, timeout=timeout,
                           where=lambda m: int(m[1]) >= n)
    return int(m[1])


def make_vm(tmp_path, img, name, incoming=None, paused=False):
    drive = ["-drive", f"file={img},format=qcow2,if=none,id=d0",
             "-device", "virtio-blk-pci,drive=d0"]
    return TernVm(tmp_path, append=APPEND, memory=MEM, qmp=True, name=name,
                  incoming=incoming, paused=paused, extra_args=drive).start()


def qemu_img_check(img):
    r = subprocess.run(["qemu-img", "check", str(img)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "No errors were found" in r.stdout, r.stdout


def test_live_migration_with_disk_io_on_shared_qcow2(tmp_path):
    img = tmp_path / "disk.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(img), "64M"],
                   check=True, timeout=30)
    vms = []
    try:
        # B opens the image before A has written anything: its metadata
        # is stale by the time it takes over, and must be reread.
        uri = "unix:" + str(tmp_path / "mig-ab.sock")
        b = make_vm(tmp_path, img, "b", incoming=uri)
        vms.append(b)
        wait_runstate(b, "inmigrate")
        a = make_vm(tmp_path, img, "a")
        vms.append(a)
        wait_round(a, 3)
        cur = a
        for hop, nxt in enumerate([b, None]):
            if nxt is None:
                uri = "unix:" + str(tmp_path / f"mig-{hop}.sock")
                nxt = make_vm(tmp_path, img, f"v{hop}", incoming=uri)
                vms.append(nxt)
                wait_runstate(nxt, "inmigrate")
            # While the source owns the image, the destination holds no
            # write lock and a third writer is still refused (by the source).
            r = subprocess.run(["qemu-io", "-c", "write 0 4k", str(img)],
                               capture_output=True, text=True, timeout=30)
            assert r.returncode != 0 and "write\" lock" in r.stderr, r
            cur.qmp().execute("migrate-set-parameters", **{"max-bandwidth": 0})
            before = last_round(cur)
            cur.qmp().execute("migrate", uri=uri)
            info = wait_status(cur, ("completed", "failed", "cancelled"), 60)
            assert info["status"] == "completed", (info, nxt.stderr_text()[-2000:])
            wait_runstate(cur, "postmigrate")
            wait_runstate(nxt, "running")
            # The rounds go on past where the source was: the destination
            # read back what the source wrote and writes on itself.
            done = last_round(cur)
            assert done >= before
            wait_round(nxt, done + 3)
            print(f"hop {hop}: source stopped after round {done}, "
                  f"destination at {last_round(nxt)}")
            cur.serial.assert_no_fail()
            nxt.serial.assert_no_fail()
            assert "error" not in nxt.stderr_text().lower(), nxt.stderr_text()
            cur = nxt
        # Everyone lets go in order: the inactive sources write nothing when
        # they quit, the last owner closes the image cleanly.
        for vm in vms:
            if vm is not cur:
                vm.qmp().execute("quit")
                vm.wait_exit(10)
        cur.qmp().execute("quit")
        cur.wait_exit(10)
        qemu_img_check(img)
    finally:
        for vm in vms:
            vm.kill()


@pytest.mark.parametrize("how", ["cancel", "kill-destination"])
def test_failed_migration_leaves_the_source_owning_its_disk(tmp_path, how):
    """A migration that ends early (migrate_cancel, or the destination
    killed) leaves the disk with the source: its rounds go on, and once
    everyone quits the image is clean."""
    img = tmp_path / "disk.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(img), "64M"],
                   check=True, timeout=30)
    vms = []
    try:
        a = make_vm(tmp_path, img, "a")
        vms.append(a)
        wait_round(a, 2)
        uri = "unix:" + str(tmp_path / "mig.sock")
        b = make_vm(tmp_path, img, "b", incoming=uri)
        vms.append(b)
        wait_runstate(b, "inmigrate")
        # 32 KiB/s: ~10 KiB fit in the downtime limit while the guest
        # rewrites 2 MiB of buffers per round, so it cannot converge.
        a.qmp().execute("migrate-set-parameters", **{"max-bandwidth": 32 << 10})
        a.qmp().execute("migrate", uri=uri)
        wait_status(a, ("active",))
        time.sleep(1.0)
        if how == "cancel":
            a.qmp().execute("migrate_cancel")
        else:
            b.kill()
        info = wait_status(a, ("cancelled", "failed", "completed"))
        assert info["status"] in ("cancelled", "failed"), info
        wait_runstate(a, "running")
        wait_round(a, last_round(a) + 5)
        a.serial.assert_no_fail()
        for vm in vms:
            if vm.running():
                vm.qmp().execute("quit")
                vm.wait_exit(10)
        qemu_img_check(img)
    finally:
        for vm in vms:
            vm.kill()


def test_cont_on_postmigrate_source_takes_the_disk_back(tmp_path):
    """As QEMU's cont: a postmigrate source's drives are inactive, so cont
    must activate them first. While the destination holds the image (it
    activated it at the end of the migration) cont fails with the lock error
    and the source stays postmigrate; once the destination quits, cont takes
    the image back and the guest's verify rounds go on with no failure.

    The destination is started with -S and never runs its guest: if it did,
    it would write later rounds over blocks the source's guest wrote in the
    round it was stopped in, and resuming the source would be split-brain
    (the guest's memory no longer matches the disk), in QEMU as in tern.
    Re-reading metadata a destination changed is covered by test-block-inactive."""
    img = tmp_path / "disk.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(img), "64M"],
                   check=True, timeout=30)
    vms = []
    try:
        uri = "unix:" + str(tmp_path / "mig-cont.sock")
        b = make_vm(tmp_path, img, "b", incoming=uri, paused=True)
        vms.append(b)
        wait_runstate(b, "inmigrate")
        a = make_vm(tmp_path, img, "a")
        vms.append(a)
        wait_round(a, 2)
        a.qmp().execute("migrate-set-parameters", **{"max-bandwidth": 0})
        a.qmp().execute("migrate", uri=uri)
        info = wait_status(a, ("completed", "failed", "cancelled"), 60)
        assert info["status"] == "completed", (info, b.stderr_text()[-2000:])
        wait_runstate(a, "postmigrate")
        wait_runstate(b, "paused")
        done = last_round(a)

        with pytest.raises(QmpError) as e:
            a.qmp().execute("cont")
        assert e.value.error_class == "GenericError", e.value.reply
        assert "lock" in e.value.desc and str(img) in e.value.desc, \
            e.value.desc
        assert a.qmp().execute("query-status")["status"] == "postmigrate"
        time.sleep(0.3)
        assert last_round(a) == done, "the source's guest ran without its disk"

        b.qmp().execute("quit")
        b.wait_exit(10)
        b.serial.assert_no_fail()
        a.qmp().execute("cont")
        wait_runstate(a, "running")
        wait_round(a, done + 3)
        a.serial.assert_no_fail()
        assert "error" not in a.stderr_text().lower(), a.stderr_text()
        a.qmp().execute("quit")
        a.wait_exit(10)
        qemu_img_check(img)
    finally:
        for vm in vms:
            vm.kill()
