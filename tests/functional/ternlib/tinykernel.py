"""Tiny hand-assembled PVH kernels for tests that need a guest to do one
ring-0 thing (power off, reset, answer the power button) in a few
instructions. PVH enters in 32-bit protected mode, so 16-bit operands carry
the 0x66 prefix. This host emulates guest ring 0 at about 1 us/instruction:
keep loops to a handful of instructions."""
import struct

LOAD_ADDR = 0x200000

# jmp $      (runs until stopped)
SPIN = bytes.fromhex("ebfe")
# mov dx, 0x604; mov ax, SLP_TYP(5) << 10 | SLP_EN; out dx, ax; jmp $
POWEROFF = bytes.fromhex("66ba0406" "66b80034" "66ef" "ebfe")
# mov al, 0xfe; out 0x64, al; jmp $      (i8042 pulse reset line)
RESET = bytes.fromhex("b0fe" "e664" "ebfe")
# Sets PWRBTN_EN in PM1_EN, spins until PM1_STS.PWRBTN_STS, then POWEROFF.
POWER_BUTTON_POWEROFF = bytes.fromhex(
    "66ba0206"          # mov dx, 0x602        PM1_EN
    "66b80001"          # mov ax, 0x100        PWRBTN_EN
    "66ef"              # out dx, ax
    "66ba0006"          # mov dx, 0x600        PM1_STS
    "66ed"              # wait: in ax, dx
    "66a90001"          # test ax, 0x100       PWRBTN_STS
    "74f8"              # jz wait
) + POWEROFF


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


def write_kernel(directory, code, name="k.elf"):
    """Writes pvh_elf(code) to directory/name and returns the path."""
    path = directory / name
    path.write_bytes(pvh_elf(code))
    return path
