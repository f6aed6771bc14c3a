"""Internal snapshots of a running tern guest: HMP savevm / loadvm / delvm /
info snapshots (as libvirt sends them through human-monitor-command) and
-loadvm at start.

The guest kit proves where it is: `dirty` prints its pass count and
verifies every page against a generation array that lives in the same
RAM, so a guest loaded back goes on counting from the saved pass and
verifies the saved generation (a page left at a later one fails); `blk`
writes, flushes and reads back a pattern that moves on each round, so a
disk that was not reverted with the RAM fails the read-back. qemu-img
check must find the images clean after each step and qemu-img must list
tern's snapshots with the VM state size tern recorded."""
import subprocess
import time

import pytest

from ternlib import TernVm, guestkit, has_kvm, paths
from ternlib.migration import wait_runstate
from ternlib.snapshot import (Qcow2Snapshots, hmp, qemu_img_check,
                              qemu_img_list, qemu_img_snapshots)

pytestmark = pytest.mark.skipif(not has_kvm(), reason="needs /dev/kvm")

DIRTY = guestkit.cmdline("dirty", mem="16M", rate="4M", report=100)
BLK = ("tg.workload=blk tg.blk.mode=verify tg.blk.rounds=0 "
       "tg.blk.bs=65536 tg.blk.count=32 tg.blk.offset=1048576")
ROUND_RE = r"^TG blk round=(\d+) ok$"


def make_image(path, size="64M"):
    subprocess.run([paths.qemu_img(), "create", "-q", "-f", "qcow2",
                    str(path), size], check=True, timeout=30)
    return path


def drives(imgs, device=False):
    args = []
    for i, img in enumerate(imgs):
        args += ["-drive", f"file={img},format=qcow2,if=none,id=d{i},"
                 f"node-name=n{i}"]
        if device:
            args += ["-device", f"virtio-blk-pci,drive=d{i}"]
    return args


def start(tmp_path, imgs, append=DIRTY, name="t", extra=(), device=False,
          **kw):
    return TernVm(tmp_path, append=append, memory=128, qmp=True, name=name,
                  extra_args=drives(imgs, device) + list(extra), **kw).start()


def quit_vm(vm):
    vm.qmp().execute("quit")
    vm.wait_exit(30)


def passes_after(vm, mark, n=3, timeout=30, below=None):
    """The first n pass counts the guest prints after serial position mark;
    with 'below', counting starts at the first pass under it (a running
    guest may print a pass of its own after the mark, before a load
    replaces it)."""
    counts = []
    start = mark
    deadline = time.monotonic() + timeout
    while len(counts) < n:
        left = deadline - time.monotonic()
        assert left > 0, f"no {n} passes after the load within {timeout}s"
        m = vm.serial.wait_for(guestkit.DIRTY_PASS_RE, timeout=left,
                               start=start)
        start = m.end()
        if counts or below is None or int(m[1]) < below:
            counts.append(int(m[1]))
    return counts


def run_on(vm, n, timeout=60):
    """Let the guest do n more passes (counted from its last line; the log
    holds earlier, higher counts from before a load)."""
    mark = vm.serial.mark()
    last = guestkit.last_dirty_pass(vm.serial)
    return guestkit.wait_dirty_passes(vm.serial, last + n, timeout=timeout,
                                      start=mark)


def save(vm, tag):
    """savevm tag; returns the last pass the guest printed before it."""
    before = guestkit.last_dirty_pass(vm.serial)
    assert hmp(vm, f"savevm {tag}") == ""
    return before


def load(vm, tag, running=False):
    """loadvm tag; returns (pass printed before, first passes after).
    running: load into the running guest (HMP loadvm stops it and resumes
    it); the guest may print a pass after the mark and before loadvm stops
    it, so this is only for a snapshot older than every pass printed.
    Otherwise the guest is stopped first, so every line after the mark is
    the loaded guest's, and continued after the load."""
    before = guestkit.last_dirty_pass(vm.serial)
    q = vm.qmp()
    if not running:
        q.execute("stop")
    mark = vm.serial.mark()
    assert hmp(vm, f"loadvm {tag}") == ""
    if not running:
        assert q.execute("query-status")["status"] == "paused"
        q.execute("cont")
    assert q.execute("query-status")["status"] == "running"
    return before, passes_after(vm, mark, below=before if running else None)


# Passes between the last line printed before a save and the first one
# printed after a load (the guest prints every 100 ms); the tests run the
# guest far past this between a save and a load.
SLACK = 100


def assert_goes_on_from(saved, before_load, after):
    """The guest loaded back counts on from where it was saved, not from
    where it had got to, and upwards."""
    assert saved <= after[0] <= saved + SLACK, (saved, before_load, after)
    assert abs(before_load - saved) > SLACK, (saved, before_load)
    assert after == sorted(after), after


