"""The QMP commands and command-line options libvirt 9.0 uses, given to tern
and to QEMU 7.2 alike (both `-M none`, ternlib.qemunone.none_vm): tern's
replies are values of QEMU's declared return types (checked against QEMU's
own query-qmp-schema), its errors carry QEMU's class and words, the types
and properties it lists are QEMU's (a subset: what tern has), and the block
nodes, chardevs and descriptors the same inputs make look the same."""
import array
import json
import os
import re
import shutil
import socket
import subprocess
import time

import pytest

from ternlib import QmpClient, paths
from ternlib.qmp import QmpTimeout
from ternlib.qapischema import Schema, check_value
from ternlib.qemunone import none_vm

pytestmark = pytest.mark.skipif(not paths.has_kvm(), reason="needs /dev/kvm")


@pytest.fixture(scope="module")
def qemu_schema():
    with none_vm("qemu") as q:
        with QmpClient(q.sock) as c:
            return Schema(c.execute("query-qmp-schema"))


def ret_type(schema, command):
    return schema.entry(command)["ret-type"]


def both(*args):
    """(tern, qemu) QMP clients on the same command line."""
    return none_vm("tern", *args), none_vm("qemu", *args)


def ask_both(args, calls):
    """Runs each (command, arguments) on tern and QEMU started with args:
    returns [(command, arguments, tern's reply, QEMU's reply)]."""
    out = []
    with none_vm("tern", *args) as t, none_vm("qemu", *args) as q:
        with QmpClient(t.sock) as ct, QmpClient(q.sock) as cq:
            for name, a in calls:
                out.append((name, a, ct.cmd(name, a), cq.cmd(name, a)))
    return out


PROBE_CALLS = [
    ("query-target", {}),
    ("query-kvm", {}),
    ("query-machines", {}),
    ("qom-list-types", {}),
    ("qom-list-types", {"abstract": True}),
    ("qom-list-types", {"implements": "device"}),
    ("qom-list-types", {"implements": "memory-backend", "abstract": True}),
    ("device-list-properties", {"typename": "virtio-blk-pci"}),
    ("device-list-properties", {"typename": "isa-serial"}),
    ("device-list-properties", {"typename": "isa-debug-exit"}),
    ("device-list-properties", {"typename": "no-such-device"}),
    ("qom-list-properties", {"typename": "memory-backend-ram"}),
    ("qom-list-properties", {"typename": "memory-backend-memfd"}),
    ("qom-list-properties", {"typename": "memory-backend-file"}),
    ("qom-list-properties", {"typename": "secret"}),
    ("qom-list-properties", {"typename": "none-machine"}),
    ("qom-list-properties", {"typename": "no-such-class"}),
    ("qom-list", {"path": "/machine"}),
    ("qom-list", {"path": "/machine/peripheral"}),
    ("qom-list", {"path": "/no/such/path"}),
    ("query-cpu-definitions", {}),
    ("query-command-line-options", {}),
    ("query-command-line-options", {"option": "sandbox"}),
    ("query-command-line-options", {"option": "no-such-option"}),
    ("query-iothreads", {}),
    ("query-chardev", {}),
    ("query-named-block-nodes", {"flat": True}),
    ("query-blockstats", {}),
    ("query-blockstats", {"query-nodes": True}),
    ("query-block", {}),
    ("getfd", {"fdname": "x"}),
    ("closefd", {"fdname": "x"}),
    ("blockdev-del", {"node-name": "nope"}),
    ("migrate-incoming", {"uri": "fd:nosuch"}),
    ("migrate", {"uri": "fd:nosuch"}),
]


def test_probe_replies_are_qemus_types_and_errors(qemu_schema):
    for name, a, t, q in ask_both([], PROBE_CALLS):
        if "error" in q:
            assert "error" in t, (name, a, t, q)
            if name == "migrate-incoming":
                # QEMU without -incoming refuses first; tern names the fd.
                continue
            assert t["error"] == q["error"], (name, a)
            continue
        assert "return" in t, (name, a, t)
        check_value(qemu_schema, ret_type(qemu_schema, name), t["return"],
                    f"{name}{json.dumps(a)}")


