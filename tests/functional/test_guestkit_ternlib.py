"""The shared test helpers in ternlib behave as the other tests rely on:
serial waits fail early and clearly, the QMP client keeps events and error
replies, and VM launchers build the documented command lines and always
clean up."""
import os
import threading
import time

import pytest

from ternlib import guestkit, paths
from ternlib.qmp import QmpClient, QmpError, QmpTimeout
from ternlib.serial import GuestFailure, SerialLog, SerialTimeout
from ternlib.vm import QemuVm, TernVm, VmError, debug_exit_status


def test_serial_wait_for_match_where_and_start(tmp_path):
    log = tmp_path / "s.log"
    log.write_text("noise\nTG tick 10\nTG tick 20\n")
    s = SerialLog(log)
    assert s.wait_for(r"^TG tick (\d+)$", timeout=1)[1] == "10"
    assert s.wait_for(r"^TG tick (\d+)$", timeout=1, where=lambda m: int(m[1]) > 10)[1] == "20"
    mark = s.mark()

    def later():
        time.sleep(0.2)
        with open(log, "a") as f:
            f.write("TG tick 30\n")
    threading.Thread(target=later).start()
    assert s.wait_for(r"^TG tick (\d+)$", timeout=5, start=mark)[1] == "30"
    assert s.tg_lines() == ["TG tick 10", "TG tick 20", "TG tick 30"]


def test_serial_ignores_a_line_still_being_written(tmp_path):
    log = tmp_path / "s.log"
    log.write_text("TG ready\nTG FAIL dirty: tg.me")
    s = SerialLog(log)
    with pytest.raises(SerialTimeout):
        s.wait_for(r"^TG FAIL (.*)$", timeout=0.2, allow_fail=True)
    assert s.tg_lines() == ["TG ready"]
    s.assert_no_fail()
    with open(log, "a") as f:
        f.write("m=1G does not fit\n")
    assert s.wait_for(r"^TG FAIL (.*)$", timeout=1, allow_fail=True)[1] == \
        "dirty: tg.mem=1G does not fit"


def test_serial_timeout_shows_tail(tmp_path):
    log = tmp_path / "s.log"
    log.write_text("TG ready workload=idle\n")
    with pytest.raises(SerialTimeout, match=r"(?s)not seen within.*TG ready workload=idle"):
        SerialLog(log).wait_for(r"^TG never", timeout=0.2)


def test_serial_guest_failure_stops_wait(tmp_path):
    log = tmp_path / "s.log"
    log.write_text("TG FAIL dirty page=3 want=2 got=1\n")
    s = SerialLog(log)
    t0 = time.monotonic()
    with pytest.raises(GuestFailure, match="TG FAIL dirty page=3"):
        s.wait_for(r"^TG dirty pass=", timeout=5)
    assert time.monotonic() - t0 < 1
    assert s.wait_for(r"^TG FAIL (.*)", timeout=1, allow_fail=True)[1].startswith("dirty")
    with pytest.raises(GuestFailure):
        s.assert_no_fail()


def test_qmp_connect_times_out_on_missing_socket(tmp_path):
    t0 = time.monotonic()
    with pytest.raises(QmpTimeout):
        QmpClient(tmp_path / "absent.qmp", connect_timeout=0.3)
    assert time.monotonic() - t0 < 3


def test_qmp_errors_events_and_raw_input(qemu_vm):
    vm = qemu_vm(kernel=False, qmp=True, paused=True)
    vm.start()
    qmp = vm.qmp()
    assert qmp.greeting["QMP"]["version"]["qemu"]["major"] == 7
    reply = qmp.cmd("no-such-command")
    assert reply["error"]["class"] == "CommandNotFound"
    with pytest.raises(QmpError) as e:
        qmp.execute("no-such-command")
    assert e.value.error_class == "CommandNotFound"
    qmp.send_raw(b'{"execute": 1}\n')
    assert qmp.read_reply()["error"]["class"] == "GenericError"
    # the RESUME event arrives around the reply to cont and must be kept
    qmp.execute("cont")
    assert qmp.execute("query-status")["status"] == "running"
    assert qmp.wait_event("RESUME", timeout=5)["event"] == "RESUME"
    with pytest.raises(QmpTimeout):
        qmp.wait_event("STOP", timeout=0.2)
    qmp.execute("quit")
    assert vm.wait_exit(5) == 0


