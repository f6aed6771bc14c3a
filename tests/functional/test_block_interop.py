"""Block layer interoperability with QEMU 7.2's qemu-img / qemu-io, both ways:
images tern-img creates and changes (data, snapshots, vmstate) pass
`qemu-img check` and read back in qemu-io; images, patterns and snapshots made
by QEMU read back identically in tern-img; QEMU's image locks and tern's
exclude each other; and kill -9 of a tern writer leaves a consistent image."""
import json
import random
import os
import signal
import subprocess
import time

import pytest

from ternlib import paths

QEMU_IMG = paths.qemu_img()
QEMU_IO = "/usr/bin/qemu-io"
SPECS = [(512, "1.1"), (512, "0.10"), (65536, "1.1"), (65536, "0.10"),
         (2 * 1024 * 1024, "1.1"), (2 * 1024 * 1024, "0.10")]


def run(*args, check=True, timeout=120):
    p = subprocess.run([str(a) for a in args], capture_output=True,
                       text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"{args} failed ({p.returncode}):\n"
                             f"{p.stdout}\n{p.stderr}")
    return p


def tern_img(*args, **kw):
    return run(paths.tern_img(), *args, **kw)


def qemu_check_clean(path):
    p = run(QEMU_IMG, "check", "--output=json", path, check=False)
    info = json.loads(p.stdout)
    assert p.returncode == 0, p.stdout + p.stderr
    assert info.get("corruptions", 0) == 0 and info.get("leaks", 0) == 0
    assert info["check-errors"] == 0


def qemu_io(path, *cmds, check=True):
    args = [QEMU_IO, "-f", "qcow2"]
    for c in cmds:
        args += ["-c", c]
    p = run(*args, path, check=check)
    if check:
        assert "fail" not in p.stdout.lower(), p.stdout
    return p


def tern_io(path, *cmds, check=True, readonly=False):
    args = ["io"] + (["-r"] if readonly else [])
    for c in cmds:
        args += ["-c", c]
    return tern_img(*args, path, check=check)


@pytest.fixture(autouse=True)
def need_tools():
    if not paths.tern_img().exists():
        pytest.skip(f"tern-img not built in {paths.build_dir()}")
    if not os.path.exists(QEMU_IO):
        pytest.skip("qemu-io (qemu-utils) not installed")


@pytest.mark.parametrize("cs,compat", SPECS)
def test_tern_writes_qemu_reads(tmp_path, cs, compat):
    img = tmp_path / "t.qcow2"
    tern_img("create", "-f", "qcow2", "-o",
             f"cluster_size={cs},compat={compat}", img, "64M")
    qemu_check_clean(img)
    tern_io(img, "write -P 0x5a 0 5M", "write -P 0x11 9000 5000",
            "write -P 0x22 60M 4M", "write -z 2M 1M")
    tern_img("snapshot", "-c", "before", img)
    tern_io(img, "write -P 0x33 0 1M")
    qemu_check_clean(img)
    qemu_io(img, "read -P 0x33 0 1M", "read -P 0x5a 1M 1M",
            "read -P 0 2M 1M", "read -P 0x5a 3M 2M", "read -P 0x22 60M 4M",
            "read -P 0 5M 1M")
    info = json.loads(run(QEMU_IMG, "info", "--output=json", img).stdout)
    assert info["cluster-size"] == cs
    assert info["virtual-size"] == 64 << 20
    assert info["format-specific"]["data"]["compat"] == compat
    assert [s["name"] for s in info["snapshots"]] == ["before"]
    assert "before" in run(QEMU_IMG, "snapshot", "-l", img).stdout
    run(QEMU_IMG, "snapshot", "-a", "before", img)
    qemu_io(img, "read -P 0x5a 0 9000", "read -P 0x11 9000 5000",
            "read -P 0x5a 14000 1000000")
    qemu_check_clean(img)


