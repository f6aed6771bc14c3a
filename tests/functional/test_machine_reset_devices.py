"""A guest reset puts the platform devices back to their power-on state, as
QEMU does: a tiny PVH kernel enables the ACPI power-button event (PM1_EN) and
sets the PCI host bridge's command register on its first boot, resets through
the i8042, then on the second boot prints both (as digits) on COM1 and powers
off. The kernel is reloaded on reset; RAM at 0x5000 keeps the boot count.
And virtio-blk-pci works again after a QMP system_reset (guest kit)."""
import subprocess

import pytest

from ternlib import TernVm, paths
from ternlib.tinykernel import POWEROFF, RESET

pytestmark = pytest.mark.needs_kvm

BOOT_COUNT = bytes.fromhex(
    "a000500000"        # mov al, [0x5000]
    "fec0"              # inc al
    "a200500000"        # mov [0x5000], al
    "3c01")             # cmp al, 1
PCI_CMD_ADDR = bytes.fromhex(
    "66baf80c"          # mov dx, 0xcf8
    "b804000080"        # mov eax, 0x80000004   (00:00.0, offset 4: command)
    "ef"                # out dx, eax
    "66bafc0c")         # mov dx, 0xcfc
FIRST_BOOT = bytes.fromhex(
    "66ba0206"          # mov dx, 0x602         PM1_EN
    "66b80001"          # mov ax, 0x100         PWRBTN_EN
    "66ef"              # out dx, ax
) + PCI_CMD_ADDR + bytes.fromhex(
    "66b80600"          # mov ax, 6             memory + bus master
    "66ef"              # out dx, ax
) + RESET
SECOND_BOOT = bytes.fromhex(
    "66ba0206"          # mov dx, 0x602
    "66ed"              # in ax, dx
    "88e0"              # mov al, ah            PWRBTN_EN is bit 8
    "0430"              # add al, '0'
    "66baf803"          # mov dx, 0x3f8
    "ee"                # out dx, al
) + PCI_CMD_ADDR + bytes.fromhex(
    "ec"                # in al, dx
    "0430"              # add al, '0'
    "66baf803"          # mov dx, 0x3f8
    "ee"                # out dx, al
) + POWEROFF
KERNEL = BOOT_COUNT + bytes([0x75, len(FIRST_BOOT)]) + FIRST_BOOT + SECOND_BOOT


def test_guest_reset_clears_pm_and_pci_state(tmp_path, tiny_kernel):
    with TernVm(tmp_path, kernel=tiny_kernel(KERNEL), memory=64,
                debug_exit=False) as vm:
        assert vm.wait_exit(30) == 0
        assert vm.serial.text() == "00"


def test_virtio_blk_works_again_after_system_reset(tern_vm, tmp_path):
    """The guest kit's blk workload, reset while it holds after its I/O: the
    rebooted guest finds the device unconfigured (BARs, MSI-X, virtio status
    as at power-on), sets it up again and its I/O verifies."""
    img = tmp_path / "disk.raw"
    subprocess.run([paths.qemu_img(), "create", "-q", "-f", "raw", str(img), "16M"],
                   check=True, timeout=30)
    vm = tern_vm(qmp=True, append="tg.workload=blk tg.blk.mode=verify tg.blk.count=8 "
                 "tg.blk.pattern=0x33 tg.blk.hold=1",
                 extra_args=["-drive", f"file={img},format=raw,if=none,id=d0",
                             "-device", "virtio-blk-pci,drive=d0"])
    vm.start()
    vm.serial.wait_for(r"TG blk holding", timeout=30)
    mark = vm.serial.mark()
    assert vm.qmp().execute("system_reset") == {}
    vm.serial.wait_for(r"^TG ready", timeout=30, start=mark)
    vm.serial.wait_for(r"TG blk verify ok blocks=8", timeout=30, start=mark)
    vm.serial.wait_for(r"TG blk holding", timeout=30, start=mark)
