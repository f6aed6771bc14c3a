"""QMP protocol behaviour of a running tern (guest kit, paused with -S so no
guest time is spent): greeting, capabilities negotiation, id echo, request
and argument errors, malformed JSON, several sessions at once, the
-chardev/-mon spelling. Each reply's structure (member names, error class) is
compared with QEMU 7.2's for the same input, QEMU running with -M none."""
import json
import os
import shutil
import socket
import tempfile
import time
from pathlib import Path

import pytest

from ternlib.qemunone import qemu_none as start_qemu_none
from ternlib.qmp import QmpClient, QmpError


class RawQmp:
    """A client that sends bytes as given and reads replies line by line."""

    def __init__(self, path, negotiate=True):
        self.c = QmpClient(path, negotiate=False, timeout=10)
        self.greeting = self.c.read_message()
        if negotiate:
            self.ask('{"execute": "qmp_capabilities"}')

    def ask(self, text):
        self.c.send_raw(text.encode() if isinstance(text, str) else text)
        return self.c.read_reply()

    def close(self):
        self.c.close()


@pytest.fixture
def qemu_none():
    """QEMU 7.2 with -M none and a QMP socket; killed at teardown."""
    with start_qemu_none("-name", "peer") as sock:
        yield sock


@pytest.fixture
def tern_paused(tern_vm):
    vm = tern_vm(qmp=True, paused=True, append="tg.workload=idle", extra_args=["-name", "peer"])
    vm.start()
    vm.qmp()            # waits for the socket; the session is the ternlib client's
    return vm


def shape(reply):
    """What must match QEMU: top-level members, the error class, and the
    member names (and types) of a returned object."""
    out = {"keys": sorted(reply)}
    if "error" in reply:
        out["class"] = reply["error"]["class"]
        out["error-keys"] = sorted(reply["error"])
    if "return" in reply:
        r = reply["return"]
        out["type"] = type(r).__name__
        if isinstance(r, dict):
            out["return-keys"] = sorted(r)
    if "id" in reply:
        out["id"] = reply["id"]
    return out


# Inputs whose replies need no guest and no drives.
PROTOCOL_INPUTS = [
    '{"execute": "query-version", "id": {"a": [1, 2]}}',     # before negotiation
    '{"execute": "nope", "id": 5}',
    '{"execute": "qmp_capabilities", "arguments": {"enable": ["oob"]}, "id": 1}',
    '{"execute": "qmp_capabilities"}',                        # again
    '"abc"',
    '[1, 2]',
    '{}',
    '{"execute": 1}',
    '{"execute": "query-status", "foo": 1, "id": "x"}',
    '{"execute": "query-status", "arguments": []}',
    '{"execute": "query-status", "exec-oob": "query-status"}',
    '{"exec-oob": "query-status"}',
    '{"execute": "nope", "id": [true, null, 1.5]}',
    '{"execute": "query-status", "arguments": {"x": 1}, "id": "i"}',
    '{"execute": "query-status", "id": 2}',
    '{"execute": "query-version"}',
    '{"execute": "query-kvm"}',
    '{"execute": "query-name"}',
    '{"execute": "query-commands"}',
    '{"execute": "query-block"}',
    '{"execute": "block-dirty-bitmap-add", "arguments": {"node": "x"}}',
    '{"execute": "block-dirty-bitmap-add", "arguments": {"node": "x", "name": 1}}',
    '{"execute": "block-dirty-bitmap-add", "arguments": {"node": "x", "name": "b"}}',
    '{"execute": "block-dirty-bitmap-add", "arguments": {"node": "x", "name": "b", "granularity": "a"}}',
    '{"execute": "block-dirty-bitmap-add", "arguments": {"node": "x", "name": "b", "granularity": -1}}',
    '{"execute": "block-dirty-bitmap-add", "arguments": {"node": "x", "name": "b", "persistent": 1}}',
    '{"execute": "block-dirty-bitmap-add", "arguments": {"node": "x", "name": ""}}',
    '{"execute": "block-dirty-bitmap-remove", "arguments": {"node": "x", "name": "b"}}',
    '{"execute": "block-dirty-bitmap-clear", "arguments": {"node": "x", "name": "b"}}',
    '{"execute": "block-dirty-bitmap-enable", "arguments": {"node": "x", "name": "b"}}',
    '{"execute": "block-dirty-bitmap-disable", "arguments": {"node": "x", "name": "b"}}',
    '{"execute": "block-dirty-bitmap-merge", "arguments": {"node": "x", "target": "b", "bitmaps": "a"}}',
    '{"execute": "block-dirty-bitmap-merge", "arguments": {"node": "x", "target": "b", "bitmaps": [1]}}',
    '{"execute": "block-dirty-bitmap-merge", "arguments": {"node": "x", "target": "b", "bitmaps": [{"node": "x"}]}}',
    '{"execute": "transaction", "arguments": {"actions": []}}',
    '{"execute": "transaction", "arguments": {"actions": {}}}',
    '{"execute": "transaction", "arguments": {"actions": [{"type": "nope", "data": {}}]}}',
    '{"execute": "transaction", "arguments": {"actions": [{"type": "block-dirty-bitmap-add"}]}}',
    '{"execute": "transaction", "arguments": {"actions": [{"data": {}}]}}',
    '{"execute": "transaction", "arguments": {"actions": [{"type": "block-dirty-bitmap-add", "data": {"node": "x", "name": "b"}}]}}',
    '{"execute": "human-monitor-command", "arguments": {"command-line": "info status"}}',
    '{"execute": "human-monitor-command", "arguments": {"command-line": "info block"}}',
    '{"execute": "human-monitor-command", "arguments": {"command-line": "info nope"}}',
    '{"execute": "human-monitor-command", "arguments": {}}',
    '{"execute": foo}',
    '}',
    ']',
    '{"a" 1}',
]