@pytest.mark.parametrize("cs,compat", SPECS)
def test_qemu_writes_tern_reads(tmp_path, cs, compat):
    img = tmp_path / "q.qcow2"
    run(QEMU_IMG, "create", "-f", "qcow2", "-o",
        f"cluster_size={cs},compat={compat}", img, "64M")
    qemu_io(img, "write -P 0x41 0 3M", "write -P 0x42 10M 4k")
    run(QEMU_IMG, "snapshot", "-c", "s1", img)
    qemu_io(img, "write -P 0x43 1M 1M", "write -z 10M 4k")
    tern_io(img, "read -P 0x41 0 1M", "read -P 0x43 1M 1M",
            "read -P 0x41 2M 1M", "read -P 0 10M 4k", readonly=True)
    out = tern_img("check", img)
    assert "No errors were found" in out.stdout
    assert out.stdout == run(QEMU_IMG, "check", img).stdout
    assert json.loads(tern_img("check", "--output=json", img).stdout) == \
        json.loads(run(QEMU_IMG, "check", "--output=json", img).stdout)
    ours = json.loads(tern_img("info", "--output=json", img).stdout)
    theirs = json.loads(run(QEMU_IMG, "info", "--output=json", img).stdout)
    for key in ("virtual-size", "cluster-size", "format", "format-specific",
                "dirty-flag"):
        assert ours[key] == theirs[key], key
    assert ours["snapshots"] == theirs["snapshots"]
    # apply QEMU's snapshot in tern, then QEMU sees the old data
    tern_img("snapshot", "-a", "s1", img)
    qemu_io(img, "read -P 0x41 0 3M", "read -P 0x42 10M 4k")
    qemu_check_clean(img)
    tern_img("snapshot", "-d", "s1", img)
    qemu_check_clean(img)
    assert "s1" not in run(QEMU_IMG, "snapshot", "-l", img).stdout


def test_snapshot_refusals_match_qemu_img(tmp_path):
    """snapshot -a with a dirty bitmap on the image (it would not record
    the revert), -a and -d of a snapshot that is not there: the same words
    and exit status as qemu-img, and the data left alone."""
    imgs = {}
    for tool in ("tern", "qemu"):
        img = tmp_path / f"{tool}.qcow2"
        run(QEMU_IMG, "create", "-q", "-f", "qcow2", img, "16M")
        qemu_io(img, "write -P 0x41 0 64k")
        run(QEMU_IMG, "snapshot", "-c", "s1", img)
        qemu_io(img, "write -P 0x42 0 64k")
        run(QEMU_IMG, "bitmap", "--add", img, "b0")
        imgs[tool] = img
    for args in (("-a", "s1"), ("-a", "nope"), ("-d", "nope")):
        ours = tern_img("snapshot", *args, imgs["tern"], check=False)
        theirs = run(QEMU_IMG, "snapshot", *args, imgs["qemu"], check=False)
        assert ours.returncode == theirs.returncode == 1, args
        assert ours.stderr.replace("tern-img:", "qemu-img:") == \
            theirs.stderr, (args, ours.stderr, theirs.stderr)
    for img in imgs.values():
        qemu_io(img, "read -P 0x42 0 64k")


def test_json_output_is_qemu_img_bytes(tmp_path):
    """info and check --output=json print exactly qemu-img's text: the same
    members, order, indentation and separators."""
    img = tmp_path / "j.qcow2"
    run(QEMU_IMG, "create", "-f", "qcow2", img, "64M")
    run(QEMU_IMG, "snapshot", "-c", "s1", img)
    run(QEMU_IMG, "bitmap", "--add", img, "b0")
    for cmd in ("info", "check"):
        ours = tern_img(cmd, "--output=json", img).stdout
        assert ours == run(QEMU_IMG, cmd, "--output=json", img).stdout, cmd


def test_compare_with_raw(tmp_path):
    img, raw = tmp_path / "c.qcow2", tmp_path / "c.raw"
    run(QEMU_IMG, "create", "-f", "qcow2", img, "8M")
    qemu_io(img, "write -P 0x99 100k 300k")
    run(QEMU_IMG, "convert", "-O", "raw", img, raw)
    assert "identical" in tern_img("compare", img, raw).stdout
    tern_io(raw, "write -P 0x98 200k 1")
    p = tern_img("compare", img, raw, check=False)
    assert p.returncode == 1 and "mismatch at offset 204800" in p.stdout


def test_vmstate_survives_qemu_check(tmp_path):
    img = tmp_path / "vm.qcow2"
    tern_img("create", "-f", "qcow2", img, "16M")
    tern_io(img, "write -P 1 0 16M", "vmsave -P 0x7e 0 5M")
    tern_img("snapshot", "-c", "vm", img)
    qemu_check_clean(img)
    tern_io(img, "vmload -P 0x7e 0 5M", "read -P 1 0 16M", readonly=True)


