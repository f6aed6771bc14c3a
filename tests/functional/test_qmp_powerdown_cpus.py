"""What the machine behind two QMP commands does: system_powerdown presses
the ACPI power button (a guest that enabled PWRBTN_EN sees PWRBTN_STS and
powers off by itself, as QEMU's guests do), and query-cpus-fast reports each
vCPU's host thread id (a thread of the tern process, distinct per vCPU)."""
import os
import time

import pytest

from ternlib import TernVm
from ternlib.tinykernel import POWER_BUTTON_POWEROFF, SPIN

pytestmark = pytest.mark.needs_kvm


def test_system_powerdown_presses_power_button(tmp_path, tiny_kernel):
    k = tiny_kernel(POWER_BUTTON_POWEROFF)
    vm = TernVm(tmp_path, kernel=k, memory=64, debug_exit=False, qmp=True, paused=True)
    try:
        vm.start()
        q = vm.qmp()
        q.execute("cont")
        q.wait_event("RESUME", timeout=10)
        time.sleep(0.5)
        assert vm.running(), "the guest powered off before the button was pressed"
        assert q.execute("system_powerdown") == {}
        q.wait_event("POWERDOWN", timeout=10)
        ev = q.wait_event("SHUTDOWN", timeout=20)
        assert ev["data"] == {"guest": True, "reason": "guest-shutdown"}
        assert vm.wait_exit(20) == 0
    finally:
        vm.kill()


def test_query_cpus_fast_thread_ids(tmp_path, tiny_kernel):
    k = tiny_kernel(SPIN)
    vm = TernVm(tmp_path, kernel=k, memory=64, smp=3, debug_exit=False, qmp=True)
    try:
        vm.start()
        cpus = vm.qmp().execute("query-cpus-fast")
        tids = [c["thread-id"] for c in cpus]
        assert len(tids) == 3
        assert all(t > 0 for t in tids), tids
        assert len(set(tids)) == 3, tids
        assert vm.proc.pid not in tids        # vCPU threads, not the main thread
        for t in tids:
            assert os.path.exists(f"/proc/{vm.proc.pid}/task/{t}"), t
    finally:
        vm.kill()
