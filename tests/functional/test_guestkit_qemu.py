"""The guest kit (tests/guest) under the reference peer, QEMU 7.2 microvm with
KVM: each workload behaves as tests/guest/README.md says, failures are
reported on COM1 and through the debug-exit status."""
import re
import time

import pytest

from ternlib import debug_exit_status, guestkit
from ternlib.migration import wait_status


def boot(qemu_vm, append, **kw):
    vm = qemu_vm(append=append, **kw)
    vm.start()
    return vm


def tick_numbers(serial):
    return [int(m.group(1)) for m in serial.findall(r"^TG tick (\d+)$")]


def test_idle_ticks_advance(qemu_vm):
    vm = boot(qemu_vm, "tg.workload=idle tg.print=10")
    vm.serial.wait_for(r"^TG ready workload=idle cpus=1 hz=100$", timeout=10)
    t0 = time.monotonic()
    vm.serial.wait_for(r"^TG tick (\d+)$", timeout=10, where=lambda m: int(m[1]) >= 40)
    elapsed = time.monotonic() - t0
    ticks = tick_numbers(vm.serial)
    assert ticks[:4] == [10, 20, 30, 40]
    assert elapsed > 0.2, f"40 ticks at 100 Hz took only {elapsed:.3f}s"
    assert vm.running()


def test_idle_stops_after_ticks_with_status(qemu_vm):
    vm = boot(qemu_vm, "tg.workload=idle tg.hz=200 tg.print=20 tg.ticks=60")
    assert vm.wait_exit(10) == debug_exit_status(0) == 1
    assert vm.serial.tg_lines()[-1] == "TG done rc=0"
    assert tick_numbers(vm.serial) == [20, 40, 60]


def test_tsc_rate_is_measured(qemu_vm):
    vm = boot(qemu_vm, "tg.workload=idle tg.tsc=1 tg.ticks=20 tg.print=10")
    assert vm.wait_exit(10) == debug_exit_status(0)
    hz = int(vm.serial.wait_for(r"^TG tsc hz=(\d+)$", timeout=1)[1])
    ns = int(vm.serial.wait_for(r"^TG tsc calibrate_ns=(\d+)$", timeout=1)[1])
    assert 500e6 < hz < 10e9
    # calibration spans 10 ticks at 100 Hz, plus the wait for the first edge
    assert 90e6 <= ns < 2e9


def test_seconds_deadline_stops_any_workload(qemu_vm):
    vm = boot(qemu_vm, "tg.workload=idle tg.seconds=1")
    t0 = time.monotonic()
    assert vm.wait_exit(10) == debug_exit_status(0)
    assert time.monotonic() - t0 >= 0.9
    assert "TG done rc=0" in vm.serial.tg_lines()


def test_smp_every_cpu_checks_in(qemu_vm):
    vm = boot(qemu_vm, "tg.workload=smp", smp=2)
    assert vm.wait_exit(10) == debug_exit_status(0)
    lines = vm.serial.tg_lines()
    online = sorted(int(m.group(1)) for m in vm.serial.findall(r"^TG cpu (\d+) online"))
    assert online == [0, 1]
    assert "TG ready workload=smp cpus=2 hz=100" in lines
    assert "TG smp all=2" in lines
    assert lines[-1] == "TG done rc=0"


def test_smp_keep_runs_until_deadline(qemu_vm):
    vm = boot(qemu_vm, "tg.workload=smp tg.keep=1 tg.print=20 tg.seconds=1", smp=2)
    vm.serial.wait_for(r"^TG smp all=2$", timeout=10)
    m = vm.serial.wait_for(r"^TG smp alive ticks=\d+ min_spins=(\d+)$", timeout=10)
    assert int(m.group(1)) > 0
    assert vm.wait_exit(10) == debug_exit_status(0)


def test_smp_missing_cpu_fails(qemu_vm):
    vm = boot(qemu_vm, "tg.workload=smp tg.cpus=2", smp=1)
    m = vm.serial.wait_for(r"^TG FAIL smp online=(\d+) want=(\d+)", timeout=10,
                           allow_fail=True)
    assert m.groups() == ("1", "2")
    assert vm.wait_exit(10) == debug_exit_status(1) == 3


