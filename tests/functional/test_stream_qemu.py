"""tern-stream against real QEMU 7.2 migration streams.

A paused `-M none -accel tcg` QEMU with a qcow2 node holding two dirty bitmaps
(written to through qemu-io) migrates with the dirty-bitmaps capability to
`exec:cat > FILE`. tern-stream must parse the whole stream (including the
dirty-bitmap sections QEMU's analyze-migration.py cannot read), report the
bitmaps' names, granularity, flags and exactly the ranges that were written,
and reject truncated and corrupted copies with a clear message."""
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ternlib import QmpClient, paths  # noqa: E402

GRAN0 = 64 * 1024          # bm0: persistent, enabled
GRAN1 = 128 * 1024         # bm1: transient, disabled after the writes
WRITES = [(1 * 1024 * 1024, 64 * 1024), (10 * 1024 * 1024, 4096)]


def tern_stream_bin():
    p = paths.tern_stream()
    if not p.exists():
        pytest.skip(f"tern-stream not built: {p}")
    return str(p)


def run_tern_stream(path_or_bytes, *args):
    cmd = [tern_stream_bin(), *args]
    if isinstance(path_or_bytes, (bytes, bytearray)):
        return subprocess.run(cmd + ["-"], input=bytes(path_or_bytes),
                              capture_output=True, timeout=60)
    return subprocess.run(cmd + [str(path_or_bytes)], capture_output=True,
                          timeout=60)


