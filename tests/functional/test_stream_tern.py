"""Streams tern writes itself, read by tern-stream and by QEMU 7.2.

`tern-stream --sample MACHINE [--sample-ram BYTES]` writes a paused VM
through tern's own savevm writer (header, configuration, RAM section v4 with
a known page pattern, globalstate, EOF, vmdesc). QEMU 7.2 must load it with
`-incoming 'exec:cat FILE'`, end paused as the globalstate section says, hold
exactly the RAM tern sent (read back with pmemsave), and refuse the stream
for another machine type."""
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ternlib import QmpClient, paths  # noqa: E402

RAM = 4 * 1024 * 1024
PAGE = 4096


def tern_stream_bin():
    p = paths.tern_stream()
    if not p.exists():
        pytest.skip(f"tern-stream not built: {p}")
    return str(p)


def write_sample(tmp_path, machine, ram=0, bitmaps=False):
    out = tmp_path / f"tern-{machine}.stream"
    extra = ["--sample-bitmaps"] if bitmaps else []
    with open(out, "wb") as f:
        r = subprocess.run([tern_stream_bin(), "--sample", machine,
                            "--sample-ram", str(ram), *extra], stdout=f,
                           stderr=subprocess.PIPE, timeout=30)
    assert r.returncode == 0, r.stderr.decode()
    return out


def test_sample_stream_is_valid(tmp_path):
    stream = write_sample(tmp_path, "none")
    data = stream.read_bytes()
    assert data[:8] == b"QEVM\x00\x00\x00\x03"
    assert data[8:17] == b"\x07\x00\x00\x00\x04none"
    r = subprocess.run([tern_stream_bin(), str(stream)], capture_output=True,
                       timeout=30)
    out = r.stdout.decode()
    assert r.returncode == 0, r.stderr.decode()
    assert "@17 FULL section 1 'globalstate' instance 0 version 1" in out
    assert "vmdesc: page_size 4096, 1 device(s)" in out


