"""Postcopy migration helpers shared by the postcopy tests and the
benchmark: capabilities on both ends, a source whose working set the link
cannot converge on, the switch after the first pass, and waiting for the
end with the two VMs' evidence in any failure."""
import time

from . import guestkit
from .migration import wait_runstate

# A working set the link cannot converge on: 32 MiB rewritten flat out
# against a 16 MiB/s precopy link.
DIRTY_MEM = "32M"
LINK_BW = 16 << 20


def set_caps(vm, caps, state=True):
    vm.qmp().execute("migrate-set-capabilities",
                     capabilities=[{"capability": c, "state": state}
                                   for c in caps])


def caps_for(preempt=False, blocktime=False, events=True):
    caps = ["postcopy-ram"]
    if preempt:
        caps.append("postcopy-preempt")
    if blocktime:
        caps.append("postcopy-blocktime")
    if events:
        caps.append("events")
    return caps


def prepare_destination(dst, uri, caps):
    """dst was started with -incoming defer: capabilities, then listen."""
    wait_runstate(dst, "inmigrate")
    set_caps(dst, caps)
    dst.qmp().execute("migrate-incoming", uri=uri)


def start_source(src, uri, caps, bandwidth=LINK_BW):
    set_caps(src, caps)
    src.qmp().execute("migrate-set-parameters", **{"max-bandwidth": bandwidth})
    src.qmp().execute("migrate", uri=uri)


def wait_first_pass(src, timeout=60):
    """Precopy has sent every page once (a second dirty sync happened)."""
    deadline = time.monotonic() + timeout
    info = {}
    while time.monotonic() < deadline:
        info = src.qmp().execute("query-migrate")
        if info.get("status") not in ("setup", "active"):
            raise AssertionError(f"{src.name}: migration left precopy: {info}")
        if info.get("ram", {}).get("dirty-sync-count", 0) >= 2:
            return info
        time.sleep(0.02)
    raise AssertionError(f"{src.name}: first pass not done: {info}")


def wait_migrate_status(vm, want, timeout=60.0):
    deadline = time.monotonic() + timeout
    info = {}
    while time.monotonic() < deadline:
        info = vm.qmp().execute("query-migrate")
        if info.get("status") in want:
            return info
        time.sleep(0.01)
    raise AssertionError(f"{vm.name}: query-migrate stuck at {info}\n"
                         f"{vm.stderr_text()[-3000:]}")


def wait_completed(src, dst, timeout=120.0):
    """Both ends completed; returns (source info, destination info)."""
    si = wait_migrate_status(src, ("completed", "failed"), timeout)
    assert si["status"] == "completed", (si, dst.stderr_text()[-3000:])
    di = wait_migrate_status(dst, ("completed", "failed"), timeout)
    assert di["status"] == "completed", (di, dst.stderr_text()[-3000:])
    return si, di


def migration_events(vm):
    """The MIGRATION statuses vm's QMP client has seen, in order."""
    return [e["data"]["status"] for e in vm.qmp().events
            if e["event"] == "MIGRATION"]


def verify_after(dst, src, passes=3, timeout=60):
    """The destination's guest verified `passes` more full sweeps than the
    source had done, with no TG FAIL anywhere."""
    last = guestkit.last_dirty_pass(src.serial) or 0
    guestkit.wait_dirty_passes(dst.serial, last + passes, timeout=timeout)
    dst.serial.assert_no_fail()
    src.serial.assert_no_fail()


def hmp(vm, line):
    """An HMP command through QMP; its text output ("" on success)."""
    return vm.qmp().execute("human-monitor-command",
                            **{"command-line": line})
