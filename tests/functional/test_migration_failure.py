"""Migration failures: migrate_cancel mid-way, the destination killed
mid-way, refused capabilities and parameters, and broken streams given to
-incoming (the destination exits with a clear error, never crashes)."""
import os
import signal
import struct
import time

import pytest

from ternlib import TernVm, guestkit, has_kvm

from test_migration_tern import MEM, unlimited, wait_runstate, wait_status

pytestmark = pytest.mark.skipif(not has_kvm(), reason="needs /dev/kvm")

DIRTY = guestkit.cmdline("dirty", mem="16M", rate="4M", report=50)


def slow_migration(src, dst, uri):
    """Start a migration throttled to ~2 MB/s so it is still running when
    the test interferes; return once it is active."""
    src.qmp().execute("migrate-set-parameters", **{"max-bandwidth": 2 << 20})
    src.qmp().execute("migrate", uri=uri)
    wait_status(src, ("active",), timeout=10)


def assert_source_unharmed(src):
    wait_runstate(src, "running")
    last = guestkit.last_dirty_pass(src.serial) or 0
    guestkit.wait_dirty_passes(src.serial, last + 3, timeout=20)
    src.serial.assert_no_fail()


def test_cancel_midway_source_keeps_running(tmp_path):
    with TernVm(tmp_path, append=DIRTY, memory=MEM, qmp=True, name="a") as a:
        guestkit.wait_dirty_passes(a.serial, 1, timeout=20)
        uri = "unix:" + a.sock_path("mig")
        with TernVm(tmp_path, append=DIRTY, memory=MEM, qmp=True, name="b",
                    incoming=uri) as b:
            wait_runstate(b, "inmigrate")
            a.qmp().execute("migrate-set-capabilities",
                            capabilities=[{"capability": "events", "state": True}])
            slow_migration(a, b, uri)
            a.qmp().execute("migrate_cancel")
            info = wait_status(a, ("cancelled", "completed", "failed"))
            assert info["status"] == "cancelled"
            assert "cancel" in info["error-desc"]
            a.qmp().wait_event("MIGRATION", timeout=5, match={"status": "cancelled"})
            assert_source_unharmed(a)
            # The destination saw a cut stream and gives up with a message.
            assert b.wait_exit(timeout=10) == 1
            assert "load of migration failed" in b.stderr_text()
        # The source can migrate again after a cancel.
        uri2 = "unix:" + a.sock_path("mig2")
        with TernVm(tmp_path, append=DIRTY, memory=MEM, qmp=True, name="c",
                    incoming=uri2) as c:
            wait_runstate(c, "inmigrate")
            unlimited(a)
            a.qmp().execute("migrate", uri=uri2)
            assert wait_status(a, ("completed", "failed"))["status"] == "completed"
            wait_runstate(c, "running")
            last = guestkit.last_dirty_pass(a.serial) or 0
            guestkit.wait_dirty_passes(c.serial, last + 3, timeout=20)
            c.serial.assert_no_fail()


def test_destination_killed_midway_source_resumes(tmp_path):
    with TernVm(tmp_path, append=DIRTY, memory=MEM, qmp=True, name="a") as a:
        guestkit.wait_dirty_passes(a.serial, 1, timeout=20)
        uri = "unix:" + a.sock_path("mig")
        with TernVm(tmp_path, append=DIRTY, memory=MEM, qmp=True, name="b",
                    incoming=uri) as b:
            wait_runstate(b, "inmigrate")
            slow_migration(a, b, uri)
            os.kill(b.proc.pid, signal.SIGKILL)
            info = wait_status(a, ("failed", "completed", "cancelled"))
            assert info["status"] == "failed"
            assert info["error-desc"]
            assert_source_unharmed(a)


def test_connect_failure_reports_failed(tmp_path):
    with TernVm(tmp_path, append=DIRTY, memory=MEM, qmp=True, name="a") as a:
        r = a.qmp().cmd("migrate", uri="unix:" + a.sock_path("nobody"))
        assert "error" in r
        info = a.qmp().execute("query-migrate")
        assert info["status"] == "failed" and info["error-desc"]
        r = a.qmp().cmd("migrate", uri="bogus:x")
        assert "error" in r
        wait_runstate(a, "running")


