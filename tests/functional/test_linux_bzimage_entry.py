"""tern's bzImage path end to end on any KVM host, with a synthetic "kernel":
a valid boot-protocol 2.15 setup header followed by a few dozen instructions
of 64-bit code at startup_64 (load address + 0x200). The code checks what the
64-bit boot protocol promises — long mode, CS = __BOOT_CS, RSI -> boot_params
with "HdrS", type_of_loader, e820 entries, cmd_line_ptr and ramdisk_image
pointing at the command line and initrd — and reports through isa-debug-exit:
0x21 if all hold, else the number of the first failed check. Real Linux
kernels need hardware KVM (test_linux_boot.py); this runs on the PVM host too
because it stays a few dozen ring-0 instructions long."""
import struct

import pytest

from ternlib import TernVm, debug_exit_status

OK = 0x21
CHECKS = {
    1: "not in 64-bit mode", 2: "RSI does not point at boot_params (no HdrS)",
    3: "CS is not __BOOT_CS (0x10)", 4: "cmd_line_ptr does not point at the cmdline",
    5: "no e820 entries", 6: "ramdisk_image does not point at the initrd",
    7: "type_of_loader is not 0xff",
}


def _fail(code):
    # mov al, code; out 0xf4, al; hlt
    return bytes([0xB0, code, 0xE6, 0xF4, 0xF4])


def _entry_code():
    c = b""
    # 1: mov rax, imm64; shr rax, 32; cmp eax, 0x11223344 (REX.W only works in long mode)
    c += b"\x48\xB8" + struct.pack("<Q", 0x1122334455667788) + b"\x48\xC1\xE8\x20"
    c += b"\x3D" + struct.pack("<I", 0x11223344) + b"\x74\x05" + _fail(1)
    # 2: mov eax, [rsi+0x202]; cmp eax, "HdrS"
    c += b"\x8B\x86\x02\x02\x00\x00\x3D" + b"HdrS" + b"\x74\x05" + _fail(2)
    # 3: mov eax, cs; cmp eax, 0x10
    c += b"\x8C\xC8\x83\xF8\x10\x74\x05" + _fail(3)
    # 4: mov edi, [rsi+0x228]; cmp byte [rdi], 'T'
    c += b"\x8B\xBE\x28\x02\x00\x00\x80\x3F\x54\x74\x05" + _fail(4)
    # 5: cmp byte [rsi+0x1e8], 0
    c += b"\x80\xBE\xE8\x01\x00\x00\x00\x75\x05" + _fail(5)
    # 6: mov edi, [rsi+0x218]; cmp byte [rdi], 'I'
    c += b"\x8B\xBE\x18\x02\x00\x00\x80\x3F\x49\x74\x05" + _fail(6)
    # 7: cmp byte [rsi+0x210], 0xff
    c += b"\x80\xBE\x10\x02\x00\x00\xFF\x74\x05" + _fail(7)
    # all good: report OK, then stay halted
    c += _fail(OK) + b"\xEB\xFE"
    return c


TABLE_CHECKS = {
    0x11: "no RSDP signature at 0xE0000", 0x12: "RSDP checksum is wrong",
    0x13: "RSDP's XSDT address does not point at an XSDT",
    0x14: "XSDT checksum is wrong", 0x15: "XSDT's first entry is not the FADT",
    0x16: "no MP floating pointer at 0xF0000",
}


def _tables_code():
    """Walks the firmware tables as a guest sees them in RAM."""
    c = b"\xBE" + struct.pack("<I", 0xE0000)                 # mov esi, 0xe0000
    c += b"\x48\xB8" + b"RSD PTR " + b"\x48\x39\x06"        # cmp [rsi], rax
    c += b"\x74\x05" + _fail(0x11)
    c += b"\x31\xC0\xB9\x24\x00\x00\x00"                   # sum 36 bytes
    c += b"\x02\x44\x0E\xFF\xE2\xFA\x84\xC0\x74\x05" + _fail(0x12)
    c += b"\x48\x8B\x7E\x18"                                # mov rdi, [rsi+24]
    c += b"\x81\x3F" + b"XSDT" + b"\x74\x05" + _fail(0x13)
    c += b"\x8B\x4F\x04\x31\xC0"                            # sum [rdi+4] bytes
    c += b"\x02\x44\x0F\xFF\xE2\xFA\x84\xC0\x74\x05" + _fail(0x14)
    c += b"\x48\x8B\x57\x24"                                # mov rdx, [rdi+36]
    c += b"\x81\x3A" + b"FACP" + b"\x74\x05" + _fail(0x15)
    c += b"\xBE" + struct.pack("<I", 0xF0000)
    c += b"\x81\x3E" + b"_MP_" + b"\x74\x05" + _fail(0x16)
    return c + _fail(OK) + b"\xEB\xFE"


