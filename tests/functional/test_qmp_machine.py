"""Machine-level QMP commands and events on tern running the guest kit:
query-status/-name/-kvm/-cpus-fast, stop/cont with STOP/RESUME and the
guest's ticks, -S then cont, system_reset (RESET), system_powerdown
(POWERDOWN), quit (SHUTDOWN, exit 0) and their human-monitor-command
spellings; reply structures are compared with QEMU 7.2 (microvm) running
the same guest."""
import time

import pytest

from ternlib.qemunone import qemu_none
from ternlib.qmp import QmpClient, QmpError

IDLE = "tg.workload=idle tg.hz=100 tg.print=5"


def ticks(vm):
    return [int(m.group(1)) for m in vm.serial.findall(r"^TG tick (\d+)$")]


def wait_ticks_past(vm, n, timeout=10):
    vm.serial.wait_for(r"^TG tick (\d+)$", timeout=timeout, where=lambda m: int(m[1]) > n)


def shape(value):
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


def test_query_replies_match_qemu(tern_vm, qemu_vm):
    ours = tern_vm(qmp=True, append=IDLE, smp=2, extra_args=["-name", "g"])
    theirs = qemu_vm(qmp=True, append=IDLE, smp=2, extra_args=["-name", "g"])
    ours.start()
    theirs.start()
    for vm in (ours, theirs):
        wait_ticks_past(vm, 0)
    for cmd in ("query-status", "query-name", "query-kvm", "query-cpus-fast",
                "query-version"):
        a = ours.qmp().execute(cmd)
        b = theirs.qmp().execute(cmd)
        if cmd == "query-cpus-fast":
            assert len(a) == len(b) == 2
            assert sorted(a[0]) == sorted(b[0]), (a, b)
            assert [c["cpu-index"] for c in a] == [0, 1]
        elif cmd == "query-kvm":
            assert a == b == {"enabled": True, "present": True}
        else:
            assert shape(a) == shape(b), (cmd, a, b)
    assert ours.qmp().execute("query-status") == {"status": "running",
                                                  "singlestep": False, "running": True}
    assert ours.qmp().execute("query-name") == {"name": "g"}


def test_stop_cont_events_and_ticks(tern_vm):
    vm = tern_vm(qmp=True, append=IDLE)
    vm.start()
    q = vm.qmp()
    wait_ticks_past(vm, 5)
    assert q.execute("stop") == {}
    ev = q.wait_event("STOP")
    assert sorted(ev) == ["event", "timestamp"]
    assert sorted(ev["timestamp"]) == ["microseconds", "seconds"]
    assert abs(ev["timestamp"]["seconds"] - time.time()) < 60
    assert q.execute("query-status") == {"status": "paused", "singlestep": False,
                                         "running": False}
    assert q.execute("stop") == {}                  # already stopped: no event
    time.sleep(0.3)
    frozen = ticks(vm)
    time.sleep(0.5)
    assert ticks(vm) == frozen, "the guest ticked while stopped"
    assert q.execute("cont") == {}
    q.wait_event("RESUME")
    wait_ticks_past(vm, max(frozen))
    assert q.execute("cont") == {}                  # already running: no event
    time.sleep(0.2)
    assert not [e for e in q.events if e["event"] in ("STOP", "RESUME")]


def test_paused_start_then_cont(tern_vm):
    vm = tern_vm(qmp=True, paused=True, append=IDLE)
    vm.start()
    q = vm.qmp()
    assert q.execute("query-status")["status"] == "prelaunch"
    time.sleep(0.5)
    assert ticks(vm) == [], "the guest ran before cont"
    r = q.execute("human-monitor-command", {"command-line": "info status"})
    assert r == "VM status: paused (prelaunch)\r\n"
    q.execute("cont")
    q.wait_event("RESUME")
    wait_ticks_past(vm, 5)
    assert q.execute("human-monitor-command",
                     {"command-line": "info status"}) == "VM status: running\r\n"