def qemu_incoming(stream, timeout=20.0, dump=None, disk=None, after=None):
    """Load `stream` into QEMU -M none -m 4M (with `disk` as qcow2 node
    disk0); returns (migration status or None if QEMU died, run status,
    stderr). With `dump`, its guest RAM is written there afterwards
    (pmemsave); `after(qmp)` may query more before QEMU is killed."""
    sockdir = Path(tempfile.mkdtemp(prefix="tern-in-", dir="/tmp"))
    qmp_path = sockdir / "qmp"
    blockdev = ["-blockdev", f"driver=qcow2,node-name=disk0,file.driver=file,"
                f"file.filename={disk}"] if disk else []
    proc = subprocess.Popen(
        [paths.qemu_binary(), "-M", "none", "-accel", "tcg", "-nodefaults",
         "-no-user-config", "-display", "none", "-m", "4M", *blockdev,
         "-qmp", f"unix:{qmp_path},server=on,wait=off",
         "-incoming", f"exec:cat {stream}"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE)
    qmp = None
    try:
        qmp = QmpClient(str(qmp_path), connect_timeout=10.0, timeout=10.0)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = qmp.execute("query-migrate").get("status")
            if status in ("completed", "failed"):
                if dump is not None and status == "completed":
                    qmp.execute("pmemsave", val=0, size=RAM,
                                filename=str(dump))
                if after is not None and status == "completed":
                    after(qmp)
                return status, qmp.execute("query-status")["status"], ""
            time.sleep(0.05)
        raise TimeoutError("incoming migration did not finish")
    except (OSError, EOFError):
        proc.wait(timeout)
        return None, None, proc.stderr.read().decode()
    finally:
        if qmp is not None:
            qmp.close()
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        shutil.rmtree(sockdir, ignore_errors=True)


@pytest.fixture
def qemu():
    if not os.path.exists(paths.qemu_binary()):
        pytest.skip("qemu-system-x86_64 is not installed")


def test_qemu_loads_tern_stream(tmp_path, qemu):
    stream = write_sample(tmp_path, "none")
    mig, run, err = qemu_incoming(stream)
    assert mig == "completed", err
    assert run == "paused"


def test_qemu_refuses_other_machine(tmp_path, qemu):
    stream = write_sample(tmp_path, "pc-q35-7.2")
    mig, run, err = qemu_incoming(stream)
    # QEMU exits on a failed incoming load (or reports it failed).
    assert mig in (None, "failed"), (mig, run)
    if mig is None:
        assert "Machine type received is 'pc-q35-7.2'" in err, err


def expected_page(i):
    """tern-stream's sample pattern: page i holds (i % 251) + 1, every
    fourth page is zero."""
    return bytes([i % 251 + 1 if i % 4 else 0]) * PAGE


def test_qemu_loads_tern_ram(tmp_path, qemu):
    stream = write_sample(tmp_path, "none", RAM)
    r = subprocess.run([tern_stream_bin(), str(stream)], capture_output=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr.decode()
    assert "ram: 1 block(s), pages: zero 256, normal 768" in r.stdout.decode()
    dump = tmp_path / "qemu-ram.bin"
    mig, run, err = qemu_incoming(stream, dump=dump)
    assert mig == "completed", err
    assert run == "paused"
    data = dump.read_bytes()
    assert len(data) == RAM
    bad = [i for i in range(RAM // PAGE)
           if data[i * PAGE:(i + 1) * PAGE] != expected_page(i)]
    assert not bad, f"pages differ in QEMU: {bad[:10]}"


def test_qemu_refuses_wrong_ram_size(tmp_path, qemu):
    stream = write_sample(tmp_path, "none", RAM * 2)
    mig, run, err = qemu_incoming(stream)
    assert mig in (None, "failed"), (mig, run)


# tern-stream --sample-bitmaps: node disk0 with bm0 (64 KiB, persistent,
# enabled) and bm1 (128 KiB, disabled), both dirtied by these writes.
SAMPLE_WRITES = [(1024 * 1024, 64 * 1024), (10 * 1024 * 1024, 4096)]


def qemu_bitmap_sha256(tmp_path, granularity):
    """The sha256 QEMU itself computes for a bitmap of `granularity` after
    the sample's writes: the reference for tern's bits."""
    img = tmp_path / f"ref-{granularity}.qcow2"
    subprocess.run([paths.qemu_img(), "create", "-q", "-f", "qcow2", str(img),
                    "64M"], check=True, timeout=30)
    sockdir = Path(tempfile.mkdtemp(prefix="tern-ref-", dir="/tmp"))
    proc = subprocess.Popen(
        [paths.qemu_binary(), "-M", "none", "-accel", "tcg", "-nodefaults",
         "-no-user-config", "-display", "none", "-S",
         "-blockdev", f"driver=qcow2,node-name=disk0,file.driver=file,"
         f"file.filename={img}",
         "-qmp", f"unix:{sockdir}/qmp,server=on,wait=off"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    qmp = None
    try:
        qmp = QmpClient(str(sockdir / "qmp"), connect_timeout=10.0,
                        timeout=10.0)
        qmp.execute("block-dirty-bitmap-add", {"node": "disk0", "name": "r",
                                               "granularity": granularity})
        for off, length in SAMPLE_WRITES:
            qmp.execute("human-monitor-command", {
                "command-line": f'qemu-io disk0 "write {off} {length}"'})
        return qmp.execute("x-debug-block-dirty-bitmap-sha256",
                           {"node": "disk0", "name": "r"})["sha256"]
    finally:
        if qmp is not None:
            qmp.close()
        proc.kill()
        proc.wait()
        shutil.rmtree(sockdir, ignore_errors=True)


# A migration with capability dirty-bitmaps advises postcopy with no
# payload right after the configuration, as QEMU's source does, whether or
# not it switches later: a precopy stream that carries it loads the same.
ADVISE_BITMAPS = b"\x08\x00\x03\x00\x00"


@pytest.mark.parametrize("advise", [False, True], ids=["plain", "advised"])
def test_qemu_loads_tern_bitmaps(tmp_path, qemu, advise):
    stream = write_sample(tmp_path, "none", RAM, bitmaps=True)
    if advise:
        data = stream.read_bytes()
        assert data[8:17] == b"\x07\x00\x00\x00\x04none"
        stream.write_bytes(data[:17] + ADVISE_BITMAPS + data[17:])
    disk = tmp_path / "dst.qcow2"
    subprocess.run([paths.qemu_img(), "create", "-q", "-f", "qcow2", str(disk),
                    "64M"], check=True, timeout=30)
    got = {}

    def query(qmp):
        for node in qmp.execute("query-named-block-nodes"):
            if node["node-name"] == "disk0":
                for b in node.get("dirty-bitmaps", []):
                    got[b["name"]] = dict(b)
                    got[b["name"]]["sha256"] = qmp.execute(
                        "x-debug-block-dirty-bitmap-sha256",
                        {"node": "disk0", "name": b["name"]})["sha256"]

    mig, run, err = qemu_incoming(stream, disk=disk, after=query)
    assert mig == "completed", err
    assert set(got) == {"bm0", "bm1"}
    assert got["bm0"]["granularity"] == 65536
    assert got["bm0"]["persistent"] and got["bm0"]["recording"]
    assert got["bm0"]["count"] == 2 * 65536
    assert got["bm1"]["granularity"] == 131072
    assert not got["bm1"]["persistent"] and not got["bm1"]["recording"]
    assert got["bm1"]["count"] == 2 * 131072
    assert got["bm0"]["sha256"] == qemu_bitmap_sha256(tmp_path, 65536)
    assert got["bm1"]["sha256"] == qemu_bitmap_sha256(tmp_path, 131072)