def test_capabilities_and_parameters(tmp_path):
    with TernVm(tmp_path, append=DIRTY, memory=MEM, qmp=True, name="a") as a:
        q = a.qmp()
        assert q.execute("query-migrate") == {}
        caps = {c["capability"]: c["state"]
                for c in q.execute("query-migrate-capabilities")}
        assert {"events", "dirty-bitmaps", "auto-converge"} <= caps.keys()
        # Only what tern runs is listed (libvirt sets what it finds).
        assert "pause-before-switchover" not in caps and "xbzrle" not in caps
        assert not any(caps.values())
        r = q.cmd("migrate-set-capabilities",
                  capabilities=[{"capability": "no-such-cap", "state": True}])
        assert r["error"]["class"] == "GenericError"
        # What tern does not implement is refused when set, and nothing of
        # the refused set is applied.
        for cap in ("xbzrle", "x-colo", "background-snapshot"):
            r = q.cmd("migrate-set-capabilities",
                      capabilities=[{"capability": "events", "state": True},
                                    {"capability": cap, "state": True}])
            assert r["error"]["desc"] == (f"capability '{cap}' is not "
                                          "implemented by tern's migration yet")
        caps = {c["capability"]: c["state"]
                for c in q.execute("query-migrate-capabilities")}
        assert not any(caps.values())
        # Dependencies are checked on the whole set, in any order.
        r = q.cmd("migrate-set-capabilities", capabilities=[
            {"capability": "postcopy-preempt", "state": True}])
        assert r["error"]["desc"] == "Postcopy preempt requires postcopy-ram"
        r = q.cmd("migrate-set-capabilities", capabilities=[
            {"capability": "switchover-ack", "state": True}])
        assert "'return-path'" in r["error"]["desc"]
        q.execute("migrate-set-capabilities", capabilities=[
            {"capability": "postcopy-preempt", "state": True},
            {"capability": "postcopy-ram", "state": True}])
        caps = {c["capability"]: c["state"]
                for c in q.execute("query-migrate-capabilities")}
        assert caps["postcopy-ram"] and caps["postcopy-preempt"]
        # Postcopy commands with nothing to act on.
        r = q.cmd("migrate-start-postcopy")
        assert "after migration has been started" in r["error"]["desc"]
        r = q.cmd("migrate-pause")
        assert "postcopy-active" in r["error"]["desc"]
        r = q.cmd("migrate", uri="unix:" + a.sock_path("x"), resume=True)
        assert "no paused migration" in r["error"]["desc"]
        r = q.cmd("migrate-recover", uri="unix:" + a.sock_path("z"))
        assert "postcopy is paused" in r["error"]["desc"]
        q.execute("migrate-set-capabilities", capabilities=[
            {"capability": "postcopy-ram", "state": False},
            {"capability": "postcopy-preempt", "state": False}])
        r = q.cmd("migrate-start-postcopy")
        assert "Enable postcopy" in r["error"]["desc"]

        p = q.execute("query-migrate-parameters")
        assert p["max-bandwidth"] == 128 << 20 and p["downtime-limit"] == 300
        q.execute("migrate-set-parameters",
                  **{"max-bandwidth": 1 << 30, "downtime-limit": 50})
        p = q.execute("query-migrate-parameters")
        assert p["max-bandwidth"] == 1 << 30 and p["downtime-limit"] == 50
        r = q.cmd("migrate-set-parameters", **{"downtime-limit": 3000000})
        assert "downtime_limit" in r["error"]["desc"]
        r = q.cmd("migrate-set-parameters", **{"no-such": 1})
        assert "error" in r
        r = q.cmd("migrate-incoming", uri="unix:" + a.sock_path("y"))
        assert "incoming" in r["error"]["desc"]


