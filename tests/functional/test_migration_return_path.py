"""The return path. The destination's end, as a QEMU source with capability
return-path uses it: OPEN_RETURN_PATH, PING answered with PONG on the same
socket, SHUT 0 once the stream is loaded (SHUT 1 after a bad one); the test
plays the source: it takes a paused tern stream (exec:cat > f), adds the
commands after the configuration section and feeds it to `tern -incoming
unix:`. The source's end, tern -> tern: with return-path (and
switchover-ack) a precopy completes on the destination's SHUT 0; a
destination that fails the load makes the source fail with its SHUT and
keep running its guest; a source asking for a return path on a file:
stream fails to start with the reason."""
import socket
import struct
import time

import pytest

from ternlib import TernVm, guestkit, has_kvm
from ternlib.migration import wait_runstate, wait_status, unlimited

pytestmark = pytest.mark.skipif(not has_kvm(), reason="needs /dev/kvm")

MEM = 128
APPEND = guestkit.cmdline("idle", hz=100, print=10)
CMD_OPEN_RETURN_PATH = struct.pack(">BHH", 0x08, 1, 0)


def cmd_ping(value):
    return struct.pack(">BHHI", 0x08, 2, 4, value)


def paused_stream(tmp_path):
    """A paused guest's stream and its RAM hash."""
    path = tmp_path / "state.bin"
    with TernVm(tmp_path, append=APPEND, memory=MEM, qmp=True, name="a") as a:
        a.serial.wait_for(r"^TG tick 10$", timeout=10)
        q = a.qmp()
        q.execute("stop")
        q.execute("migrate-set-parameters", **{"max-bandwidth": 0})
        q.execute("migrate", uri=f"exec:cat > {path}")
        deadline = time.monotonic() + 30
        while q.execute("query-migrate")["status"] != "completed":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        sha = q.execute("x-ram-sha256")["sha256"]
    return path.read_bytes(), sha


def with_commands(stream, commands):
    """Insert `commands` right after the configuration section."""
    assert stream[:8] == b"QEVM\x00\x00\x00\x03" and stream[8] == 0x07
    (n,) = struct.unpack(">I", stream[9:13])
    end = 13 + n
    assert stream[end] != 0x05, "configuration subsections not expected"
    return stream[:end] + commands + stream[end:]


def read_messages(sock, timeout=30.0):
    """Return-path messages (type, value) until SHUT or EOF."""
    sock.settimeout(timeout)
    data = b""
    msgs = []
    while True:
        while len(data) >= 8:
            typ, length, value = struct.unpack(">HHI", data[:8])
            assert length == 4, (typ, length)
            msgs.append((typ, value))
            data = data[8:]
            if typ == 1:
                return msgs
        chunk = sock.recv(4096)
        if not chunk:
            return msgs
        data += chunk


def feed(tmp_path, name, stream, paused=False):
    """Start a destination, send it `stream`, return (vm, messages)."""
    path = str(tmp_path / f"{name}.sock")
    vm = TernVm(tmp_path, append=APPEND, memory=MEM, qmp=True, name=name,
                incoming=f"unix:{path}", paused=paused).start()
    wait_runstate(vm, "inmigrate")
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(path)
        try:
            s.sendall(stream)
            s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass            # a destination that failed stops reading
        try:
            msgs = read_messages(s)
        except ConnectionResetError:
            msgs = []
    return vm, msgs


def test_return_path_pong_and_shut(tmp_path):
    stream, sha = paused_stream(tmp_path)
    good = with_commands(stream, CMD_OPEN_RETURN_PATH + cmd_ping(0x4242) +
                         CMD_OPEN_RETURN_PATH + cmd_ping(7))
    vm, msgs = feed(tmp_path, "b", good)
    try:
        assert msgs == [(2, 0x4242), (2, 7), (1, 0)], msgs
        wait_runstate(vm, "paused")
        assert vm.qmp().execute("x-ram-sha256")["sha256"] == sha
        vm.qmp().execute("cont")
        vm.serial.wait_for(r"^TG tick (\d+)$", timeout=10,
                           start=vm.serial.mark())
    finally:
        vm.kill()