def run_inputs(path, inputs):
    q = RawQmp(path, negotiate=False)
    try:
        return [q.ask(text) for text in inputs]
    finally:
        q.close()


def test_replies_match_qemu(tern_paused, qemu_none):
    ours = run_inputs(tern_paused.qmp_path, PROTOCOL_INPUTS)
    theirs = run_inputs(qemu_none, PROTOCOL_INPUTS)
    for text, a, b in zip(PROTOCOL_INPUTS, ours, theirs):
        sa, sb = shape(a), shape(b)
        if text.endswith('"query-status", "id": 2}'):
            # QEMU's -M none is running, tern is paused (-S): values differ.
            assert a["return"]["status"] == "prelaunch"
        assert sa == sb, f"for {text}:\n tern: {a}\n qemu: {b}"


def test_greeting_and_version(tern_paused, qemu_none):
    ours = RawQmp(tern_paused.qmp_path, negotiate=False)
    theirs = RawQmp(qemu_none, negotiate=False)
    g, h = ours.greeting, theirs.greeting
    assert sorted(g) == sorted(h) == ["QMP"], (g, h)
    assert sorted(g["QMP"]) == sorted(h["QMP"])
    assert g["QMP"]["capabilities"] == h["QMP"]["capabilities"] == ["oob"]
    assert g["QMP"]["version"]["qemu"]["major"] == 7
    assert g["QMP"]["version"]["qemu"]["minor"] == 2
    assert g["QMP"]["version"]["package"].startswith("tern-")
    ours.ask('{"execute": "qmp_capabilities"}')
    assert ours.ask('{"execute": "query-version"}')["return"] == g["QMP"]["version"]
    ours.close()
    theirs.close()


def test_exact_error_texts(tern_paused):
    q = RawQmp(tern_paused.qmp_path, negotiate=False)
    r = q.ask('{"execute": "query-status", "id": 3}')
    assert r == {"id": 3, "error": {"class": "CommandNotFound", "desc":
                 "Expecting capabilities negotiation with 'qmp_capabilities'"}}
    assert q.ask('{"execute": "qmp_capabilities"}') == {"return": {}}
    cases = {
        '{"execute": "nope"}': ("CommandNotFound", "The command nope has not been found"),
        '"x"': ("GenericError", "QMP input must be a JSON object"),
        '{"execute": "human-monitor-command"}':
            ("GenericError", "Parameter 'command-line' is missing"),
        '{"execute": "human-monitor-command", "arguments": {"command-line": 1}}':
            ("GenericError", "Invalid parameter type for 'command-line', expected: string"),
        '{"execute": "query-kvm", "arguments": {"zz": 1}}':
            ("GenericError", "Parameter 'zz' is unexpected"),
    }
    for text, (cls, desc) in cases.items():
        assert q.ask(text) == {"error": {"class": cls, "desc": desc}}, text
    r = q.ask('{"execute": foo}')
    assert r["error"]["class"] == "GenericError"
    assert r["error"]["desc"].startswith("JSON parse error, ")
    q.close()


