"""Boot Debian's stock kernels on tern to a busybox shell on the serial console
and power off: linux-image-amd64 (has MPPARSE) and linux-image-cloud-amd64
(ACPI only), -smp 2, 512 MiB, with a busybox initramfs (plus virtio and ext4
modules when the package has them). The kernels come from
scripts/fetch-linux-kernels (apt-get download, cached in ~/.cache/tern/linux).

The serial port is a file here, so the "typing" is done by /init: it starts an
interactive busybox shell whose stdin is a pipe carrying the test's commands;
the shell prints its prompt, runs them, and `poweroff -f` goes through ACPI
(PM1a_CNT SLP_TYP=S5|SLP_EN), which must make tern exit with status 0. A third
boot turns ACPI off so the kernel must find the CPUs in the MP table, and
reboots through the i8042 (-no-reboot turns that into exit 0).

Booting needs hardware KVM (kvm_intel/kvm_amd): on the PVM host guest ring 0
is emulated and Linux cannot boot in test time, so those tests skip (marker
`linux_boot`). The initramfs builder is checked on every host."""
import os
import stat
import subprocess
from pathlib import Path

import pytest

from ternlib import REPO, TernVm

CACHE = Path(os.environ.get("TERN_LINUX_CACHE")
             or Path.home() / ".cache" / "tern" / "linux")
BUSYBOX = Path("/bin/busybox")
BOOT_TIMEOUT = 180.0

# Load order matters: dependencies first (no modules.dep in the package).
MODULES = [
    "drivers/virtio/virtio.ko", "drivers/virtio/virtio_ring.ko",
    "drivers/virtio/virtio_pci_legacy_dev.ko",
    "drivers/virtio/virtio_pci_modern_dev.ko", "drivers/virtio/virtio_pci.ko",
    "drivers/block/virtio_blk.ko", "lib/crc16.ko", "crypto/crc32c_generic.ko",
    "lib/libcrc32c.ko", "fs/mbcache.ko", "fs/jbd2/jbd2.ko", "fs/ext4/ext4.ko",
]

INIT = """#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /tmp
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sys /sys
/bin/busybox mount -t devtmpfs dev /dev
/bin/busybox --install -s /bin
for m in {modules}; do
    [ -f "$m" ] && insmod "$m" 2>/dev/null && echo "TERN-LINUX module $m"
done
echo "TERN-LINUX init up"
export PS1='tern-linux# '
# An interactive shell fed by a pipe: it prints its prompt on the console
# before each command, as it would for a person typing.
{commands} | setsid sh -i
echo "TERN-LINUX shell returned $?"
poweroff -f
"""


def _is_static_elf(path):
    """True if the ELF has no PT_INTERP (no dynamic loader needed)."""
    data = path.read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2:
        return False
    phoff = int.from_bytes(data[32:40], "little")
    phentsize = int.from_bytes(data[54:56], "little")
    phnum = int.from_bytes(data[56:58], "little")
    for i in range(phnum):
        p_type = int.from_bytes(data[phoff + i * phentsize:][:4], "little")
        if p_type == 3:     # PT_INTERP
            return False
    return True


def _cpio_entry(name, mode, data=b"", rdev=(0, 0), ino=1):
    """One 'newc' cpio record: header, name, data, each padded to 4 bytes."""
    fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1],
              len(name) + 1, 0]
    hdr = b"070701" + b"".join(b"%08X" % f for f in fields)
    rec = hdr + name.encode() + b"\0"
    rec += b"\0" * (-len(rec) % 4)
    rec += data + b"\0" * (-len(data) % 4)
    return rec


def build_initramfs(out, commands, modules_root=None):
    """Writes an uncompressed newc initramfs with busybox, /init, /dev/console
    and the MODULES found under modules_root (lib/modules/<ver>/kernel)."""
    entries = []
    ino = 1

    def add(name, mode, data=b"", rdev=(0, 0)):
        nonlocal ino
        entries.append(_cpio_entry(name, mode, data, rdev, ino))
        ino += 1

    for d in ("bin", "dev", "proc", "sys", "tmp", "lib", "lib/modules"):
        add(d, stat.S_IFDIR | 0o755)
    add("dev/console", stat.S_IFCHR | 0o600, rdev=(5, 1))
    add("bin/busybox", stat.S_IFREG | 0o755, BUSYBOX.read_bytes())
    add("bin/sh", stat.S_IFLNK | 0o777, b"busybox")
    mod_paths = []
    if modules_root is not None and modules_root.is_dir():
        for m in MODULES:
            src = modules_root / m
            if src.exists():
                dst = f"lib/modules/{Path(m).name}"
                add(dst, stat.S_IFREG | 0o644, src.read_bytes())
                mod_paths.append("/" + dst)
    script = "; ".join(f"echo {c!r}" for c in commands)
    init = INIT.format(modules=" ".join(mod_paths) or "none",
                       commands="{ " + script + "; }")
    add("init", stat.S_IFREG | 0o755, init.encode())
    blob = b"".join(entries) + _cpio_entry("TRAILER!!!", 0, ino=0)
    out.write_bytes(blob)
    return mod_paths


