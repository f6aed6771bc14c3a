"""Multifd (QEMU's capability and wire format): RAM pages on N more
connections beside the main stream.

- tern -> tern live: the guest kit's dirty workload with 2 and 4 channels
  over unix and TCP, and with zero-copy-send over TCP; the destination's
  guest verifies every page.
- A channel killed mid-way (one forwarded connection reset): the migration
  fails naming the channel, the source's guest runs on, the destination
  exits with the reason. Channels of a VM with another -uuid are refused.
- Postcopy with multifd (the pages then go on the main stream; SYNCs still
  close every RAM section on the channels) and its recovery through a
  killed proxy: completes, verifies clean.
- Interop with QEMU 7.2 (-M none, RAM only): tern's sample migrated with
  multifd loads in QEMU byte for byte; QEMU's multifd migration loads in
  tern-stream --receive byte for byte.
- Capabilities and parameters: QEMU's names, default, range and messages.
"""
import os
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from ternlib import QmpClient, TernVm, guestkit, has_kvm, paths
from ternlib.migration import free_port, wait_runstate, wait_status
from ternlib.proxy import Proxy
from ternlib import postcopy as pc

MEM = 128
DIRTY = guestkit.cmdline("dirty", mem="16M", rate="8M", report=50)

kvm = pytest.mark.skipif(not has_kvm(), reason="needs /dev/kvm")


def set_multifd(vm, channels, extra=()):
    caps = ["multifd", *extra]
    vm.qmp().execute("migrate-set-capabilities",
                     capabilities=[{"capability": c, "state": True}
                                   for c in caps])
    vm.qmp().execute("migrate-set-parameters",
                     **{"multifd-channels": channels})


def uri_for(transport, vm, tag):
    if transport == "unix":
        return "unix:" + vm.sock_path(tag)
    return f"tcp:127.0.0.1:{free_port()}"


def destination(tmp_path, append, uri, channels, name="b", extra=()):
    dst = TernVm(tmp_path, append=append, memory=MEM, qmp=True, name=name,
                 incoming="defer").start()
    wait_runstate(dst, "inmigrate")
    set_multifd(dst, channels, extra)
    dst.qmp().execute("migrate-incoming", uri=uri)
    return dst


# ---- tern -> tern ----------------------------------------------------------

@kvm
@pytest.mark.parametrize("transport", ["unix", "tcp"])
@pytest.mark.parametrize("channels", [2, 4])
def test_live_dirty_migration(tmp_path, transport, channels):
    with TernVm(tmp_path, append=DIRTY, memory=MEM, qmp=True, name="a") as a:
        guestkit.wait_dirty_passes(a.serial, 2, timeout=20)
        uri = uri_for(transport, a, "mig")
        with destination(tmp_path, DIRTY, uri, channels) as b:
            set_multifd(a, channels)
            a.qmp().execute("migrate-set-parameters", **{"max-bandwidth": 0})
            a.qmp().execute("migrate", uri=uri)
            info = wait_status(a, ("completed", "failed", "cancelled"), 60)
            assert info["status"] == "completed", (info, b.stderr_text())
            ram = info["ram"]
            # Pages with data went on the channels, zero pages did not.
            assert ram["multifd-bytes"] >= ram["normal"] * 4096 > 0
            assert ram["transferred"] > ram["multifd-bytes"]
            assert ram["duplicate"] > 0
            wait_runstate(b, "running")
            last = guestkit.last_dirty_pass(a.serial) or 0
            guestkit.wait_dirty_passes(b.serial, last + 3, timeout=30)
            b.serial.assert_no_fail()
            assert b.qmp().execute("query-migrate")["status"] == "completed"


@kvm
def test_zero_copy_send_over_tcp(tmp_path):
    with TernVm(tmp_path, append=DIRTY, memory=MEM, qmp=True, name="a") as a:
        guestkit.wait_dirty_passes(a.serial, 2, timeout=20)
        uri = uri_for("tcp", a, "mig")
        with destination(tmp_path, DIRTY, uri, 2) as b:
            set_multifd(a, 2, extra=["zero-copy-send"])
            a.qmp().execute("migrate-set-parameters", **{"max-bandwidth": 0})
            a.qmp().execute("migrate", uri=uri)
            info = wait_status(a, ("completed", "failed", "cancelled"), 60)
            assert info["status"] == "completed", (info, b.stderr_text())
            assert info["ram"]["multifd-bytes"] > 0
            # Loopback: the kernel copies what it hands to a local socket.
            assert "dirty-sync-missed-zero-copy" in info["ram"]
            wait_runstate(b, "running")
            last = guestkit.last_dirty_pass(a.serial) or 0
            guestkit.wait_dirty_passes(b.serial, last + 3, timeout=30)
            b.serial.assert_no_fail()


