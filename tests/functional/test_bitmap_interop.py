"""Persistent dirty bitmaps across tern and QEMU 7.2's tools.

Bitmaps made or changed by tern-img pass `qemu-img check` and show in
`qemu-img info`; bitmaps made by `qemu-img bitmap` and dirtied by `qemu-io`
read back in tern; contents are compared bit for bit: tern-img's own dump of
dirty extents against what QEMU reports through `qemu-nbd --bitmap` and
`qemu-img map` (with x-dirty-bitmap, dirty ranges show as "data": false).
A tern writer killed with -9 leaves its bitmaps consistent for both tools
(crash-safe bitmaps; test_bitmap_crash.py tests them at length).
"""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from ternlib import paths, QmpClient
from ternlib.bitmaps import QEMU_NBD, qemu_extents, tern_extents

TIMEOUT = 60
QEMU_IO = shutil.which("qemu-io") or "/usr/bin/qemu-io"


def run(*args, ok=True):
    p = subprocess.run([str(a) for a in args], capture_output=True, text=True,
                       timeout=TIMEOUT)
    if ok and p.returncode != 0:
        raise AssertionError(f"{args} failed ({p.returncode}):\n{p.stdout}\n"
                             f"{p.stderr}")
    return p


def tern_img(*args, ok=True):
    return run(paths.tern_img(), *args, ok=ok)


def qemu_img(*args, ok=True):
    return run(paths.qemu_img(), *args, ok=ok)


@pytest.fixture(autouse=True)
def _need_tools():
    if not paths.tern_img().exists():
        pytest.skip(f"tern-img not built: {paths.tern_img()}")
    for tool in (paths.qemu_img(), QEMU_IO, QEMU_NBD):
        if not os.path.exists(tool):
            pytest.skip(f"{tool} is not installed (scripts/setup-deps)")


def qemu_check_clean(img):
    p = qemu_img("check", "--output=json", img, ok=False)
    assert p.returncode == 0, p.stdout + p.stderr
    report = json.loads(p.stdout)
    assert report.get("corruptions", 0) == 0, report
    assert report.get("leaks", 0) == 0, report
    assert report.get("check-errors", 0) == 0, report


def qemu_bitmaps(img):
    info = json.loads(qemu_img("info", "-U", "--output=json", img).stdout)
    bitmaps = info["format-specific"]["data"].get("bitmaps", [])
    return {b["name"]: (b["granularity"], b["flags"]) for b in bitmaps}


def tern_bitmaps(img):
    info = json.loads(tern_img("info", "--output=json", img).stdout)
    bitmaps = info["format-specific"]["data"].get("bitmaps", [])
    return {b["name"]: (b["granularity"], b["flags"]) for b in bitmaps}


def test_tern_bitmaps_pass_qemu_check_and_info(tmp_path):
    img = tmp_path / "t.qcow2"
    tern_img("create", "-f", "qcow2", img, "1G")
    tern_img("bitmap", "--add", "-g", "64k", img, "auto64k")
    tern_img("bitmap", "--add", "--disable", "-g", "4096", img, "off4k")
    tern_img("bitmap", "--add", "-g", "1M", img, "gone")
    tern_img("io", "-c", "write -P 0x5a 3M 128k", "-c", "write 700M 1", img)
    tern_img("bitmap", "--remove", img, "gone")
    qemu_check_clean(img)
    assert qemu_bitmaps(img) == {"auto64k": (65536, ["auto"]),
                                 "off4k": (4096, [])}
    assert tern_bitmaps(img) == qemu_bitmaps(img)
    # qemu-img can keep working on what tern wrote.
    qemu_img("bitmap", "--clear", img, "auto64k")
    qemu_img("bitmap", "--remove", img, "off4k")
    qemu_check_clean(img)
    assert tern_extents(img, "auto64k") == []


def test_tern_bits_read_by_qemu(tmp_path):
    img = tmp_path / "t.qcow2"
    size = 1024 * 1024 * 1024 + 4096    # last chunk partial
    tern_img("create", "-f", "qcow2", img, str(size))
    tern_img("bitmap", "--add", "-g", "64k", img, "b")
    tern_img("bitmap", "--add", "-g", "512", img, "fine")
    tern_img("io", "-c", "write 0 512", "-c", "write 65535 2",
             "-c", "write 5M 1M", "-c", f"write {size - 512} 512",
             "-c", "discard 200M 64k", img)
    want = [(0, 65536 * 2), (5 << 20, 1 << 20), (200 << 20, 65536),
            (size - 4096, 4096)]
    assert tern_extents(img, "b") == want
    assert qemu_extents(img, "b", tmp_path) == want
    assert qemu_extents(img, "fine", tmp_path) == tern_extents(img, "fine")
    qemu_check_clean(img)


