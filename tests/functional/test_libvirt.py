"""libvirt 9.0 drives tern as a domain's <emulator>: the capability probe
(virsh domcapabilities), a domain's life through virsh (start, console,
suspend/resume, domblklist, domstats, qemu-monitor-command, save/restore,
internal snapshots, destroy), and live migration between two libvirt
daemons in two network namespaces (skipped where namespaces cannot be
made). Each daemon is private
(ternlib.libvirt: its own configuration, sockets and state in a temporary
directory bound over the system paths in a mount namespace)."""
import json
import os
import re
import subprocess
import uuid

import pytest

from ternlib import netns, paths
from ternlib import libvirt as lv

pytestmark = pytest.mark.skipif(lv.available() is not None,
                                reason=lv.available() or "")

ROUND_RE = r"^TG blk round=(\d+) ok$"
# The guest writes, flushes and reads back 2 MiB of its disk per round.
CMDLINE = ("tg.workload=blk tg.blk.mode=verify tg.blk.rounds=0 "
           "tg.blk.bs=65536 tg.blk.count=32 tg.blk.offset=1048576")


@pytest.fixture
def daemon():
    d = lv.LibvirtDaemon()
    with d:
        yield d


@pytest.fixture
def disk(tmp_path):
    img = tmp_path / "disk.qcow2"
    subprocess.run([paths.qemu_img(), "create", "-q", "-f", "qcow2", str(img), "64M"],
                   check=True, timeout=60)
    return img


def define(daemon, tmp_path, disk, name=None):
    name = name or f"tern-{uuid.uuid4().hex[:8]}"
    xml = tmp_path / f"{name}.xml"
    xml.write_text(lv.domain_xml(name, paths.tern_binary(), paths.guest_kit(),
                                 CMDLINE, disk))
    daemon.virsh("define", str(xml))
    return name


def rounds(daemon, name, count=2, timeout=60):
    return [int(m[1]) for m in lv.console_watch(daemon, name, ROUND_RE, count, timeout)]


def test_domcapabilities_probe(daemon, guest_kit):
    """The probe runs tern with -machine none and asks its QMP questions: each
    one tern has answers without error, and libvirt lists tern's machine,
    KVM, host-passthrough and virtio disks."""
    out = daemon.virsh("domcapabilities", "--virttype", "kvm", "--emulatorbin",
                       str(paths.tern_binary())).stdout
    assert "<domain>kvm</domain>" in out
    assert "<machine>virt</machine>" in out
    assert re.search(r"<enum name='bus'>.*?<value>virtio</value>", out, re.S), out
    assert re.search(r"<mode name='host-passthrough' supported='yes'", out), out
    cache = [f.read_text() for f in daemon.cache_files()
             if str(paths.tern_binary()) in f.read_text()]
    assert len(cache) == 1
    assert "<version>7002000</version>" in cache[0]
    assert re.search(r"<package>tern-[\d.]+</package>", cache[0])
    assert re.search(r"<machine type='kvm' name='virt'[^>]*default='yes'", cache[0])
    sent = [json.loads(m) for m in daemon.qmp_sent()]
    asked = {m["execute"] for m in sent}
    for cmd in ("query-qmp-schema", "query-machines", "qom-list-types",
                "query-cpu-definitions", "query-kvm", "query-migrate-capabilities",
                "device-list-properties", "qom-list-properties",
                "query-command-line-options"):
        assert cmd in asked, f"the probe no longer asks {cmd}"


def test_domain_life_cycle(daemon, guest_kit, disk, tmp_path):
    name = define(daemon, tmp_path, disk)
    daemon.virsh("start", name)
    assert daemon.domstate(name) == "running"
    first = rounds(daemon, name)
    assert first[1] == first[0] + 1

    # -name, -uuid, -smp and the disk as libvirt gave them.
    status = json.loads(daemon.monitor(name, '{"execute":"query-status"}'))
    assert status["return"]["status"] == "running"
    assert "VM status: running" in daemon.monitor(name, "info status", hmp=True)
    cpus = json.loads(daemon.monitor(name, '{"execute":"query-cpus-fast"}'))["return"]
    assert [c["props"] for c in cpus] == [{"core-id": 0, "thread-id": 0, "socket-id": 0}]

    daemon.virsh("suspend", name)
    assert daemon.domstate(name) == "paused"
    daemon.virsh("resume", name)
    assert daemon.domstate(name) == "running"

    blk = daemon.virsh("domblklist", name).stdout
    assert re.search(rf"^\s*vda\s+{re.escape(str(disk))}\s*$", blk, re.M), blk
    stats = dict(l.strip().split("=", 1) for l in
                 daemon.virsh("domstats", name).stdout.splitlines() if "=" in l)
    assert stats["block.0.name"] == "vda"
    assert int(stats["block.0.wr.bytes"]) > 0 and int(stats["block.0.rd.reqs"]) > 0
    assert stats["vcpu.current"] == "1" and stats["state.state"] == "1"

    # save stops the guest and migrates it into a file through a passed fd;
    # restore starts a new tern with -incoming defer and migrate-incoming fd:.
    before = rounds(daemon, name, 1)[0]
    saved = tmp_path / "saved.img"
    daemon.virsh("save", name, str(saved))
    assert daemon.domstate(name) == "shut off"
    daemon.virsh("restore", str(saved))
    assert daemon.domstate(name) == "running"
    after = rounds(daemon, name, 2)
    assert after[0] > before and after[1] == after[0] + 1, (before, after)
    sent = daemon.qmp_sent()
    assert any('"getfd"' in m for m in sent) and any('"fd:migrate"' in m for m in sent)
    assert any('"migrate-incoming"' in m for m in sent)

    pid = daemon.emulator_pid(name)
    daemon.virsh("destroy", name)
    assert daemon.domstate(name) == "shut off"
    assert not os.path.exists(f"/proc/{pid}/cmdline") or \
        b"tern" not in open(f"/proc/{pid}/cmdline", "rb").read()
    daemon.virsh("undefine", name)