@kvm
def test_zero_copy_send_needs_tcp(tmp_path):
    with TernVm(tmp_path, append=DIRTY, memory=MEM, qmp=True, name="a") as a:
        with destination(tmp_path, DIRTY, uri_for("unix", a, "mig"), 2) as b:
            set_multifd(a, 2, extra=["zero-copy-send"])
            r = a.qmp().cmd("migrate", uri="unix:" + a.sock_path("mig"))
            assert r["error"]["desc"] == \
                "Zero copy send feature not detected in host kernel", r
            info = a.qmp().execute("query-migrate")
            assert info["status"] == "failed", info
            b.kill()
        assert a.qmp().execute("query-status")["status"] == "running"


@kvm
@pytest.mark.parametrize("transport", ["unix", "tcp"])
def test_channel_killed_midway(tmp_path, transport):
    with TernVm(tmp_path, append=DIRTY, memory=MEM, qmp=True, name="a") as a:
        guestkit.wait_dirty_passes(a.serial, 1, timeout=20)
        uri = uri_for(transport, a, "mig")
        with destination(tmp_path, DIRTY, uri, 2) as b:
            listen = ("unix:" + a.sock_path("px") if transport == "unix"
                      else "tcp:127.0.0.1:0")
            proxy = Proxy(listen, uri, rate=4 << 20)
            try:
                set_multifd(a, 2)
                a.qmp().execute("migrate-set-parameters", **{"max-bandwidth": 0})
                a.qmp().execute("migrate", uri=proxy.uri)
                deadline = time.monotonic() + 30
                while a.qmp().execute("query-migrate").get("ram", {}).get(
                        "multifd-bytes", 0) < (4 << 20):
                    assert time.monotonic() < deadline
                    time.sleep(0.02)
                proxy.kill_connection(1)        # multifd channel 0
                info = wait_status(a, ("failed", "completed", "cancelled"), 30)
            finally:
                proxy.kill()
            assert info["status"] == "failed", info
            # The killed channel, or another the destination dropped then.
            assert "multifd channel" in info["error-desc"], info
            # The source's guest goes on where it was.
            wait_runstate(a, "running")
            last = guestkit.last_dirty_pass(a.serial) or 0
            guestkit.wait_dirty_passes(a.serial, last + 3, timeout=20)
            a.serial.assert_no_fail()
            assert b.wait_exit(timeout=20) == 1
            err = b.stderr_text()
            assert "load of migration failed: multifd channel 0: " in err, err


@kvm
def test_channel_of_another_vm_refused(tmp_path):
    """The initial packets carry the VM's -uuid; a destination with another
    refuses the channels with QEMU's message, the source keeps running."""
    ua, ub = ("6f1c63d4-87c6-4bb8-a4a1-3ba3d6a3c0a1",
              "0d36a55b-2c2e-4b0b-9b1a-6e1f5b8f4a02")
    with TernVm(tmp_path, append=DIRTY, memory=MEM, qmp=True, name="a",
                extra_args=["-uuid", ua]) as a:
        guestkit.wait_dirty_passes(a.serial, 1, timeout=20)
        uri = uri_for("unix", a, "mig")
        dst = TernVm(tmp_path, append=DIRTY, memory=MEM, qmp=True, name="b",
                     incoming="defer", extra_args=["-uuid", ub]).start()
        with dst as b:
            wait_runstate(b, "inmigrate")
            set_multifd(b, 2)
            b.qmp().execute("migrate-incoming", uri=uri)
            set_multifd(a, 2)
            a.qmp().execute("migrate", uri=uri)
            info = wait_status(a, ("completed", "failed", "cancelled"), 60)
            assert info["status"] == "failed", info
            assert b.wait_exit(timeout=20) == 1
            err = b.stderr_text()
            assert (f"multifd: received uuid '{ua}' and expected uuid "
                    f"'{ub}' for channel ") in err, err
        wait_runstate(a, "running")
        a.serial.assert_no_fail()


# ---- postcopy ---------------------------------------------------------------

PC_DIRTY = guestkit.cmdline("dirty", mem=pc.DIRTY_MEM, rate=0, report=50,
                            walk="random")