def test_hmp_stop_cont(tern_vm):
    vm = tern_vm(qmp=True, append=IDLE)
    vm.start()
    q = vm.qmp()
    wait_ticks_past(vm, 0)
    assert q.execute("human-monitor-command", {"command-line": "stop"}) == ""
    q.wait_event("STOP")
    assert q.execute("human-monitor-command",
                     {"command-line": "info status"}) == "VM status: paused\r\n"
    assert q.execute("human-monitor-command", {"command-line": "cont"}) == ""
    q.wait_event("RESUME")
    assert q.execute("human-monitor-command",
                     {"command-line": "nope"}) == "unknown command: 'nope'\r\n"
    assert q.execute("human-monitor-command", {"command-line": "info block"}) == ""


def test_system_reset_event_and_reboot(tern_vm):
    vm = tern_vm(qmp=True, append=IDLE)
    vm.start()
    q = vm.qmp()
    vm.serial.wait_for(r"^TG ready", timeout=10)
    wait_ticks_past(vm, 5)
    mark = vm.serial.mark()
    assert q.execute("system_reset") == {}
    ev = q.wait_event("RESET")
    assert ev["data"] == {"guest": False, "reason": "host-qmp-system-reset"}
    vm.serial.wait_for(r"^TG ready", timeout=10, start=mark)
    assert q.execute("query-status")["status"] == "running"


def test_system_powerdown_event(tern_vm):
    vm = tern_vm(qmp=True, append=IDLE)
    vm.start()
    q = vm.qmp()
    assert q.execute("system_powerdown") == {}
    ev = q.wait_event("POWERDOWN")
    assert "data" not in ev


@pytest.mark.parametrize("how", ["qmp", "hmp"])
def test_quit_replies_then_shutdown_event(tern_vm, how):
    vm = tern_vm(qmp=True, append=IDLE)
    vm.start()
    q = vm.qmp()
    wait_ticks_past(vm, 0)
    if how == "qmp":
        assert q.execute("quit") == {}
    else:
        assert q.execute("human-monitor-command", {"command-line": "quit"}) == ""
    ev = q.wait_event("SHUTDOWN")
    assert ev["data"] == {"guest": False, "reason": "host-qmp-quit"}
    with pytest.raises(EOFError):
        q.read_message(5)
    assert vm.wait_exit(10) == 0


def test_cont_after_internal_state_needs_nothing_special(tern_vm):
    """cont on a running VM and stop on a paused one are harmless no-ops."""
    vm = tern_vm(qmp=True, paused=True, append=IDLE)
    vm.start()
    q = vm.qmp()
    assert q.execute("stop") == {}
    assert q.execute("query-status")["status"] == "prelaunch"
    with pytest.raises(QmpError) as e:
        q.execute("cont", {"x": 1})
    assert e.value.error_class == "GenericError"


def event_shape(ev):
    return {"event": ev["event"], "keys": sorted(ev), "data": ev.get("data"),
            "timestamp": sorted(ev["timestamp"])}


@pytest.fixture
def qemu_none_qmp(tmp_path):
    """QEMU 7.2 -M none (microvm exits on reset without firmware, so events
    are compared against a machine that keeps running)."""
    with qemu_none() as sock:
        yield QmpClient(sock)


def test_events_match_qemu(tern_vm, qemu_none_qmp):
    """The same commands give the same events (name, members, data) as QEMU."""
    ours = tern_vm(qmp=True, append=IDLE)
    ours.start()
    wait_ticks_past(ours, 0)
    script = [("stop", "STOP"), ("cont", "RESUME"), ("system_reset", "RESET"),
              ("system_powerdown", "POWERDOWN"), ("quit", "SHUTDOWN")]
    for cmd, event in script:
        got = []
        for q in (ours.qmp(), qemu_none_qmp):
            assert q.execute(cmd) == {}
            got.append(event_shape(q.wait_event(event)))
        assert got[0] == got[1], (cmd, got)
    assert ours.wait_exit(10) == 0
