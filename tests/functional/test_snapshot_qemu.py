"""Snapshots against QEMU 7.2 as the reference: the same commands on the
same kind of images give the same words (refusals, 'info snapshots'),
the QMP jobs report the same JOB_STATUS_CHANGE sequence; a snapshot QEMU
took is listed by tern and refused by its loadvm (another machine) before
anything changes; a VM state area cut short or garbled is refused with the
VM left stopped and not runnable until a reset; tern-stream reads tern's
snapshot in place."""
import hashlib
import shutil
import subprocess
import time

import pytest

from ternlib import QmpClient, TernVm, guestkit, has_kvm, paths
from ternlib.migration import wait_runstate
from ternlib.qemunone import qemu_none
from ternlib.snapshot import (Qcow2Snapshots, hmp, qemu_img_check,
                              qemu_img_list, qemu_img_snapshots)

pytestmark = pytest.mark.skipif(not has_kvm(), reason="needs /dev/kvm")

DIRTY = guestkit.cmdline("dirty", mem="16M", rate="4M", report=100)


def make_image(path):
    subprocess.run([paths.qemu_img(), "create", "-q", "-f", "qcow2",
                    str(path), "64M"], check=True, timeout=30)
    return path


def drive(img, ident, node=None, fmt="qcow2", ro=False):
    spec = f"file={img},format={fmt},if=none,id={ident}"
    if node:
        spec += f",node-name={node}"
    if ro:
        spec += ",readonly=on"
    return ["-drive", spec]


def tern(tmp_path, args, name="t", append=DIRTY, **kw):
    vm = TernVm(tmp_path, append=append, memory=128, qmp=True, name=name,
                extra_args=args, **kw).start()
    guestkit.wait_ready(vm.serial, timeout=30)
    return vm


class Qemu:
    """QEMU 7.2 -M none with the same drives, for the same commands."""

    def __init__(self, args):
        self.ctx = qemu_none("-accel", "tcg", "-m", "16M", *args)

    def __enter__(self):
        self.qmp = QmpClient(self.ctx.__enter__(), connect_timeout=15)
        return self

    def __exit__(self, *exc):
        self.qmp.close()
        self.ctx.__exit__(*exc)

    def hmp(self, line):
        return self.qmp.execute("human-monitor-command",
                                **{"command-line": line})


def copies(tmp_path, names):
    """Two directories with the same fresh images: one for each VMM."""
    out = []
    for side in ("tern", "qemu"):
        d = tmp_path / side
        d.mkdir(parents=True)
        out.append([make_image(d / n) for n in names])
    return out


def same_hmp(tmp_path, names, args_of, lines):
    """Runs the HMP lines on tern and on QEMU, each with its own copy of the
    images; returns both outputs."""
    timgs, qimgs = copies(tmp_path, names)
    vm = tern(tmp_path, args_of(timgs))
    try:
        ours = [hmp(vm, l) for l in lines]
        vm.serial.assert_no_fail()
    finally:
        vm.kill()
    with Qemu(args_of(qimgs)) as q:
        theirs = [q.hmp(l) for l in lines]
    return ours, theirs


def test_refusals_word_for_word(tmp_path):
    cases = [
        # No drive at all.
        ([], lambda imgs: [], ["savevm s", "loadvm s", "delvm s",
                               "info snapshots"]),
        # A writable drive that cannot take snapshots.
        (["r.raw"], lambda imgs: drive(imgs[0], "r0", fmt="raw"),
         ["savevm s", "loadvm s", "delvm s"]),
        # Read-only drives are left out; the snapshot lives on the other.
        (["ro.qcow2", "a.qcow2"],
         lambda imgs: drive(imgs[0], "ro", ro=True) + drive(imgs[1], "d0"),
         ["savevm s", "info snapshots", "delvm s", "loadvm s",
          "savevm", "savevm a b", "loadvm", "delvm"]),
    ]
    for i, (names, args_of, lines) in enumerate(cases):
        ours, theirs = same_hmp(tmp_path / str(i), names, args_of, lines)
        # info snapshots carries dates and sizes: compare its shape only.
        for line, o, t in zip(lines, ours, theirs):
            if line == "info snapshots" and o.startswith("List"):
                o, t = o.splitlines()[:2], t.splitlines()[:2]
            assert o == t, (line, o, t)