def props(reply):
    return {p["name"]: p["type"] for p in reply["return"]}


def test_types_and_properties_are_qemus(qemu_schema):
    """Every type tern lists QEMU 7.2 has too (tern's own machine aside),
    and every property tern lists has QEMU's name and type."""
    calls = [("qom-list-types", {"abstract": True})]
    with none_vm("tern") as t, QmpClient(t.sock) as c:
        types = c.execute("qom-list-types", abstract=True)
    tern_types = [x["name"] for x in types if not x.get("abstract")]
    for name in tern_types:
        cmd = "device-list-properties" if name in (
            "virtio-blk-pci", "isa-serial", "isa-debug-exit") else "qom-list-properties"
        calls.append((cmd, {"typename": name}))
    replies = ask_both([], calls)
    qemu_types = {x["name"] for x in replies[0][3]["return"]}
    assert set(tern_types) - qemu_types == {"virt-machine"}
    for name, a, t, q in replies[1:]:
        if a["typename"] == "virt-machine":
            # tern's machine: its properties are those of QEMU's machines.
            with none_vm("qemu") as qv, QmpClient(qv.sock) as c:
                q = c.cmd(name, {"typename": "none-machine"})
        theirs = props(q)
        for p, ty in props(t).items():
            assert theirs.get(p) == ty, (a["typename"], p, ty, theirs.get(p))


def test_command_line_options_are_qemus():
    [(_, _, t, q)] = ask_both([], [("query-command-line-options", {})])
    qemu = {o["option"]: {p["name"]: p["type"] for p in o["parameters"]}
            for o in q["return"]}
    for o in t["return"]:
        assert o["option"] in qemu, o["option"]
        for p in o["parameters"]:
            assert qemu[o["option"]].get(p["name"]) == p["type"], (o["option"], p)


def test_cpu_models_are_qemus_host_and_max():
    [(_, _, t, q)] = ask_both([], [("query-cpu-definitions", {})])
    qemu = {c["name"]: c for c in q["return"]}
    assert {c["name"] for c in t["return"]} == {"host", "max"}
    for c in t["return"]:
        assert c == qemu[c["name"]], (c, qemu[c["name"]])


def test_machines_and_kvm():
    """libvirt's probe line: -machine none,accel=kvm:tcg (QEMU is given
    -accel kvm, the same choice in the other spelling)."""
    with none_vm("tern", "-machine", "none,accel=kvm:tcg") as tv, \
            QmpClient(tv.sock) as c:
        t, tk = c.cmd("query-machines"), c.cmd("query-kvm")
    with none_vm("qemu") as qv, QmpClient(qv.sock) as c:
        q, qk = c.cmd("query-machines"), c.cmd("query-kvm")
    ours = {m["name"]: m for m in t["return"]}
    theirs = {m["name"]: m for m in q["return"]}
    assert ours["virt"]["is-default"] and ours["virt"]["default-ram-id"] == "pc.ram"
    assert set(ours["none"]) <= set(theirs["none"])
    assert tk == qk == {"return": {"enabled": True, "present": True}}


# ---- block nodes -----------------------------------------------------------------

def blockdev_args(img, n):
    return ["-blockdev", json.dumps({"driver": "file", "filename": str(img),
                                     "node-name": f"f{n}", "auto-read-only": True,
                                     "discard": "unmap"}),
            "-blockdev", json.dumps({"node-name": f"q{n}", "read-only": False,
                                     "driver": "qcow2", "file": f"f{n}",
                                     "backing": None})]


def named_nodes(reply):
    keep = ("node-name", "drv", "ro", "backing_file_depth", "detect_zeroes",
            "encrypted", "cache")
    for n in reply["return"]:   # automatic names: the counters differ
        n["node-name"] = re.sub(r"^#block\d+$", "#block", n["node-name"])
    return [({k: n[k] for k in keep},
             {k: n["image"].get(k) for k in ("format", "virtual-size", "cluster-size")})
            for n in reply["return"]]


@pytest.fixture
def images(tmp_path):
    imgs = []
    for who in ("tern", "qemu"):
        p = tmp_path / f"{who}.qcow2"
        subprocess.run([paths.qemu_img(), "create", "-q", "-f", "qcow2", str(p), "32M"],
                       check=True, timeout=60)
        imgs.append(p)
    return imgs


