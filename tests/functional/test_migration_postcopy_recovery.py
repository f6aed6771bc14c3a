"""Postcopy recovery, tern -> tern through a forwarding proxy that slows
the link down: the connection is cut mid-postcopy three times in one
migration (migrate-pause on the source, migrate-pause on the destination,
the proxy killed) and recovered each time (migrate-recover on the
destination, migrate with resume on the source; the second cut and
recovery through HMP's migrate_pause and migrate_recover), over unix and
TCP, with
and without postcopy-preempt; it completes and the guest's verification is
clean. A source that dies for good leaves the destination postcopy-paused
with the reason, its guest alive; quit still exits cleanly."""
import time

import pytest

from ternlib import TernVm, guestkit, has_kvm
from ternlib.migration import free_port, wait_runstate
from ternlib.proxy import Proxy
from ternlib import postcopy as pc

pytestmark = pytest.mark.skipif(not has_kvm(), reason="needs /dev/kvm")

MEM = 128
# Slow enough that postcopy lasts seconds: 32 MiB at 6 MiB/s.
PROXY_RATE = 6 << 20


def listen_uri(transport, vm, tag):
    if transport == "unix":
        return "unix:" + vm.sock_path(tag)
    return "tcp:127.0.0.1:0"


def dst_uri(transport, vm, tag):
    if transport == "unix":
        return "unix:" + vm.sock_path(tag)
    return f"tcp:127.0.0.1:{free_port()}"


def start_postcopy(tmp_path, transport, preempt):
    append = guestkit.cmdline("dirty", mem=pc.DIRTY_MEM, rate=0, report=50,
                              walk="random")
    caps = pc.caps_for(preempt=preempt)
    src = TernVm(tmp_path, append=append, memory=MEM, qmp=True, name="src").start()
    dst = TernVm(tmp_path, append=append, memory=MEM, qmp=True, name="dst",
                 incoming="defer").start()
    guestkit.wait_dirty_passes(src.serial, 2, timeout=30)
    target = dst_uri(transport, dst, "in0")
    pc.prepare_destination(dst, target, caps)
    proxy = Proxy(listen_uri(transport, src, "px0"), target, rate=PROXY_RATE)
    pc.start_source(src, proxy.uri, caps, bandwidth=0)
    pc.wait_first_pass(src)
    src.qmp().execute("migrate-start-postcopy")
    wait_runstate(dst, "running", timeout=30)
    return src, dst, proxy


def wait_both(src, dst, status, timeout=60):
    return (pc.wait_migrate_status(src, (status,), timeout),
            pc.wait_migrate_status(dst, (status,), timeout))


def recover(src, dst, transport, n):
    target = dst_uri(transport, dst, f"in{n}")
    if n == 2:
        assert pc.hmp(dst, f"migrate_recover {target}") == ""
    else:
        dst.qmp().execute("migrate-recover", uri=target)
    proxy = Proxy(listen_uri(transport, src, f"px{n}"), target, rate=PROXY_RATE)
    src.qmp().execute("migrate", uri=proxy.uri, resume=True)
    return proxy


@pytest.mark.parametrize("transport", ["unix", "tcp"])
@pytest.mark.parametrize("preempt", [False, True], ids=["plain", "preempt"])
def test_postcopy_recovers_three_times(tmp_path, transport, preempt):
    src, dst, proxy = start_postcopy(tmp_path, transport, preempt)
    proxies = [proxy]
    with src, dst:
        try:
            cuts = [lambda: src.qmp().execute("migrate-pause"),
                    lambda: pc.hmp(dst, "migrate_pause"),
                    lambda: proxies[-1].kill()]
            for n, cut in enumerate(cuts, 1):
                pc.wait_migrate_status(src, ("postcopy-active",))
                time.sleep(0.3)
                cut()
                si, di = wait_both(src, dst, "postcopy-paused")
                assert "postcopy paused" in si["error-desc"], si
                assert "postcopy paused" in di["error-desc"], di
                # The destination's guest lives on while paused.
                assert dst.qmp().execute("query-status")["status"] == "running"
                # A second recovery while one is pending is refused.
                proxies.append(recover(src, dst, transport, n))
                if n == 1:
                    r = dst.qmp().cmd("migrate-recover", uri=dst_uri(transport, dst, "x"))
                    assert "error" in r, r
            si, di = pc.wait_completed(src, dst)
            assert si["ram"]["postcopy-requests"] > 0, si
            pc.verify_after(dst, src)
            seen = pc.migration_events(src)
            for status in ("postcopy-paused", "postcopy-recover"):
                assert seen.count(status) == 3, seen
            seen = pc.migration_events(dst)
            for status in ("postcopy-paused", "postcopy-recover"):
                assert seen.count(status) == 3, seen
        finally:
            for p in proxies:
                p.kill()


def test_source_dies_for_good(tmp_path):
    src, dst, proxy = start_postcopy(tmp_path, "unix", preempt=False)
    with src, dst:
        try:
            pc.wait_migrate_status(src, ("postcopy-active",))
            time.sleep(0.3)
            src.kill()
            di = pc.wait_migrate_status(dst, ("postcopy-paused",), 30)
            assert "postcopy paused" in di["error-desc"], di
            # Alive, waiting: QMP answers, the run state is running, and it
            # stays paused rather than failing.
            time.sleep(1)
            assert dst.qmp().execute("query-status")["status"] == "running"
            assert dst.qmp().execute("query-migrate")["status"] == "postcopy-paused"
            # Refusals while nothing can recover or resume.
            r = dst.qmp().cmd("migrate-pause")
            assert "error" in r, r
            assert pc.hmp(dst, "migrate_pause").startswith("Error: ")
            assert pc.hmp(dst, "migrate_recover").startswith("migrate_recover: string expected")
            dst.qmp().execute("quit")
            assert dst.wait_exit(timeout=30) == 0
            assert "ERROR: AddressSanitizer" not in dst.stderr_text()
            assert "postcopy paused" in dst.stderr_text()
        finally:
            proxy.kill()
