"""tern boots the guest kit: LAPIC timer ticks, SMP bring-up, the dirty
workload, debug-exit codes as tern's exit status, -S, SIGTERM, and the same
deterministic TG lines as QEMU 7.2 microvm running the same kit."""
import re
import signal
import time

import pytest

from ternlib import debug_exit_status


def tick_numbers(serial):
    return [int(m.group(1)) for m in serial.findall(r"^TG tick (\d+)$")]


def test_idle_ticks_from_lapic_timer(tern_vm):
    vm = tern_vm(append="tg.workload=idle tg.print=10").start()
    vm.serial.wait_for(r"^TG ready workload=idle cpus=1 hz=100$", timeout=10)
    t0 = time.monotonic()
    vm.serial.wait_for(r"^TG tick 40$", timeout=10)
    elapsed = time.monotonic() - t0
    assert tick_numbers(vm.serial)[:4] == [10, 20, 30, 40]
    assert elapsed > 0.2, f"40 ticks at 100 Hz took only {elapsed:.3f}s"
    assert vm.running()


def test_console_lines_arrive_while_guest_only_halts(tern_vm):
    """COM1's transmit register is a KVM coalesced port: the bytes wait in
    KVM's ring until something replays it. After 'TG ready' the idle guest
    makes no exit to userspace at all (its timer and halts stay in the
    kernel), so only tern's replay timer can deliver its lines; without it
    they would wait for the ring to fill (~170 bytes, ~15 s of ticks)."""
    vm = tern_vm(append="tg.workload=idle").start()
    vm.serial.wait_for(r"^TG ready workload=idle cpus=1 hz=100$", timeout=5)
    t0 = time.monotonic()
    vm.serial.wait_for(r"^TG tick 100$", timeout=5)
    vm.serial.wait_for(r"^TG tick 200$", timeout=5)
    # Two lines one second apart in guest time, each delivered promptly.
    assert time.monotonic() - t0 < 4


def test_idle_ticks_then_exit_status(tern_vm):
    vm = tern_vm(append="tg.workload=idle tg.hz=200 tg.print=20 tg.ticks=60").start()
    assert vm.wait_exit(10) == debug_exit_status(0) == 1
    assert tick_numbers(vm.serial) == [20, 40, 60]
    assert vm.serial.tg_lines()[-1] == "TG done rc=0"


@pytest.mark.parametrize("cpus", [2, 4])
def test_smp_every_ap_checks_in(tern_vm, cpus):
    vm = tern_vm(append="tg.workload=smp", smp=cpus).start()
    assert vm.wait_exit(15) == debug_exit_status(0)
    online = sorted(int(m.group(1)) for m in vm.serial.findall(r"^TG cpu (\d+) online"))
    apics = sorted(int(m.group(1)) for m in vm.serial.findall(r"^TG cpu \d+ online apic=(\d+)"))
    assert online == list(range(cpus))
    assert apics == list(range(cpus))
    lines = vm.serial.tg_lines()
    assert f"TG ready workload=smp cpus={cpus} hz=100" in lines
    assert f"TG smp all={cpus}" in lines
    assert lines[-1] == "TG done rc=0"


def test_dirty_runs_and_verifies(tern_vm):
    vm = tern_vm(append="tg.workload=dirty tg.seconds=1").start()
    assert vm.wait_exit(15) == debug_exit_status(0)
    vm.serial.assert_no_fail()
    assert vm.serial.findall(r"^TG dirty start pages=\d+")
    assert vm.serial.findall(r"^TG dirty pass=\d+ writes=\d+ pages=\d+$")
    assert vm.serial.tg_lines()[-1] == "TG done rc=0"


@pytest.mark.parametrize("append,code", [
    ("tg.workload=idle tg.hz=5", 1),        # bad argument: TG FAIL, rc 1
    ("tg.workload=fault", 2),               # CPU exception: rc 2
])
def test_debug_exit_code_is_exit_status(tern_vm, append, code):
    vm = tern_vm(append=append).start()
    assert vm.wait_exit(15) == debug_exit_status(code)
    assert f"TG done rc={code}" in vm.serial.tg_lines()


