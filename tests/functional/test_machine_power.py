"""Guest poweroff and reset on tern, with tiny hand-assembled PVH kernels
(ring-0 code, a few instructions): ACPI S5 ends tern with status 0 (or stops
it in 'shutdown' with -no-shutdown); an i8042 reset reboots the machine (the
kernel is loaded again, RAM outside it is kept) or ends tern with
-no-reboot."""
import subprocess
import time

import pytest

from ternlib import TernVm
from ternlib.tinykernel import POWEROFF, RESET, counting_reboots

pytestmark = pytest.mark.needs_kvm

def make_vm(tmp_path, k, **kw):
    return TernVm(tmp_path, kernel=k, memory=64, debug_exit=False, **kw)


def test_acpi_poweroff_exits_zero(tmp_path, tiny_kernel):
    with make_vm(tmp_path, tiny_kernel(POWEROFF)) as vm:
        assert vm.wait_exit(20) == 0


def test_no_shutdown_stops_instead(tmp_path, tiny_kernel):
    with make_vm(tmp_path, tiny_kernel(POWEROFF), qmp=True,
                 extra_args=["-no-shutdown"]) as vm:
        qmp = vm.qmp()
        deadline = time.monotonic() + 20
        while qmp.execute("query-status")["status"] != "shutdown":
            assert time.monotonic() < deadline, "never reached 'shutdown'"
            time.sleep(0.05)
        assert vm.running()


def test_reset_with_no_reboot_exits_zero(tmp_path, tiny_kernel):
    with make_vm(tmp_path, tiny_kernel(RESET), extra_args=["-no-reboot"]) as vm:
        assert vm.wait_exit(20) == 0


def test_reset_reboots_and_reloads_kernel(tmp_path, tiny_kernel):
    with make_vm(tmp_path, tiny_kernel(counting_reboots(3))) as vm:
        assert vm.wait_exit(30) == 0
        assert vm.serial.text() == "123"