def test_qemu_bits_read_by_tern(tmp_path):
    img = tmp_path / "q.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", img, "2G")
    qemu_img("bitmap", "--add", "-g", "65536", img, "b")
    qemu_img("bitmap", "--add", "-g", "1M", img, "coarse")
    run(QEMU_IO, "-c", "write 0 4k", "-c", "write 1G 3M", "-c",
        "write 2047M 1M", "-c", "write 777777 1", img)
    qemu_img("bitmap", "--disable", img, "coarse")
    assert tern_bitmaps(img) == qemu_bitmaps(img)
    for name in ("b", "coarse"):
        assert tern_extents(img, name) == qemu_extents(img, name, tmp_path)
    assert tern_extents(img, "b")[0] == (0, 65536)
    # tern changes qemu's bitmaps; qemu sees the result.
    tern_img("bitmap", "--clear", img, "b")
    tern_img("bitmap", "--merge", "coarse", img, "b")
    tern_img("bitmap", "--enable", img, "coarse")
    qemu_check_clean(img)
    assert qemu_bitmaps(img)["coarse"] == (1048576, ["auto"])
    assert qemu_extents(img, "b", tmp_path) == tern_extents(img, "coarse")


def test_merge_from_other_file_and_errors(tmp_path):
    a, b = tmp_path / "a.qcow2", tmp_path / "b.qcow2"
    for img in (a, b):
        qemu_img("create", "-q", "-f", "qcow2", img, "1G")
    qemu_img("bitmap", "--add", a, "dst")
    qemu_img("bitmap", "--add", b, "src")
    run(QEMU_IO, "-c", "write 10M 64k", b)
    tern_img("bitmap", "--merge", "src", "-b", b, a, "dst")
    assert tern_extents(a, "dst") == [(10 << 20, 65536)]
    assert qemu_extents(a, "dst", tmp_path) == [(10 << 20, 65536)]

    # Same messages and exit status as qemu-img for the usual mistakes.
    for args in (["--add", a, "dst"], ["--remove", a, "nope"],
                 ["--add", "-g", "1000", a, "x"], ["--clear", a, "nope"]):
        t = tern_img("bitmap", *args, ok=False)
        q = qemu_img("bitmap", *args, ok=False)
        assert t.returncode == q.returncode == 1, (args, t.stderr)
        assert q.stderr.split(": ", 1)[1].strip() in t.stderr, (t.stderr,
                                                                q.stderr)
    small = tmp_path / "small.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", small, "512M")
    qemu_img("bitmap", "--add", small, "s")
    t = tern_img("bitmap", "--merge", "s", "-b", small, a, "dst", ok=False)
    assert t.returncode == 1 and "sizes differ" in t.stderr
    qemu_check_clean(a)


def test_v2_image_refuses_persistent_bitmap(tmp_path):
    img = tmp_path / "v2.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", "-o", "compat=0.10", img, "64M")
    t = tern_img("bitmap", "--add", img, "b", ok=False)
    assert t.returncode == 1 and "v2" in t.stderr
    qemu_check_clean(img)


