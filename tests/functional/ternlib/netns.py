"""Two network namespaces joined by a veth pair, for migrations across a
real (virtual) link. Names and addresses are random so that tests running
side by side on the host never collide; everything is removed on exit. Skips
the test where the host does not allow namespaces or veth devices."""
import contextlib
import random
import subprocess
import uuid

import pytest


def ip(*args):
    try:
        return subprocess.run(["ip", *args], capture_output=True, text=True,
                              timeout=10)
    except FileNotFoundError:
        pytest.skip("the ip tool (iproute2) is not installed")


def _must(*args):
    r = ip(*args)
    if r.returncode != 0:
        pytest.skip(f"cannot set up network namespaces: ip {' '.join(args)}: "
                    f"{r.stderr.strip()}")


@contextlib.contextmanager
def netns_pair():
    """Yields ((ns_a, ns_b), (addr_a, addr_b))."""
    tag = uuid.uuid4().hex[:6]
    ns = (f"tern-{tag}-a", f"tern-{tag}-b")
    veth = (f"tv{tag}a", f"tv{tag}b")
    net = f"10.{random.randint(100, 250)}.{random.randint(0, 255)}"
    addrs = (f"{net}.1", f"{net}.2")
    made = []
    try:
        for n in ns:
            _must("netns", "add", n)
            made.append(n)
        _must("link", "add", veth[0], "type", "veth", "peer", "name", veth[1])
        for i in range(2):
            _must("link", "set", veth[i], "netns", ns[i])
            _must("-n", ns[i], "addr", "add", f"{addrs[i]}/24", "dev", veth[i])
            _must("-n", ns[i], "link", "set", veth[i], "up")
            _must("-n", ns[i], "link", "set", "lo", "up")
        yield ns, addrs
    finally:
        for n in made:
            ip("netns", "del", n)    # takes its end of the veth pair along
