"""Guest poweroff and reset on tern, with tiny hand-assembled PVH kernels
(ring-0 code, a few instructions): ACPI S5 ends tern with status 0 (or stops
it in 'shutdown' with -no-shutdown); an i8042 reset reboots the machine (the
kernel is loaded again, RAM outside it is kept) or ends tern with
-no-reboot."""
import struct
import subprocess
import time

import pytest

from ternlib import paths, TernVm

pytestmark = pytest.mark.needs_kvm

LOAD_ADDR = 0x200000

# mov dx, 0x604; mov ax, SLP_TYP(5) << 10 | SLP_EN; out dx, ax; jmp $
POWEROFF = bytes.fromhex("66ba0406" "66b80034" "66ef" "ebfe")
# mov al, 0xfe; out 0x64, al; jmp $      (i8042 pulse reset line)
RESET = bytes.fromhex("b0fe" "e664" "ebfe")


def counting_reboots(n):
    """Counts boots in RAM at 0x5000, prints the count on COM1, resets until
    the count reaches n, then powers off."""
    head = bytes.fromhex(
        "a000500000"     # mov al, [0x5000]
        "fec0"           # inc al
        "a200500000"     # mov [0x5000], al
        "66baf803"       # mov dx, 0x3f8
        "0430"           # add al, '0'
        "ee"             # out dx, al
        "3c" + f"{0x30 + n:02x}")   # cmp al, '0'+n
    return head + bytes([0x74, len(RESET)]) + RESET + POWEROFF   # je poweroff


def pvh_elf(code):
    """An ELF64 with one PT_LOAD at LOAD_ADDR and Xen's PHYS32_ENTRY note."""
    ehdr_size, phdr_size = 64, 56
    note = struct.pack("<III", 4, 4, 18) + b"Xen\0" + struct.pack("<I", LOAD_ADDR)
    note_off = ehdr_size + 2 * phdr_size
    code_off = note_off + len(note)
    ident = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    ehdr = ident + struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, LOAD_ADDR, ehdr_size, 0, 0,
                               ehdr_size, phdr_size, 2, 64, 0, 0)
    load = struct.pack("<IIQQQQQQ", 1, 7, code_off, LOAD_ADDR, LOAD_ADDR, len(code),
                       len(code), 0x1000)
    pnote = struct.pack("<IIQQQQQQ", 4, 4, note_off, 0, 0, len(note), len(note), 4)
    return ehdr + load + pnote + note + code


@pytest.fixture
def kernel(tmp_path):
    if not paths.tern_binary().exists():
        pytest.skip(f"tern not built: {paths.tern_binary()}")

    def write(code):
        k = tmp_path / "k.elf"
        k.write_bytes(pvh_elf(code))
        return k
    return write


def make_vm(tmp_path, k, **kw):
    return TernVm(tmp_path, kernel=k, memory=64, debug_exit=False, **kw)


def test_acpi_poweroff_exits_zero(tmp_path, kernel):
    with make_vm(tmp_path, kernel(POWEROFF)) as vm:
        assert vm.wait_exit(20) == 0


def test_no_shutdown_stops_instead(tmp_path, kernel):
    with make_vm(tmp_path, kernel(POWEROFF), qmp=True,
                 extra_args=["-no-shutdown"]) as vm:
        qmp = vm.qmp()
        deadline = time.monotonic() + 20
        while qmp.execute("query-status")["status"] != "shutdown":
            assert time.monotonic() < deadline, "never reached 'shutdown'"
            time.sleep(0.05)
        assert vm.running()


def test_reset_with_no_reboot_exits_zero(tmp_path, kernel):
    with make_vm(tmp_path, kernel(RESET), extra_args=["-no-reboot"]) as vm:
        assert vm.wait_exit(20) == 0


def test_reset_reboots_and_reloads_kernel(tmp_path, kernel):
    with make_vm(tmp_path, kernel(counting_reboots(3))) as vm:
        assert vm.wait_exit(30) == 0
        assert vm.serial.text() == "123"