def run_each(kind, args, calls):
    with none_vm(kind, *args) as v, QmpClient(v.sock) as c:
        return [c.cmd(name, a) for name, a in calls], v


def test_blockdev_nodes_as_qemu(images, tmp_path, qemu_schema):
    """The same -blockdev JSON, blockdev-add and blockdev-del: the same nodes
    (newest first), the same replies and errors."""
    other = tmp_path / "other.qcow2"
    calls = [
        ("query-named-block-nodes", {"flat": True}),
        ("blockdev-add", {"driver": "qcow2", "file": "q1"}),
        ("blockdev-add", {"driver": "qcow2", "node-name": "1bad", "file": "f1"}),
        ("blockdev-add", {"driver": "qcow2", "node-name": "q1", "file": "f1"}),
        ("blockdev-add", {"driver": "qcow2", "node-name": "q2", "file": "nosuch"}),
        ("blockdev-add", {"driver": "file", "node-name": "f2",
                          "filename": "/nonexistent/x.qcow2"}),
        ("blockdev-add", {"driver": "file", "node-name": "f3", "filename": "OTHER"}),
        ("blockdev-add", {"driver": "qcow2", "node-name": "q3", "file": "f3"}),
        ("query-named-block-nodes", {}),
        ("blockdev-del", {"node-name": "f3"}),
        ("blockdev-del", {"node-name": "q3"}),
        ("blockdev-del", {"node-name": "f3"}),
        ("blockdev-add", {"driver": "raw", "node-name": "r4",
                          "file": {"driver": "file", "filename": "OTHER"}}),
        ("query-named-block-nodes", {}),
        ("blockdev-del", {"node-name": "r4"}),
        ("query-blockstats", {"query-nodes": True}),
    ]
    replies = {}
    for kind, img in zip(("tern", "qemu"), images):
        shutil.copy(img, other)
        fixed = [(n, json.loads(json.dumps(a).replace("OTHER", str(other))))
                 for n, a in calls]
        replies[kind], _ = run_each(kind, blockdev_args(img, 1), fixed)
        other.unlink()
    for (name, a), t, q in zip(calls, replies["tern"], replies["qemu"]):
        if "error" in q:
            assert t.get("error") == q["error"], (name, a, t, q)
            continue
        assert "return" in t, (name, a, t)
        check_value(qemu_schema, ret_type(qemu_schema, name), t["return"], name)
        if name == "query-named-block-nodes":
            assert named_nodes(t) == named_nodes(q), (a, t, q)
        if name == "query-blockstats":
            assert [s["node-name"] for s in t["return"]] == \
                   [s["node-name"] for s in q["return"]]


def test_blockdev_key_value_form(images):
    """-blockdev in key=value form, an inline file node, typed as QEMU types
    it: the same nodes as the JSON form."""
    args = ["-blockdev", "driver=qcow2,node-name=q1,file.driver=file,"
            f"file.filename={images[0]},read-only=off,cache.direct=off"]
    [t], _ = run_each("tern", args, [("query-named-block-nodes", {})])
    [q], _ = run_each("qemu", args, [("query-named-block-nodes", {})])
    assert [n["drv"] for n in t["return"]] == [n["drv"] for n in q["return"]] == \
        ["qcow2", "file"]
    assert t["return"][0]["node-name"] == "q1"


@pytest.mark.parametrize("arg", [
    '{"driver": "qcow2", "node-name": "x", "file": 7}',
    '{"driver": "vmdk", "node-name": "x", "file": "f"}',
    '{"driver": "file", "filename": "/x", "aio": "bogus"}',
    '{"driver": "file"',
    'driver=file,node-name=x,filename=/x,read-only=maybe',
])
def test_blockdev_refused_at_start(arg):
    """A bad -blockdev ends tern at start with a message, as QEMU ends."""
    for kind in ("tern", "qemu"):
        with none_vm(kind, "-blockdev", arg) as v:
            assert v.proc.wait(timeout=30) == 1, kind
            assert "-blockdev" in v.stderr() or "blockdev" in v.stderr(), v.stderr()


