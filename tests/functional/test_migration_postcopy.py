"""Postcopy live migration, tern -> tern, on the guest kit's dirty workload
with a working set the link cannot converge on: the switch after the first
pass, the destination's guest running at once while pages it touches are
requested, and its own verification finding no lost or stale page. With
and without postcopy-preempt, with two vCPUs writing, over unix and TCP,
and across network namespaces where the host allows it."""
import os

import pytest

from ternlib import TernVm, guestkit, has_kvm
from ternlib.migration import free_port, wait_runstate
from ternlib import postcopy as pc
from ternlib.qapischema import Schema, check_value

from test_migration_netns import NsTernVm, netns_pair  # noqa: F401 (fixture)

pytestmark = pytest.mark.skipif(not has_kvm(), reason="needs /dev/kvm")

MEM = 128


def append_for(writers=1):
    return guestkit.cmdline("dirty", mem=pc.DIRTY_MEM, rate=0, report=50,
                            walk="random", writers=writers if writers > 1 else None)


def uri_for(transport, vm, tag):
    if transport == "unix":
        return "unix:" + vm.sock_path(tag)
    return f"tcp:127.0.0.1:{free_port()}"


def run_postcopy(tmp_path, transport="unix", preempt=False, smp=1, vm_cls=TernVm,
                 src_kw=None, dst_kw=None, uri=None, listen=None):
    """One postcopy migration start to end; returns (src, dst, infos)."""
    append = append_for(writers=smp)
    caps = pc.caps_for(preempt=preempt, blocktime=True)
    src = vm_cls(tmp_path, append=append, memory=MEM, smp=smp, qmp=True,
                 name="src", **(src_kw or {})).start()
    dst = None
    try:
        guestkit.wait_dirty_passes(src.serial, 2, timeout=30)
        uri = uri or uri_for(transport, src, "mig")
        dst = vm_cls(tmp_path, append=append, memory=MEM, smp=smp, qmp=True,
                     name="dst", incoming="defer", **(dst_kw or {})).start()
        pc.prepare_destination(dst, listen or uri, caps)
        pc.start_source(src, uri, caps)
        pc.wait_first_pass(src)
        if transport == "tcp":
            assert pc.hmp(src, "migrate_start_postcopy") == ""
        else:
            src.qmp().execute("migrate-start-postcopy")
        # The destination's guest runs at once, long before RAM is over.
        wait_runstate(dst, "running", timeout=30)
        mid = dst.qmp().execute("query-migrate")
        assert mid["status"] in ("postcopy-active", "completed"), mid
        si, di = pc.wait_completed(src, dst)
        return src, dst, si, di
    except BaseException:
        src.kill()
        if dst:
            dst.kill()
        raise


def check_outcome(src, dst, si, di, smp=1):
    assert si["ram"]["postcopy-requests"] > 0, si
    # RAM's bytes by phase, as QEMU splits them: postcopy has no downtime.
    ram = si["ram"]
    assert ram["precopy-bytes"] > 0 and ram["postcopy-bytes"] > 0, ram
    assert ram["downtime-bytes"] == 0, ram
    assert isinstance(si["downtime"], int)
    wait_runstate(src, "postmigrate")
    pc.verify_after(dst, src)
    assert not dst.serial.findall(guestkit.READY_RE)    # never rebooted
    lat = di["x-postcopy-fault-latency"]
    assert lat["requests"] > 0 and lat["count"] > 0, di
    assert lat["p50-ns"] <= lat["p99-ns"] <= lat["max-ns"], lat
    assert isinstance(di["postcopy-blocktime"], int), di
    assert len(di["postcopy-vcpu-blocktime"]) == smp, di
    # Both replies have the types the schema declares.
    for vm, info in ((src, si), (dst, di)):
        schema = Schema(vm.qmp().execute("query-qmp-schema"))
        check_value(schema, schema.entry("query-migrate")["ret-type"], info,
                    "query-migrate")
    # MIGRATION events on both ends, QEMU's sequence.
    ev = src.qmp().wait_event("MIGRATION", timeout=5, match={"status": "completed"})
    assert ev
    seen = pc.migration_events(src)
    assert seen[:3] == ["setup", "active", "postcopy-active"], seen
    seen = pc.migration_events(dst)
    assert "postcopy-active" in seen, seen


@pytest.mark.parametrize("transport", ["unix", "tcp"])
@pytest.mark.parametrize("preempt", [False, True], ids=["plain", "preempt"])
def test_postcopy_dirty_guest(tmp_path, transport, preempt):
    src, dst, si, di = run_postcopy(tmp_path, transport, preempt)
    with src, dst:
        check_outcome(src, dst, si, di)


def test_postcopy_two_vcpus_two_writers(tmp_path):
    src, dst, si, di = run_postcopy(tmp_path, "unix", preempt=True, smp=2)
    with src, dst:
        check_outcome(src, dst, si, di, smp=2)


@pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")
@pytest.mark.parametrize("preempt", [False, True], ids=["plain", "preempt"])
def test_postcopy_across_network_namespaces(tmp_path, netns_pair, preempt):
    ns, addrs = netns_pair
    port = 4444
    src, dst, si, di = run_postcopy(
        tmp_path, preempt=preempt, vm_cls=NsTernVm,
        src_kw={"netns": ns[0]}, dst_kw={"netns": ns[1]},
        uri=f"tcp:{addrs[1]}:{port}", listen=f"tcp:0.0.0.0:{port}")
    with src, dst:
        check_outcome(src, dst, si, di)