def test_migrate_refused_while_incoming(tmp_path):
    with TernVm(tmp_path, append=DIRTY, memory=MEM, qmp=True, name="b",
                incoming="defer") as b:
        wait_runstate(b, "inmigrate")
        r = b.qmp().cmd("migrate", uri="unix:" + b.sock_path("x"))
        assert "incoming" in r["error"]["desc"]
        r = b.qmp().cmd("cont")
        assert "error" in r


def good_stream(tmp_path):
    """A complete paused stream from tern, as bytes."""
    path = tmp_path / "good.bin"
    append = guestkit.cmdline("idle", hz=100)
    with TernVm(tmp_path, append=append, memory=MEM, qmp=True, name="src",
                paused=True) as a:
        unlimited(a)
        a.qmp().execute("migrate", uri=f"file:{path}")
        assert wait_status(a, ("completed", "failed"))["status"] == "completed"
    return path.read_bytes()


def bad_streams(good):
    name_len = struct.unpack(">I", good[9:13])[0]
    after_cfg = 13 + name_len
    yield "empty", b""
    yield "wrong-magic", b"XEVM" + good[4:]
    yield "version-2", good[:4] + struct.pack(">I", 2) + good[8:]
    yield "machine-mismatch", good[:9] + struct.pack(">I", 2) + b"pc" + good[after_cfg:]
    yield "absurd-name-length", good[:9] + struct.pack(">I", 0xffffffff) + good[13:]
    yield "truncated-header", good[:11]
    yield "truncated-ram", good[:len(good) // 3]
    # The trailing VM description is optional (as for QEMU): cut just
    # before the EOF marker instead, inside the last device section.
    vmdesc = good.rindex(b'{"page_size"')
    assert good[vmdesc - 6] == 0 and good[vmdesc - 5] == 6
    yield "truncated-tail", good[:vmdesc - 10]
    yield "bad-section-type", good[:after_cfg] + b"\x42" + good[after_cfg + 1:]
    # A START naming a section the destination does not have.
    yield "unknown-idstr", (good[:after_cfg] + b"\x04" + struct.pack(">I", 99) +
                            b"\x05bogus" + struct.pack(">II", 0, 1) + good[after_cfg:])


def test_hostile_streams_end_the_destination_cleanly(tmp_path):
    good = good_stream(tmp_path)
    for name, data in bad_streams(good):
        path = tmp_path / f"{name}.bin"
        path.write_bytes(data)
        with TernVm(tmp_path, append="", memory=MEM, qmp=True, name=f"d-{name}",
                    incoming=f"file:{path}") as d:
            rc = d.wait_exit(timeout=20)
            err = d.stderr_text()
            assert rc == 1, (name, rc, err[-2000:])
            assert "load of migration failed" in err, (name, err[-2000:])
            assert "AddressSanitizer" not in err and "runtime error" not in err


def test_cancel_with_a_stalled_destination(tmp_path):
    """The destination stops reading (SIGSTOP: a stalled link): the source's
    writes block, yet migrate_cancel ends the migration and the guest goes
    on."""
    with TernVm(tmp_path, append=DIRTY, memory=MEM, qmp=True, name="a") as a:
        guestkit.wait_dirty_passes(a.serial, 1, timeout=20)
        uri = "unix:" + a.sock_path("mig")
        with TernVm(tmp_path, append=DIRTY, memory=MEM, qmp=True, name="b",
                    incoming=uri) as b:
            wait_runstate(b, "inmigrate")
            os.kill(b.proc.pid, signal.SIGSTOP)
            try:
                unlimited(a)
                a.qmp().execute("migrate", uri=uri)
                wait_status(a, ("active",), timeout=10)
                time.sleep(0.5)     # the socket buffers fill up
                assert a.qmp().execute("query-migrate")["status"] == "active"
                a.qmp().execute("migrate_cancel")
                info = wait_status(a, ("cancelled", "completed", "failed"))
                assert info["status"] == "cancelled"
                assert info["error-desc"] == "migration cancelled"
                assert_source_unharmed(a)
            finally:
                os.kill(b.proc.pid, signal.SIGCONT)