# ---- chardevs, descriptors ---------------------------------------------------------

def test_chardevs_as_qemu(tmp_path):
    args = ["-chardev", "pty,id=charserial0", "-chardev",
            f"file,id=f0,path={tmp_path}/f0.log", "-chardev", "null,id=n0"]
    with none_vm("tern", *args) as t, QmpClient(t.sock) as c:
        ours = c.execute("query-chardev")
    with none_vm("qemu", *args) as q, QmpClient(q.sock) as c:
        theirs = c.execute("query-chardev")
    # tern -M none has no serial port to put them on: only the monitor's
    # chardev is in use; QEMU lists every -chardev. Both list the monitor.
    mon = [x for x in ours if x["label"] == "compat_monitor0"]
    qmon = [x for x in theirs if x["label"] == "compat_monitor0"]
    assert mon == qmon or (mon[0]["filename"].endswith(",server=on") and
                           mon[0]["frontend-open"] == qmon[0]["frontend-open"])


def test_pty_chardev_on_the_serial_port(tmp_path, guest_kit):
    """-chardev pty + -device isa-serial (libvirt's serial console): the
    terminal query-chardev names carries the guest's lines."""
    sock = tmp_path / "q.sock"
    p = subprocess.Popen([str(paths.tern_binary()), "-M", "virt", "-m", "64",
                          "-nodefaults", "-kernel", str(guest_kit), "-append",
                          "tg.workload=idle", "-chardev", "pty,id=charserial0",
                          "-device", '{"driver":"isa-serial","chardev":"charserial0",'
                          '"id":"serial0","index":0}',
                          "-qmp", f"unix:{sock},server=on,wait=off"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        with QmpClient(sock) as c:
            devs = {x["label"]: x for x in c.execute("query-chardev")}
            pty_name = devs["charserial0"]["filename"]
            assert re.fullmatch(r"pty:/dev/pts/\d+", pty_name), pty_name
            assert {x["name"] for x in c.execute("qom-list", path="/machine/peripheral")} \
                == {"type", "serial0"}
        fd = os.open(pty_name[4:], os.O_RDONLY | os.O_NOCTTY)
        try:
            data, end = b"", time.monotonic() + 30
            while b"TG tick" not in data and time.monotonic() < end:
                data += os.read(fd, 4096)
            assert b"TG tick" in data, data
        finally:
            os.close(fd)
    finally:
        p.kill()
        out = p.communicate()[0].decode()
    assert f"char device redirected to {pty_name[4:]} (label charserial0)" in out


def pass_fd(client, fd, name):
    msg = json.dumps({"execute": "getfd", "arguments": {"fdname": name}}).encode() + b"\n"
    client._sock.sendmsg([msg], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                  array.array("i", [fd]))])
    return client.read_reply()


def test_getfd_closefd_as_qemu():
    for kind in ("tern", "qemu"):
        with none_vm(kind) as v, QmpClient(v.sock) as c:
            r, w = os.pipe()
            assert pass_fd(c, r, "a") == {"return": {}}, kind
            assert c.cmd("getfd", fdname="b")["error"]["desc"] == \
                "No file descriptor supplied via SCM_RIGHTS"
            assert pass_fd(c, w, "1x")["error"]["class"] == "GenericError"
            assert c.cmd("closefd", fdname="a") == {"return": {}}
            assert c.cmd("closefd", fdname="a")["error"] == {
                "class": "GenericError", "desc": "File descriptor named 'a' not found"}
            os.close(r)
            os.close(w)


def test_migrate_to_a_passed_fd(tmp_path):
    """migrate fd:NAME writes the stream into the descriptor getfd named
    (libvirt's save): tern's stream starts as QEMU's does (magic, version,
    configuration section) and the descriptor is the channel's."""
    for kind in ("tern", "qemu"):
        out = tmp_path / f"{kind}.stream"
        with none_vm(kind) as v, QmpClient(v.sock) as c:
            c.execute("stop")
            fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            assert pass_fd(c, fd, "migrate") == {"return": {}}
            os.close(fd)
            c.execute("migrate", uri="fd:migrate")
            end = time.monotonic() + 30
            while c.execute("query-migrate").get("status") != "completed":
                assert time.monotonic() < end, kind
                time.sleep(0.1)
            assert c.cmd("closefd", fdname="migrate")["error"]["class"] == "GenericError"
        head = out.read_bytes()[:13]
        assert head[:8] == b"QEVM\x00\x00\x00\x03" and head[8] == 0x07, (kind, head)


