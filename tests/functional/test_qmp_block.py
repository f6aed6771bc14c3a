"""Block QMP commands on a running tern with a qcow2 -drive: query-block and
the dirty-bitmap commands compared with QEMU 7.2 (-M none, the same -drive)
for reply structure and error classes; bitmaps added with persistent=true are
in the image after quit (qemu-img info); a transaction that fails in its
second action changes nothing; write tracking through the guest-independent
path (bitmap counts) is covered by the unit test test-qmp-block."""
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from ternlib import paths
from ternlib.qmp import QmpClient

IDLE = "tg.workload=idle"


def make_qcow2(path, size="64M"):
    subprocess.run([paths.qemu_img(), "create", "-q", "-f", "qcow2", str(path), size],
                   check=True)


def image_bitmaps(path):
    out = subprocess.run([paths.qemu_img(), "info", "--force-share", "--output=json",
                          str(path)], check=True, capture_output=True, text=True).stdout
    data = json.loads(out).get("format-specific", {}).get("data", {})
    return {b["name"]: b for b in data.get("bitmaps", [])}


def drive_arg(path):
    return f"file={path},format=qcow2,if=none,id=drive0"


def tern_has_drive_option():
    out = subprocess.run([str(paths.tern_binary()), "-help"], capture_output=True,
                         text=True, timeout=30).stdout
    return "-drive" in out


@pytest.fixture
def tern_drive(tern_vm, tmp_path):
    if not tern_has_drive_option():
        pytest.skip("this tern build has no -drive option yet")
    img = tmp_path / "d.qcow2"
    make_qcow2(img)
    vm = tern_vm(qmp=True, paused=True, append=IDLE, extra_args=["-drive", drive_arg(img)])
    vm.start()
    q = vm.qmp()
    if not q.execute("query-block"):
        pytest.skip("this tern build does not show -drive to QMP yet")
    return vm, img