def wait_migration(qmp, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = qmp.execute("query-migrate").get("status")
        if status in ("completed", "failed", "cancelled"):
            return status
        time.sleep(0.05)
    raise TimeoutError("QEMU migration did not finish")


def make_qemu_stream(workdir):
    """Run QEMU, create and dirty the bitmaps, migrate to a file."""
    img = workdir / "disk.qcow2"
    out = workdir / "qemu.stream"
    subprocess.run([paths.qemu_img(), "create", "-q", "-f", "qcow2", str(img),
                    "64M"], check=True, timeout=30)
    sockdir = Path(__import__("tempfile").mkdtemp(prefix="tern-st-", dir="/tmp"))
    qmp_path = sockdir / "qmp"
    proc = subprocess.Popen(
        [paths.qemu_binary(), "-M", "none", "-accel", "tcg", "-S",
         "-nodefaults", "-no-user-config", "-display", "none", "-m", "4M",
         "-qmp", f"unix:{qmp_path},server=on,wait=off"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE)
    qmp = None
    try:
        qmp = QmpClient(str(qmp_path), connect_timeout=15.0, timeout=15.0)
        qmp.execute("blockdev-add", {"node-name": "disk0", "driver": "qcow2",
                                     "file": {"driver": "file",
                                              "filename": str(img)}})
        qmp.execute("block-dirty-bitmap-add", {"node": "disk0", "name": "bm0",
                    "granularity": GRAN0, "persistent": True})
        qmp.execute("block-dirty-bitmap-add", {"node": "disk0", "name": "bm1",
                    "granularity": GRAN1, "persistent": False})
        for off, length in WRITES:
            qmp.execute("human-monitor-command",
                        **{"command-line": f'qemu-io disk0 "write {off} {length}"'})
        qmp.execute("block-dirty-bitmap-disable", {"node": "disk0",
                                                   "name": "bm1"})
        qmp.execute("migrate-set-capabilities",
                    capabilities=[{"capability": "dirty-bitmaps",
                                   "state": True}])
        qmp.execute("migrate", uri=f"exec:cat > {out}")
        assert wait_migration(qmp) == "completed"
    finally:
        if qmp is not None:
            qmp.close()
        proc.kill()
        proc.wait()
        shutil.rmtree(sockdir, ignore_errors=True)
    return out


@pytest.fixture(scope="module")
def qemu_stream(tmp_path_factory):
    if not os.path.exists(paths.qemu_binary()):
        pytest.skip("qemu-system-x86_64 is not installed")
    tern_stream_bin()
    return make_qemu_stream(tmp_path_factory.mktemp("qemu-stream"))


def expected_ranges(gran):
    """Dirty byte ranges a bitmap of granularity `gran` reports."""
    ranges = []
    for off, length in WRITES:
        start = off // gran * gran
        end = -(-(off + length) // gran) * gran
        ranges.append((start, end - start))
    return ranges


def bitmap_report(text, name):
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("bitmap: ") and f"name '{name}'" in line:
            dirty = []
            for follow in lines[i + 1:]:
                if not follow.startswith("  dirty: "):
                    break
                start, length = follow.split()[1:3]
                dirty.append((int(start), int(length.lstrip("+"))))
            return line, dirty
    raise AssertionError(f"no bitmap {name} in:\n{text}")


def test_qemu_stream_structure(qemu_stream):
    r = run_tern_stream(qemu_stream)
    out = r.stdout.decode()
    assert r.returncode == 0, r.stderr.decode() + out[-3000:]
    assert "header: QEVM version 3" in out
    assert "configuration: machine 'none'" in out
    assert "command POSTCOPY_ADVISE length 0" in out
    assert "START section" in out and "'ram' instance 0 version 4" in out
    assert "ram: MEM_SIZE total 4194304" in out
    assert "ram: 1 block(s), pages: zero 1024" in out
    assert "FULL section" in out and "'timer' instance 0 version 2" in out
    assert "vmdesc: page_size 4096, 2 device(s)" in out
    assert "stream ok" in out


def test_qemu_stream_bitmaps(qemu_stream):
    r = run_tern_stream(qemu_stream)
    out = r.stdout.decode()
    assert r.returncode == 0, r.stderr.decode()
    assert (f"dirty-bitmap: START node 'disk0' bitmap 'bm0' granularity "
            f"{GRAN0} enabled persistent") in out
    # bm1 was disabled before migrating: START flags say neither.
    assert (f"dirty-bitmap: START node 'disk0' bitmap 'bm1' granularity "
            f"{GRAN1}\n") in out
    head0, dirty0 = bitmap_report(out, "bm0")
    head1, dirty1 = bitmap_report(out, "bm1")
    assert f"granularity {GRAN0} flags 0x03 complete" in head0
    assert f"granularity {GRAN1} flags 0x00 complete" in head1
    assert dirty0 == expected_ranges(GRAN0)
    assert dirty1 == expected_ranges(GRAN1)


def test_qemu_stream_from_stdin(qemu_stream):
    r = run_tern_stream(qemu_stream.read_bytes())
    assert r.returncode == 0, r.stderr.decode()
    assert "stream ok" in r.stdout.decode()


@pytest.mark.parametrize("keep", [0, 3, 8, 20, 60, 150, -300, -30, -1])
def test_truncated_stream_rejected(qemu_stream, keep):
    data = qemu_stream.read_bytes()
    cut = data[:keep] if keep >= 0 else data[:len(data) + keep]
    r = run_tern_stream(cut)
    assert r.returncode == 1, r.stdout.decode()[-2000:]
    assert "tern-stream: invalid stream:" in r.stderr.decode()


def corrupt(data, offset, value):
    b = bytearray(data)
    b[offset] = value
    return bytes(b)


def test_corrupted_streams_rejected(qemu_stream):
    data = qemu_stream.read_bytes()
    bm1 = data.index(b"\x03bm1")          # first chunk naming bm1: START
    ram_footer = data.index(b"\x7e", data.index(b"\x03ram") + 4 + 16)
    cases = [
        (corrupt(data, 0, 0x51 ^ 0xff), "not a migration stream"),
        (corrupt(data, 7, 2), "unsupported stream version 2"),
        (corrupt(data, 8, 0x04), "configuration section missing"),
        (corrupt(data, 17, 0x09), "unknown section type 0x09"),
        (corrupt(data, bm1 + 8, 0x09), "'bm1' has unknown flags 0x9"),
        (corrupt(data, bm1 + 6, 0x03), "'bm1' has invalid granularity"),
        (corrupt(data, ram_footer, 0x7f), "has no footer"),
        (corrupt(data, ram_footer + 4, 0x09), "footer of section 2 names"),
        (corrupt(data, 19, 0x0b), "unknown command 0xb"),
        (corrupt(data, 21, 0x09), "POSTCOPY_ADVISE of length 9"),
    ]
    for bad, message in cases:
        r = run_tern_stream(bad)
        err = r.stderr.decode()
        assert r.returncode == 1, (message, r.stdout.decode()[-1500:])
        assert message in err, (message, err)


def test_missing_file_is_an_error(tmp_path):
    r = run_tern_stream(tmp_path / "does-not-exist")
    assert r.returncode == 2
    assert "tern-stream:" in r.stderr.decode()