def test_dirty_guest_goes_back_to_the_saved_point(tmp_path):
    img = make_image(tmp_path / "d.qcow2")
    vm = start(tmp_path, [img])
    try:
        guestkit.wait_dirty_passes(vm.serial, 20, timeout=30)
        saved = save(vm, "s1")
        assert vm.qmp().execute("query-status")["status"] == "running"
        qemu_img_check(img)
        # It keeps changing: far more passes, every page rewritten.
        run_on(vm, 300)
        before, after = load(vm, "s1", running=True)
        assert_goes_on_from(saved, before, after)
        # Every page verifies against the saved generation, many times over.
        run_on(vm, 100)
        vm.serial.assert_no_fail()
        qemu_img_check(img)
        info = hmp(vm, "info snapshots")
        quit_vm(vm)
    finally:
        vm.kill()
    qemu_img_check(img)
    # qemu-img lists it with the size tern recorded and printed.
    sns = qemu_img_snapshots(img)
    assert list(sns) == ["s1"]
    size = sns["s1"]["vm-state-size"]
    assert size > 16 << 20                          # the written region
    # The size is the stream's: it ends with the VM description exactly there.
    assert Qcow2Snapshots(img).stream_ends_at("s1", size)
    assert not Qcow2Snapshots(img).stream_ends_at("s1", size - 1)
    row = [l for l in qemu_img_list(img).splitlines() if " s1 " in l][0]
    size_text = row.split()[2] + " " + row.split()[3]
    assert f" s1               {size_text} " in info.replace("\r\n", "\n"), \
        (info, row)


def test_blk_guest_with_io_in_flight(tmp_path):
    """Saved while the guest's virtio-blk requests are in flight: those
    the device had not finished go with the state and finish after the
    load; the disk goes back with the RAM, so the rounds verify."""
    img = make_image(tmp_path / "d.qcow2")
    vm = start(tmp_path, [img], append=BLK, device=True)
    try:
        vm.serial.wait_for(ROUND_RE, timeout=30, where=lambda m: int(m[1]) >= 3)
        rounds = vm.serial.findall(ROUND_RE)
        assert hmp(vm, "savevm busy") == ""
        saved = int(vm.serial.findall(ROUND_RE)[-1][1])
        assert saved >= int(rounds[-1][1])
        vm.serial.wait_for(ROUND_RE, timeout=60,
                           where=lambda m: int(m[1]) >= saved + 6)
        before = int(vm.serial.findall(ROUND_RE)[-1][1])
        mark = vm.serial.mark()
        assert hmp(vm, "loadvm busy") == ""
        # The running guest may finish a round after the mark and before
        # loadvm stops it; those rounds are past 'before', the loaded
        # guest's are not. 'saved' may lag the snapshot by a round: a line
        # the guest wrote just before savevm stopped it can reach the
        # serial reader after savevm has returned.
        first = vm.serial.wait_for(ROUND_RE, timeout=60, start=mark,
                                   where=lambda m: int(m[1]) < before)
        assert saved <= int(first[1]) <= saved + 2 < before, \
            (saved, first[0], before)
        vm.serial.wait_for(ROUND_RE, timeout=60, start=first.end(),
                           where=lambda m: int(m[1]) >= saved + 4)
        vm.serial.assert_no_fail()
        quit_vm(vm)
    finally:
        vm.kill()
    qemu_img_check(img)
    assert qemu_img_snapshots(img)["busy"]["vm-state-size"] > 0


def test_interleaved_snapshots_delete_overwrite(tmp_path):
    """Several snapshots on two disks, loaded in any order; delvm removes
    one from both; HMP savevm replaces one of the same name."""
    imgs = [make_image(tmp_path / "a.qcow2"), make_image(tmp_path / "b.qcow2")]
    vm = start(tmp_path, imgs)
    try:
        guestkit.wait_dirty_passes(vm.serial, 20, timeout=30)
        p1 = save(vm, "s1")
        run_on(vm, 200)
        p2 = save(vm, "s2")
        run_on(vm, 200)
        for img in imgs:
            qemu_img_check(img)
        before, after = load(vm, "s1")
        assert_goes_on_from(p1, before, after)
        assert after[0] < p2
        run_on(vm, 50)
        before, after = load(vm, "s2")
        assert_goes_on_from(p2, before, after)
        before, after = load(vm, "s1")
        assert_goes_on_from(p1, before, after)
        for img in imgs:
            qemu_img_check(img)

        info = hmp(vm, "info snapshots")
        assert info.startswith("List of snapshots present on all disks:\r\n")
        assert "\r\n--        s1 " in info and "\r\n--        s2 " in info
        assert hmp(vm, "delvm s1") == ""
        for img in imgs:
            assert list(qemu_img_snapshots(img)) == ["s2"]
            qemu_img_check(img)
        assert hmp(vm, "loadvm s1") == \
            "Error: Snapshot 's1' does not exist in one or more devices\r\n"
        # Refused before anything changed: stopped, as QEMU, but runnable.
        wait_runstate(vm, "restore-vm")
        vm.qmp().execute("cont")
        wait_runstate(vm, "running")

        old = qemu_img_snapshots(imgs[0])["s2"]
        run_on(vm, 50)
        p3 = save(vm, "s2")                       # HMP overwrites
        for img in imgs:
            sns = qemu_img_snapshots(img)
            assert list(sns) == ["s2"], sns
            qemu_img_check(img)
        new = qemu_img_snapshots(imgs[0])["s2"]
        assert (new["date-sec"], new["date-nsec"]) > \
            (old["date-sec"], old["date-nsec"])
        run_on(vm, 200)
        before, after = load(vm, "s2")
        assert_goes_on_from(p3, before, after)
        vm.serial.assert_no_fail()
        quit_vm(vm)
    finally:
        vm.kill()
    for img in imgs:
        qemu_img_check(img)


