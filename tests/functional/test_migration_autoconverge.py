"""Auto-converge: a guest kit `dirty` workload writing flat out over a region
larger than what a max-bandwidth-limited link moves within the downtime
limit never converges without the capability (query-migrate stays active
pass after pass, then migrate_cancel leaves it running), and converges with
it: the vCPU throttle rises (cpu-throttle-percentage reported), the
migration completes, the guest verifies every page on the destination and
is no longer throttled there. Also the parameters' defaults and ranges."""
import time

import pytest

from ternlib import TernVm, guestkit, has_kvm
from ternlib.migration import wait_status, wait_runstate

pytestmark = pytest.mark.skipif(not has_kvm(), reason="needs /dev/kvm")

MEM = 128
# 64 MiB written flat out (the kit writes ~1M pages/s natively) against a
# 100 MiB/s link with 50 ms of downtime: 5 MiB may be left for the stop,
# so only a guest slowed to ~1 % of its time can let a round finish clean.
APPEND = guestkit.cmdline("dirty", mem="64M", rate="0", report=250)
LINK = {"max-bandwidth": 100 << 20, "downtime-limit": 50}


def test_throttle_parameters_defaults_and_ranges(tmp_path):
    with TernVm(tmp_path, append=guestkit.cmdline("idle"), memory=MEM,
                qmp=True, name="a") as a:
        q = a.qmp()
        p = q.execute("query-migrate-parameters")
        assert p["throttle-trigger-threshold"] == 50
        assert p["cpu-throttle-initial"] == 20
        assert p["cpu-throttle-increment"] == 10
        assert p["max-cpu-throttle"] == 99
        assert p["cpu-throttle-tailslow"] is False
        q.execute("migrate-set-parameters", **{
            "cpu-throttle-initial": 30, "cpu-throttle-increment": 5,
            "max-cpu-throttle": 80, "cpu-throttle-tailslow": True,
            "throttle-trigger-threshold": 100})
        p = q.execute("query-migrate-parameters")
        assert (p["cpu-throttle-initial"], p["cpu-throttle-increment"],
                p["max-cpu-throttle"], p["cpu-throttle-tailslow"],
                p["throttle-trigger-threshold"]) == (30, 5, 80, True, 100)
        # QEMU 7.2's words (test_qmp_schema.py compares them with QEMU's).
        for name, bad, desc in (
                ("cpu-throttle-initial", 0, "an integer in the range of 1 to 99"),
                ("cpu-throttle-increment", 100, "an integer in the range of 1 to 99"),
                ("max-cpu-throttle", 100,
                 "an integer in the range of cpu_throttle_initial to 99"),
                ("max-cpu-throttle", 29,
                 "an integer in the range of cpu_throttle_initial to 99"),
                ("throttle-trigger-threshold", 101,
                 "an integer in the range of 1 to 100")):
            r = q.cmd("migrate-set-parameters", **{name: bad})
            assert "error" in r, (name, bad)
            assert r["error"]["desc"] == (
                f"Parameter '{name.replace('-', '_')}' expects {desc}")
        r = q.cmd("migrate-set-parameters", **{"throttle-trigger-threshold": -1})
        assert r["error"]["desc"] == ("Parameter 'throttle-trigger-threshold' "
                                      "expects uint8_t")
        # A refused value changes nothing.
        assert q.execute("query-migrate-parameters")["cpu-throttle-initial"] == 30
        q.execute("migrate-set-capabilities",
                  capabilities=[{"capability": "auto-converge", "state": True}])
        caps = {c["capability"]: c["state"]
                for c in q.execute("query-migrate-capabilities")}
        assert caps["auto-converge"] is True


def start_source(tmp_path, name):
    src = TernVm(tmp_path, append=APPEND, memory=MEM, qmp=True, name=name).start()
    guestkit.wait_dirty_passes(src.serial, 3, timeout=20)
    src.qmp().execute("migrate-set-parameters", **LINK)
    return src


def test_fast_dirtier_does_not_converge_without_auto_converge(tmp_path):
    vms = []
    try:
        src = start_source(tmp_path, "a")
        vms.append(src)
        uri = "unix:" + src.sock_path("mig")
        dst = TernVm(tmp_path, append=APPEND, memory=MEM, qmp=True, name="b",
                     incoming=uri).start()
        vms.append(dst)
        wait_runstate(dst, "inmigrate")
        src.qmp().execute("migrate", uri=uri)
        deadline = time.monotonic() + 30
        info = {}
        while time.monotonic() < deadline:
            info = src.qmp().execute("query-migrate")
            assert info["status"] in ("setup", "active"), info
            assert "cpu-throttle-percentage" not in info
            if info.get("ram", {}).get("dirty-sync-count", 0) >= 6:
                break
            time.sleep(0.1)
        assert info["ram"]["dirty-sync-count"] >= 6, info
        src.qmp().execute("migrate_cancel")
        info = wait_status(src, ("cancelled", "failed", "completed"))
        assert info["status"] == "cancelled", info
        wait_runstate(src, "running")
        # The guest goes on at full speed on the source.
        last = guestkit.last_dirty_pass(src.serial)
        guestkit.wait_dirty_passes(src.serial, last + 20, timeout=20)
        src.serial.assert_no_fail()
    finally:
        for vm in vms:
            vm.kill()


def test_fast_dirtier_converges_with_auto_converge(tmp_path):
    vms = []
    try:
        src = start_source(tmp_path, "a")
        vms.append(src)
        q = src.qmp()
        q.execute("migrate-set-parameters", **{"cpu-throttle-initial": 80,
                                               "cpu-throttle-increment": 10})
        q.execute("migrate-set-capabilities",
                  capabilities=[{"capability": "auto-converge", "state": True}])
        uri = "unix:" + src.sock_path("mig")
        dst = TernVm(tmp_path, append=APPEND, memory=MEM, qmp=True, name="b",
                     incoming=uri).start()
        vms.append(dst)
        wait_runstate(dst, "inmigrate")
        q.execute("migrate", uri=uri)
        seen = []
        info = wait_status(src, ("completed", "failed", "cancelled"), 90, seen)
        assert info["status"] == "completed", (info, dst.stderr_text()[-2000:])
        # The throttle started at the initial value and only went up (80 %
        # is sometimes enough for a round to end clean, so 90 is not a must).
        assert seen and seen[0] == 80, seen
        assert seen == sorted(seen) and max(seen) <= 99, seen
        # Throttling ends with the migration.
        assert "cpu-throttle-percentage" not in info
        wait_runstate(src, "postmigrate")
        wait_runstate(dst, "running")
        last = guestkit.last_dirty_pass(src.serial) or 0
        # Full speed on the destination: many passes in a few seconds.
        guestkit.wait_dirty_passes(dst.serial, last + 200, timeout=20)
        dst.serial.assert_no_fail()
        src.serial.assert_no_fail()
        assert not dst.serial.findall(guestkit.READY_RE)
    finally:
        for vm in vms:
            vm.kill()
