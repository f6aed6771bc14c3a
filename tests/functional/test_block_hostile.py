"""Hostile qcow2 images through tern-img, side by side with QEMU 7.2's
qemu-img / qemu-io on the same bytes: header fields that are only sane as
unsigned values, and guest writes that an L2 entry points at the image's own
metadata (refused, image marked corrupt, as QEMU does)."""
import json
import struct

import pytest

from ternlib.imgtools import QEMU_IMG, QEMU_IO, run, tern_img

pytestmark = pytest.mark.usefixtures("image_tools")






def patch(path, off, fmt, value):
    with open(path, "r+b") as f:
        f.seek(off)
        f.write(struct.pack(fmt, value))


def read_be64(path, off):
    with open(path, "rb") as f:
        f.seek(off)
        return struct.unpack(">Q", f.read(8))[0]


@pytest.mark.parametrize("field,off,value", [
    ("refcount_order", 96, 0xffffff1e),
    ("cluster_bits", 20, 0x80000009),
])
def test_negative_header_fields_refused_like_qemu(tmp_path, field, off,
                                                  value):
    """A field that would be negative as a signed int is refused by open,
    info and check (which used to read refcounts out of bounds)."""
    img = tmp_path / "neg.qcow2"
    assert run(QEMU_IMG, "create", "-f", "qcow2", img, "1M").returncode == 0
    patch(img, off, ">I", value)
    for cmd in (["check"], ["info"], ["check", "--output=json"]):
        q = run(QEMU_IMG, *cmd, img)
        t = tern_img(*cmd, img)
        assert q.returncode == 1, q.stderr
        assert t.returncode == q.returncode, t.stdout + t.stderr
        assert "tern-img:" in t.stderr and "qcow2" in t.stderr
        assert "runtime error" not in t.stderr


L2E_MASK = 0x00fffffffffffe00
COPIED = 1 << 63
CS = 4096


def find_ext(data, ext_type):
    off = struct.unpack_from(">I", data, 100)[0]      # header_length
    while True:
        typ, length = struct.unpack_from(">II", data, off)
        if typ == 0:
            return None
        if typ == ext_type:
            return off + 8
        off += 8 + (length + 7) // 8 * 8


def be64(data, off):
    return struct.unpack_from(">Q", data, off)[0]


@pytest.fixture(scope="module")
def layered(tmp_path_factory):
    """A qcow2 made by QEMU with every kind of metadata: two L2 tables, a
    persistent bitmap that saw the writes, a snapshot, then a write that
    copies L2 table 0, so the snapshot owns an L2 table alone. Returns the
    image and the offsets of each structure."""
    d = tmp_path_factory.mktemp("layered")
    img = d / "base.qcow2"
    for args in (
            [QEMU_IMG, "create", "-q", "-f", "qcow2", "-o",
             f"cluster_size={CS}", img, "4M"],
            [QEMU_IMG, "bitmap", "--add", img, "bm0"],
            [QEMU_IO, "-c", "write -P 0x11 0 64k", "-c",
             "write -P 0x22 2M 64k", img],
            [QEMU_IMG, "snapshot", "-c", "snap", img],
            [QEMU_IO, "-c", "write -P 0x33 0 4k", img]):
        p = run(*args)
        assert p.returncode == 0, p.stderr
    data = img.read_bytes()
    l1 = be64(data, 40)
    sn = be64(data, 64)
    snl1 = be64(data, sn)
    bmdir = be64(data, find_ext(data, 0x23852875) + 16)
    bmtable = be64(data, bmdir)
    where = {
        "l2a0": be64(data, l1) & L2E_MASK,
        "active L1 table": l1,
        "active L2 table": be64(data, l1 + 8) & L2E_MASK,
        "refcount table": be64(data, 48),
        "refcount block": be64(data, be64(data, 48)),
        "snapshot table": sn,
        "inactive L1 table": snl1,
        "inactive L2 table": be64(data, snl1) & L2E_MASK,
        "bitmap directory": bmdir,
        "bitmap table": bmtable,
        "bitmap data": be64(data, bmtable) & L2E_MASK,
    }
    assert where["inactive L2 table"] != where["l2a0"]
    return img, where


def crafted(tmp_path, layered, kind, name):
    base, where = layered
    img = tmp_path / name
    img.write_bytes(base.read_bytes())
    patch(img, where["l2a0"], ">Q", where[kind] | COPIED)
    return img


def target_bytes(img, off):
    with open(img, "rb") as f:
        f.seek(off)
        return f.read(CS)


def is_corrupt(img):
    p = run(QEMU_IMG, "info", "--output=json", "-U", img)
    return json.loads(p.stdout)["format-specific"]["data"]["corrupt"]


# Kinds QEMU 7.2 checks by default (overlap-check=cached).
QEMU_CHECKS = ["active L1 table", "active L2 table", "refcount table",
               "refcount block", "snapshot table", "inactive L1 table",
               "bitmap directory"]