def test_kill9_writer_leaves_bitmap_consistent(tmp_path):
    """tern keeps persistent bitmaps crash-safe: after kill -9 of a writer
    the bitmap is consistent for both tools and covers every write that was
    started ("i" lines: issued, maybe landed)."""
    img = tmp_path / "c.qcow2"
    tern_img("create", "-f", "qcow2", img, "256M")
    tern_img("bitmap", "--add", img, "b")
    writer = subprocess.Popen(
        [str(paths.tern_img()), "io", "-c", "stress 7 1000000 4096 8", str(img)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    issued = set()
    try:
        flushed = 0
        deadline = time.monotonic() + 30
        while flushed < 4 and time.monotonic() < deadline:
            line = writer.stdout.readline()
            if not line:
                break
            if line.startswith("i "):
                issued.add(int(line.split()[1]))
            if line.startswith("f "):
                flushed += 1
        assert flushed >= 4, writer.stderr.read()
        writer.send_signal(signal.SIGKILL)
    finally:
        writer.kill()
        writer.wait(timeout=10)
    assert qemu_bitmaps(img) == {"b": (65536, ["auto"])}
    assert tern_bitmaps(img) == {"b": (65536, ["auto"])}
    p = qemu_img("check", img, ok=False)
    assert p.returncode in (0, 3), p.stdout + p.stderr   # leaks at worst
    extents = tern_extents(img, "b")
    assert qemu_extents(img, "b", tmp_path) == extents
    for off in issued:
        assert any(s <= off < s + n for s, n in extents), off
    # Usable at once, by QEMU too.
    qemu_img("bitmap", "--clear", img, "b")
    assert tern_extents(img, "b") == []


@pytest.mark.parametrize("cluster", ["512", "4k", "2M"])
def test_cluster_sizes_both_ways(tmp_path, cluster):
    """Bitmap tables spanning several clusters (small clusters) and one
    cluster of bits covering the whole disk (2 MiB), in both directions."""
    img = tmp_path / f"c{cluster}.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", "-o", f"cluster_size={cluster}",
             img, "20G")
    # 40 Mi bits: 5 MiB of bitmap data, a 10 KiB table with 4 KiB clusters
    qemu_img("bitmap", "--add", "-g", "512", img, "fine")
    run(QEMU_IO, "-c", "write 0 1k", "-c", "write 1G 64k", "-c",
        "write 20479M 1M", img)
    assert tern_extents(img, "fine") == [(0, 1024), (1 << 30, 65536),
                                         (20479 << 20, 1 << 20)]
    tern_img("bitmap", "--add", "-g", "4k", img, "tern")
    tern_img("io", "-c", "write 2G 4k", "-c", "write 100k 1", img)
    qemu_check_clean(img)
    assert qemu_extents(img, "tern", tmp_path) == [(100 << 10, 4096),
                                                    (2 << 30, 4096)]
    assert qemu_extents(img, "fine", tmp_path) == tern_extents(img, "fine")
    assert tern_bitmaps(img) == qemu_bitmaps(img)


def test_bitmap_usage_errors(tmp_path):
    img = tmp_path / "u.qcow2"
    tern_img("create", "-f", "qcow2", img, "64M")
    cases = [
        ([img, "b"], "Need at least one of"),
        (["-g", "64k", "--clear", img, "b"], "granularity only supported"),
        (["-b", img, "--clear", img, "b"], "-b only supported with --merge"),
        (["--add", img], "Expecting filename and bitmap name"),
        (["--add", "-g", "12q", img, "b"], "Invalid granularity"),
        (["--dump", img, "nope"], "Dirty bitmap 'nope' not found"),
        (["--add", tmp_path / "missing.qcow2", "b"], "missing.qcow2"),
    ]
    for args, msg in cases:
        p = tern_img("bitmap", *args, ok=False)
        assert p.returncode == 1 and msg in p.stderr, (args, p.stderr)
    assert qemu_bitmaps(img) == {}
    qemu_check_clean(img)


def test_info_human_matches_qemu(tmp_path):
    img = tmp_path / "h.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", img, "64M")
    qemu_img("bitmap", "--add", img, "on")
    qemu_img("bitmap", "--add", "--disable", "-g", "4096", img, "off")

    def bitmaps_block(text):
        lines = text.splitlines()
        start = lines.index("    bitmaps:")
        block = [lines[start]]
        for line in lines[start + 1:]:
            if not line.startswith("        "):
                break
            block.append(line)
        return block

    assert (bitmaps_block(tern_img("info", img).stdout)
            == bitmaps_block(qemu_img("info", img).stdout))


def qemu_sha256(img, names):
    """QEMU's x-debug-block-dirty-bitmap-sha256 for each bitmap, from a
    paused `-M none` QEMU that opens the image read-only."""
    sockdir = tempfile.mkdtemp(prefix="tb-", dir="/tmp")   # short unix path
    sock = os.path.join(sockdir, "qmp")
    qemu = subprocess.Popen(
        [paths.qemu_binary(), "-M", "none", "-accel", "tcg", "-nodefaults",
         "-display", "none", "-qmp", f"unix:{sock},server=on,wait=off",
         "-blockdev", f"driver=qcow2,node-name=n0,read-only=on,"
         f"file.driver=file,file.filename={img}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        with QmpClient(sock, connect_timeout=20) as qmp:
            return {n: qmp.execute("x-debug-block-dirty-bitmap-sha256",
                                   {"node": "n0", "name": n})["sha256"]
                    for n in names}
    finally:
        qemu.kill()
        qemu.wait(timeout=10)
        shutil.rmtree(sockdir, ignore_errors=True)


def test_sha256_matches_qemu(tmp_path):
    """The whole bitmap, padding word included, hashes the same in QEMU."""
    if not os.path.exists(paths.qemu_binary()):
        pytest.skip("qemu-system-x86_64 is not installed (scripts/setup-deps)")
    img = tmp_path / "s.qcow2"
    size = (5 << 30) + 512 * 3          # odd number of chunks
    tern_img("create", "-f", "qcow2", img, str(size))
    tern_img("bitmap", "--add", "-g", "512", img, "fine")
    tern_img("bitmap", "--add", "-g", "64k", img, "mid")
    tern_img("bitmap", "--add", "-g", "256M", img, "coarse")
    tern_img("io", "-c", "write 0 1", "-c", "write 3G 1M", "-c",
             f"write {size - 512} 512", img)
    tern_img("bitmap", "--add", img, "empty")
    names = ["fine", "mid", "coarse", "empty"]
    ours = {n: json.loads(tern_img("bitmap", "--dump", img, n).stdout)
            ["sha256"] for n in names}
    assert ours == qemu_sha256(img, names)