def test_dirty_runs_verified_passes(qemu_vm):
    vm = boot(qemu_vm, "tg.workload=dirty tg.mem=16M tg.rate=0 tg.report=50")
    vm.serial.wait_for(r"^TG dirty start pages=4096 ", timeout=10)
    m = vm.serial.wait_for(r"^TG dirty pass=([5-9]|\d\d+) writes=(\d+)", timeout=10)
    assert int(m.group(2)) > 0
    vm.serial.assert_no_fail()
    assert vm.running()


@pytest.mark.parametrize("pattern", ["seq", "fill", "zero"])
@pytest.mark.parametrize("walk", ["seq", "random"])
def test_dirty_patterns_pass(qemu_vm, pattern, walk):
    vm = boot(qemu_vm, f"tg.workload=dirty tg.mem=4M tg.rate=0 tg.passes=8 "
                       f"tg.pattern={pattern} tg.walk={walk}")
    assert vm.wait_exit(10) == debug_exit_status(0)
    vm.serial.assert_no_fail()
    assert re.search(rf"pattern={pattern} walk={walk}", vm.serial.text())
    assert vm.serial.findall(r"^TG dirty pass=8 ")


def test_dirty_with_two_writers(qemu_vm):
    vm = boot(qemu_vm, "tg.workload=dirty tg.writers=2 tg.mem=8M tg.rate=0 "
                       "tg.walk=random tg.passes=10", smp=2)
    assert vm.wait_exit(10) == debug_exit_status(0)
    vm.serial.assert_no_fail()
    assert vm.serial.findall(r"^TG dirty start .*writers=2$")
    # pass= is the least any writer has done: at least 10 at exit
    passes = [int(m[1]) for m in vm.serial.findall(r"^TG dirty pass=(\d+) ")]
    assert passes and passes[-1] >= 10


def test_dirty_rate_limits_writes(qemu_vm):
    # 256 pages/s for one second: about 256 writes, certainly not thousands
    vm = boot(qemu_vm, "tg.workload=dirty tg.mem=4M tg.rate=1M tg.report=100 "
                       "tg.seconds=1")
    assert vm.wait_exit(10) == debug_exit_status(0)
    writes = [int(m.group(1)) for m in vm.serial.findall(r"writes=(\d+)")]
    assert writes and 100 <= writes[-1] <= 400, writes


def test_dirty_survives_pause_and_resume(qemu_vm):
    vm = boot(qemu_vm, "tg.workload=dirty tg.mem=8M tg.rate=0 tg.report=50", qmp=True)
    vm.serial.wait_for(r"^TG dirty pass=[1-9]", timeout=10)
    qmp = vm.qmp()
    qmp.execute("stop")
    qmp.wait_event("STOP", timeout=5)
    assert qmp.execute("query-status")["status"] == "paused"
    time.sleep(0.2)
    mark = vm.serial.mark()
    qmp.execute("cont")
    qmp.wait_event("RESUME", timeout=5)
    vm.serial.wait_for(r"^TG dirty pass=\d+", timeout=10, start=mark)
    vm.serial.assert_no_fail()


def test_dirty_corruption_is_caught(qemu_vm):
    vm = boot(qemu_vm, "tg.workload=dirty tg.mem=4M tg.rate=0 tg.corrupt=3")
    c = vm.serial.wait_for(r"^TG dirty corrupt page=(\d+) gen=(\d+)->(\d+)$",
                           timeout=10, allow_fail=True)
    f = vm.serial.wait_for(r"^TG FAIL dirty page=(\d+) .*want=(\d+) got=(\d+)",
                           timeout=10, allow_fail=True)
    assert f.group(1) == c.group(1)
    assert (f.group(2), f.group(3)) == (c.group(2), c.group(3))
    assert vm.wait_exit(10) == debug_exit_status(1)


def test_ioapic_routes_com1_interrupt(qemu_vm):
    vm = boot(qemu_vm, "tg.workload=irq")
    m = vm.serial.wait_for(r"^TG irq gsi=4 vector=0x34 count=(\d+)$", timeout=10)
    assert int(m.group(1)) >= 1
    assert vm.wait_exit(10) == debug_exit_status(0)


def test_ioapic_wrong_pin_sees_no_interrupt(qemu_vm):
    # nothing is wired to GSI 5: the check must be able to fail
    vm = boot(qemu_vm, "tg.workload=irq tg.gsi=5")
    vm.serial.wait_for(r"^TG FAIL irq: no interrupt from gsi 5", timeout=10,
                       allow_fail=True)
    assert vm.wait_exit(10) == debug_exit_status(1)