# ---- -uuid and validate-uuid ---------------------------------------------------------

UUID_A = "50d24677-5e8b-47ee-901f-950c170b8d5c"
UUID_B = "0d7c8f5e-1c1e-4b36-9a50-7b0a3a5c2f11"


def stream_with_uuid(kind, tmp_path, uuid_arg):
    out = tmp_path / f"{kind}-uuid.stream"
    with none_vm(kind, "-uuid", uuid_arg) as v, QmpClient(v.sock) as c:
        c.execute("migrate-set-capabilities",
                  capabilities=[{"capability": "validate-uuid", "state": True}])
        c.execute("migrate", uri=f"exec:cat > {out}")
        end = time.monotonic() + 30
        while c.execute("query-migrate").get("status") != "completed":
            assert time.monotonic() < end
            time.sleep(0.1)
    return out


def load_stream(kind, stream, uuid_arg):
    """'failed' (the destination exited, as both do when a load fails) or
    the migration status a running destination reports, and its stderr."""
    with none_vm(kind, "-uuid", uuid_arg, "-incoming", f"exec:cat {stream}") as v:
        end = time.monotonic() + 30
        status = None
        while status != "completed" and time.monotonic() < end:
            if v.proc.poll() is not None:
                return "failed", v.stderr()
            try:
                with QmpClient(v.sock, connect_timeout=1) as c:
                    status = c.execute("query-migrate").get("status")
            except Exception:
                pass
            time.sleep(0.1)
        return status, v.stderr()


def test_validate_uuid_as_qemu(tmp_path):
    """With validate-uuid the source sends its -uuid in the configuration
    section (seed 004); a destination with another -uuid refuses the stream
    with QEMU's message, one with the same UUID takes it."""
    for kind in ("tern", "qemu"):
        stream = stream_with_uuid(kind, tmp_path, UUID_A)
        assert UUID_A.encode() not in stream.read_bytes()   # the raw 16 bytes
        assert bytes.fromhex(UUID_A.replace("-", "")) in stream.read_bytes()[:200], kind
        status, err = load_stream(kind, stream, UUID_B)
        assert status == "failed", (kind, err)
        assert f"UUID received is {UUID_A} and local is {UUID_B}" in err, (kind, err)
        status, err = load_stream(kind, stream, UUID_A)
        assert status == "completed", (kind, err)


# ---- process options ---------------------------------------------------------------

def test_daemonize_and_pidfile(tmp_path):
    """-daemonize -pidfile: the command returns once the VM is set up, the
    pid file names the running daemon and is locked against a second one;
    an error before that reaches the caller's stderr and exit status."""
    for kind, binary in (("tern", [str(paths.tern_binary())]),
                         ("qemu", [paths.qemu_binary(), "-display", "none",
                                   "-accel", "kvm"])):
        pidfile = tmp_path / f"{kind}.pid"
        sock = tmp_path / f"{kind}.sock"
        argv = binary + ["-M", "none", "-nodefaults", "-daemonize", "-pidfile",
                         str(pidfile), "-qmp", f"unix:{sock},server=on,wait=off"]
        r = subprocess.run(argv, capture_output=True, timeout=60)
        assert r.returncode == 0, (kind, r.stderr)
        pid = int(pidfile.read_text())
        try:
            with QmpClient(sock) as c:
                assert c.execute("query-status")["status"] == "running"
            second = subprocess.run(argv[:-2] + ["-qmp", f"unix:{sock}2,server=on,"
                                                 "wait=off"],
                                    capture_output=True, timeout=60)
            assert second.returncode == 1, kind
            assert b"pid file" in second.stderr.lower(), (kind, second.stderr)
        finally:
            os.kill(pid, 9)
        bad = binary + ["-M", "none", "-nodefaults", "-daemonize", "-blockdev",
                        "driver=file,node-name=x,filename=/nonexistent/x"]
        r = subprocess.run(bad, capture_output=True, timeout=60)
        assert r.returncode == 1 and b"/nonexistent/x" in r.stderr, (kind, r.stderr)


