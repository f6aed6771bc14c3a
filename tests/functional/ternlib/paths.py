"""Where things are: the repository, the build tree under test (env TERN_BUILD,
default <repo>/build-san), the binaries in it, the reference QEMU, and what kind
of KVM this host has."""
import os
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def build_dir():
    """The build tree the tests exercise: $TERN_BUILD or <repo>/build-san."""
    return Path(os.environ.get("TERN_BUILD") or REPO / "build-san").resolve()


def tern_binary():
    return build_dir() / "tern"


def tern_img():
    return build_dir() / "tools" / "tern-img"


def tern_stream():
    return build_dir() / "tools" / "tern-stream"


def guest_kit():
    """The ring-3 test guest (PVH ELF) built by tests/guest/meson.build."""
    return build_dir() / "tests" / "guest" / "tguest.elf"


def qemu_binary():
    return shutil.which("qemu-system-x86_64") or "/usr/bin/qemu-system-x86_64"


def qemu_img():
    return shutil.which("qemu-img") or "/usr/bin/qemu-img"


def has_kvm():
    """/dev/kvm exists and we may open it read-write."""
    return os.access("/dev/kvm", os.R_OK | os.W_OK)


def has_hardware_kvm():
    """True when KVM is the hardware-assisted kind (kvm_intel or kvm_amd).

    On the PVM-style nested host guest ring 0 is emulated at ~1 us/insn, so a
    Linux kernel cannot boot in test time; Linux-boot tests skip without this."""
    return (Path("/sys/module/kvm_intel").exists()
            or Path("/sys/module/kvm_amd").exists())