def refused_then_on(tmp_path, args_of, lines, name="t"):
    """The HMP lines on tern, whose loadvm is refused before anything
    changed (stopped as QEMU leaves it, and free to go on), then on QEMU;
    both outputs."""
    vm = tern(tmp_path, args_of("tern"), name=name)
    try:
        ours = [hmp(vm, l) for l in lines]
        wait_runstate(vm, "restore-vm")
        vm.qmp().execute("cont")
        guestkit.wait_dirty_passes(vm.serial, 3, timeout=30)
    finally:
        vm.kill()
    with Qemu(args_of("qemu")) as q:
        theirs = [q.hmp(l) for l in lines]
    return ours, theirs


def test_load_refused_with_bitmaps(tmp_path):
    """A drive with a persistent dirty bitmap (enabled or not) takes
    snapshots, but neither VMM reverts it: the bitmap would not record
    what the revert changes. Same words, and the VM goes on."""
    names = ["b.qcow2", "c.qcow2"]
    for side in copies(tmp_path, names):
        subprocess.run([paths.qemu_img(), "bitmap", "--add", str(side[0]),
                        "b0"], check=True, timeout=30)
        subprocess.run([paths.qemu_img(), "bitmap", "--add", "--disable",
                        str(side[1]), "b1"], check=True, timeout=30)
    lines = ["savevm s", "loadvm s", "info snapshots"]
    for img in names:
        ours, theirs = refused_then_on(
            tmp_path, lambda side: drive(tmp_path / side / img, "d0"), lines,
            name=img)
        assert ours[:2] == theirs[:2], (img, ours, theirs)
        assert "Device has active dirty bitmaps" in ours[1], ours
        assert " s " in ours[2] and " s " in theirs[2]


def test_load_refusals_word_for_word(tmp_path):
    """A snapshot missing on one disk, and a disk-only snapshot (qemu-img's)."""
    d = tmp_path / "tern"
    d.mkdir()
    a, b = make_image(d / "a.qcow2"), make_image(d / "b.qcow2")
    for img in (a, b):
        subprocess.run([paths.qemu_img(), "snapshot", "-c", "disk",
                        str(img)], check=True, timeout=30)
    subprocess.run([paths.qemu_img(), "snapshot", "-c", "half", str(a)],
                   check=True, timeout=30)
    # The same images for QEMU, so the snapshots' dates are the same too.
    shutil.copytree(d, tmp_path / "qemu")
    args = lambda side: (drive(tmp_path / side / "a.qcow2", "d0", "n0") +
                         drive(tmp_path / side / "b.qcow2", "d1", "n1"))
    lines = ["loadvm half", "loadvm disk", "loadvm nosuch", "info snapshots"]
    ours, theirs = refused_then_on(tmp_path, args, lines)
    # The same images listed the same way (dates are the images' own).
    assert ours == theirs


def job_events(q, until, timeout=30):
    """(event, status) pairs up to JOB_STATUS_CHANGE 'until'."""
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for e in q.events:
            seen.append((e["event"], e.get("data", {}).get("status")))
        q.events.clear()
        if ("JOB_STATUS_CHANGE", until) in seen:
            return seen
        try:
            q.events.append(q.read_message(0.2))
        except Exception:
            pass
    raise AssertionError(f"no {until}: {seen}")


