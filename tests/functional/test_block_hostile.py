"""Hostile qcow2 images through tern-img, side by side with QEMU 7.2's
qemu-img / qemu-io on the same bytes: header fields that are only sane as
unsigned values, and guest writes that an L2 entry points at the image's own
metadata (refused, image marked corrupt, as QEMU does)."""
import json
import os
import struct
import subprocess

import pytest

from ternlib import paths

QEMU_IMG = paths.qemu_img()
QEMU_IO = "/usr/bin/qemu-io"


def run(*args, timeout=120):
    return subprocess.run([str(a) for a in args], capture_output=True,
                          text=True, timeout=timeout)


def tern_img(*args):
    return run(paths.tern_img(), *args)


@pytest.fixture(autouse=True)
def need_tools():
    if not paths.tern_img().exists():
        pytest.skip(f"tern-img not built in {paths.build_dir()}")
    if not os.path.exists(QEMU_IO):
        pytest.skip("qemu-io (qemu-utils) not installed")


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
