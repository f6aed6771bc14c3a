"""system_reset and the run state, compared with QEMU 7.2 (-M none -S): a
reset while the VM is not running leaves it in 'prelaunch' (so 'cont' starts
it afresh, also after a guest power-off with -no-shutdown); a reset while
running keeps it running. The tern guest is a tiny PVH kernel that spins."""
import pytest

from ternlib import TernVm
from ternlib.qemunone import qemu_none
from ternlib.qmp import QmpClient
from ternlib.tinykernel import POWEROFF, SPIN

pytestmark = pytest.mark.needs_kvm

# (command, event it must produce)
SCRIPT = [
    ("system_reset", "RESET"),      # prelaunch
    ("cont", "RESUME"),
    ("stop", "STOP"),
    ("system_reset", "RESET"),      # paused
    ("cont", "RESUME"),
    ("system_reset", "RESET"),      # running
    ("stop", "STOP"),
]


def run_script(q):
    """The status after each step (and at the start) and the HMP view."""
    states = [q.execute("query-status")["status"]]
    for cmd, event in SCRIPT:
        assert q.execute(cmd) == {}
        q.wait_event(event, timeout=10)
        states.append(q.execute("query-status")["status"])
        if cmd == "system_reset" and states[-1] != "running":
            states.append(q.execute("human-monitor-command",
                                    {"command-line": "info status"}))
    return states


def test_reset_states_match_qemu(tmp_path, tiny_kernel):
    vm = TernVm(tmp_path, kernel=tiny_kernel(SPIN), memory=64,
                debug_exit=False, qmp=True, paused=True)
    try:
        vm.start()
        ours = run_script(vm.qmp())
    finally:
        vm.kill()
    with qemu_none("-S") as sock:
        theirs = run_script(QmpClient(sock))
    assert ours == theirs
    assert ours[5:7] == ["prelaunch", "VM status: paused (prelaunch)\r\n"]


def test_reset_after_guest_poweroff_allows_cont(tmp_path, tiny_kernel):
    """-no-shutdown: power-off stops in 'shutdown'; reset -> 'prelaunch';
    cont boots the kernel again, which powers off again."""
    vm = TernVm(tmp_path, kernel=tiny_kernel(POWEROFF), memory=64,
                debug_exit=False, qmp=True, paused=True, extra_args=["-no-shutdown"])
    try:
        vm.start()
        q = vm.qmp()
        q.execute("cont")
        q.wait_event("SHUTDOWN", timeout=20)
        q.wait_event("STOP", timeout=10)
        assert q.execute("query-status")["status"] == "shutdown"
        q.execute("system_reset")
        q.wait_event("RESET", timeout=10)
        assert q.execute("query-status")["status"] == "prelaunch"
        q.execute("cont")
        ev = q.wait_event("SHUTDOWN", timeout=20)
        assert ev["data"]["reason"] == "guest-shutdown"
        q.wait_event("STOP", timeout=10)
        assert q.execute("query-status")["status"] == "shutdown"
    finally:
        vm.kill()
