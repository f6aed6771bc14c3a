"""The postcopy stream on the wire, against QEMU 7.2: a QEMU -> QEMU
postcopy migration of the guest kit's dirty workload is recorded by a
forwarding proxy, and tern-stream decodes it (ADVISE with its page sizes,
the DISCARD ranges, the PACKAGED blob with LISTEN, the device state and
RUN, the pages after it, EOF); a tern -> tern postcopy stream is recorded
the same way and carries the same commands in the same order."""
import re
import subprocess

import pytest

from ternlib import QemuVm, TernVm, guestkit, has_kvm, tern_stream
from ternlib.migration import wait_runstate
from ternlib.proxy import Proxy
from ternlib import postcopy as pc

pytestmark = pytest.mark.skipif(not has_kvm(), reason="needs /dev/kvm")

MEM = 128
COMMAND_RE = r"^@\d+ command (\S+) length \d+$"


def record_postcopy(tmp_path, vm_cls):
    append = guestkit.cmdline("dirty", mem=pc.DIRTY_MEM, rate=0, report=50,
                              walk="random")
    caps = pc.caps_for()
    rec = str(tmp_path / "stream")
    with vm_cls(tmp_path, append=append, memory=MEM, qmp=True, name="src") as src, \
         vm_cls(tmp_path, append=append, memory=MEM, qmp=True, name="dst",
                incoming="defer") as dst:
        guestkit.wait_dirty_passes(src.serial, 2, timeout=30)
        target = "unix:" + dst.sock_path("in")
        pc.prepare_destination(dst, target, caps)
        proxy = Proxy("unix:" + src.sock_path("px"), target, record=rec)
        try:
            pc.start_source(src, proxy.uri, caps)
            pc.wait_first_pass(src)
            src.qmp().execute("migrate-start-postcopy")
            wait_runstate(dst, "running", timeout=30)
            pc.wait_completed(src, dst)
            pc.verify_after(dst, src, passes=2)
        finally:
            proxy.kill()
    return rec + ".0"


def decode(path):
    r = subprocess.run([str(tern_stream()), path], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    return r.stdout


def commands(text):
    return re.findall(COMMAND_RE, text, re.M)


def check_postcopy_stream(text):
    cmds = commands(text)
    # QEMU 7.2's order: return path, advice, discards, the package, then
    # the rest of RAM after it.
    assert cmds[:3] == ["OPEN_RETURN_PATH", "PING", "POSTCOPY_ADVISE"], cmds
    i = cmds.index("POSTCOPY_RAM_DISCARD")
    while cmds[i] == "POSTCOPY_RAM_DISCARD":
        i += 1
    assert cmds[i:i + 6] == ["PING", "PACKAGED", "POSTCOPY_LISTEN", "PING",
                             "POSTCOPY_RUN", "PING"], cmds
    assert "RAM postcopy: host page sizes 0x1000, target page size 4096" in text
    assert re.search(r"^  discard 0x[0-9a-f]+\+0x[0-9a-f]+$", text, re.M)
    pkg = text[text.index("packaged stream of"):text.index("  }\n")]
    assert "FULL section" in pkg, pkg
    after = text[text.index("  }\n"):]
    assert re.search(r"(PART|END) section \d+ 'ram'", after), after[:2000]
    assert re.search(r"^@\d+ EOF$", after, re.M)
    assert "vmdesc: none" in text        # no VM description in postcopy
    return cmds


def test_qemu_postcopy_stream_decodes(tmp_path):
    path = record_postcopy(tmp_path, QemuVm)
    check_postcopy_stream(decode(path))


def test_tern_postcopy_stream_matches_qemus_order(tmp_path):
    path = record_postcopy(tmp_path, TernVm)
    cmds = check_postcopy_stream(decode(path))
    assert cmds.count("PACKAGED") == 1