def run_jobs(q, node):
    """The QMP job path; returns every reply and event sequence."""
    dev = {"devices": [node]}
    steps = [
        ("snapshot-save", {"job-id": "j1", "tag": "t", "vmstate": node, **dev},
         "concluded"),
        ("query-jobs", {}, None),
        ("job-cancel", {"id": "j1"}, None),
        ("job-dismiss", {"id": "j1"}, "null"),
        ("job-dismiss", {"id": "j1"}, None),
        ("snapshot-save", {"job-id": "j2", "tag": "t", "vmstate": node, **dev},
         "concluded"),
        ("query-jobs", {}, None),
        ("snapshot-save", {"job-id": "j2", "tag": "u", "vmstate": node, **dev},
         None),
        ("snapshot-save", {"job-id": "9x", "tag": "u", "vmstate": node, **dev},
         None),
        ("snapshot-save", {"job-id": "j3", "tag": "u", "vmstate": node,
                           "devices": []}, "concluded"),
        ("snapshot-save", {"job-id": "j4", "tag": "u", "vmstate": node,
                           "devices": ["zz"]}, "concluded"),
        ("snapshot-save", {"job-id": "j5", "tag": "u", "vmstate": "zz", **dev},
         "concluded"),
        ("snapshot-load", {"job-id": "j6", "tag": "t", "vmstate": node, **dev},
         "concluded"),
        ("snapshot-delete", {"job-id": "j7", "tag": "t", **dev}, "concluded"),
        ("snapshot-load", {"job-id": "j8", "tag": "t", "vmstate": node, **dev},
         "concluded"),
        ("query-jobs", {}, None),
    ]
    out = []
    for cmd, args, until in steps:
        q.events.clear()
        reply = q.cmd(cmd, **args)
        reply.pop("id", None)
        # Where the reply fell among the job's events is part of the contract.
        before = len(q.events)
        evs = job_events(q, until) if until and "return" in reply else []
        if evs:
            evs.insert(before, ("reply", None))
        if cmd == "query-jobs":
            reply = sorted((j["id"], j["type"], j["status"], j.get("error"),
                            j["current-progress"], j["total-progress"])
                           for j in reply["return"])
        out.append((cmd, reply, evs))
    return out


def test_qmp_jobs_as_qemu(tmp_path):
    """The same job commands on tern and QEMU 7.2: the same replies and
    errors, and the same JOB_STATUS_CHANGE sequence, STOP/RESUME where
    the VM stops (a failing load leaves it stopped, as QEMU's)."""
    timg, qimg = copies(tmp_path, ["a.qcow2"])
    vm = tern(tmp_path, drive(timg[0], "d0", "n0"))
    try:
        ours = run_jobs(vm.qmp(), "n0")
        qemu_img_check(timg[0])
    finally:
        vm.kill()
    with Qemu(drive(qimg[0], "d0", "n0")) as q:
        theirs = run_jobs(q.qmp, "n0")
    for o, t in zip(ours, theirs):
        assert o == t, (o, t)
    # Spelled out once, for the reader: a job that succeeds.
    assert ours[0][2] == [("JOB_STATUS_CHANGE", "created"),
                          ("JOB_STATUS_CHANGE", "running"),
                          ("STOP", None), ("RESUME", None),
                          ("reply", None),
                          ("JOB_STATUS_CHANGE", "waiting"),
                          ("JOB_STATUS_CHANGE", "pending"),
                          ("JOB_STATUS_CHANGE", "concluded")]


def test_info_snapshots_as_qemu(tmp_path):
    """'info snapshots' and qemu-img's list on images tern wrote: snapshots
    on both disks, and partial ones, printed as QEMU prints them."""
    a, b = make_image(tmp_path / "a.qcow2"), make_image(tmp_path / "b.qcow2")
    args = drive(a, "d0", "n0") + drive(b, "d1", "n1")
    vm = tern(tmp_path, args)
    try:
        assert hmp(vm, "savevm both") == ""
        q = vm.qmp()
        q.execute("snapshot-save", **{"job-id": "j", "tag": "half",
                                      "vmstate": "n1", "devices": ["n1"]})
        assert hmp(vm, "savevm") == ""          # vm-%Y%m%d%H%M%S
        ours = hmp(vm, "info snapshots")
        q.execute("quit")
        vm.wait_exit(30)
    finally:
        vm.kill()
    with Qemu(args) as qemu:
        theirs = qemu.hmp("info snapshots")
    assert ours == theirs
    assert "\r\nList of partial (non-loadable) snapshots on 'd1':\r\n" in ours
    for img in (a, b):
        qemu_img_check(img)
        tern_list = subprocess.run([paths.tern_img(), "snapshot", "-l", str(img)],
                                   capture_output=True, text=True,
                                   check=True).stdout
        assert tern_list == qemu_img_list(img)