def test_sigterm_exits_zero(tern_vm):
    vm = tern_vm(append="tg.workload=idle").start()
    vm.serial.wait_for(r"^TG ready", timeout=10)
    vm.proc.send_signal(signal.SIGTERM)
    assert vm.wait_exit(10) == 0


def test_sigint_exits_zero(tern_vm):
    vm = tern_vm(append="tg.workload=idle").start()
    vm.serial.wait_for(r"^TG ready", timeout=10)
    vm.proc.send_signal(signal.SIGINT)
    assert vm.wait_exit(10) == 0


def test_start_paused_runs_nothing_until_resumed(tern_vm):
    """-S: no guest output until resumed. Resumed through the documented test
    hook (TERN_TEST_SIGUSR2_CONT=1: SIGUSR2 acts as QMP 'cont')."""
    vm = tern_vm(append="tg.workload=idle", paused=True,
                 env={"TERN_TEST_SIGUSR2_CONT": "1"}).start()
    time.sleep(1.0)
    assert vm.running()
    assert vm.serial.text() == "", "guest ran while started with -S"
    vm.proc.send_signal(signal.SIGUSR2)
    vm.serial.wait_for(r"^TG ready workload=idle", timeout=10)


def test_no_debug_exit_device_keeps_running_after_done(tern_vm):
    vm = tern_vm(append="tg.workload=idle tg.ticks=20 tg.print=10", debug_exit=False)
    vm.start()
    vm.serial.wait_for(r"^TG done rc=0$", timeout=10)
    time.sleep(0.3)
    assert vm.running()


def deterministic_tg(serial):
    """The TG facts that do not depend on timing or AP check-in order."""
    facts = set()
    for line in serial.tg_lines():
        m = re.match(r"^TG cpu \d+ online apic=(\d+)$", line)
        if m:
            facts.add(f"apic {m.group(1)} online")
        elif re.match(r"^TG (ready .*|smp all=\d+|done rc=\d+|dirty start .*|FAIL .*)$", line):
            facts.add(line)
    return facts


@pytest.mark.parametrize("append,smp", [
    ("tg.workload=smp", 2),
    ("tg.workload=smp", 4),
    ("tg.workload=idle tg.ticks=30", 1),
    ("tg.workload=dirty tg.seconds=1", 1),
    ("tg.workload=fault", 1),
])
def test_same_tg_lines_as_qemu(tern_vm, qemu_vm, append, smp):
    tern = tern_vm(append=append, smp=smp).start()
    qemu = qemu_vm(append=append, smp=smp).start()
    tern_status = tern.wait_exit(20)
    qemu_status = qemu.wait_exit(20)
    assert tern_status == qemu_status
    t, q = deterministic_tg(tern.serial), deterministic_tg(qemu.serial)
    assert t, "tern printed no TG lines"
    assert t == q, f"tern only: {sorted(t - q)}; QEMU only: {sorted(q - t)}"


def test_start_paused_then_qmp_cont(tern_vm):
    vm = tern_vm(append="tg.workload=idle", paused=True, qmp=True).start()
    qmp = vm.qmp()
    assert qmp.execute("query-status")["status"] == "prelaunch"
    time.sleep(0.5)
    assert vm.serial.text() == ""
    qmp.execute("cont")
    vm.serial.wait_for(r"^TG ready workload=idle", timeout=10)
    assert qmp.execute("query-status")["status"] == "running"


def test_ram_above_4g(tern_vm):
    """-m 5G: RAM is split around the PCI hole; the kit boots and its dirty
    workload verifies its pages."""
    vm = tern_vm(append="tg.workload=dirty tg.seconds=1", memory="5G", smp=2).start()
    assert vm.wait_exit(20) == debug_exit_status(0)
    vm.serial.assert_no_fail()