def test_loadvm_at_start(tmp_path):
    img = make_image(tmp_path / "d.qcow2")
    vm = start(tmp_path, [img], name="first")
    try:
        guestkit.wait_dirty_passes(vm.serial, 20, timeout=30)
        saved = save(vm, "boot")
        run_on(vm, 200)
        later = guestkit.last_dirty_pass(vm.serial)
        quit_vm(vm)
    finally:
        vm.kill()
    qemu_img_check(img)

    # No "TG ready": the guest does not boot, it goes on from the snapshot.
    vm = start(tmp_path, [img], name="second", extra=["-loadvm", "boot"])
    try:
        after = passes_after(vm, 0)
        assert_goes_on_from(saved, later, after)
        assert not vm.serial.findall(guestkit.READY_RE)
        run_on(vm, 50)
        vm.serial.assert_no_fail()
        quit_vm(vm)
    finally:
        vm.kill()

    vm = start(tmp_path, [img], name="paused", paused=True,
               extra=["-loadvm", "boot"])
    try:
        assert vm.qmp().execute("query-status")["status"] == "prelaunch"
        vm.qmp().execute("cont")
        assert_goes_on_from(saved, later, passes_after(vm, 0))
        quit_vm(vm)
    finally:
        vm.kill()

    vm = start(tmp_path, [img], name="missing", extra=["-loadvm", "nosuch"])
    try:
        assert vm.wait_exit(30) == 1
        assert "Snapshot 'nosuch' does not exist in one or more devices" in \
            vm.stderr_text()
    finally:
        vm.kill()
    qemu_img_check(img)


def test_refusals(tmp_path):
    """QEMU 7.2's refusals, each leaving the guest running and the images
    clean (their exact wording against QEMU: test_snapshot_qemu.py)."""
    img = make_image(tmp_path / "d.qcow2")
    raw = tmp_path / "r.raw"
    raw.write_bytes(b"\0" * (1 << 20))
    vm = start(tmp_path, [img], extra=[
        "-drive", f"file={raw},format=raw,if=none,id=r0,node-name=nr"])
    try:
        guestkit.wait_dirty_passes(vm.serial, 5, timeout=30)
        assert hmp(vm, "savevm x") == \
            "Error: Device 'r0' is writable but does not support snapshots\r\n"
        q = vm.qmp()
        q.execute("snapshot-save", **{"job-id": "j1", "tag": "t",
                                      "vmstate": "n0", "devices": ["n0"]})
        assert q.execute("query-jobs")[0]["status"] == "concluded"
        q.execute("job-dismiss", id="j1")
        q.execute("snapshot-save", **{"job-id": "j2", "tag": "t",
                                      "vmstate": "n0", "devices": ["n0"]})
        job = q.execute("query-jobs")[0]
        assert job["error"] == "Snapshot 't' already exists in one or more " \
                               "devices", job
        q.execute("snapshot-save", **{"job-id": "j3", "tag": "u",
                                      "vmstate": "n0", "devices": ["n0", "nr"]})
        assert q.execute("query-jobs")[0]["error"] == \
            "Device 'r0' is writable but does not support snapshots"
        assert q.execute("query-status")["status"] == "running"

        # A migration in progress: no snapshot.
        uri = "unix:" + vm.sock_path("mig")
        dst = TernVm(tmp_path, append=DIRTY, memory=128, qmp=True, name="dst",
                     incoming=uri).start()
        try:
            wait_runstate(dst, "inmigrate")
            q.execute("migrate-set-parameters", **{"max-bandwidth": 1 << 20})
            q.execute("migrate", uri=uri)
            assert hmp(vm, "savevm m") == \
                "Error: There's a migration process in progress\r\n"
            q.execute("migrate_cancel")
        finally:
            dst.kill()
        wait_runstate(vm, "running")
        vm.serial.assert_no_fail()
        quit_vm(vm)
    finally:
        vm.kill()
    qemu_img_check(img)
    assert list(qemu_img_snapshots(img)) == ["t"]