# What tern's read-write open itself changes: crash-safe bitmaps are laid
# out anew (their clusters allocated, so refcounts change; the directory
# moves to fresh clusters).
TERN_OPEN_CHANGES = {"refcount block", "bitmap directory"}


@pytest.mark.parametrize("kind", [k for k in QEMU_CHECKS
                                  if k != "bitmap directory"] +
                         ["inactive L2 table"])
def test_write_onto_metadata_refused_like_qemu(tmp_path, layered, kind):
    """Guest cluster 0's L2 entry points at `kind`: QEMU and tern both refuse
    the write with the same words, mark the image corrupt, leave the
    target's bytes alone (but for what tern's open changes), and refuse
    later read-write opens. (QEMU checks inactive L2 tables only with
    overlap-check=all; tern always.)"""
    _, where = layered
    msg = ("Preventing invalid write on metadata (overlaps with "
           f"{kind})")
    q = crafted(tmp_path, layered, kind, "q.qcow2")
    t = crafted(tmp_path, layered, kind, "t.qcow2")
    qbefore = target_bytes(q, where[kind])

    if kind == "inactive L2 table":
        qp = run(QEMU_IO, "--image-opts", "-c", "write -P 0x6a 0 4k",
                 f"driver=qcow2,overlap-check=all,file.filename={q}")
    else:
        qp = run(QEMU_IO, "-c", "write -P 0x6a 0 4k", q)
    assert msg in qp.stdout + qp.stderr
    assert "write failed" in qp.stdout + qp.stderr
    tp = tern_img("io", "-c", "write -P 0x6a 0 4k", t)
    assert tp.returncode != 0
    assert "qcow2: Marking image as corrupt: " + msg in tp.stderr

    for img in (q, t):
        assert is_corrupt(img)
        if img == q or kind not in TERN_OPEN_CHANGES:
            assert target_bytes(img, where[kind]) == qbefore
        assert b"\x6a" * 64 not in target_bytes(img, where[kind])
        for p in (run(QEMU_IO, "-c", "read 0 512", img),
                  tern_img("io", "-c", "read 0 512", img)):
            assert "Image is corrupt; cannot be opened read/write" in \
                p.stdout + p.stderr
    # the snapshot's L2 table really is at risk in QEMU's default mode
    if kind == "inactive L2 table":
        d = crafted(tmp_path, layered, kind, "d.qcow2")
        run(QEMU_IO, "-c", "write -P 0x6a 0 4k", d)
        assert target_bytes(d, where[kind]) == b"\x6a" * CS


def test_write_onto_bitmap_directory(tmp_path, layered):
    """Guest cluster 0's L2 entry points at the bitmap directory. QEMU
    refuses the write (its open marks the bitmap IN_USE in place). tern's
    crash-safe open lays the bitmap out anew first: the directory moves to
    fresh clusters and the old one is freed, so the write lands on a
    cluster that holds no metadata any more, and the bitmap stays whole
    (the image was corrupt before: its L2 entry maps a bitmap cluster)."""
    _, where = layered
    q = crafted(tmp_path, layered, "bitmap directory", "q.qcow2")
    t = crafted(tmp_path, layered, "bitmap directory", "t.qcow2")
    qp = run(QEMU_IO, "-c", "write -P 0x6a 0 4k", q)
    assert ("Preventing invalid write on metadata (overlaps with bitmap "
            "directory)") in qp.stdout + qp.stderr
    assert is_corrupt(q)

    tp = tern_img("io", "-c", "write -P 0x6a 0 4k", t)
    assert tp.returncode == 0, tp.stderr
    assert not is_corrupt(t)
    info = json.loads(run(QEMU_IMG, "info", "--output=json", "-U",
                          t).stdout)
    bitmaps = info["format-specific"]["data"]["bitmaps"]
    assert [(b["name"], b["flags"]) for b in bitmaps] == [("bm0", ["auto"])]


@pytest.mark.parametrize("kind", ["bitmap table", "bitmap data"])
def test_bitmap_clusters_mapped_as_data_refused(tmp_path, layered, kind):
    """QEMU 7.2 writes guest data over a bitmap's table or data clusters;
    tern's bitmap loader refuses the image instead (read-only opens too)."""
    _, where = layered
    q = crafted(tmp_path, layered, kind, "q.qcow2")
    t = crafted(tmp_path, layered, kind, "t.qcow2")
    qp = run(QEMU_IO, "-c", "write -P 0x6a 0 4k", q)
    assert "wrote 4096/4096 bytes" in qp.stdout
    assert not is_corrupt(q)
    for args in (["io", "-c", "write -P 0x6a 0 4k", t],
                 ["io", "-r", "-c", "read 0 4k", t]):
        p = tern_img(*args)
        assert p.returncode != 0
        assert "overlaps guest data" in p.stderr
    assert b"\x6a" * 64 not in target_bytes(t, where[kind])