def postcopy_pair(tmp_path, transport, preempt, rate=0):
    caps = pc.caps_for(preempt=preempt)
    src = TernVm(tmp_path, append=PC_DIRTY, memory=MEM, qmp=True,
                 name="src").start()
    dst = TernVm(tmp_path, append=PC_DIRTY, memory=MEM, qmp=True, name="dst",
                 incoming="defer").start()
    guestkit.wait_dirty_passes(src.serial, 2, timeout=30)
    target = uri_for(transport, dst, "in0")
    wait_runstate(dst, "inmigrate")
    set_multifd(dst, 2)
    pc.prepare_destination(dst, target, caps)
    listen = ("unix:" + src.sock_path("px0") if transport == "unix"
              else "tcp:127.0.0.1:0")
    proxy = Proxy(listen, target, rate=rate)
    set_multifd(src, 2)
    pc.start_source(src, proxy.uri, caps)
    pc.wait_first_pass(src)
    src.qmp().execute("migrate-start-postcopy")
    wait_runstate(dst, "running", timeout=30)
    return src, dst, proxy


@kvm
@pytest.mark.parametrize("preempt", [False, True], ids=["plain", "preempt"])
def test_postcopy_with_multifd(tmp_path, preempt):
    src, dst, proxy = postcopy_pair(tmp_path, "unix", preempt)
    with src, dst:
        try:
            si, _ = pc.wait_completed(src, dst)
            assert si["ram"]["postcopy-requests"] > 0, si
            assert si["ram"]["multifd-bytes"] > 0, si
            pc.verify_after(dst, src)
        finally:
            proxy.kill()


@kvm
@pytest.mark.parametrize("transport", ["unix", "tcp"])
def test_postcopy_recovery_with_multifd(tmp_path, transport):
    src, dst, proxy = postcopy_pair(tmp_path, transport, False, rate=6 << 20)
    proxies = [proxy]
    with src, dst:
        try:
            for n in (1, 2):
                pc.wait_migrate_status(src, ("postcopy-active",))
                time.sleep(0.3)
                if n == 1:
                    proxies[-1].kill()          # every channel at once
                else:
                    src.qmp().execute("migrate-pause")
                pc.wait_migrate_status(src, ("postcopy-paused",))
                pc.wait_migrate_status(dst, ("postcopy-paused",))
                target = uri_for(transport, dst, f"in{n}")
                dst.qmp().execute("migrate-recover", uri=target)
                listen = ("unix:" + src.sock_path(f"px{n}")
                          if transport == "unix" else "tcp:127.0.0.1:0")
                proxies.append(Proxy(listen, target, rate=6 << 20))
                src.qmp().execute("migrate", uri=proxies[-1].uri, resume=True)
            pc.wait_completed(src, dst)
            pc.verify_after(dst, src)
        finally:
            for p in proxies:
                p.kill()


# ---- capabilities and parameters ----------------------------------------------

@kvm
def test_capability_and_parameter_checks(tmp_path):
    with TernVm(tmp_path, append=DIRTY, memory=MEM, qmp=True, name="a") as a:
        q = a.qmp()
        assert q.execute("query-migrate-parameters")["multifd-channels"] == 2
        r = q.cmd("migrate-set-parameters", **{"multifd-channels": 0})
        assert r["error"]["desc"] == \
            "Parameter 'multifd_channels' expects a value between 1 and 255", r
        r = q.cmd("migrate-set-parameters", **{"multifd-channels": 256})
        assert "error" in r, r
        q.execute("migrate-set-parameters", **{"multifd-channels": 255})
        assert q.execute("query-migrate-parameters")["multifd-channels"] == 255
        r = q.cmd("migrate-set-capabilities",
                  capabilities=[{"capability": "zero-copy-send", "state": True}])
        assert r["error"]["desc"] == ("Zero copy only available for "
                                      "non-compressed non-TLS multifd "
                                      "migration"), r
        caps = {c["capability"]: c["state"]
                for c in q.execute("query-migrate-capabilities")}
        assert caps["multifd"] is False and caps["zero-copy-send"] is False
        set_multifd(a, 2)
        r = q.cmd("migrate", uri=f"exec:cat > {tmp_path / 'out'}")
        assert "unix: or tcp:" in r["error"]["desc"], r
        assert q.execute("query-status")["status"] == "running"


# ---- interop with QEMU 7.2 ----------------------------------------------------

RAM = 4 << 20
qemu = pytest.mark.skipif(not os.path.exists(paths.qemu_binary()),
                          reason="qemu-system-x86_64 is not installed")


def qemu_none(sockdir, *extra):
    qmp_path = sockdir / "qmp"
    proc = subprocess.Popen(
        [paths.qemu_binary(), "-M", "none", "-accel", "tcg", "-nodefaults",
         "-no-user-config", "-display", "none", "-m", "4M",
         "-qmp", f"unix:{qmp_path},server=on,wait=off", *extra],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE)
    return proc, QmpClient(str(qmp_path), connect_timeout=10.0, timeout=10.0)