def test_check_exit_codes(tmp_path):
    img = tmp_path / "leak.qcow2"
    run(QEMU_IMG, "create", "-f", "qcow2", img, "1M")
    with open(img, "r+b") as f:     # refcount of unused cluster 9 -> 1
        f.seek(65536)
        rb = int.from_bytes(f.read(8), "big")
        f.seek(rb + 2 * 9)
        f.write((1).to_bytes(2, "big"))
        f.truncate(10 * 65536)
    p = tern_img("check", img, check=False)
    assert p.returncode == 3 and "1 leaked clusters" in p.stdout
    assert run(QEMU_IMG, "check", img, check=False).returncode == 3
    tern_img("check", "-r", "leaks", img)
    qemu_check_clean(img)
    with open(img, "r+b") as f:     # header cluster refcount 0: corruption
        f.seek(rb)
        f.write((0).to_bytes(2, "big"))
    p = tern_img("check", "--output=json", img, check=False)
    assert p.returncode == 2 and json.loads(p.stdout)["corruptions"] == 1
    tern_img("check", "-r", "all", img)
    qemu_check_clean(img)


def test_unsupported_features_named(tmp_path):
    img = tmp_path / "b.qcow2"
    base = tmp_path / "base.qcow2"
    run(QEMU_IMG, "create", "-f", "qcow2", base, "1M")
    run(QEMU_IMG, "create", "-f", "qcow2", "-b", base, "-F", "qcow2", img)
    p = tern_img("info", img, check=False)
    assert p.returncode == 1 and "backing file" in p.stderr
    enc = tmp_path / "e.qcow2"
    run(QEMU_IMG, "create", "-f", "qcow2", "--object",
        "secret,id=s0,data=pw", "-o", "encrypt.format=luks,encrypt.key-secret=s0",
        enc, "1M")
    p = tern_img("info", enc, check=False)
    assert p.returncode == 1 and "encryption" in p.stderr
    ext = tmp_path / "x.qcow2"
    run(QEMU_IMG, "create", "-f", "qcow2", "-o", "extended_l2=on", ext, "1M")
    p = tern_img("info", ext, check=False)
    assert p.returncode == 1 and "extended L2" in p.stderr
    comp = tmp_path / "c.qcow2"
    run(QEMU_IMG, "create", "-f", "qcow2", "-o", "compression_type=zstd",
        comp, "1M")
    p = tern_img("info", comp, check=False)
    assert p.returncode == 1 and "compression type" in p.stderr