def test_qemu_snapshot_listed_and_refused(tmp_path):
    img = make_image(tmp_path / "d.qcow2")
    with Qemu(drive(img, "d0")) as q:
        assert q.hmp("savevm qs") == ""
        listing = q.hmp("info snapshots")
        q.qmp.execute("quit")
        time.sleep(0.5)
    before = hashlib.sha256(img.read_bytes()).hexdigest()
    vm = tern(tmp_path, drive(img, "d0"))
    try:
        guestkit.wait_dirty_passes(vm.serial, 5, timeout=30)
        assert hmp(vm, "info snapshots") == listing
        out = hmp(vm, "loadvm qs")
        assert out == ("Error: Error while loading VM state: configuration: "
                       "machine type in the stream is 'none', this VM is "
                       "'virt'\r\n"), out
        # Refused before the disk or the guest changed: it goes on.
        wait_runstate(vm, "restore-vm")
        last = guestkit.last_dirty_pass(vm.serial)
        vm.qmp().execute("cont")
        guestkit.wait_dirty_passes(vm.serial, last + 20, timeout=30,
                                   start=vm.serial.mark())
        vm.serial.assert_no_fail()
        vm.qmp().execute("quit")
        vm.wait_exit(30)
    finally:
        vm.kill()
    assert hashlib.sha256(img.read_bytes()).hexdigest() == before
    qemu_img_check(img)


def saved_image(tmp_path):
    img = make_image(tmp_path / "good.qcow2")
    vm = tern(tmp_path, drive(img, "d0"), name="saver")
    try:
        guestkit.wait_dirty_passes(vm.serial, 10, timeout=30)
        assert hmp(vm, "savevm s1") == ""
        vm.qmp().execute("quit")
        vm.wait_exit(30)
    finally:
        vm.kill()
    return img


@pytest.mark.parametrize("damage", ["truncated", "garbled", "garbled-header"])
def test_corrupt_vm_state_is_refused(tmp_path, damage):
    good = saved_image(tmp_path)
    img = tmp_path / f"{damage}.qcow2"
    shutil.copy(good, img)
    sn = Qcow2Snapshots(img)
    size = qemu_img_snapshots(img)["s1"]["vm-state-size"]
    if damage == "truncated":
        sn.set_vm_state_size("s1", size // 2)
    elif damage == "garbled":
        sn.garble_vm_state("s1", size // 2 - (size // 2) % 4096, 4096)
    else:
        sn.garble_vm_state("s1", 0, 64)
    early = damage == "garbled-header"      # found before anything changes

    vm = tern(tmp_path, drive(img, "d0"), name=damage)
    try:
        guestkit.wait_dirty_passes(vm.serial, 5, timeout=30)
        out = hmp(vm, "loadvm s1")
        assert out.startswith("Error: Error while loading VM state: "), out
        wait_runstate(vm, "restore-vm")
        r = vm.qmp().cmd("cont")
        if early:
            assert "return" in r, r
            vm.serial.assert_no_fail()
        else:
            assert "the VM stays stopped" in out, out
            assert r["error"]["desc"] == ("The VM state is incomplete after a "
                                          "failed loadvm: load a snapshot or "
                                          "reset the VM first"), r
            wait_runstate(vm, "restore-vm")
            # A reset starts the guest afresh; then it may run.
            vm.qmp().execute("system_reset")
            vm.qmp().wait_event("RESET")
            mark = vm.serial.mark()
            vm.qmp().execute("cont")
            vm.serial.wait_for(guestkit.READY_RE, timeout=30, start=mark)
        vm.qmp().execute("quit")
        vm.wait_exit(30)
    finally:
        vm.kill()
    qemu_img_check(img)

    # At start: tern says why and exits 1, as QEMU does.
    vm = TernVm(tmp_path, append=DIRTY, memory=128, name=f"{damage}-start",
                extra_args=drive(img, "d0") + ["-loadvm", "s1"]).start()
    try:
        assert vm.wait_exit(30) == 1
        assert "Error while loading VM state: " in vm.stderr_text()
    finally:
        vm.kill()


def test_tern_stream_reads_tern_snapshot_in_place(tmp_path):
    img = saved_image(tmp_path)
    before = hashlib.sha256(img.read_bytes()).hexdigest()
    r = subprocess.run([paths.tern_stream(), "--snapshot", "s1", str(img)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "configuration: machine 'virt'" in r.stdout
    assert "ram: block 'pc.ram' length 134217728" in r.stdout
    assert "stream ok" in r.stdout
    assert hashlib.sha256(img.read_bytes()).hexdigest() == before