def test_command_line_and_threads(daemon, guest_kit, disk, tmp_path):
    """What libvirt asked for took effect: the sandbox is on, thread names
    are QEMU's (debug-threads=on), guest RAM is left out of core dumps."""
    name = define(daemon, tmp_path, disk)
    daemon.virsh("start", name)
    rounds(daemon, name, 1)
    pid = daemon.emulator_pid(name)
    argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
    assert b"-sandbox" in argv and b"debug-threads=on" in b" ".join(argv)
    status = open(f"/proc/{pid}/status").read()
    assert re.search(r"^Seccomp:\s+2$", status, re.M), "no seccomp filter"
    names = {open(f"/proc/{pid}/task/{t}/comm").read().strip()
             for t in os.listdir(f"/proc/{pid}/task")}
    assert "CPU 0/KVM" in names, names
    # dump-guest-core=off: the 128 MiB of guest RAM carry "dd" (don't dump).
    smaps = open(f"/proc/{pid}/smaps").read().split("\n")
    ram = [i for i, l in enumerate(smaps)
           if re.match(r"^Size:\s+131072 kB$", l)]
    assert ram, "no 128 MiB mapping"
    flags = [l for l in smaps[ram[0]:ram[0] + 40] if l.startswith("VmFlags:")][0]
    assert " dd" in flags, flags
    daemon.virsh("destroy", name)


@pytest.fixture
def ns_pair():
    """Two network namespaces joined by a veth pair (ternlib.netns)."""
    with netns.netns_pair() as pair:
        yield pair


def test_migrate_live_between_daemons(guest_kit, disk, tmp_path, ns_pair):
    """virsh migrate --live from one private daemon to another, each in its
    own network and UTS namespace (libvirt refuses to migrate to a host of
    the same name): the destination's tern is started with -incoming defer
    and migrate-incoming on TCP, the source migrates with return-path and
    late-block-activate, and the guest's disk rounds go on there."""
    ns, addrs = ns_pair
    tag = uuid.uuid4().hex[:6]
    with lv.LibvirtDaemon("src", netns=ns[0], hostname=f"tlv-{tag}-src") as src, \
            lv.LibvirtDaemon("dst", netns=ns[1], hostname=f"tlv-{tag}-dst") as dst:
        name = define(src, tmp_path, disk)
        src.virsh("start", name)
        before = rounds(src, name, 2)[-1]
        # --unsafe: libvirt cannot tell that /tmp is shared by both "hosts".
        r = src.virsh("migrate", "--live", "--unsafe", name, dst.uri,
                      "--migrateuri", f"tcp://{addrs[1]}", check=False, timeout=300)
        assert r.returncode == 0, r.stderr + src.log_tail() + dst.log_tail()
        assert dst.domstate(name) == "running"
        assert src.domstate(name) == "shut off"
        sent = dst.qmp_sent()
        assert any('"late-block-activate","state":true' in m for m in sent), sent
        assert any('"migrate-incoming"' in m and '"tcp:' in m for m in sent), sent
        assert any('"return-path","state":true' in m for m in src.qmp_sent())
        after = rounds(dst, name, 2)
        assert after[0] > before and after[1] == after[0] + 1, (before, after)
        dst.virsh("destroy", name)


def test_internal_snapshots(daemon, guest_kit, disk, tmp_path):
    """snapshot-create-as, -list, -revert and -delete on a running domain:
    libvirt 9.0 takes internal snapshots with HMP savevm, loadvm and delvm
    through human-monitor-command. After the revert the guest is back where
    the snapshot caught it: its disk rounds count on from there."""
    name = define(daemon, tmp_path, disk)
    daemon.virsh("start", name)
    rounds(daemon, name, 1)
    assert "There is no snapshot available" in \
        daemon.monitor(name, "info snapshots", hmp=True)
    at_snapshot = rounds(daemon, name, 1)[0]
    daemon.virsh("snapshot-create-as", name, "s1", "--description", "tern")
    assert daemon.virsh("snapshot-list", name, "--name").stdout.split() == ["s1"]
    assert "s1" in daemon.monitor(name, "info snapshots", hmp=True)
    later = rounds(daemon, name, 1)[0]
    while later < at_snapshot + 20:
        later = rounds(daemon, name, 1)[0]
    daemon.virsh("snapshot-revert", name, "s1")
    assert daemon.domstate(name) == "running"
    back = rounds(daemon, name, 2)
    # The snapshot was taken after round at_snapshot and a few more at most.
    assert at_snapshot < back[0] < later and back[1] == back[0] + 1, \
        (at_snapshot, later, back)
    daemon.virsh("snapshot-delete", name, "s1")
    assert daemon.virsh("snapshot-list", name, "--name").stdout.split() == []
    assert "s1" not in daemon.monitor(name, "info snapshots", hmp=True)
    daemon.virsh("destroy", name)