def qemu_set_multifd(qmp, channels):
    if channels:
        qmp.execute("migrate-set-capabilities",
                    capabilities=[{"capability": "multifd", "state": True}])
        qmp.execute("migrate-set-parameters",
                    **{"multifd-channels": channels})


def wait_qemu(qmp, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = qmp.execute("query-migrate")
        if info.get("status") in ("completed", "failed"):
            return info
        time.sleep(0.05)
    raise AssertionError(f"QEMU's migration did not finish: {info}")


def sample_ram():
    """tern-stream --sample's RAM: page i holds (i % 251) + 1, every fourth
    page is zero."""
    out = bytearray(RAM)
    for i in range(RAM // 4096):
        if i % 4:
            out[i * 4096:(i + 1) * 4096] = bytes([i % 251 + 1]) * 4096
    return bytes(out)


def wait_listening(uri, timeout=10):
    """A listener is up on unix:PATH or tcp:127.0.0.1:PORT (without
    connecting to it, which would be taken as the main channel)."""
    deadline = time.monotonic() + timeout
    kind, _, rest = uri.partition(":")
    while time.monotonic() < deadline:
        if kind == "unix" and os.path.exists(rest):
            return
        if kind == "tcp":
            port = "%04X" % int(rest.rpartition(":")[2])
            with open("/proc/net/tcp") as f:
                if any(line.split()[1].endswith(":" + port) and
                       line.split()[3] == "0A" for line in f.readlines()[1:]):
                    return
        time.sleep(0.02)
    raise AssertionError(f"nothing listens on {uri}")


def sock_uri(transport, sockdir):
    return (f"unix:{sockdir}/mig" if transport == "unix"
            else f"tcp:127.0.0.1:{free_port()}")


@qemu
@pytest.mark.parametrize("transport", ["unix", "tcp"])
@pytest.mark.parametrize("channels", [1, 2, 4])
def test_qemu_loads_tern_multifd(tmp_path, transport, channels):
    sockdir = Path(tempfile.mkdtemp(prefix="tern-mfd-", dir="/tmp"))
    proc, qmp = qemu_none(sockdir, "-incoming", "defer")
    try:
        qemu_set_multifd(qmp, channels)
        uri = sock_uri(transport, sockdir)
        qmp.execute("migrate-incoming", uri=uri)
        r = subprocess.run([str(paths.tern_stream()), "--sample", "none",
                            "--sample-ram", str(RAM), "--sample-to", uri,
                            "--multifd", str(channels)],
                           capture_output=True, timeout=60)
        assert r.returncode == 0, r.stderr.decode()
        info = wait_qemu(qmp)
        assert info["status"] == "completed", info
        assert qmp.execute("query-status")["status"] == "paused"
        dump = tmp_path / "dump"
        qmp.execute("pmemsave", val=0, size=RAM, filename=str(dump))
        assert dump.read_bytes() == sample_ram()
    finally:
        qmp.close()
        proc.kill()
        proc.wait()


@qemu
@pytest.mark.parametrize("transport", ["unix", "tcp"])
@pytest.mark.parametrize("channels", [1, 2, 4])
def test_tern_loads_qemu_multifd(tmp_path, transport, channels):
    sockdir = Path(tempfile.mkdtemp(prefix="tern-mfd-", dir="/tmp"))
    data = os.urandom(RAM // 2) + bytes(RAM // 4) + os.urandom(RAM // 4)
    (tmp_path / "ram.bin").write_bytes(data)
    uri = sock_uri(transport, sockdir)
    out = tmp_path / "out"
    tern = subprocess.Popen([str(paths.tern_stream()), "--receive", uri,
                             "--sample-ram", str(RAM), "--multifd",
                             str(channels), "--ram-out", str(out)],
                            stderr=subprocess.PIPE)
    proc, qmp = qemu_none(sockdir, "-S", "-device",
                          f"loader,file={tmp_path / 'ram.bin'},addr=0,"
                          "force-raw=on")
    try:
        qemu_set_multifd(qmp, channels)
        wait_listening(uri)
        qmp.execute("migrate", uri=uri)
        info = wait_qemu(qmp)
        assert info["status"] == "completed", info
        assert info["ram"]["multifd-bytes"] > 0
        assert tern.wait(timeout=30) == 0, tern.stderr.read().decode()
        assert out.read_bytes() == data
    finally:
        qmp.close()
        proc.kill()
        proc.wait()
        if tern.poll() is None:
            tern.kill()
            tern.wait()
