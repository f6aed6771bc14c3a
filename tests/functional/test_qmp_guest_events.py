"""Events a guest causes by itself, as QEMU 7.2 reports them: an ACPI S5
power-off gives SHUTDOWN {"guest": true, "reason": "guest-shutdown"} (and,
with -no-shutdown, STOP and status 'shutdown', where cont is refused); a
keyboard-controller reset gives RESET {"guest": true, "reason": "guest-reset"}.
The guests are tiny hand-assembled PVH kernels (ring-0 code, a few
instructions), built by ternlib.tinykernel."""

import pytest

from ternlib import TernVm
from ternlib.qmp import QmpError
from ternlib.tinykernel import POWEROFF, counting_reboots

pytestmark = pytest.mark.needs_kvm

def started_paused(tmp_path, k, extra=()):
    """Start with -S so the QMP client is connected before the guest runs."""
    vm = TernVm(tmp_path, kernel=k, memory=64, debug_exit=False, qmp=True, paused=True,
                extra_args=list(extra))
    vm.start()
    q = vm.qmp()
    q.execute("cont")
    return vm, q


def test_guest_poweroff_event(tmp_path, tiny_kernel):
    vm, q = started_paused(tmp_path, tiny_kernel(POWEROFF))
    try:
        ev = q.wait_event("SHUTDOWN", timeout=20)
        assert ev["data"] == {"guest": True, "reason": "guest-shutdown"}
        assert vm.wait_exit(20) == 0
    finally:
        vm.kill()


def test_guest_poweroff_with_no_shutdown(tmp_path, tiny_kernel):
    vm, q = started_paused(tmp_path, tiny_kernel(POWEROFF), ["-no-shutdown"])
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


def test_guest_reset_event(tmp_path, tiny_kernel):
    vm, q = started_paused(tmp_path, tiny_kernel(counting_reboots(2)))
    try:
        ev = q.wait_event("RESET", timeout=20)
        assert ev["data"] == {"guest": True, "reason": "guest-reset"}
        ev = q.wait_event("SHUTDOWN", timeout=20)
        assert ev["data"]["reason"] == "guest-shutdown"
        assert vm.wait_exit(20) == 0
        assert vm.serial.text() == "12"
    finally:
        vm.kill()