def _kernel(flavour):
    vmlinuz = CACHE / flavour / "vmlinuz"
    if not vmlinuz.exists():
        subprocess.run([str(REPO / "scripts" / "fetch-linux-kernels"), flavour],
                       env=dict(os.environ, TERN_LINUX_CACHE=str(CACHE)),
                       stdout=subprocess.DEVNULL, timeout=900, check=False)
    if not vmlinuz.exists():
        pytest.skip(f"Debian linux-image-{flavour} is not available (offline or "
                    f"no Debian apt sources); run scripts/fetch-linux-kernels")
    version = (CACHE / flavour / "version").read_text().strip()
    return vmlinuz, CACHE / flavour / "lib" / "modules" / version / "kernel"


def _need_busybox():
    if not BUSYBOX.exists() or not _is_static_elf(BUSYBOX):
        pytest.skip("needs a static busybox at /bin/busybox (busybox-static)")


def test_linux_initramfs_builder(tmp_path):
    """The cpio the boot tests hand the kernel lists what /init needs."""
    _need_busybox()
    out = tmp_path / "initrd.cpio"
    build_initramfs(out, ["echo hello"])
    listing = subprocess.run([str(BUSYBOX), "cpio", "-t"], input=out.read_bytes(),
                             capture_output=True, check=True).stdout.decode()
    names = listing.split()
    for want in ("init", "bin/busybox", "bin/sh", "dev/console"):
        assert want in names, listing
    ext = tmp_path / "x"
    ext.mkdir()
    subprocess.run([str(BUSYBOX), "cpio", "-i", "-d"], input=out.read_bytes(),
                   cwd=ext, capture_output=True, check=True)
    init = (ext / "init").read_text()
    assert init.startswith("#!/bin/busybox sh") and "poweroff -f" in init
    assert (ext / "bin" / "busybox").read_bytes() == BUSYBOX.read_bytes()


def _boot(tmp_path, flavour, append, commands, extra=()):
    _need_busybox()
    vmlinuz, modroot = _kernel(flavour)
    initrd = tmp_path / f"{flavour}.cpio"
    mods = build_initramfs(initrd, commands, modroot)
    vm = TernVm(tmp_path, kernel=vmlinuz, memory=512, smp=2, debug_exit=False,
                append="console=ttyS0 panic=-1 " + append, name=f"linux-{flavour}",
                extra_args=["-initrd", str(initrd), "-no-reboot", *extra])
    return vm, mods


MARK_CMDS = ["echo TERN-SHELL cpus=$(grep -c ^processor /proc/cpuinfo)",
             "echo TERN-SHELL pci=$(ls /sys/bus/pci/devices | wc -l)"]


@pytest.mark.linux_boot
@pytest.mark.parametrize("flavour", ["amd64", "cloud-amd64"])
def test_linux_boot_shell_and_acpi_poweroff(tmp_path, flavour):
    vm, mods = _boot(tmp_path, flavour, "", MARK_CMDS + ["poweroff -f"])
    with vm:
        vm.serial.wait_for(r"Linux version \S+", timeout=60)
        vm.serial.wait_for(r"^TERN-LINUX init up", timeout=BOOT_TIMEOUT)
        vm.serial.wait_for(r"tern-linux# ", timeout=30)          # the prompt
        m = vm.serial.wait_for(r"^TERN-SHELL cpus=(\d+)", timeout=30)
        assert int(m[1]) == 2, vm.serial.tail(60)
        m = vm.serial.wait_for(r"^TERN-SHELL pci=(\d+)", timeout=30)
        assert int(m[1]) >= 1, vm.serial.tail(60)                # the host bridge
        status = vm.wait_exit(timeout=60)
        assert status == 0, vm.stderr_text()[-2000:]
        log = vm.serial.text()
        assert "Kernel panic" not in log
        assert "ACPI: PM-Timer IO Port: 0x608" in log, vm.serial.tail(80)
        for m in mods:
            if "virtio_blk" in m or "ext4" in m:
                assert f"TERN-LINUX module {m}" in log, vm.serial.tail(80)


@pytest.mark.linux_boot
def test_linux_boot_mptable_and_kbd_reset(tmp_path):
    """acpi=off: CPUs and IRQ routing come from the MP table; `reboot -f` then
    resets through the keyboard controller, and -no-reboot makes that exit 0."""
    vm, _ = _boot(tmp_path, "amd64", "acpi=off reboot=k", MARK_CMDS + ["reboot -f"])
    with vm:
        vm.serial.wait_for(r"^TERN-LINUX init up", timeout=BOOT_TIMEOUT)
        m = vm.serial.wait_for(r"^TERN-SHELL cpus=(\d+)", timeout=30)
        assert int(m[1]) == 2, vm.serial.tail(60)
        status = vm.wait_exit(timeout=60)
        assert status == 0, vm.stderr_text()[-2000:]
        log = vm.serial.text()
        assert "Kernel panic" not in log            # panic=-1 also exits 0
        assert "Intel MultiProcessor Specification" in log, vm.serial.tail(80)