def test_msg_timestamp(tmp_path):
    for kind, binary in (("tern", [str(paths.tern_binary())]),
                         ("qemu", [paths.qemu_binary(), "-display", "none"])):
        r = subprocess.run(binary + ["-M", "none", "-msg", "timestamp=on", "-blockdev",
                                     "driver=file,node-name=x,filename=/nonexistent/x"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 1
        assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z \S+: ", r.stderr), \
            (kind, r.stderr)


@pytest.mark.parametrize("spawn", ["deny", "allow"])
def test_sandbox_spawn(tmp_path, spawn):
    """-sandbox on,spawn=deny: running a program (an exec: migration) kills
    the process, as QEMU's filter does; with spawn=allow it runs."""
    for kind in ("tern", "qemu"):
        with none_vm(kind, "-sandbox", f"on,spawn={spawn}") as v, \
                QmpClient(v.sock) as c:
            status = open(f"/proc/{v.proc.pid}/status").read()
            assert re.search(r"^Seccomp:\s+2$", status, re.M), kind
            c.send({"execute": "migrate", "arguments":
                    {"uri": f"exec:cat > {tmp_path}/{kind}.out"}})
            if spawn == "deny":
                assert v.proc.wait(timeout=30) == -31, kind      # SIGSYS
            else:
                c.read_reply()
                end = time.monotonic() + 30
                while c.execute("query-migrate").get("status") != "completed":
                    assert time.monotonic() < end
                    time.sleep(0.1)


def test_sandbox_quit_exits_cleanly():
    """libvirt's full -sandbox: quit still ends the process normally (its
    threads, and at exit the sanitizers' leak checker, are not taken for
    spawned processes)."""
    for kind in ("tern", "qemu"):
        with none_vm(kind, "-sandbox", "on,obsolete=deny,elevateprivileges="
                     "deny,spawn=deny,resourcecontrol=deny") as v, \
                QmpClient(v.sock) as c:
            c.execute("quit")
            assert v.proc.wait(timeout=30) == 0, (kind, v.stderr())


def cpu_props(argv, smp, sock):
    """query-cpus-fast's props of a paused VM started with argv and -smp."""
    p = subprocess.Popen(argv + ["-S", "-nodefaults", "-smp", smp,
                                 "-qmp", f"unix:{sock},server=on,wait=off"],
                         stderr=subprocess.DEVNULL)
    try:
        with QmpClient(sock) as c:
            return [x["props"] for x in c.execute("query-cpus-fast")]
    finally:
        p.kill()
        p.wait()


def test_query_cpus_fast_follows_smp(guest_kit, tmp_path):
    """-smp 4,sockets=2,cores=2,threads=1 (libvirt's spelling): the vCPUs'
    socket and core ids are QEMU's (q35 7.2, same -smp)."""
    smp = "4,sockets=2,dies=1,cores=2,threads=1"
    ours = cpu_props([str(paths.tern_binary()), "-M", "virt", "-m", "64",
                      "-kernel", str(guest_kit)], smp, tmp_path / "t.sock")
    theirs = cpu_props([paths.qemu_binary(), "-M", "q35", "-accel", "kvm",
                        "-display", "none"], smp, tmp_path / "q.sock")
    assert ours == theirs


def test_device_json_and_bus(guest_kit, tmp_path):
    """-device virtio-blk-pci in JSON and key=value, with bus= and addr=: the
    guest finds the disk in the slot asked for; the device is named in the
    QOM tree and query-block as QEMU names it."""
    img = tmp_path / "d.qcow2"
    subprocess.run([paths.qemu_img(), "create", "-q", "-f", "qcow2", str(img), "16M"],
                   check=True, timeout=60)
    for form in (
        '{"driver":"virtio-blk-pci","bus":"pcie.0","addr":"0x4","drive":"q1",'
        '"id":"virtio-disk0","bootindex":1}',
            "virtio-blk-pci,bus=pcie.0,addr=0x4,drive=q1,id=virtio-disk0,bootindex=1"):
        serial = tmp_path / "serial.log"
        sock = tmp_path / "q.sock"
        p = subprocess.Popen([str(paths.tern_binary()), "-M", "virt", "-m", "64",
                              "-nodefaults", "-kernel", str(guest_kit), "-append",
                              "tg.workload=pci tg.find=1af4:1042",
                              "-serial", f"file:{serial}", *blockdev_args(img, 1),
                              "-device", form, "-device",
                              "isa-debug-exit,iobase=0xf4,iosize=0x04",
                              "-qmp", f"unix:{sock},server=on,wait=off"],
                             stderr=subprocess.PIPE)
        try:
            try:
                c = QmpClient(sock)
            except QmpTimeout as e:
                p.kill()
                raise AssertionError(f"{e}; tern ended {p.wait()}: "
                                     f"{p.stderr.read()[-2000:]!r}") from e
            with c:
                blk = c.execute("query-block")
                assert blk[0]["qdev"] == "/machine/peripheral/virtio-disk0/virtio-backend"
                assert blk[0]["device"] == "" and blk[0]["inserted"]["node-name"] == "q1"
            p.wait(timeout=60)
        finally:
            p.kill()
            p.communicate()
        assert "TG pci 00:04.0 id=1af4:1042" in serial.read_text(), serial.read_text()
    r = subprocess.run([str(paths.tern_binary()), "-M", "virt", "-nodefaults",
                        "-kernel", str(guest_kit), *blockdev_args(img, 1), "-device",
                        "virtio-blk-pci,bus=pci.7,drive=q1"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "Bus 'pci.7' not found" in r.stderr, r.stderr


def guest_threads(pid):
    return {open(f"/proc/{pid}/task/{t}/comm").read().strip()
            for t in os.listdir(f"/proc/{pid}/task")}


def ram_dont_dump(pid, size_kib):
    """The VmFlags of the mapping of exactly size_kib: has it "dd"?"""
    smaps = open(f"/proc/{pid}/smaps").read().split("\n")
    for i, line in enumerate(smaps):
        if re.match(rf"^Size:\s+{size_kib} kB$", line):
            flags = next(l for l in smaps[i:i + 40] if l.startswith("VmFlags:"))
            return " dd" in flags
    raise AssertionError(f"no {size_kib} KiB mapping")


def test_libvirt_command_line_as_qemu(guest_kit, tmp_path):
    """libvirt 9.0's options for a minimal domain, given to tern (virt) and
    QEMU 7.2 (q35): both start paused, name their vCPU threads alike, leave
    guest RAM out of core dumps, report the name and the serial port's pty
    in the same shape, and the RAM backend object is theirs."""
    key = tmp_path / "master-key.aes"
    key.write_bytes(os.urandom(32))
    common = ["-name", "guest=lvt,debug-threads=on", "-S",
              "-object", f"secret,id=masterKey0,format=raw,file={key}",
              "-accel", "kvm", "-m", "128",
              "-object", '{"qom-type":"memory-backend-ram","id":"pc.ram",'
                         '"size":134217728}',
              "-overcommit", "mem-lock=off", "-smp", "1,sockets=1,cores=1,threads=1",
              "-uuid", UUID_A, "-display", "none", "-no-user-config", "-nodefaults",
              "-rtc", "base=utc", "-no-shutdown", "-boot", "strict=on",
              "-chardev", "pty,id=charserial0",
              "-device", '{"driver":"isa-serial","chardev":"charserial0",'
                         '"id":"serial0","index":0}',
              "-audiodev", '{"id":"audio1","driver":"none"}',
              "-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,"
                          "resourcecontrol=deny",
              "-msg", "timestamp=on"]
    runs = {
        "tern": [str(paths.tern_binary()), "-machine",
                 "virt,usb=off,dump-guest-core=off,memory-backend=pc.ram",
                 "-cpu", "host,migratable=on", "-kernel", str(guest_kit)],
        "qemu": [paths.qemu_binary(), "-machine",
                 "q35,usb=off,dump-guest-core=off,memory-backend=pc.ram",
                 "-cpu", "host,migratable=on,-arch-capabilities"],
    }
    seen = {}
    for kind, head in runs.items():
        sock = tmp_path / f"{kind}.sock"
        p = subprocess.Popen(head + common + ["-qmp", f"unix:{sock},server=on,wait=off"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        try:
            with QmpClient(sock) as c:
                seen[kind] = {
                    "status": c.execute("query-status")["status"],
                    "name": c.execute("query-name"),
                    "pty": {x["label"]: re.sub(r"\d+$", "N", x["filename"])
                            for x in c.execute("query-chardev")}["charserial0"],
                    "cpus": [x["props"] for x in c.execute("query-cpus-fast")],
                    "objects": c.execute("qom-list-types", implements="memory-backend"),
                    "threads": "CPU 0/KVM" in guest_threads(p.pid),
                    "dont_dump": ram_dont_dump(p.pid, 131072),
                }
        finally:
            p.kill()
            out = p.communicate()[0].decode()
        assert re.search(r"^char device redirected to /dev/pts/\d+ \(label charserial0\)$",
                         out, re.M), (kind, out)
    t, q = seen["tern"], seen["qemu"]
    assert t["status"] == q["status"] == "prelaunch"
    assert t["name"] == q["name"] == {"name": "lvt"}
    assert t["pty"] == q["pty"] == "pty:/dev/pts/N"
    assert t["cpus"] == q["cpus"]
    assert t["threads"] and q["threads"]
    assert t["dont_dump"] and q["dont_dump"]
    assert {o["name"] for o in t["objects"]} <= {o["name"] for o in q["objects"]}


def test_serial_chardev_spelling(guest_kit, tmp_path):
    """-serial chardev:ID (older libvirt) puts COM1 on a -chardev file."""
    log = tmp_path / "serial.log"
    p = subprocess.run([str(paths.tern_binary()), "-M", "virt", "-m", "64", "-nodefaults",
                        "-kernel", str(guest_kit), "-append", "tg.workload=idle tg.ticks=100",
                        "-chardev", f"file,id=s0,path={log}", "-serial", "chardev:s0",
                        "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"],
                       capture_output=True, timeout=120)
    assert p.returncode == 1, p.stderr            # rc 0 through isa-debug-exit
    assert "TG done rc=0" in log.read_text()


@pytest.mark.parametrize("backend", ["ram", "memfd", "file"])
def test_memory_backends_as_qemu(guest_kit, tmp_path, backend):
    """-object memory-backend-* as the machine's RAM (-machine
    memory-backend=pc.ram), as libvirt writes it: tern and QEMU map the guest
    RAM from the same kind of object (a memfd, or a new file in mem-path's
    directory, removed at once)."""
    obj = {"qom-type": f"memory-backend-{backend}", "id": "pc.ram", "size": 64 << 20}
    if backend == "file":
        obj.update({"mem-path": str(tmp_path), "share": True})
    runs = {
        "tern": [str(paths.tern_binary()), "-machine", "virt,memory-backend=pc.ram",
                 "-kernel", str(guest_kit)],
        "qemu": [paths.qemu_binary(), "-machine", "q35,memory-backend=pc.ram",
                 "-accel", "kvm", "-display", "none"],
    }
    for kind, head in runs.items():
        sock = tmp_path / f"{kind}.sock"
        p = subprocess.Popen(head + ["-S", "-nodefaults", "-m", "64", "-object",
                                     json.dumps(obj),
                                     "-qmp", f"unix:{sock},server=on,wait=off"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            with QmpClient(sock) as c:
                assert c.execute("query-status")["status"] == "prelaunch"
                maps = open(f"/proc/{p.pid}/maps").read().splitlines()
        finally:
            p.kill()
            err = p.communicate()[1].decode()
        ram = [l for l in maps if int(l.split()[0].split("-")[1], 16) -
               int(l.split()[0].split("-")[0], 16) == 64 << 20]
        assert ram, (kind, err)
        if backend == "memfd":
            assert any("/memfd:" in l for l in ram), (kind, ram)
        elif backend == "file":
            assert any(str(tmp_path) in l and "(deleted)" in l for l in ram), (kind, ram)
        assert not [f for f in os.listdir(tmp_path) if "back_mem" in f], kind
