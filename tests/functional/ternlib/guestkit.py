"""The guest kit's command line and output, so tests need not repeat its
formats (tests/guest/README.md is the reference).

    append = guestkit.cmdline("dirty", mem="64M", rate="8M", report=100)
    ...
    n = guestkit.last_dirty_pass(vm.serial)
    guestkit.wait_dirty_passes(dst.serial, n + 5, timeout=15)
"""
import re

READY_RE = r"^TG ready workload=(\S+) cpus=(\d+) hz=(\d+)$"
DIRTY_PASS_RE = r"^TG dirty pass=(\d+) writes=(\d+) pages=(\d+)$"
DONE_RE = r"^TG done rc=(\d+)$"


def cmdline(workload, **options):
    """'tg.workload=W tg.k=v ...'; True becomes 1, None/False are left out."""
    words = [f"tg.workload={workload}"]
    for key, value in options.items():
        if value is None or value is False:
            continue
        words.append(f"tg.{key}={1 if value is True else value}")
    return " ".join(words)


def wait_ready(serial, timeout=10):
    """Wait for `TG ready` and return (workload, cpus, hz)."""
    m = serial.wait_for(READY_RE, timeout=timeout)
    return m[1], int(m[2]), int(m[3])


def last_dirty_pass(serial):
    """The pass count of the last `TG dirty pass=` line, or None."""
    found = serial.findall(DIRTY_PASS_RE)
    return int(found[-1][1]) if found else None


def wait_dirty_passes(serial, passes, timeout=10, start=0):
    """Wait until a `TG dirty pass=N` line with N >= passes appears (any
    `TG FAIL` first raises GuestFailure); return N."""
    m = serial.wait_for(DIRTY_PASS_RE, timeout=timeout, start=start,
                        where=lambda m: int(m[1]) >= passes)
    return int(m[1])


def done_rc(serial):
    """The rc of `TG done rc=N`, or None if the guest has not finished."""
    found = serial.findall(DONE_RE)
    return int(found[-1][1]) if found else None


def fail_lines(serial):
    return [l for l in serial.lines() if re.match(r"^TG FAIL", l)]