def test_vm_kill_reaps_and_cleans_up(qemu_vm):
    vm = qemu_vm(append="tg.workload=idle", qmp=True)
    vm.start()
    vm.serial.wait_for(r"^TG ready", timeout=10)
    sockdir = vm.sockdir
    assert sockdir.exists()
    with pytest.raises(VmError, match="still running"):
        vm.wait_exit(0.2)
    vm.kill()
    assert vm.proc.returncode is not None
    assert not sockdir.exists()


def test_serial_wait_notices_vm_exit(qemu_vm):
    vm = qemu_vm(append="tg.workload=idle tg.ticks=5")
    vm.start()
    with pytest.raises(SerialTimeout, match="VM exited"):
        vm.serial.wait_for(r"^TG never", timeout=10)


def test_command_lines(tmp_path):
    q = QemuVm(tmp_path, kernel="/k.elf", append="tg.workload=idle", smp=2,
               memory=64, qmp=True, paused=True, incoming="defer")
    t = TernVm(tmp_path, kernel="/k.elf", append="tg.workload=idle", binary="/tern")
    try:
        qa, ta = q.args(), t.args()
        assert qa[qa.index("-M") + 1] == "microvm"
        assert qa[qa.index("-m") + 1] == "64M"
        assert qa[qa.index("-smp") + 1] == "2"
        assert qa[qa.index("-kernel") + 1] == "/k.elf"
        assert qa[qa.index("-append") + 1] == "tg.workload=idle"
        assert f"file:{q.serial_path}" in qa
        assert "isa-debug-exit,iobase=0xf4,iosize=0x04" in qa
        assert f"unix:{q.qmp_path},server=on,wait=off" in qa
        assert "-S" in qa and qa[qa.index("-incoming") + 1] == "defer"
        assert "-no-reboot" in qa
        assert len(str(q.qmp_path)) < 100
        assert ta[:5] == ["/tern", "-M", "virt", "-accel", "kvm"]
        assert "-cpu" not in ta and "-nodefaults" not in ta
        assert ta[ta.index("-append") + 1] == "tg.workload=idle"
    finally:
        q.kill()
        t.kill()
    assert debug_exit_status(0) == 1 and debug_exit_status(3) == 7


def test_paths_follow_tern_build(monkeypatch, tmp_path):
    monkeypatch.setenv("TERN_BUILD", str(tmp_path))
    assert paths.build_dir() == tmp_path.resolve()
    assert paths.tern_binary() == tmp_path.resolve() / "tern"
    assert paths.guest_kit() == tmp_path.resolve() / "tests/guest/tguest.elf"
    monkeypatch.delenv("TERN_BUILD")
    assert paths.build_dir() == (paths.REPO / "build-san").resolve()
    assert paths.has_hardware_kvm() == (os.path.exists("/sys/module/kvm_intel")
                                        or os.path.exists("/sys/module/kvm_amd"))


def test_guestkit_cmdline_and_output_parsing(tmp_path):
    assert guestkit.cmdline("dirty", mem="16M", rate=0, keep=True, corrupt=None,
                            walk=False) == "tg.workload=dirty tg.mem=16M tg.rate=0 tg.keep=1"
    log = tmp_path / "s.log"
    log.write_text("TG ready workload=dirty cpus=2 hz=100\n"
                   "TG dirty pass=3 writes=10 pages=4\nTG dirty pass=7 writes=20 pages=4\n")
    s = SerialLog(log)
    assert guestkit.wait_ready(s, timeout=1) == ("dirty", 2, 100)
    assert guestkit.last_dirty_pass(s) == 7
    assert guestkit.wait_dirty_passes(s, 5, timeout=1) == 7
    with pytest.raises(SerialTimeout):
        guestkit.wait_dirty_passes(s, 8, timeout=0.2)
    assert guestkit.done_rc(s) is None and guestkit.fail_lines(s) == []
    with open(log, "a") as f:
        f.write("TG FAIL dirty page=1 want=2 got=1\nTG done rc=1\n")
    assert guestkit.done_rc(s) == 1
    assert guestkit.fail_lines(s) == ["TG FAIL dirty page=1 want=2 got=1"]
