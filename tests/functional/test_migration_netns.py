"""Live migration over TCP between two network namespaces joined by a veth
pair, each tern in its own namespace (skipped where the host does not let us
create namespaces)."""
import os

import pytest

from ternlib import TernVm, guestkit, has_kvm
from ternlib.netns import netns_pair as make_netns_pair

from test_migration_tern import MEM, migrate, unlimited, wait_runstate

pytestmark = pytest.mark.skipif(not has_kvm(), reason="needs /dev/kvm")


@pytest.fixture
def netns_pair():
    with make_netns_pair() as (ns, addrs):
        yield ns, addrs


class NsTernVm(TernVm):
    def __init__(self, workdir, netns, **kw):
        super().__init__(workdir, **kw)
        self.netns = netns

    def args(self):
        # ip netns exec execs tern in place: the pid is tern's.
        return ["ip", "netns", "exec", self.netns] + super().args()


@pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")
def test_live_dirty_migration_across_network_namespaces(tmp_path, netns_pair):
    ns, addrs = netns_pair
    append = guestkit.cmdline("dirty", mem="16M", rate="8M", report=50)
    with NsTernVm(tmp_path, ns[0], append=append, memory=MEM, qmp=True,
                  name="a") as a:
        guestkit.wait_dirty_passes(a.serial, 2, timeout=20)
        uri = f"tcp:{addrs[1]}:4444"
        with NsTernVm(tmp_path, ns[1], append=append, memory=MEM,
                      qmp=True, name="b", incoming="tcp:0.0.0.0:4444") as b:
            wait_runstate(b, "inmigrate")
            unlimited(a)
            migrate(a, b, uri)
            wait_runstate(b, "running")
            last = guestkit.last_dirty_pass(a.serial) or 0
            guestkit.wait_dirty_passes(b.serial, last + 3, timeout=30)
            b.serial.assert_no_fail()