def make_bzimage(relocatable=True, code=None):
    setup_sects = 4
    setup = bytearray((setup_sects + 1) * 512)
    setup[0x1F1] = setup_sects
    struct.pack_into("<H", setup, 0x1FE, 0xAA55)
    setup[0x200:0x202] = b"\xEB\x6A"                 # jump over the header
    setup[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", setup, 0x206, 0x020F)     # protocol 2.15
    setup[0x211] = 0x01                              # LOADED_HIGH
    struct.pack_into("<I", setup, 0x22C, 0x7FFFFFFF)  # initrd_addr_max
    struct.pack_into("<I", setup, 0x230, 0x200000)   # kernel_alignment
    setup[0x234] = 1 if relocatable else 0
    struct.pack_into("<H", setup, 0x236, 0x0001)     # XLF_KERNEL_64
    struct.pack_into("<I", setup, 0x238, 2047)       # cmdline_size
    struct.pack_into("<Q", setup, 0x258, 0x1000000)  # pref_address
    struct.pack_into("<I", setup, 0x260, 0x100000)   # init_size
    kernel = bytearray(b"\xF4" * 0x200) + (code or _entry_code())
    kernel += b"\xF4" * (-len(kernel) % 512)
    return bytes(setup + kernel)


@pytest.mark.needs_kvm
@pytest.mark.parametrize("relocatable", [True, False], ids=["pref-address", "1mib"])
def test_linux_bzimage_entry_state(tmp_path, relocatable):
    img = tmp_path / "bzImage"
    img.write_bytes(make_bzimage(relocatable))
    initrd = tmp_path / "initrd"
    initrd.write_bytes(b"I" + bytes(8191))
    vm = TernVm(tmp_path, kernel=img, append="TERN-ENTRY console=ttyS0",
                memory=256, smp=2, extra_args=["-initrd", str(initrd)])
    with vm:
        status = vm.wait_exit(timeout=30)
    if status != debug_exit_status(OK):
        code = (status - 1) >> 1 if status and status & 1 else None
        pytest.fail(f"guest check failed: {CHECKS.get(code, f'exit status {status}')}"
                    f"\n--- stderr:\n{vm.stderr_text()[-2000:]}")


@pytest.mark.needs_kvm
@pytest.mark.parametrize("smp", [1, 4])
def test_linux_bzimage_guest_finds_acpi_and_mp_tables(tmp_path, smp):
    img = tmp_path / "bzImage"
    img.write_bytes(make_bzimage(code=_tables_code()))
    vm = TernVm(tmp_path, kernel=img, append="T", memory=256, smp=smp)
    with vm:
        status = vm.wait_exit(timeout=30)
    if status != debug_exit_status(OK):
        code = (status - 1) >> 1 if status and status & 1 else None
        pytest.fail(f"guest check failed: "
                    f"{TABLE_CHECKS.get(code, f'exit status {status}')}"
                    f"\n--- stderr:\n{vm.stderr_text()[-2000:]}")


@pytest.mark.needs_kvm
def test_linux_bzimage_garbage_kernel_is_an_error(tmp_path):
    img = tmp_path / "garbage"
    img.write_bytes(bytes(range(256)) * 64)
    vm = TernVm(tmp_path, kernel=img, append="", memory=256, debug_exit=False)
    with vm:
        status = vm.wait_exit(timeout=30)
    assert status == 1
    assert "bzImage" in vm.stderr_text(), vm.stderr_text()


@pytest.mark.needs_kvm
def test_linux_bzimage_initrd_too_big_is_an_error(tmp_path):
    img = tmp_path / "bzImage"
    img.write_bytes(make_bzimage())
    initrd = tmp_path / "initrd"
    with open(initrd, "wb") as f:
        f.truncate(300 << 20)                        # sparse, larger than RAM
    vm = TernVm(tmp_path, kernel=img, append="T", memory=128, debug_exit=False,
                extra_args=["-initrd", str(initrd)])
    with vm:
        status = vm.wait_exit(timeout=30)
    assert status == 1
    assert "initrd" in vm.stderr_text() and "do not fit" in vm.stderr_text(), \
        vm.stderr_text()
