"""Format probing against QEMU 7.2 on the same files: images of every format
qemu-img can make (and crafted bochs / cloop / dmg ones) are recognised by
tern as QEMU recognises them and refused by name, by `-drive file=` and by
tern-img, instead of being opened as raw; a probed raw image warns with
QEMU's words when opened read-write and refuses, as QEMU does, writes that
would make its first sector probe as another format."""
import json
import struct

import pytest

from ternlib import paths
from ternlib.imgtools import QEMU_IMG, QEMU_IO, run

pytestmark = pytest.mark.usefixtures("image_tools")

WARNING = [
    "Image format was not specified for '{}' and probing guessed raw.",
    "         Automatically detecting the format is dangerous for raw "
    "images, write operations on block 0 will be restricted.",
    "         Specify the 'raw' format explicitly to remove the "
    "restrictions.",
]




def make(d, fmt):
    """An image QEMU probes as fmt."""
    img = d / f"t.{fmt}"
    if fmt == "luks":
        p = run(QEMU_IMG, "create", "-q", "-f", "luks", "--object",
                "secret,id=s0,data=tern", "-o", "key-secret=s0", img, "1M")
    elif fmt == "bochs":
        hdr = bytearray(512)
        hdr[0:22] = b"Bochs Virtual HD Image"
        hdr[32:39] = b"Redolog"
        hdr[48:55] = b"Growing"
        struct.pack_into("<I", hdr, 64, 0x00020000)
        img.write_bytes(bytes(hdr) + bytes(1 << 20))
        return img
    elif fmt == "cloop":
        img.write_bytes(b"#!/bin/sh\n#V2.0 Format\nmodprobe cloop file=$0 "
                        b"&& mount -r -t iso9660 /dev/cloop $1\n" +
                        bytes(1 << 16))
        return img
    elif fmt == "dmg":
        img = d / "t.dmg"                  # probed by its name alone
        img.write_bytes(bytes(1 << 16))
        return img
    else:
        p = run(QEMU_IMG, "create", "-q", "-f", fmt, img, "1M")
    assert p.returncode == 0, p.stderr
    return img


UNSUPPORTED = ["vmdk", "vdi", "vhdx", "vpc", "qed", "parallels", "qcow",
               "luks", "bochs", "cloop", "dmg"]


@pytest.mark.parametrize("fmt", UNSUPPORTED)
def test_formats_tern_cannot_open_refused_by_name(tmp_path, guest_kit, fmt):
    img = make(tmp_path, fmt)
    q = run(QEMU_IMG, "info", "--output=json", img)
    if fmt == "dmg":    # QEMU's dmg driver takes it, then finds no trailer
        assert "dmg" in q.stderr, q.stderr
    elif fmt in ("bochs", "cloop"):   # probed, but not valid beyond magic
        assert q.returncode == 0 and json.loads(q.stdout)["format"] == fmt \
            or fmt in q.stderr or "Could not open" in q.stderr, q.stderr
    else:
        assert json.loads(q.stdout)["format"] == fmt
    want = f"Image format '{fmt}' is not supported by tern"
    for args in (["info", img], ["io", "-c", "read 0 512", img],
                 ["io", "-r", "-c", "read 0 512", img]):
        t = run(paths.tern_img(), *args)
        assert t.returncode == 1, t.stdout + t.stderr
        assert want in t.stderr and str(img) in t.stderr, t.stderr
    before = img.read_bytes()[:4096]
    argv = [paths.tern_binary(), "-M", "virt", "-accel", "kvm", "-m", "64M",
            "-kernel", guest_kit, "-display", "none", "-serial", "none",
            "-drive", f"file={img},if=virtio"]
    t = run(*argv, timeout=30)
    assert t.returncode != 0 and want in t.stderr, t.stderr
    assert img.read_bytes()[:4096] == before


def warning_lines(stderr):
    """The probed-raw warning's lines, without the program's prefix."""
    lines = stderr.splitlines()
    for i, line in enumerate(lines):
        at = line.find("Image format was not specified")
        if at >= 0:
            return [line[at:]] + lines[i + 1:i + 3]
    return []


def test_probed_raw_warns_with_qemus_words(tmp_path):
    img = tmp_path / "r.img"
    img.write_bytes(bytes(1 << 20))
    want = [WARNING[0].format(img)] + WARNING[1:]
    q = run(QEMU_IO, "-c", "read 0 512", img)
    t = run(paths.tern_img(), "io", "-c", "read 0 512", img)
    assert warning_lines(q.stdout + q.stderr) == want, q.stdout + q.stderr
    assert warning_lines(t.stderr) == want, t.stderr
    for args in ([QEMU_IO, "-r", "-c", "read 0 512", img],        # read-only
                 [paths.tern_img(), "io", "-r", "-c", "read 0 512", img],
                 [QEMU_IO, "-f", "raw", "-c", "read 0 512", img],  # given
                 [paths.tern_img(), "io", "-f", "raw", "-c", "read 0 512",
                  img]):
        p = run(*args)
        assert p.returncode == 0 and not warning_lines(p.stdout + p.stderr)


@pytest.mark.parametrize("fmt,data", [
    ("qcow2", None),                       # a whole qcow2 header sector
    ("vmdk", b"KDMV"),                     # 4 bytes: QEMU pads to a sector
    ("vpc", b"conectix"),
    ("vmdk", b"# Disk DescriptorFile\nversion=1\n"),
])
def test_probed_raw_first_sector_like_qemu(tmp_path, fmt, data):
    """A write that would make sector 0 probe as `fmt` fails with EPERM in
    both, and leaves the sector alone; the same write at sector 1, or with
    format=raw given, succeeds in both."""
    src = tmp_path / "src.bin"
    if data is None:
        q2 = tmp_path / "h.qcow2"
        assert run(QEMU_IMG, "create", "-q", "-f", "qcow2", q2,
                   "1M").returncode == 0
        data = q2.read_bytes()[:512]
    src.write_bytes(data)
    n = len(data)
    for tool in ("qemu", "tern"):
        img = tmp_path / f"{tool}.img"
        img.write_bytes(bytes(1 << 20))

        def io(*args):
            if tool == "qemu":
                return run(QEMU_IO, *args, img)
            return run(paths.tern_img(), "io", *args, img)

        p = io("-c", f"write -s {src} 0 {n}")
        out = p.stdout + p.stderr
        assert "Operation not permitted" in out, (tool, out)
        assert img.read_bytes()[:512] == bytes(512)
        p = io("-c", f"write -s {src} 512 {n}")
        assert p.returncode == 0 and "Operation not permitted" not in \
            p.stdout + p.stderr, (tool, p.stdout + p.stderr)
        p = io("-f", "raw", "-c", f"write -s {src} 0 {n}")
        assert p.returncode == 0 and "failed" not in p.stdout, (tool, p.stdout)
        assert img.read_bytes()[:n] == data
