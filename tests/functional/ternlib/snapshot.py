"""Internal snapshots in tests: HMP through QMP, the image seen by qemu-img
(check, snapshot list, exact VM state sizes), and a small reader of a
qcow2 snapshot table that finds where a snapshot keeps its VM state, so a
test can cut it short or garble it in place (tests/functional/
test_snapshot*.py)."""
import json
import struct
import subprocess

from . import paths

L2E_OFFSET_MASK = 0x00fffffffffffe00


def hmp(vm, line):
    """The text of an HMP command line (through human-monitor-command)."""
    return vm.qmp().execute("human-monitor-command", **{"command-line": line})


def qemu_img_check(img):
    """qemu-img check must find the image clean."""
    r = subprocess.run([paths.qemu_img(), "check", "-U", str(img)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "No errors were found" in r.stdout, \
        r.stdout + r.stderr


def qemu_img_snapshots(img):
    """{tag: {"id", "vm-state-size", "vm-clock-nsec", ...}} as qemu-img
    info --output=json reports them (exact sizes)."""
    r = subprocess.run([paths.qemu_img(), "info", "-U", "--output=json",
                        str(img)], capture_output=True, text=True, timeout=60,
                       check=True)
    return {s["name"]: s for s in json.loads(r.stdout).get("snapshots", [])}


def qemu_img_list(img):
    """qemu-img snapshot -l's text."""
    return subprocess.run([paths.qemu_img(), "snapshot", "-U", "-l", str(img)],
                          capture_output=True, text=True, timeout=60,
                          check=True).stdout


class Qcow2Snapshots:
    """The snapshot table of a qcow2 file, read directly."""

    def __init__(self, img):
        self.img = str(img)
        with open(self.img, "rb") as f:
            h = f.read(72)
        assert h[:4] == b"QFI\xfb", "not a qcow2 image"
        self.cluster_bits = struct.unpack(">I", h[20:24])[0]
        self.cluster = 1 << self.cluster_bits
        self.size = struct.unpack(">Q", h[24:32])[0]
        n = struct.unpack(">I", h[60:64])[0]
        off = struct.unpack(">Q", h[64:72])[0]
        self.entries = {}
        with open(self.img, "rb") as f:
            for _ in range(n):
                f.seek(off)
                e = f.read(40)
                l1_off, l1_size, id_len, name_len = struct.unpack(">QIHH", e[:16])
                extra_len = struct.unpack(">I", e[36:40])[0]
                extra = f.read(extra_len)
                ident = f.read(id_len).decode()
                name = f.read(name_len).decode()
                disk = (struct.unpack(">Q", extra[8:16])[0]
                        if extra_len >= 16 else self.size)
                self.entries[name] = dict(entry=off, l1_off=l1_off,
                                          l1_size=l1_size, id=ident,
                                          disk_size=disk)
                off = (off + 40 + extra_len + id_len + name_len + 7) & ~7

    def vmstate_host_offset(self, name, pos):
        """Where byte `pos` of snapshot `name`'s VM state lies in the file."""
        e = self.entries[name]
        per_l1 = self.cluster * (self.cluster // 8)
        guest = -(-e["disk_size"] // per_l1) * per_l1 + pos
        with open(self.img, "rb") as f:
            f.seek(e["l1_off"] + 8 * (guest // per_l1))
            l2 = struct.unpack(">Q", f.read(8))[0] & L2E_OFFSET_MASK
            f.seek(l2 + 8 * ((guest >> self.cluster_bits) % (self.cluster // 8)))
            host = struct.unpack(">Q", f.read(8))[0] & L2E_OFFSET_MASK
        assert host, f"{name}: VM state byte {pos} is not allocated"
        return host + guest % self.cluster

    def read_vm_state(self, name, pos, length):
        """length bytes of snapshot name's VM state from pos."""
        out = b""
        with open(self.img, "rb") as f:
            while length:
                n = min(length, self.cluster - (pos % self.cluster))
                f.seek(self.vmstate_host_offset(name, pos))
                out += f.read(n)
                pos += n
                length -= n
        return out

    def stream_ends_at(self, name, size):
        """Whether the migration stream in the VM state ends exactly at
        size: its last record is the VM description (0x06, be32 length,
        JSON) and nothing follows."""
        tail = self.read_vm_state(name, max(0, size - 65536), min(size, 65536))
        at = tail.rfind(b"\x06", 0, len(tail) - 5)
        while at >= 0:
            n = struct.unpack(">I", tail[at + 1:at + 5])[0]
            if tail[at + 5:at + 6] == b"{" and at + 5 + n == len(tail):
                return tail.endswith(b"}")
            at = tail.rfind(b"\x06", 0, at)
        return False

    def set_vm_state_size(self, name, size):
        """Rewrite the size the snapshot records (both fields)."""
        off = self.entries[name]["entry"]
        with open(self.img, "r+b") as f:
            f.seek(off + 32)
            f.write(struct.pack(">I", min(size, 0xffffffff)))
            f.seek(off + 40)
            f.write(struct.pack(">Q", size))

    def garble_vm_state(self, name, pos, length):
        """Overwrite `length` bytes of the VM state at `pos` (one cluster
        at most) with 0xff."""
        host = self.vmstate_host_offset(name, pos)
        with open(self.img, "r+b") as f:
            f.seek(host)
            f.write(b"\xff" * length)
