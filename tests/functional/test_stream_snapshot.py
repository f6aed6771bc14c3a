"""savevm/loadvm interop through qcow2 internal snapshots.

tern writes a VM state (RAM with a known pattern, globalstate) as snapshot
of a qcow2 image (`tern-stream --sample ... --sample-snapshot IMG:NAME`);
QEMU 7.2 restores it with -loadvm and holds exactly that RAM. QEMU then
takes its own snapshot (HMP savevm) and tern-stream reads that VM state
back out of the image (`--snapshot NAME`, on a scratch copy, so the image
is left untouched)."""
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
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
    if not os.path.exists(paths.qemu_binary()):
        pytest.skip("qemu-system-x86_64 is not installed")
    return str(p)


def run(*args, check=True):
    r = subprocess.run(list(args), capture_output=True, timeout=60)
    if check:
        assert r.returncode == 0, (args, r.stderr.decode())
    return r


def expected_page(i):
    return bytes([i % 251 + 1 if i % 4 else 0]) * PAGE


def qemu_loadvm(img, name, dump, hmp=None):
    """QEMU -M none -m 4M with `img` as disk0, restored from snapshot
    `name`; writes its RAM to `dump`, optionally runs an HMP command, and
    returns the run status."""
    sockdir = Path(tempfile.mkdtemp(prefix="tern-snap-", dir="/tmp"))
    proc = subprocess.Popen(
        [paths.qemu_binary(), "-M", "none", "-accel", "tcg", "-nodefaults",
         "-no-user-config", "-display", "none", "-m", "4M", "-S",
         "-blockdev", f"driver=qcow2,node-name=disk0,file.driver=file,"
         f"file.filename={img}", "-loadvm", name,
         "-qmp", f"unix:{sockdir}/qmp,server=on,wait=off"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE)
    qmp = None
    try:
        qmp = QmpClient(str(sockdir / "qmp"), connect_timeout=15.0,
                        timeout=15.0)
        status = qmp.execute("query-status")["status"]
        qmp.execute("pmemsave", val=0, size=RAM, filename=str(dump))
        if hmp:
            qmp.execute("human-monitor-command", {"command-line": hmp})
        return status
    finally:
        if qmp is not None:
            qmp.close()
        proc.kill()
        proc.wait()
        shutil.rmtree(sockdir, ignore_errors=True)


@pytest.fixture
def image(tmp_path):
    tern_stream_bin()
    img = tmp_path / "vm.qcow2"
    run(paths.qemu_img(), "create", "-q", "-f", "qcow2", str(img), "64M")
    return img


def test_qemu_loadvm_of_tern_snapshot(image, tmp_path):
    run(tern_stream_bin(), "--sample", "none", "--sample-ram", str(RAM),
        "--sample-snapshot", f"{image}:tsnap")
    listing = run(paths.qemu_img(), "snapshot", "-l", str(image)).stdout
    assert b"tsnap" in listing
    run(paths.qemu_img(), "check", str(image))
    dump = tmp_path / "ram.bin"
    assert qemu_loadvm(image, "tsnap", dump) in ("prelaunch", "paused")
    data = dump.read_bytes()
    bad = [i for i in range(RAM // PAGE)
           if data[i * PAGE:(i + 1) * PAGE] != expected_page(i)]
    assert not bad, f"pages differ after QEMU's loadvm: {bad[:10]}"


def test_tern_reads_qemu_snapshot(image, tmp_path):
    run(tern_stream_bin(), "--sample", "none", "--sample-ram", str(RAM),
        "--sample-snapshot", f"{image}:tsnap")
    qemu_loadvm(image, "tsnap", tmp_path / "ram.bin", hmp="savevm qsnap")
    before = hashlib.sha256(image.read_bytes()).hexdigest()
    r = run(tern_stream_bin(), "--snapshot", "qsnap", str(image))
    out = r.stdout.decode()
    assert "configuration: machine 'none'" in out
    assert "ram: block 'ram' length 4194304" in out
    assert "'timer' instance 0 version 2" in out
    assert "ram: 1 block(s), pages: zero 256, normal 768" in out
    assert "stream ok" in out
    # The image itself was not reverted or touched.
    assert hashlib.sha256(image.read_bytes()).hexdigest() == before


def test_missing_snapshot_is_an_error(image):
    r = run(tern_stream_bin(), "--snapshot", "nosuch", str(image),
            check=False)
    assert r.returncode == 2
    assert "Snapshot 'nosuch'" in r.stderr.decode()
