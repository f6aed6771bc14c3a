"""qcow2 compressed clusters made by QEMU 7.2's `qemu-img convert -c`: tern
reads them back identically (compared with qemu-img's own raw conversion) for
several cluster sizes; a tern write into a compressed image leaves it clean
for `qemu-img check` and qemu-io sees the new and the kept data; hostile
compressed descriptors give clear errors, and zstd images are refused by
name."""
import json
import os
import struct

import pytest

from test_block_interop import QEMU_IMG, QEMU_IO, qemu_check_clean, run, \
    tern_img, need_tools  # noqa: F401 (need_tools: autouse fixture)

CLUSTER_SIZES = [512, 4096, 65536, 2 * 1024 * 1024]


def make_source(tmp_path):
    """A raw disk with compressible patterns, incompressible bytes, a hole."""
    src = tmp_path / "src.raw"
    run(QEMU_IMG, "create", "-f", "raw", src, "8M")
    run(QEMU_IO, "-f", "raw", "-c", "write -P 0x5a 0 1M",
        "-c", "write -P 0x11 1536k 300k", "-c", "write -P 0xc3 7M 1M", src)
    with open(src, "r+b") as f:     # random data: stored compressed or not
        f.seek(3 * 1024 * 1024 + 777)
        f.write(os.urandom(200 * 1024))
    return src


def compressed_image(tmp_path, cs, compat="1.1"):
    src = make_source(tmp_path)
    img = tmp_path / f"c{cs}.qcow2"
    run(QEMU_IMG, "convert", "-c", "-O", "qcow2", "-o",
        f"cluster_size={cs},compat={compat}", src, img)
    ref = tmp_path / "ref.raw"
    run(QEMU_IMG, "convert", "-O", "raw", img, ref)
    return img, ref


@pytest.mark.parametrize("cs", CLUSTER_SIZES)
def test_qemu_compressed_reads_identically(tmp_path, cs):
    img, ref = compressed_image(tmp_path, cs)
    info = json.loads(run(QEMU_IMG, "check", "--output=json", img).stdout)
    assert info.get("compressed-clusters", 0) > 0
    p = tern_img("compare", img, ref, check=False)
    assert p.returncode == 0, p.stdout + p.stderr
    p = tern_img("check", img, check=False)
    assert p.returncode == 0, p.stdout + p.stderr
    # check's figures (compressed, fragmented, allocated) as qemu-img's
    assert p.stdout == run(QEMU_IMG, "check", img).stdout
    assert json.loads(tern_img("check", "--output=json", img).stdout) == info


def test_qemu_compressed_v2_reads(tmp_path):
    img, ref = compressed_image(tmp_path, 65536, compat="0.10")
    p = tern_img("compare", img, ref, check=False)
    assert p.returncode == 0, p.stdout + p.stderr


@pytest.mark.parametrize("cs", [512, 65536])
def test_tern_writes_into_compressed(tmp_path, cs):
    img, ref = compressed_image(tmp_path, cs)
    tern_img("io", "-c", "write -P 0x77 4096 1000", "-c",
             "write -P 0x66 1536k 64k", "-c", "discard 7M 512k", img)
    qemu_check_clean(img)
    p = run(QEMU_IO, "-f", "qcow2", "-c", "read -P 0x5a 0 4096",
            "-c", "read -P 0x77 4096 1000", "-c", "read -P 0x5a 5096 1043480",
            "-c", "read -P 0x66 1536k 64k", "-c", "read -P 0x11 1600k 236k",
            "-c", "read -P 0 7M 512k", "-c", "read -P 0xc3 7680k 512k", img)
    assert "fail" not in p.stdout.lower(), p.stdout
    # the random bytes are untouched
    out = tmp_path / "after.raw"
    run(QEMU_IMG, "convert", "-O", "raw", img, out)
    with open(out, "rb") as a, open(ref, "rb") as b:
        a.seek(3 * 1024 * 1024)
        b.seek(3 * 1024 * 1024)
        assert a.read(1024 * 1024) == b.read(1024 * 1024)
    p = tern_img("check", img, check=False)
    assert p.returncode == 0, p.stdout + p.stderr


def first_l2_entry_offset(img):
    with open(img, "rb") as f:
        hdr = f.read(48)
        l1_off = struct.unpack(">Q", hdr[40:48])[0]
        f.seek(l1_off)
        l2_off = struct.unpack(">Q", f.read(8))[0] & 0x00fffffffffffe00
        return l2_off


def test_hostile_compressed_descriptors(tmp_path):
    img, _ = compressed_image(tmp_path, 65536)
    l2 = first_l2_entry_offset(img)
    with open(img, "rb") as f:
        f.seek(l2)
        entry = struct.unpack(">Q", f.read(8))[0]
    assert entry & (1 << 62)
    shift = 62 - (16 - 8)
    host = entry & ((1 << shift) - 1)
    size = os.path.getsize(img)
    cases = {
        "past EOF": (1 << 62) | (3 << shift) | (size + 65536),
        "header": (1 << 62) | 8,
    }
    for what, e in cases.items():
        with open(img, "r+b") as f:
            f.seek(l2)
            f.write(struct.pack(">Q", e))
        p = tern_img("io", "-r", "-c", "read 0 64k", img, check=False)
        assert p.returncode != 0, what
        assert "compressed cluster" in p.stderr, (what, p.stderr)
    # garbage deflate data at the real place
    with open(img, "r+b") as f:
        f.seek(l2)
        f.write(struct.pack(">Q", entry))
        f.seek(host)
        f.write(b"\xff" * 64)
    p = tern_img("io", "-r", "-c", "read 0 64k", img, check=False)
    assert p.returncode != 0 and "inflate" in p.stderr, p.stderr


def test_zstd_refused_by_name(tmp_path):
    img = tmp_path / "z.qcow2"
    p = run(QEMU_IMG, "create", "-f", "qcow2", "-o", "compression_type=zstd",
            img, "1M", check=False)
    if p.returncode != 0:
        pytest.skip("this qemu-img has no zstd support")
    p = tern_img("info", img, check=False)
    assert p.returncode != 0
    assert "compression type" in p.stderr, p.stderr
