"""Image locks against QEMU 7.2 both ways: for the same use tern holds the
same lock bytes as QEMU (file-posix: byte 100+i "I use permission i",
200+i "others may not"; consistent read 0, write 1, write unchanged 2,
resize 3, change children 4), read from /proc/locks while each holds the
image; an image a QEMU user forbids resizing is not resized by tern-img; and
qemu-img / qemu-io against an image tern holds fail exactly as against one
QEMU holds, and tern-img against QEMU as qemu-img does."""
import os
import subprocess
import time

import pytest

from ternlib import paths
from ternlib.imgtools import QEMU_IMG, QEMU_IO, run

pytestmark = pytest.mark.usefixtures("image_tools")

QEMU = paths.qemu_binary()




def lock_bytes(path):
    """Bytes of 'path' some process holds an OFD lock on."""
    ino = os.stat(path).st_ino
    held = set()
    with open("/proc/locks") as f:
        for line in f:
            w = line.split()
            if "OFDLCK" in w and w[5].endswith(f":{ino}"):
                held.update(range(int(w[6]), int(w[7]) + 1))
    return sorted(held)


def wait_bytes(path, proc, timeout=30):
    """The bytes once the holder took them (a non-empty set that stays)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        now = lock_bytes(path)
        if now and now == last:
            return now
        last = now
        time.sleep(0.3)
    return last


class Holder:
    def __init__(self, argv):
        self.proc = subprocess.Popen([str(a) for a in argv],
                                     stdin=subprocess.PIPE,
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.proc.kill()
        self.proc.wait()


def make(tmp_path, fmt, name="img"):
    img = tmp_path / f"{name}.{fmt}"
    assert run(QEMU_IMG, "create", "-q", "-f", fmt, img,
               "64M").returncode == 0
    return img


def qemu_vm_argv(img, fmt, drive_extra="", device="virtio-blk-pci",
                 dev_extra="", incoming=False):
    return [QEMU, "-M", "pc", "-accel", "tcg", "-nodefaults", "-display",
            "none", "-S", *(["-incoming", "defer"] if incoming else []),
            "-drive", f"file={img},format={fmt},if=none,id=d0{drive_extra}",
            "-device", f"{device},drive=d0{dev_extra}"]


def tern_vm_argv(tmp_path, img, fmt, drive_extra="", incoming=False):
    return [paths.tern_binary(), "-M", "virt", "-accel", "kvm", "-m", "64M",
            "-kernel", paths.guest_kit(), "-display", "none", "-serial",
            "none", "-S",
            *(["-incoming", f"unix:{tmp_path}/in.sock"] if incoming else []),
            "-drive", f"file={img},format={fmt},if=none,id=d0{drive_extra}",
            "-device", "virtio-blk-pci,drive=d0"]


@pytest.mark.parametrize("fmt", ["raw", "qcow2"])
@pytest.mark.parametrize("use", ["vm", "vm-readonly", "vm-incoming", "io",
                                 "io-readonly"])
def test_same_lock_bytes_as_qemu(tmp_path, guest_kit, fmt, use):
    img = make(tmp_path, fmt)
    if use.startswith("vm"):
        extra = ",readonly=on" if use == "vm-readonly" else ""
        qemu = qemu_vm_argv(img, fmt, extra, incoming=use == "vm-incoming")
        tern = tern_vm_argv(tmp_path, img, fmt, extra,
                            incoming=use == "vm-incoming")
    else:
        ro = ["-r"] if use == "io-readonly" else []
        qemu = [QEMU_IO, *ro, "-f", fmt, "-c", "sleep 100000", img]
        tern = [paths.tern_img(), "io", *ro, "-f", fmt, "-c",
                "sleep 100000", img]
    held = {}
    for who, argv in (("qemu", qemu), ("tern", tern)):
        with Holder(argv) as h:
            if use == "vm-incoming":       # (both hold nothing: wait a bit)
                time.sleep(2)
                assert h.proc.poll() is None
                held[who] = lock_bytes(img)
            else:
                held[who] = wait_bytes(img, h.proc)
    assert held["tern"] == held["qemu"], held


def test_resize_forbidden_by_qemu_is_refused(tmp_path):
    """QEMU's floppy, read-only with share-rw=on, lets others write but not
    resize (bytes 100 and 203): qemu-img resize and tern-img resize are
    refused with the same words, and the image keeps its size."""
    img = tmp_path / "fd.raw"
    img.write_bytes(bytes(1440 * 1024))
    argv = qemu_vm_argv(img, "raw", ",readonly=on", device="floppy",
                        dev_extra=",share-rw=on")
    with Holder(argv) as h:
        assert wait_bytes(img, h.proc) == [100, 203]
        for tool in ([QEMU_IMG, "resize", "-f", "raw", img, "2M"],
                     [paths.tern_img(), "resize", "-f", "raw", img, "2M"]):
            p = run(*tool)
            assert p.returncode != 0, p.stdout + p.stderr
            assert 'Failed to get "resize" lock' in p.stderr, p.stderr
            assert "Is another process using the image" in p.stderr
        # writing is allowed by that holder, for both tools
        for tool in ([QEMU_IO, "-f", "raw", "-c", "write 0 512", img],
                     [paths.tern_img(), "io", "-f", "raw", "-c",
                      "write 0 512", img]):
            assert run(*tool).returncode == 0
    assert img.stat().st_size == 1440 * 1024


CONFLICTS = [
    ([QEMU_IMG, "resize", "-f", "{fmt}", "{img}", "+1M"], "tool"),
    ([QEMU_IO, "-f", "{fmt}", "-c", "write 0 512", "{img}"], "tool"),
    ([QEMU_IO, "-r", "-f", "{fmt}", "-c", "read 0 512", "{img}"], "tool"),
    (["{tern_img}", "resize", "-f", "{fmt}", "{img}", "+1M"], "tool"),
    (["{tern_img}", "io", "-f", "{fmt}", "-c", "write 0 512", "{img}"],
     "tool"),
    (["{tern_img}", "io", "-r", "-f", "{fmt}", "-c", "read 0 512", "{img}"],
     "tool"),
]


def lock_error(p):
    """The lock conflict's words without the tool's prefix, or None."""
    text = p.stdout + p.stderr
    at = text.find("Failed to get")
    return text[at:text.index("lock", at) + 4] if at >= 0 else None


@pytest.mark.parametrize("fmt", ["raw", "qcow2"])
@pytest.mark.parametrize("readonly", [False, True])
def test_tools_meet_tern_as_they_meet_qemu(tmp_path, guest_kit, fmt,
                                           readonly):
    """Each tool against an image held by a QEMU VM and by a tern VM (same
    -drive, virtio-blk): it succeeds against both or fails against both with
    the same lock."""
    extra = ",readonly=on" if readonly else ""
    results = {}
    for who in ("qemu", "tern"):
        img = make(tmp_path, fmt, who)
        argv = (qemu_vm_argv(img, fmt, extra) if who == "qemu"
                else tern_vm_argv(tmp_path, img, fmt, extra))
        with Holder(argv) as h:
            wait_bytes(img, h.proc)
            out = []
            for tool, _ in CONFLICTS:
                a = [t.format(fmt=fmt, img=img, tern_img=paths.tern_img())
                     for t in tool]
                p = run(*a)
                out.append((p.returncode == 0, lock_error(p)))
            results[who] = out
    assert results["tern"] == results["qemu"], results
    # and the image-changing ones really were stopped somewhere
    assert not all(ok for ok, _ in results["tern"])