def spawn_qemu_io_holder(img, *extra):
    """qemu-io holding img open (read-write unless -r) until killed."""
    p = subprocess.Popen([QEMU_IO, "-f", "qcow2", *extra, img],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 10
    ino = os.stat(img).st_ino
    while time.time() < deadline:       # wait until its locks are visible
        with open("/proc/locks") as f:
            if any(f":{ino} " in line for line in f):
                return p
        time.sleep(0.05)
    p.kill()
    raise AssertionError("qemu-io did not lock the image")


def test_locking_against_qemu(tmp_path):
    img = tmp_path / "lock.qcow2"
    tern_img("create", "-f", "qcow2", img, "1M")
    holder = spawn_qemu_io_holder(img)
    try:
        p = tern_io(img, "write -P 1 0 512", check=False)
        assert p.returncode == 1
        assert 'Failed to get "write" lock' in p.stderr or \
               'Failed to get shared "write" lock' in p.stderr
        assert "Is another process using the image" in p.stderr
        p = tern_img("info", img, check=False)      # reading forbids writers
        assert p.returncode == 1 and 'shared "write" lock' in p.stderr
        assert tern_img("info", "-U", img).returncode == 0
    finally:
        holder.kill()
        holder.wait(timeout=10)
    # and the reverse: tern holds the image, QEMU must refuse to write
    args = [str(paths.tern_img()), "io", "-c", "stress 1 1000000 4k 1000000",
            str(img)]
    writer = subprocess.Popen(args, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().startswith("i ")   # writing now
        p = run(QEMU_IO, "-f", "qcow2", "-c", "write -P 2 0 512", img,
                check=False)
        assert p.returncode != 0 and "lock" in (p.stdout + p.stderr)
    finally:
        writer.kill()
        writer.wait(timeout=10)


@pytest.mark.parametrize("cs,snapshot", [(4096, False), (65536, True)])
def test_kill9_writer_consistent(tmp_path, cs, snapshot):
    """kill -9 of a tern writer mid-workload: qemu-img check finds at most
    leaks, and every write acknowledged before the last flush reads back.
    With a snapshot taken first, the writes copy shared clusters and L2
    tables (COW) while being killed."""
    img = tmp_path / "crash.qcow2"
    tern_img("create", "-f", "qcow2", "-o", f"cluster_size={cs}", img, "64M")
    if snapshot:
        tern_io(img, "write -P 0 0 64M")
        tern_img("snapshot", "-c", "base", img)
    log = tmp_path / "writer.log"
    with open(log, "w") as out:
        writer = subprocess.Popen(
            [str(paths.tern_img()), "io", "-c", "stress 7 100000 8k 8", img],
            stdout=out, stderr=subprocess.DEVNULL)
        try:
            deadline = time.time() + 30
            while time.time() < deadline and log.stat().st_size < 60000:
                time.sleep(0.02)
            assert writer.poll() is None, "writer ended before the kill"
        finally:
            writer.send_signal(signal.SIGKILL)
            writer.wait(timeout=10)
    lines = log.read_text().splitlines()
    last_flush = max(i for i, l in enumerate(lines) if l.startswith("f "))
    final = {}      # offset -> set of acceptable patterns
    for i, line in enumerate(lines):
        kind = line[:2]
        if kind not in ("w ", "i ") or len(line.split()) != 3:
            continue    # the kill may cut the last line short
        _, off, pat = line.split()
        if i < last_flush and kind == "w ":
            final[int(off)] = {int(pat)}
        elif i > last_flush:
            # acknowledged but not flushed ("w"), or started and perhaps
            # landed before the kill ("i"): old or new value
            final.setdefault(int(off), {0}).add(int(pat))
    assert len(final) > 50
    p = run(QEMU_IMG, "check", "--output=json", img, check=False)
    res = json.loads(p.stdout)
    assert res.get("corruptions", 0) == 0 and res["check-errors"] == 0
    assert p.returncode in (0, 3)
    cmds = []
    for off, pats in sorted(final.items()):
        if len(pats) == 1:
            cmds.append(f"read -P {next(iter(pats))} {off} 8k")
    for chunk in range(0, len(cmds), 200):
        tern_io(img, *cmds[chunk:chunk + 200], readonly=True)
    tern_img("check", "-r", "leaks", img)
    qemu_check_clean(img)


def test_lazy_refcounts_dirty_image_repaired(tmp_path):
    """QEMU crashed with lazy refcounts: the dirty bit is set and refcounts
    are stale. tern-img check reports it; a read-write open repairs it."""
    img = tmp_path / "lazy.qcow2"
    run(QEMU_IMG, "create", "-f", "qcow2", "-o", "lazy_refcounts=on", img,
        "16M")
    run(QEMU_IO, "-f", "qcow2", "-c", "write -P 0x61 0 1M", "-c",
        "write -P 0x62 5M 64k", "-c", "abort", img, check=False)
    info = json.loads(tern_img("info", "--output=json", img).stdout)
    assert info["dirty-flag"] is True
    assert info["format-specific"]["data"]["lazy-refcounts"] is True
    assert tern_img("check", img, check=False).returncode == 2
    tern_io(img, "read -P 0x61 0 1M", "read -P 0x62 5M 64k")   # repairs
    info = json.loads(tern_img("info", "--output=json", img).stdout)
    assert info["dirty-flag"] is False
    qemu_check_clean(img)


def test_locking_against_qemu_system(tmp_path):
    """A paused QEMU VM with the image on virtio-blk: tern can neither write
    it nor open it read-only without -U (QEMU forbids other writers and
    holds the write permission itself)."""
    qemu = paths.qemu_binary()
    if not os.path.exists(qemu):
        pytest.skip("qemu-system-x86_64 is not installed (scripts/setup-deps)")
    img = tmp_path / "vm.qcow2"
    tern_img("create", "-f", "qcow2", img, "16M")
    vm = subprocess.Popen(
        [qemu, "-M", "pc", "-S", "-display", "none", "-nodefaults",
         "-monitor", "none", "-serial", "none",
         "-drive", f"file={img},format=qcow2,if=none,id=d0",
         "-device", "virtio-blk-pci,drive=d0"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True)
    try:
        ino = os.stat(img).st_ino
        deadline = time.time() + 30
        while time.time() < deadline:
            with open("/proc/locks") as f:
                held = [l.split()[-2] for l in f if f":{ino} " in l]
            if "201" in held:
                break
            assert vm.poll() is None, vm.stderr.read()
            time.sleep(0.1)
        else:
            raise AssertionError("QEMU did not lock the image")
        p = tern_io(img, "write -P 1 0 512", check=False)
        assert p.returncode == 1 and 'Failed to get "write" lock' in p.stderr
        p = tern_img("info", img, check=False)
        assert p.returncode == 1
        assert 'Failed to get shared "write" lock' in p.stderr
        assert tern_img("info", "-U", img).returncode == 0
    finally:
        vm.kill()
        vm.wait(timeout=10)
    tern_io(img, "write -P 1 0 512")        # free again once QEMU is gone


def test_snapshot_list_text_matches_qemu(tmp_path):
    img = tmp_path / "l.qcow2"
    run(QEMU_IMG, "create", "-f", "qcow2", img, "32M")
    run(QEMU_IMG, "snapshot", "-c", "one", img)
    tern_img("snapshot", "-c", "two-with-a-longer-name", img)
    ours = tern_img("snapshot", "-l", img).stdout
    assert ours == run(QEMU_IMG, "snapshot", "-l", img).stdout
    assert "two-with-a-longer-name" in ours
    human = tern_img("info", img).stdout
    assert "virtual size: 32 MiB (33554432 bytes)\n" in human


@pytest.mark.parametrize("cs", [512, 65536])
def test_random_ops_against_model(tmp_path, cs):
    """Seeded random writes, zeroes, discards and snapshot create/apply/
    delete through tern-img, checked against an in-memory model with
    qemu-io reads and qemu-img check after every round."""
    rng = random.Random(cs)
    size = 4 << 20
    img = tmp_path / "m.qcow2"
    tern_img("create", "-f", "qcow2", "-o", f"cluster_size={cs}", img,
             str(size))
    model = bytearray(size)
    snaps = {}
    for rnd in range(12):
        cmds = []
        for _ in range(6):
            off = rng.randrange(0, size - 1) & ~511
            length = min(rng.choice([512, 4096, 65536, 300000]), size - off)
            length = max(512, length & ~511)
            kind = rng.choice(["write", "write", "zero", "discard"])
            if kind == "write":
                pat = rng.randrange(1, 256)
                cmds.append(f"write -P {pat} {off} {length}")
                model[off:off + length] = bytes([pat]) * length
            elif kind == "zero":
                cmds.append(f"write -z {off} {length}")
                model[off:off + length] = bytes(length)
            else:       # only whole clusters are surely zero afterwards
                lo, hi = -(-off // cs) * cs, (off + length) // cs * cs
                if hi > lo:
                    cmds.append(f"discard {lo} {hi - lo}")
                    model[lo:hi] = bytes(hi - lo)
        tern_io(img, *cmds)
        action = rng.choice(["create", "create", "apply", "delete", None])
        name = f"s{rnd}"
        if action == "create":
            tern_img("snapshot", "-c", name, img)
            snaps[name] = bytes(model)
        elif action == "apply" and snaps:
            name = rng.choice(sorted(snaps))
            tern_img("snapshot", "-a", name, img)
            model[:] = snaps[name]
        elif action == "delete" and snaps:
            name = rng.choice(sorted(snaps))
            tern_img("snapshot", "-d", name, img)
            del snaps[name]
        qemu_check_clean(img)
    raw = tmp_path / "m.raw"
    run(QEMU_IMG, "convert", "-O", "raw", img, raw)
    assert raw.read_bytes() == bytes(model)
    for name, content in snaps.items():
        run(QEMU_IMG, "snapshot", "-a", name, img)
        run(QEMU_IMG, "convert", "-O", "raw", img, raw)
        assert raw.read_bytes() == content, name


def test_resize(tmp_path):
    img = tmp_path / "r.qcow2"
    tern_img("create", "-f", "qcow2", img, "10M")
    tern_io(img, "write -P 7 9M 1M")
    assert tern_img("resize", img, "+54M").stdout == "Image resized.\n"
    info = json.loads(run(QEMU_IMG, "info", "--output=json", img).stdout)
    assert info["virtual-size"] == 64 << 20
    qemu_check_clean(img)
    qemu_io(img, "read -P 7 9M 1M", "read -P 0 10M 54M")
    p = tern_img("resize", img, "-1M", check=False)
    assert p.returncode == 1 and "shrinking" in p.stderr
    raw = tmp_path / "r.raw"
    tern_img("create", "-f", "raw", raw, "1M")
    tern_img("resize", "-f", "raw", raw, "3M")
    assert raw.stat().st_size == 3 << 20
