"""QMP event sequences are a contract: the same migration and the same quit
on QEMU 7.2 and on tern give the same events in the same order, with the
same data. Source: MIGRATION setup, MIGRATION_PASS 1, active, a PASS per
dirty sync, STOP (a running guest), the last PASS, completed (never
"device": QEMU 7.2 enters it only with pause-before-switchover).
Destination: setup, active, RESUME, completed. quit: SHUTDOWN before the
reply. How many dirty syncs a migration takes is not part of it (it
depends on timing and on each VMM's convergence rule): a run of
MIGRATION_PASS events counts as one step, and the passes must be numbered
1, 2, 3, ... with none missing."""
import time

import pytest

from ternlib import guestkit
from ternlib.qemunone import qemu_none
from ternlib.qmp import QmpClient
from ternlib.vm import QemuVm, TernVm

IDLE = guestkit.cmdline("idle")
EVENTS_ON = [{"capability": "events", "state": True}]


def collect(q, until, timeout=60):
    """Events up to and including MIGRATION `until`, then what follows
    within half a second; each as (name, data)."""
    out, deadline, done_at = [], time.monotonic() + timeout, None
    while True:
        while q.events:
            ev = q.events.pop(0)
            out.append((ev["event"], ev.get("data")))
            if ev["event"] == "MIGRATION" and ev["data"]["status"] == until:
                done_at = time.monotonic()
        now = time.monotonic()
        if done_at and now - done_at > 0.5:
            return out
        assert now < deadline, f"no MIGRATION {until} in {timeout}s: {out}"
        try:
            msg = q.read_message(0.1)
        except TimeoutError:
            continue
        if "event" in msg:
            q.events.append(msg)


PASSES = ("MIGRATION_PASS+", None)


def shape(events):
    """The sequence with each run of MIGRATION_PASS as one step, and without
    the syncs of the active phase before STOP (how many there are is timing);
    checks the pass numbers run 1, 2, 3, ... with none missing."""
    out, passes = [], [d["pass"] for n, d in events if n == "MIGRATION_PASS"]
    assert passes == list(range(1, len(passes) + 1)), passes
    for name, data in events:
        if name == "MIGRATION_PASS":
            if out[-1:] != [PASSES]:
                out.append(PASSES)
            continue
        if name == "STOP" and out[-1:] == [PASSES] and \
                out[-2:-1] == [("MIGRATION", {"status": "active"})]:
            out.pop()
        out.append((name, data))
    return out


def migrate(cls, tmp_path, tag, paused):
    """Source and destination events of one migration with vms of cls."""
    kw = dict(append=IDLE, memory=64, qmp=True, paused=paused)
    src = cls(tmp_path / tag, name="s", **kw).start()
    dst = cls(tmp_path / tag, name="d", incoming="defer", **kw).start()
    try:
        uri = "unix:" + src.sock_path("mig")
        for vm in (src, dst):
            vm.qmp().execute("migrate-set-capabilities", capabilities=EVENTS_ON)
        dst.qmp().execute("migrate-incoming", uri=uri)
        src.qmp().execute("migrate", uri=uri)
        return (shape(collect(src.qmp(), "completed")),
                shape(collect(dst.qmp(), "completed")))
    finally:
        src.kill()
        dst.kill()


@pytest.mark.parametrize("paused", [False, True], ids=["running", "paused"])
def test_migration_events_match_qemu(guest_kit, tmp_path, paused):
    theirs = migrate(QemuVm, tmp_path, "qemu", paused)
    want_src = [("MIGRATION", {"status": "setup"}), PASSES,
                ("MIGRATION", {"status": "active"})] + \
               ([] if paused else [("STOP", None)]) + \
               [PASSES, ("MIGRATION", {"status": "completed"})]
    want_dst = [("MIGRATION", {"status": "setup"}), ("MIGRATION", {"status": "active"})] + \
               ([] if paused else [("RESUME", None)]) + \
               [("MIGRATION", {"status": "completed"})]
    assert theirs == (want_src, want_dst)
    # A quick migration is where a sampling watch used to lose "active" and
    # the passes (about one run in six): run it a few times.
    for i in range(4):
        assert migrate(TernVm, tmp_path, f"tern{i}", paused) == theirs, i


def quit_sequence(path):
    q = QmpClient(path)
    q.send({"execute": "quit", "id": 1})
    seq = []
    while True:
        try:
            msg = q.read_message(10)
        except EOFError:
            return seq
        seq.append(msg.get("event") or msg)
        if "event" in msg:
            assert msg["data"] == {"guest": False, "reason": "host-qmp-quit"}


def test_quit_sends_shutdown_before_its_reply(tern_vm):
    with qemu_none() as sock:
        theirs = quit_sequence(sock)
    vm = tern_vm(qmp=True, paused=True, append=IDLE)
    vm.start()
    vm.qmp()
    assert theirs == ["SHUTDOWN", {"return": {}, "id": 1}]
    assert quit_sequence(vm.qmp_path) == theirs
    assert vm.wait_exit(10) == 0