@pytest.fixture
def qemu_drive(tmp_path):
    img = tmp_path / "q.qcow2"
    make_qcow2(img)
    d = Path(tempfile.mkdtemp(prefix="qmpb-", dir="/tmp"))
    sock = d / "q.sock"
    proc = subprocess.Popen([paths.qemu_binary(), "-M", "none", "-display", "none",
                             "-nodefaults", "-no-user-config", "-drive", drive_arg(img),
                             "-qmp", f"unix:{sock},server=on,wait=off"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        yield QmpClient(sock)
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(d, ignore_errors=True)


def shape(v):
    if isinstance(v, dict):
        return {k: shape(x) for k, x in v.items()}
    if isinstance(v, list):
        return [shape(v[0])] if v else []
    return type(v).__name__


def reply_shape(r):
    out = {"keys": sorted(r)}
    if "error" in r:
        out["class"] = r["error"]["class"]
    return out


BITMAP_SEQUENCE = [
    ("block-dirty-bitmap-add", {"node": "drive0", "name": "a"}),
    ("block-dirty-bitmap-add", {"node": "drive0", "name": "a"}),
    ("block-dirty-bitmap-add", {"node": "drive0", "name": "p", "persistent": True,
                                "disabled": True, "granularity": 131072}),
    ("block-dirty-bitmap-add", {"node": "drive0", "name": "g", "granularity": 1000}),
    ("block-dirty-bitmap-add", {"node": "nope", "name": "g"}),
    ("block-dirty-bitmap-add", {"node": "drive0", "name": ""}),
    ("block-dirty-bitmap-clear", {"node": "drive0", "name": "a"}),
    ("block-dirty-bitmap-clear", {"node": "drive0", "name": "zz"}),
    ("block-dirty-bitmap-enable", {"node": "drive0", "name": "p"}),
    ("block-dirty-bitmap-disable", {"node": "drive0", "name": "p"}),
    ("block-dirty-bitmap-disable", {"node": "nope", "name": "p"}),
    ("block-dirty-bitmap-merge", {"node": "drive0", "target": "p", "bitmaps": ["a"]}),
    ("block-dirty-bitmap-merge", {"node": "drive0", "target": "p",
                                  "bitmaps": [{"node": "drive0", "name": "a"}]}),
    ("block-dirty-bitmap-merge", {"node": "drive0", "target": "p", "bitmaps": ["zz"]}),
    ("transaction", {"actions": [
        {"type": "block-dirty-bitmap-add", "data": {"node": "drive0", "name": "t1"}},
        {"type": "block-dirty-bitmap-add", "data": {"node": "drive0", "name": "a"}}]}),
    ("transaction", {"actions": [
        {"type": "block-dirty-bitmap-clear", "data": {"node": "drive0", "name": "a"}},
        {"type": "block-dirty-bitmap-disable", "data": {"node": "drive0", "name": "a"}},
        {"type": "block-dirty-bitmap-merge",
         "data": {"node": "drive0", "target": "p", "bitmaps": ["a"]}}]}),
    ("query-block", None),
    ("block-dirty-bitmap-remove", {"node": "drive0", "name": "a"}),
    ("block-dirty-bitmap-remove", {"node": "drive0", "name": "a"}),
]


def test_bitmap_commands_match_qemu(tern_drive, qemu_drive):
    vm, _ = tern_drive
    for name, args in BITMAP_SEQUENCE:
        a = vm.qmp().cmd(name, args)
        b = qemu_drive.cmd(name, args)
        assert reply_shape(a) == reply_shape(b), f"{name} {args}:\n tern {a}\n qemu {b}"
        if name == "query-block":
            ours, theirs = a["return"][0], b["return"][0]
            assert sorted(ours) == sorted(theirs)
            oi, ti = ours["inserted"], theirs["inserted"]
            missing = set(ti) - set(oi)
            assert not missing, f"query-block inserted lacks {missing}"
            assert shape(oi["dirty-bitmaps"]) == shape(ti["dirty-bitmaps"])
            assert [b["name"] for b in oi["dirty-bitmaps"]] == \
                   [b["name"] for b in ti["dirty-bitmaps"]]
            assert [(b["recording"], b["persistent"], b["granularity"])
                    for b in oi["dirty-bitmaps"]] == \
                   [(b["recording"], b["persistent"], b["granularity"])
                    for b in ti["dirty-bitmaps"]]


def bitmaps_of(q):
    return {b["name"]: (b["recording"], b["persistent"], b["granularity"], b["count"])
            for b in q.execute("query-block")[0]["inserted"]["dirty-bitmaps"]}


def test_failed_transaction_changes_nothing(tern_drive):
    vm, _ = tern_drive
    q = vm.qmp()
    q.execute("block-dirty-bitmap-add", {"node": "drive0", "name": "a"})
    q.execute("block-dirty-bitmap-add", {"node": "drive0", "name": "off", "disabled": True})
    before = bitmaps_of(q)
    r = q.cmd("transaction", {"actions": [
        {"type": "block-dirty-bitmap-add", "data": {"node": "drive0", "name": "new"}},
        {"type": "block-dirty-bitmap-add", "data": {"node": "drive0", "name": "a"}}]})
    assert r["error"]["class"] == "GenericError"
    assert bitmaps_of(q) == before
    r = q.cmd("transaction", {"actions": [
        {"type": "block-dirty-bitmap-enable", "data": {"node": "drive0", "name": "off"}},
        {"type": "block-dirty-bitmap-remove", "data": {"node": "drive0", "name": "a"}},
        {"type": "block-dirty-bitmap-clear", "data": {"node": "drive0", "name": "nope"}}]})
    assert r["error"] == {"class": "GenericError", "desc": "Dirty bitmap 'nope' not found"}
    assert bitmaps_of(q) == before
    q.execute("transaction", {"actions": [
        {"type": "block-dirty-bitmap-add", "data": {"node": "drive0", "name": "new"}},
        {"type": "block-dirty-bitmap-enable", "data": {"node": "drive0", "name": "off"}}]})
    after = bitmaps_of(q)
    assert set(after) == {"a", "off", "new"} and after["off"][0] is True


def test_persistent_bitmaps_in_image_after_quit(tern_drive):
    vm, img = tern_drive
    q = vm.qmp()
    q.execute("block-dirty-bitmap-add", {"node": "drive0", "name": "keep",
                                         "persistent": True})
    q.execute("block-dirty-bitmap-add", {"node": "drive0", "name": "cold",
                                         "persistent": True, "disabled": True,
                                         "granularity": 131072})
    q.execute("block-dirty-bitmap-add", {"node": "drive0", "name": "temp"})
    q.execute("quit")
    q.wait_event("SHUTDOWN")
    assert vm.wait_exit(10) == 0
    bitmaps = image_bitmaps(img)
    assert set(bitmaps) == {"keep", "cold"}
    assert bitmaps["cold"]["granularity"] == 131072
    assert "auto" in bitmaps["keep"]["flags"]
    assert "auto" not in bitmaps["cold"]["flags"]
    assert "in-use" not in bitmaps["keep"]["flags"]


def test_persistent_bitmaps_crash_safe_while_running(tern_drive):
    """With crash-safe bitmaps (the default) a persistent bitmap is in the
    image, consistent, as soon as it is added, while tern runs: qemu-img
    info -U sees it without in-use; disable/enable follow in its flags; a
    transaction that fails takes its added bitmap out of the image again."""
    vm, img = tern_drive
    q = vm.qmp()
    q.execute("block-dirty-bitmap-add", {"node": "drive0", "name": "live",
                                         "persistent": True})
    assert image_bitmaps(img)["live"]["flags"] == ["auto"]
    q.execute("block-dirty-bitmap-disable", {"node": "drive0", "name": "live"})
    assert image_bitmaps(img)["live"]["flags"] == []
    q.execute("block-dirty-bitmap-enable", {"node": "drive0", "name": "live"})
    assert image_bitmaps(img)["live"]["flags"] == ["auto"]
    r = q.cmd("transaction", {"actions": [
        {"type": "block-dirty-bitmap-add",
         "data": {"node": "drive0", "name": "gone", "persistent": True}},
        {"type": "block-dirty-bitmap-clear",
         "data": {"node": "drive0", "name": "nope"}}]})
    assert r["error"]["class"] == "GenericError"
    assert set(image_bitmaps(img)) == {"live"}
    q.execute("quit")
    q.wait_event("SHUTDOWN")
    assert vm.wait_exit(10) == 0
    assert set(image_bitmaps(img)) == {"live"}


def test_hmp_info_block_matches_qemu(tern_drive, qemu_drive):
    vm, img = tern_drive
    hmp = {"command-line": "info block"}
    ours = vm.qmp().execute("human-monitor-command", hmp)
    theirs = qemu_drive.execute("human-monitor-command", hmp)
    assert ours.startswith("drive0 (") and f"): {img} (qcow2)\r\n" in ours
    # Same lines apart from the node name and the file name.
    assert ours.split("\r\n")[1:] == theirs.split("\r\n")[1:], (ours, theirs)


def test_clean_exit_after_every_command(tern_drive):
    """Under the sanitizer build a leak or UB anywhere on these paths makes the
    exit status non-zero: every command, succeeding and failing, from two
    sessions, then quit."""
    vm, _ = tern_drive
    q = vm.qmp()
    other = QmpClient(vm.qmp_path)
    for name, args in BITMAP_SEQUENCE:
        q.cmd(name, args)
    for name in ("query-status", "query-name", "query-kvm", "query-cpus-fast",
                 "query-version", "query-commands", "query-block", "nope"):
        q.cmd(name)
        other.cmd(name)
    for line in ("info status", "info block", "stop", "cont", "info nope", ""):
        q.cmd("human-monitor-command", {"command-line": line})
    q.cmd("system_powerdown")
    q.send_raw(b'{"execute": foo} [1] "x" {"execute": "query-status", "id": [1, {"a": null}]}')
    replies = [q.read_reply() for _ in range(4)]
    assert [sorted(r) for r in replies] == [["error"], ["error"], ["error"], ["id", "return"]]
    q.execute("quit")
    assert vm.wait_exit(20) == 0, vm.stderr_text()[-3000:]
    other.close()
