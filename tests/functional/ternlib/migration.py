"""Polling helpers for migration tests: wait for a query-migrate status or a
run state over QMP, with a deadline and the VMM's stderr in the failure."""
import socket
import time


def wait_status(vm, want, timeout=30.0, seen=None):
    """Poll query-migrate until its status is one of `want`; return the reply.
    If `seen` is a list, collect every cpu-throttle-percentage reported."""
    deadline = time.monotonic() + timeout
    info = {}
    while time.monotonic() < deadline:
        info = vm.qmp().execute("query-migrate")
        if seen is not None and "cpu-throttle-percentage" in info:
            seen.append(info["cpu-throttle-percentage"])
        if info.get("status") in want:
            return info
        time.sleep(0.02)
    raise AssertionError(f"{vm.name}: query-migrate stuck at {info}")


def wait_runstate(vm, want, timeout=30.0):
    """Poll query-status until the run state is `want`."""
    deadline = time.monotonic() + timeout
    st = None
    while time.monotonic() < deadline:
        st = vm.qmp().execute("query-status")["status"]
        if st == want:
            return
        time.sleep(0.02)
    raise AssertionError(f"{vm.name}: run state {st}, want {want}\n"
                         f"{vm.stderr_text()[-2000:]}")


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unlimited(vm):
    """Lift the migration bandwidth limit (QEMU's default is 32 MiB/s)."""
    vm.qmp().execute("migrate-set-parameters", **{"max-bandwidth": 0})
