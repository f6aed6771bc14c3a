"""system_reset and the run state, compared with QEMU 7.2 (-M none -S): a
reset while the VM is not running leaves it in 'prelaunch' (so 'cont' starts
it afresh, also after a guest power-off with -no-shutdown); a reset while
running keeps it running. The tern guest is a tiny PVH kernel that spins."""
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from ternlib import TernVm, paths
from ternlib.qmp import QmpClient
from ternlib.tinykernel import POWEROFF, write_kernel

pytestmark = pytest.mark.needs_kvm

SPIN = bytes.fromhex("ebfe")      # jmp $

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


@pytest.fixture
def qemu_none_paused():
    d = Path(tempfile.mkdtemp(prefix="qrs-", dir="/tmp"))
    sock = d / "q.sock"
    proc = subprocess.Popen([paths.qemu_binary(), "-M", "none", "-S", "-display", "none",
                             "-nodefaults", "-no-user-config",
                             "-qmp", f"unix:{sock},server=on,wait=off"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        yield QmpClient(sock)
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def built():
    if not paths.tern_binary().exists():
        pytest.skip(f"tern not built: {paths.tern_binary()}")


def test_reset_states_match_qemu(tmp_path, built, qemu_none_paused):
    vm = TernVm(tmp_path, kernel=write_kernel(tmp_path, SPIN), memory=64,
                debug_exit=False, qmp=True, paused=True)
    try:
        vm.start()
        ours = run_script(vm.qmp())
    finally:
        vm.kill()
    theirs = run_script(qemu_none_paused)
    assert ours == theirs
    assert ours[5:7] == ["prelaunch", "VM status: paused (prelaunch)\r\n"]


def test_reset_after_guest_poweroff_allows_cont(tmp_path, built):
    """-no-shutdown: power-off stops in 'shutdown'; reset -> 'prelaunch';
    cont boots the kernel again, which powers off again."""
    vm = TernVm(tmp_path, kernel=write_kernel(tmp_path, POWEROFF), memory=64,
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