def test_return_path_shut_reports_failure(tmp_path):
    stream, _ = paused_stream(tmp_path)
    # Cut the stream in the middle of RAM: the load fails, SHUT says 1.
    bad = with_commands(stream, CMD_OPEN_RETURN_PATH + cmd_ping(1))
    bad = bad[:len(bad) // 2]
    vm, msgs = feed(tmp_path, "c", bad)
    try:
        assert msgs == [(2, 1), (1, 1)], msgs
        assert vm.wait_exit(10) == 1
        assert "load of migration failed" in vm.stderr_text()
    finally:
        vm.kill()


def test_ping_without_return_path_is_refused(tmp_path):
    stream, _ = paused_stream(tmp_path)
    vm, msgs = feed(tmp_path, "d", with_commands(stream, cmd_ping(9)))
    try:
        assert msgs == [], msgs
        assert vm.wait_exit(10) == 1
        assert "no return path" in vm.stderr_text()
    finally:
        vm.kill()


DIRTY = guestkit.cmdline("dirty", mem="16M", rate="8M", report=50)


@pytest.mark.parametrize("caps", [["return-path"],
                                  ["return-path", "switchover-ack"]])
def test_source_return_path_precopy(tmp_path, caps):
    with TernVm(tmp_path, append=DIRTY, memory=MEM, qmp=True, name="a") as a, \
         TernVm(tmp_path, append=DIRTY, memory=MEM, qmp=True, name="b",
                incoming="defer") as b:
        guestkit.wait_dirty_passes(a.serial, 2, timeout=20)
        uri = "unix:" + a.sock_path("mig")
        wait_runstate(b, "inmigrate")
        for vm in (a, b):
            vm.qmp().execute("migrate-set-capabilities", capabilities=[
                {"capability": c, "state": True} for c in caps])
        b.qmp().execute("migrate-incoming", uri=uri)
        unlimited(a)
        a.qmp().execute("migrate", uri=uri)
        info = wait_status(a, ("completed", "failed"), 60)
        assert info["status"] == "completed", info
        wait_runstate(b, "running")
        last = guestkit.last_dirty_pass(a.serial) or 0
        guestkit.wait_dirty_passes(b.serial, last + 2, timeout=30)
        b.serial.assert_no_fail()


def test_source_fails_on_the_destinations_shut(tmp_path):
    # The destination has less RAM: its load fails, SHUT 1 tells the source.
    with TernVm(tmp_path, append=DIRTY, memory=MEM, qmp=True, name="a") as a, \
         TernVm(tmp_path, append=DIRTY, memory=MEM // 2, qmp=True, name="b",
                incoming="defer") as b:
        guestkit.wait_dirty_passes(a.serial, 2, timeout=20)
        uri = "unix:" + a.sock_path("mig")
        wait_runstate(b, "inmigrate")
        b.qmp().execute("migrate-incoming", uri=uri)
        a.qmp().execute("migrate-set-capabilities", capabilities=[
            {"capability": "return-path", "state": True}])
        unlimited(a)
        a.qmp().execute("migrate", uri=uri)
        info = wait_status(a, ("completed", "failed"), 60)
        assert info["status"] == "failed", info
        assert info["error-desc"] == \
            "return path: the destination failed (SHUT 1)", info
        assert b.wait_exit(10) == 1
        wait_runstate(a, "running")
        mark = a.serial.mark()
        a.serial.wait_for(guestkit.DIRTY_PASS_RE, timeout=10, start=mark)


def test_source_return_path_needs_a_socket(tmp_path):
    with TernVm(tmp_path, append=DIRTY, memory=MEM, qmp=True, name="a") as a:
        a.qmp().execute("migrate-set-capabilities", capabilities=[
            {"capability": "return-path", "state": True}])
        a.qmp().execute("migrate", uri=f"file:{tmp_path / 'x'}")
        info = wait_status(a, ("completed", "failed"), 30)
        assert info["status"] == "failed", info
        assert "return path" in info["error-desc"], info
        wait_runstate(a, "running")