def test_sessions_are_independent(tern_paused):
    a = RawQmp(tern_paused.qmp_path)
    b = RawQmp(tern_paused.qmp_path, negotiate=False)
    assert a.ask('{"execute": "query-status"}')["return"]["status"] == "prelaunch"
    assert b.ask('{"execute": "query-status"}')["error"]["class"] == "CommandNotFound"
    assert "return" in b.ask('{"execute": "qmp_capabilities"}')
    assert "return" in b.ask('{"execute": "query-status"}')
    a.close()
    b.close()


def test_chardev_mon_spelling_and_two_sockets(tern_vm):
    d = Path(tempfile.mkdtemp(prefix="qmpc-", dir="/tmp"))
    try:
        sock = d / "mon.sock"
        vm = tern_vm(qmp=True, paused=True, append="tg.workload=idle",
                     extra_args=["-chardev", f"socket,id=mon0,path={sock},server=on,wait=off",
                                 "-mon", "chardev=mon0,mode=control"])
        vm.start()
        assert vm.qmp().execute("query-status")["status"] == "prelaunch"
        with QmpClient(sock) as c:
            assert c.execute("query-status")["status"] == "prelaunch"
            c.execute("cont")
            assert c.wait_event("RESUME")
        assert vm.qmp().wait_event("RESUME")
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("args, message", [
    (["-qmp", "stdio"], "expected unix:PATH"),
    (["-qmp", "unix:/tmp/x.sock"], "server=on"),
    (["-mon", "chardev=nope,mode=control"], "chardev 'nope' not found"),
    (["-chardev", "socket,id=c,path=/tmp/x.sock,server=on", "-mon", "chardev=c,mode=readline"],
     "mode=control"),
])
def test_bad_monitor_options_fail_clearly(tern_vm, args, message):
    vm = tern_vm(append="tg.workload=idle", paused=True, extra_args=args)
    vm.start()
    assert vm.wait_exit(10) == 1
    assert message in vm.stderr_text()


def test_legacy_server_nowait_flags(tern_vm):
    d = Path(tempfile.mkdtemp(prefix="qmpl-", dir="/tmp"))
    try:
        sock = d / "l.sock"
        vm = tern_vm(paused=True, append="tg.workload=idle",
                     extra_args=["-qmp", f"unix:{sock},server,nowait"])
        vm.start()
        with QmpClient(sock) as c:
            assert c.execute("query-status")["running"] is False
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_wait_on_holds_the_guest_until_a_client_connects(tern_vm):
    d = Path(tempfile.mkdtemp(prefix="qmpw-", dir="/tmp"))
    try:
        sock = d / "w.sock"
        vm = tern_vm(append="tg.workload=idle tg.hz=100 tg.print=5",
                     extra_args=["-qmp", f"unix:{sock},server=on"])
        vm.start()
        deadline = time.monotonic() + 10
        while not sock.exists():
            assert time.monotonic() < deadline, "socket never appeared"
            time.sleep(0.02)
        time.sleep(0.5)
        assert not vm.serial.findall(r"^TG tick"), "the guest ran before a client came"
        with QmpClient(sock) as c:
            assert c.execute("query-status")["status"] == "running"
            vm.serial.wait_for(r"^TG tick (\d+)$", timeout=10)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def free_tcp_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_tcp_listener(tern_vm):
    port = free_tcp_port()
    vm = tern_vm(paused=True, append="tg.workload=idle",
                 extra_args=["-qmp", f"tcp:127.0.0.1:{port},server=on,wait=off"])
    vm.start()
    deadline = time.monotonic() + 10
    while True:
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            break
        except OSError:
            assert time.monotonic() < deadline, "no TCP listener"
            time.sleep(0.05)
    with s:
        f = s.makefile("rwb")
        assert "QMP" in json.loads(f.readline())
        f.write(b'{"execute": "qmp_capabilities"}{"execute": "query-status", "id": 1}')
        f.flush()
        assert json.loads(f.readline()) == {"return": {}}
        assert json.loads(f.readline())["id"] == 1
