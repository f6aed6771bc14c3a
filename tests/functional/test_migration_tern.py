"""tern -> tern migration: paused (RAM byte-identical by hash), live with the
guest kit's dirty workload over unix and tcp, back and forth, exec:/file:
transports, and what query-migrate and the events report."""
import subprocess
import time

import pytest

from ternlib import TernVm, guestkit, has_kvm, tern_stream
from ternlib.migration import wait_status, wait_runstate, free_port, unlimited

pytestmark = pytest.mark.skipif(not has_kvm(), reason="needs /dev/kvm")

MEM = 128


def migrate(src, dst, uri, timeout=60.0):
    """Migrate src to dst (already listening on uri) and check both ends."""
    src.qmp().execute("migrate", uri=uri)
    info = wait_status(src, ("completed", "failed", "cancelled"), timeout)
    assert info["status"] == "completed", (info, dst.stderr_text()[-2000:])
    wait_runstate(src, "postmigrate")
    return info


def test_paused_migration_ram_identical_and_guest_continues(tmp_path):
    append = guestkit.cmdline("idle", hz=100, print=10)
    with TernVm(tmp_path, append=append, memory=MEM, qmp=True, name="a") as a:
        guestkit.wait_ready(a.serial)
        a.serial.wait_for(r"^TG tick 20$", timeout=10)
        a.qmp().execute("stop")
        uri = "unix:" + a.sock_path("mig")
        with TernVm(tmp_path, append=append, memory=MEM, qmp=True, name="b",
                    incoming=uri) as b:
            wait_runstate(b, "inmigrate")
            unlimited(a)
            info = migrate(a, b, uri)
            assert info["ram"]["total"] == MEM << 20
            assert info["ram"]["normal"] + info["ram"]["duplicate"] >= (MEM << 20) // 4096
            for key in ("total-time", "downtime", "setup-time"):
                assert isinstance(info[key], int), key
            for key in ("transferred", "remaining", "total", "duplicate", "normal",
                        "normal-bytes", "dirty-pages-rate", "mbps",
                        "dirty-sync-count", "pages-per-second"):
                assert key in info["ram"], key
            assert info["ram"]["remaining"] == 0
            assert info["ram"]["normal-bytes"] == info["ram"]["normal"] * 4096
            # A paused source leaves a paused destination.
            wait_runstate(b, "paused")
            assert b.qmp().execute("query-migrate")["status"] == "completed"
            ha = a.qmp().execute("x-ram-sha256")["sha256"]
            hb = b.qmp().execute("x-ram-sha256")["sha256"]
            assert ha == hb
            mark = b.serial.mark()
            b.qmp().execute("cont")
            # Ticks continue on B from where A stopped (B never booted it).
            m = b.serial.wait_for(r"^TG tick (\d+)$", timeout=10, start=mark)
            assert int(m[1]) > 20
            b.serial.assert_no_fail()


@pytest.mark.parametrize("transport", ["unix", "tcp"])
def test_live_dirty_migration_back_and_forth(tmp_path, transport):
    append = guestkit.cmdline("dirty", mem="16M", rate="8M", report=50)
    vms = []
    try:
        cur = TernVm(tmp_path, append=append, memory=MEM, qmp=True, name="v0").start()
        vms.append(cur)
        guestkit.wait_dirty_passes(cur.serial, 2, timeout=20)
        for hop in range(1, 4):
            if transport == "unix":
                uri = "unix:" + cur.sock_path(f"mig{hop}")
            else:
                uri = f"tcp:127.0.0.1:{free_port()}"
            nxt = TernVm(tmp_path, append=append, memory=MEM, qmp=True,
                         name=f"v{hop}", incoming=uri).start()
            vms.append(nxt)
            wait_runstate(nxt, "inmigrate")
            cur.qmp().execute("migrate-set-capabilities",
                              capabilities=[{"capability": "events", "state": True}])
            unlimited(cur)
            info = migrate(cur, nxt, uri)
            assert info["ram"]["dirty-sync-count"] >= 2
            # RAM's bytes by phase: the last round went while it was stopped.
            ram = info["ram"]
            assert ram["precopy-bytes"] > 0 and ram["downtime-bytes"] > 0, ram
            assert ram["postcopy-bytes"] == 0, ram
            ev = cur.qmp().wait_event("MIGRATION", timeout=5,
                                      match={"status": "completed"})
            assert ev
            # One MIGRATION_PASS per dirty sync the watch saw, numbered from 1.
            ev = cur.qmp().wait_event("MIGRATION_PASS", timeout=5)
            assert ev["data"]["pass"] >= 1
            wait_runstate(nxt, "running")
            last = guestkit.last_dirty_pass(cur.serial) or 0
            guestkit.wait_dirty_passes(nxt.serial, last + 3, timeout=30)
            nxt.serial.assert_no_fail()
            # The guest went on; it never rebooted on either side (turning
            # dirty logging on must not disturb running vCPUs).
            assert not nxt.serial.findall(guestkit.READY_RE)
            assert len(cur.serial.findall(guestkit.READY_RE)) == (1 if hop == 1 else 0)
            cur.kill()
            cur = nxt
    finally:
        for vm in vms:
            vm.kill()


