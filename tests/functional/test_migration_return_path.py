"""The destination's return path, as a QEMU source with capability
return-path uses it: OPEN_RETURN_PATH, PING answered with PONG on the same
socket, SHUT 0 once the stream is loaded (SHUT 1 after a bad one). tern's
own source opens none, so the test plays the source: it takes a paused
tern stream (exec:cat > f), adds the commands after the configuration
section and feeds it to `tern -incoming unix:`."""
import socket
import struct
import time

import pytest

from ternlib import TernVm, guestkit, has_kvm
from ternlib.migration import wait_runstate

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
