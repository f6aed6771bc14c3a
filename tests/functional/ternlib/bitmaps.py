"""A persistent bitmap's dirty extents as each tool reports them, for
comparing tern with QEMU 7.2:

    tern_extents(img, "b")            # tern-img bitmap --dump
    qemu_extents(img, "b", workdir)   # qemu-nbd --bitmap + qemu-img map

Both return sorted (offset, length) tuples with adjacent runs merged.
"""
import json
import shutil
import subprocess
import time

from . import paths

QEMU_NBD = shutil.which("qemu-nbd") or "/usr/bin/qemu-nbd"
TIMEOUT = 60


def tern_extents(img, name):
    out = subprocess.run([str(paths.tern_img()), "bitmap", "--dump", str(img),
                          name], capture_output=True, text=True,
                         timeout=TIMEOUT, check=True).stdout
    return [tuple(e) for e in json.loads(out)["extents"]]


def _map(opts):
    """qemu-img map over NBD; the socket exists a moment before listen()."""
    for _ in range(100):
        p = subprocess.run([paths.qemu_img(), "map", "--output=json",
                            "--image-opts", opts], capture_output=True,
                           text=True, timeout=TIMEOUT)
        if p.returncode == 0 or "Connection refused" not in p.stderr:
            break
        time.sleep(0.05)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def qemu_extents(img, name, workdir, tag=""):
    """Dirty extents of `name` as QEMU serves them: qemu-nbd --bitmap, read
    with qemu-img map x-dirty-bitmap (dirty ranges show as "data": false)."""
    sock = workdir / f"nbd-{name}{tag}.sock"
    nbd = subprocess.Popen([QEMU_NBD, "-r", "-f", "qcow2", "-k", str(sock),
                            f"--bitmap={name}", "-t", str(img)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while not sock.exists():
            if nbd.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("qemu-nbd did not start: "
                                     + nbd.stderr.read().decode())
            time.sleep(0.02)
        mapping = _map(f"driver=nbd,server.type=unix,server.path={sock},"
                       f"x-dirty-bitmap=qemu:dirty-bitmap:{name}")
    finally:
        nbd.kill()
        nbd.wait(timeout=10)
        sock.unlink(missing_ok=True)
    extents = []
    for m in mapping:
        if m["data"]:
            continue        # clean
        if extents and sum(extents[-1]) == m["start"]:
            extents[-1] = (extents[-1][0], extents[-1][1] + m["length"])
        else:
            extents.append((m["start"], m["length"]))
    return extents