SELFTEST_ARGS = "tg.workload=selftest tg.st.num=0x1fK tg.st.flag tg.st.str=a=b"


def test_selftest_of_the_kit_library(qemu_vm):
    vm = boot(qemu_vm, SELFTEST_ARGS)
    m = vm.serial.wait_for(r"^TG selftest checks=(\d+)$", timeout=10)
    assert int(m[1]) >= 15
    assert vm.wait_exit(10) == debug_exit_status(0)


def test_selftest_check_can_fail(qemu_vm):
    vm = boot(qemu_vm, SELFTEST_ARGS.replace(" tg.st.flag", ""))
    vm.serial.wait_for(r'^TG FAIL selftest: tg_arg_present\("tg.st.flag"\)', timeout=10,
                       allow_fail=True)
    assert vm.wait_exit(10) == debug_exit_status(1)


def test_alloc_exhaustion_fails_clearly(qemu_vm):
    vm = boot(qemu_vm, SELFTEST_ARGS + " tg.st.oom=1")
    vm.serial.wait_for(r"^TG FAIL tg_alloc: out of memory \(2097152 bytes wanted, \d+ left\)$",
                       timeout=10, allow_fail=True)
    assert vm.wait_exit(10) == debug_exit_status(1)


@pytest.mark.parametrize("kind,vector", [("pf", 14), ("ud", 6), ("gp", 13)])
def test_exception_is_reported(qemu_vm, kind, vector):
    vm = boot(qemu_vm, f"tg.workload=fault tg.fault={kind}")
    m = vm.serial.wait_for(r"^TG FAIL exception vector=(\d+) .*cs=0x2b .*cr2=(0x[0-9a-f]+) apic=0$",
                           timeout=10, allow_fail=True)
    assert int(m.group(1)) == vector
    if kind == "pf":
        assert m.group(2) == "0x4000000010"   # 256 GiB: above the identity map
    assert vm.wait_exit(10) == debug_exit_status(2) == 5


@pytest.mark.parametrize("append,message", [
    ("tg.workload=nope", "unknown workload tg.workload=nope"),
    ("tg.hz=5", "bad argument tg.hz=5"),
    ("tg.workload=dirty tg.mem=12Q", "bad argument tg.mem=12Q"),
    ("tg.workload=dirty tg.mem=1G", "dirty: tg.mem=1073741824 does not fit"),
    ("tg.workload=dirty tg.pattern=plaid", "bad argument tg.pattern=plaid"),
    ("tg.workload=fault tg.fault=xx", "bad argument tg.fault=xx"),
    ("tg.workload=dirty tg.writers=2", "bad argument tg.writers=2"),
    ("tg.workload=dirty tg.walk=sideways", "bad argument tg.walk=sideways"),
])
def test_bad_arguments_fail_clearly(qemu_vm, append, message):
    vm = boot(qemu_vm, append, memory=128)
    m = vm.serial.wait_for(r"^TG FAIL (.*)$", timeout=10, allow_fail=True)
    assert m.group(1).startswith(message)
    assert vm.wait_exit(10) == debug_exit_status(1)


@pytest.mark.parametrize("smp", [1, 2])
def test_dirty_survives_qemu_live_migration(qemu_vm, smp):
    """The kit as a migration checker: QEMU -> QEMU with the dirty workload
    running (on every vCPU) must continue on the destination with every page
    verified."""
    append = guestkit.cmdline("dirty", mem="16M", rate="2M", report=50, writers=smp)
    src = boot(qemu_vm, append, qmp=True, name="src", smp=smp)
    assert guestkit.wait_ready(src.serial) == ("dirty", smp, 100)
    guestkit.wait_dirty_passes(src.serial, 1)
    uri = f"unix:{src.sock_path('mig')}"
    dst = boot(qemu_vm, append, qmp=True, name="dst", incoming=uri, smp=smp)
    dst.qmp()                                   # listening once QMP answers
    src.qmp().execute("migrate", uri=uri)
    dst.qmp().wait_event("RESUME", timeout=30)
    # The destination may run before the source has taken in its end.
    assert wait_status(src, ("completed", "failed"), 30)["status"] == "completed"
    last = guestkit.last_dirty_pass(src.serial)
    guestkit.wait_dirty_passes(dst.serial, last + 5, timeout=15)
    dst.serial.assert_no_fail()
    assert not dst.serial.findall(r"^TG ready"), "destination rebooted the guest"