def test_exec_and_file_transports_restore_the_guest(tmp_path):
    append = guestkit.cmdline("idle", hz=100, print=10)
    image = tmp_path / "state.bin"
    copy = tmp_path / "state2.bin"
    with TernVm(tmp_path, append=append, memory=MEM, qmp=True, name="a") as a:
        a.serial.wait_for(r"^TG tick 10$", timeout=10)
        unlimited(a)
        migrate(a, None, f"exec:cat > {image}")
        ha = a.qmp().execute("x-ram-sha256")["sha256"]
        migrate_file = a.qmp().execute("query-migrate")
        assert migrate_file["status"] == "completed"
    r = subprocess.run([str(tern_stream()), str(image)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "pc.ram" in r.stdout
    with TernVm(tmp_path, append=append, memory=MEM, qmp=True, name="b",
                paused=True, incoming=f"exec:cat {image}") as b:
        # -S: the guest waits after the load, so its RAM can be compared.
        wait_runstate(b, "paused")
        assert b.qmp().execute("x-ram-sha256")["sha256"] == ha
        mark = b.serial.mark()
        b.qmp().execute("cont")
        m = b.serial.wait_for(r"^TG tick (\d+)$", timeout=10, start=mark)
        assert int(m[1]) > 10
        # And out again through file:, loaded with -incoming defer.
        b.qmp().execute("stop")
        unlimited(b)
        migrate(b, None, f"file:{copy}")
    with TernVm(tmp_path, append=append, memory=MEM, qmp=True, name="c",
                incoming="defer") as c:
        wait_runstate(c, "inmigrate")
        c.qmp().execute("migrate-incoming", uri=f"file:{copy}")
        wait_runstate(c, "paused")
        c.qmp().execute("cont")
        c.serial.wait_for(r"^TG tick (\d+)$", timeout=10, start=c.serial.mark())
    r = subprocess.run([str(tern_stream()), str(copy)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_live_migration_with_virtio_blk_io_in_flight(tmp_path):
    """The guest kit's blk workload keeps reading a shared (read-only) image
    while it moves: virtio queue state and in-flight requests travel, and
    the I/O loop finishes on the destination."""
    img = tmp_path / "disk.raw"
    with open(img, "wb") as f:
        f.truncate(64 << 20)
    drive = ["-drive", f"file={img},format=raw,if=none,id=d0,readonly=on",
             "-device", "virtio-blk-pci,drive=d0"]
    append = ("tg.workload=blk tg.blk.mode=iops tg.blk.rw=randread tg.blk.qd=4 "
              "tg.blk.seconds=4")
    with TernVm(tmp_path, append=append, memory=MEM, qmp=True, name="a",
                extra_args=drive) as a:
        a.serial.wait_for(r"^TG blk device", timeout=30)
        time.sleep(0.5)
        uri = "unix:" + a.sock_path("mig")
        with TernVm(tmp_path, append=append, memory=MEM, qmp=True, name="b",
                    incoming=uri, extra_args=drive) as b:
            wait_runstate(b, "inmigrate")
            unlimited(a)
            migrate(a, b, uri)
            assert not a.serial.findall(r"^TG blk iops=")
            b.serial.wait_for(r"^TG blk iops=(\d+)", timeout=30)
            b.serial.wait_for(r"^TG done rc=0$", timeout=10)
            b.serial.assert_no_fail()
