"""Helpers shared by tern's functional tests (stdlib only, /usr/bin/python3).

paths  - where the build, the binaries and the guest kit are
qmp    - a QMP client over a unix socket
serial - a reader over a growing serial log (the guest kit's `TG ...` lines)
vm     - launchers for tern and for the reference peer QEMU 7.2
guestkit - the guest kit's command line and output formats
bitmaps  - a persistent bitmap's extents through tern-img and through QEMU
writelog - images rebuilt as a power cut leaves them (tests/crash/write-log.c)
"""
from .paths import (REPO, build_dir, tern_binary, tern_img, tern_stream, guest_kit,
                    qemu_binary, qemu_img, has_kvm, has_hardware_kvm)
from .qmp import QmpClient, QmpError, QmpTimeout
from .serial import SerialLog, SerialTimeout, GuestFailure
from .vm import Vm, QemuVm, TernVm, VmError, debug_exit_status
from . import guestkit

__all__ = [
    "REPO", "build_dir", "tern_binary", "tern_img", "tern_stream", "guest_kit",
    "qemu_binary",
    "qemu_img", "has_kvm", "has_hardware_kvm",
    "QmpClient", "QmpError", "QmpTimeout",
    "SerialLog", "SerialTimeout", "GuestFailure",
    "Vm", "QemuVm", "TernVm", "VmError", "debug_exit_status", "guestkit",
]
