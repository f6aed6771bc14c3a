"""Live migration over TCP between two network namespaces joined by a veth
pair, each tern in its own namespace (skipped where the host does not let us
create namespaces)."""
import os
import subprocess
import uuid

import pytest

from ternlib import TernVm, guestkit, has_kvm

from test_migration_tern import MEM, migrate, unlimited, wait_runstate

pytestmark = pytest.mark.skipif(not has_kvm(), reason="needs /dev/kvm")


def ip(*args):
    try:
        return subprocess.run(["ip", *args], capture_output=True, text=True,
                              timeout=10)
    except FileNotFoundError:
        pytest.skip("the ip tool (iproute2) is not installed")


@pytest.fixture
def netns_pair():
    tag = uuid.uuid4().hex[:6]
    ns = (f"tern-mig-{tag}-a", f"tern-mig-{tag}-b")
    veth = (f"tm{tag}a", f"tm{tag}b")
    made = []
    try:
        for n in ns:
            r = ip("netns", "add", n)
            if r.returncode != 0:
                pytest.skip(f"cannot create network namespaces: {r.stderr.strip()}")
            made.append(n)
        steps = [("link", "add", veth[0], "type", "veth", "peer", "name", veth[1]),
                 ("link", "set", veth[0], "netns", ns[0]),
                 ("link", "set", veth[1], "netns", ns[1]),
                 ("-n", ns[0], "addr", "add", "10.77.0.1/24", "dev", veth[0]),
                 ("-n", ns[1], "addr", "add", "10.77.0.2/24", "dev", veth[1]),
                 ("-n", ns[0], "link", "set", veth[0], "up"),
                 ("-n", ns[1], "link", "set", veth[1], "up"),
                 ("-n", ns[0], "link", "set", "lo", "up"),
                 ("-n", ns[1], "link", "set", "lo", "up")]
        for s in steps:
            r = ip(*s)
            if r.returncode != 0:
                pytest.skip(f"cannot set up a veth pair: ip {' '.join(s)}: {r.stderr.strip()}")
        yield ns
    finally:
        for n in made:
            ip("netns", "del", n)


class NsTernVm(TernVm):
    def __init__(self, workdir, netns, **kw):
        super().__init__(workdir, **kw)
        self.netns = netns

    def args(self):
        # ip netns exec execs tern in place: the pid is tern's.
        return ["ip", "netns", "exec", self.netns] + super().args()


@pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")
def test_live_dirty_migration_across_network_namespaces(tmp_path, netns_pair):
    append = guestkit.cmdline("dirty", mem="16M", rate="8M", report=50)
    with NsTernVm(tmp_path, netns_pair[0], append=append, memory=MEM, qmp=True,
                  name="a") as a:
        guestkit.wait_dirty_passes(a.serial, 2, timeout=20)
        uri = "tcp:10.77.0.2:4444"
        with NsTernVm(tmp_path, netns_pair[1], append=append, memory=MEM,
                      qmp=True, name="b", incoming="tcp:0.0.0.0:4444") as b:
            wait_runstate(b, "inmigrate")
            unlimited(a)
            migrate(a, b, uri)
            wait_runstate(b, "running")
            last = guestkit.last_dirty_pass(a.serial) or 0
            guestkit.wait_dirty_passes(b.serial, last + 3, timeout=30)
            b.serial.assert_no_fail()
