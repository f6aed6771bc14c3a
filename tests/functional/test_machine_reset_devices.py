"""A guest reset puts the platform devices back to their power-on state, as
QEMU does: a tiny PVH kernel enables the ACPI power-button event (PM1_EN) and
sets the PCI host bridge's command register on its first boot, resets through
the i8042, then on the second boot prints both (as digits) on COM1 and powers
off. The kernel is reloaded on reset; RAM at 0x5000 keeps the boot count."""
import pytest

from ternlib import TernVm
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
