"""Events a guest causes by itself, as QEMU 7.2 reports them: an ACPI S5
power-off gives SHUTDOWN {"guest": true, "reason": "guest-shutdown"} (and,
with -no-shutdown, STOP and status 'shutdown', where cont is refused); a
keyboard-controller reset gives RESET {"guest": true, "reason": "guest-reset"}.
The guests are tiny hand-assembled PVH kernels (ring-0 code, a few
instructions), built the way test_machine_power.py builds them."""
import struct

import pytest

from ternlib import TernVm, paths
from ternlib.qmp import QmpError

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


def started_paused(tmp_path, k, extra=()):
    """Start with -S so the QMP client is connected before the guest runs."""
    vm = TernVm(tmp_path, kernel=k, memory=64, debug_exit=False, qmp=True, paused=True,
                extra_args=list(extra))
    vm.start()
    q = vm.qmp()
    q.execute("cont")
    return vm, q


def test_guest_poweroff_event(tmp_path, kernel):
    vm, q = started_paused(tmp_path, kernel(POWEROFF))
    try:
        ev = q.wait_event("SHUTDOWN", timeout=20)
        assert ev["data"] == {"guest": True, "reason": "guest-shutdown"}
        assert vm.wait_exit(20) == 0
    finally:
        vm.kill()


def test_guest_poweroff_with_no_shutdown(tmp_path, kernel):
    vm, q = started_paused(tmp_path, kernel(POWEROFF), ["-no-shutdown"])
    try:
        ev = q.wait_event("SHUTDOWN", timeout=20)
        assert ev["data"] == {"guest": True, "reason": "guest-shutdown"}
        q.wait_event("STOP", timeout=10)
        assert q.execute("query-status") == {"status": "shutdown", "singlestep": False,
                                             "running": False}
        with pytest.raises(QmpError) as e:
            q.execute("cont")
        assert e.value.error_class == "GenericError"
        assert e.value.desc == "Resetting the Virtual Machine is required"
        assert q.execute("human-monitor-command", {"command-line": "info status"}) == \
            "VM status: paused (shutdown)\r\n"
        assert vm.running()
    finally:
        vm.kill()


def test_guest_reset_event(tmp_path, kernel):
    vm, q = started_paused(tmp_path, kernel(counting_reboots(2)))
    try:
        ev = q.wait_event("RESET", timeout=20)
        assert ev["data"] == {"guest": True, "reason": "guest-reset"}
        ev = q.wait_event("SHUTDOWN", timeout=20)
        assert ev["data"]["reason"] == "guest-shutdown"
        assert vm.wait_exit(20) == 0
        assert vm.serial.text() == "12"
    finally:
        vm.kill()
