"""tern's command line: -version/-help, and every kind of bad input (unknown
or malformed options, bad kernels, an initrd that does not fit, RAM and CPU
counts out of range) gives a clear message and exit status 1, without a
crash or a sanitizer report."""
import subprocess

import pytest

from ternlib import paths

pytestmark = pytest.mark.needs_kvm

SANITIZER_MARKS = ("AddressSanitizer", "runtime error:", "LeakSanitizer", "Segmentation")


@pytest.fixture
def tern():
    binary = paths.tern_binary()
    if not binary.exists():
        pytest.skip(f"tern not built: {binary}")
    return str(binary)


def run(tern, *args, timeout=20):
    return subprocess.run([tern, *args], stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=timeout)


def check_error(r, *phrases):
    assert r.returncode == 1, f"status {r.returncode}\nstderr: {r.stderr}"
    for mark in SANITIZER_MARKS:
        assert mark not in r.stderr, r.stderr
    for p in phrases:
        assert p in r.stderr, f"{p!r} not in: {r.stderr}"
    assert r.stderr.startswith("tern: "), r.stderr


def test_version(tern):
    r = run(tern, "-version")
    assert r.returncode == 0
    assert r.stdout.startswith("tern version ")


def test_help_lists_options(tern):
    r = run(tern, "-help")
    assert r.returncode == 0
    for opt in ("-m SIZE", "-smp", "-kernel FILE", "-serial", "-device", "-no-reboot"):
        assert opt in r.stdout


@pytest.mark.parametrize("args,phrase", [
    (["-bogus"], "-bogus: invalid option"),
    (["--frobnicate"], "invalid option"),
    (["stray.img"], "unexpected argument"),
    (["-m"], "-m: requires an argument"),
    (["-kernel"], "requires an argument"),
    (["-accel", "tcg"], "accelerator 'tcg' is not supported"),
    (["-M", "pc"], "unknown machine type 'pc'"),
    (["-M", "virt,accel=tcg"], "kvm only"),
    (["-M", "virt,foo=1"], "invalid parameter 'foo'"),
    (["-display", "gtk"], "display 'gtk' is not supported"),
    (["-m", "0"], "too small"),
    (["-m", "1"], "too small"),
    (["-m", "abc"], "not a number"),
    (["-m", "12Q"], "not a size"),
    (["-m", "4097K"], "multiple of 4 KiB"),
    (["-smp", "0"], "at least 1"),
    (["-smp", "x"], "not a number"),
    (["-smp", "2,maxcpus=4"], "hotplug"),
    (["-device", "driver="], "-device"),
    (["-device", "a=1,a=2"], "more than once"),
    (["-name", "a,b=1"], "invalid parameter 'b'"),
])
def test_malformed_options(tern, args, phrase):
    check_error(run(tern, *args), phrase)


def test_no_kernel(tern):
    check_error(run(tern, "-m", "64"), "no -kernel given")


def test_missing_kernel(tern, tmp_path):
    check_error(run(tern, "-kernel", str(tmp_path / "nope")), "cannot read kernel")


@pytest.mark.parametrize("content", [b"", b"garbage" * 100, b"\x7fELF" + b"\0" * 10,
                                     b"MZ" + b"\0" * 0x200 + b"HdrS" + b"\0" * 100])
def test_garbage_kernel(tern, tmp_path, content):
    k = tmp_path / "kernel"
    k.write_bytes(content)
    r = run(tern, "-m", "64", "-kernel", str(k), "-serial", "none")
    check_error(r, str(k))


def test_truncated_guest_kit(tern, guest_kit, tmp_path):
    data = guest_kit.read_bytes()
    k = tmp_path / "half.elf"
    k.write_bytes(data[: len(data) // 3])
    check_error(run(tern, "-m", "64", "-kernel", str(k), "-serial", "none"),
                "kernel ELF")


def test_initrd_does_not_fit(tern, guest_kit, tmp_path):
    initrd = tmp_path / "initrd"
    with open(initrd, "wb") as f:
        f.truncate(64 << 20)      # as big as all of RAM
    check_error(run(tern, "-m", "64", "-kernel", str(guest_kit), "-initrd", str(initrd),
                    "-serial", "none"), "initrd", "does not fit")


def test_missing_initrd(tern, guest_kit, tmp_path):
    check_error(run(tern, "-kernel", str(guest_kit), "-initrd", str(tmp_path / "none")),
                "cannot read initrd")


def test_ram_larger_than_host(tern, guest_kit):
    check_error(run(tern, "-m", "64T", "-kernel", str(guest_kit), "-serial", "none"),
                "exceeds the host")


def test_ram_size_overflow(tern):
    check_error(run(tern, "-m", "99999999999T"), "too large")


def test_smp_above_limit(tern, guest_kit):
    check_error(run(tern, "-smp", "300", "-kernel", str(guest_kit), "-serial", "none"),
                "exceeds the limit")


def test_smp_far_above_limit(tern):
    check_error(run(tern, "-smp", "100000"), "too many CPUs")


@pytest.mark.parametrize("dev,phrase", [
    ("no-such-device", "unknown device driver 'no-such-device'"),
    ("isa-debug-exit,bogus=1", "invalid parameter 'bogus'"),
    ("isa-debug-exit,iobase=0x10000", "is not a port range"),
    ("isa-debug-exit,iobase=0x3f8", "overlaps"),
    ("isa-debug-exit,iosize=zz", "not a number"),
])
def test_bad_device(tern, guest_kit, dev, phrase):
    check_error(run(tern, "-kernel", str(guest_kit), "-device", dev), phrase)


@pytest.mark.parametrize("spec,phrase", [
    ("bogus", "unknown character backend"),
    ("file:/nonexistent-dir/x.log", "cannot open serial file"),
    ("unix:/tmp/x.sock", "server=on"),
    ("unix:/tmp/x.sock,server=on,frob=1", "invalid parameter 'frob'"),
])
def test_bad_serial(tern, guest_kit, spec, phrase):
    check_error(run(tern, "-kernel", str(guest_kit), "-serial", spec), phrase)


def test_two_serials_refused(tern, guest_kit):
    check_error(run(tern, "-kernel", str(guest_kit), "-serial", "null", "-serial", "null"),
                "one serial port")


def test_serial_to_unix_socket(tern, guest_kit, tmp_path):
    """-serial unix:PATH,server=on,wait=off: a client connecting later reads
    the guest's lines."""
    import socket
    import tempfile
    import time

    sockdir = tempfile.mkdtemp(prefix="tern-", dir="/tmp")
    path = f"{sockdir}/serial.sock"
    p = subprocess.Popen([tern, "-m", "64", "-kernel", str(guest_kit),
                          "-append", "tg.workload=idle tg.print=10",
                          "-serial", f"unix:{path},server=on,wait=off"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    try:
        s = socket.socket(socket.AF_UNIX)
        deadline = time.monotonic() + 10
        while True:
            try:
                s.connect(path)
                break
            except OSError:
                assert time.monotonic() < deadline, "serial socket never appeared"
                time.sleep(0.02)
        s.settimeout(10)
        buf = b""
        while b"TG tick 20\n" not in buf:
            chunk = s.recv(4096)
            assert chunk, "serial socket closed"
            buf += chunk
        s.close()
    finally:
        p.terminate()
        assert p.wait(10) == 0
        p.stderr.close()
        import shutil
        shutil.rmtree(sockdir, ignore_errors=True)


def _debian_vmlinuz():
    import os
    from pathlib import Path
    cache = Path(os.environ.get("TERN_LINUX_CACHE")
                 or Path.home() / ".cache" / "tern" / "linux")
    for flavour in ("amd64", "cloud-amd64"):
        k = cache / flavour / "vmlinuz"
        if k.exists():
            return k
    pytest.skip(f"no Debian vmlinuz in {cache} (scripts/fetch-linux-kernels fetches it)")


def test_bzimage_is_loaded_and_started(tern, tmp_path):
    """-kernel picks the bzImage loader by content: a real Debian vmlinuz is
    accepted and its vCPU runs (on the PVM host it cannot get far, so only
    "still running, clean SIGTERM" is checked here; test_linux_boot.py boots it
    where hardware KVM exists)."""
    import signal
    import time

    k = _debian_vmlinuz()
    p = subprocess.Popen([tern, "-m", "256", "-smp", "2", "-kernel", str(k),
                          "-append", "console=ttyS0", "-serial", "null"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.0)
        assert p.poll() is None, f"tern exited {p.returncode}: {p.stderr.read()}"
        p.send_signal(signal.SIGTERM)
        assert p.wait(10) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stderr.close()


def test_bzimage_initrd_does_not_fit(tern, tmp_path):
    k = _debian_vmlinuz()
    initrd = tmp_path / "initrd"
    with open(initrd, "wb") as f:
        f.truncate(120 << 20)
    check_error(run(tern, "-m", "128", "-kernel", str(k), "-initrd", str(initrd),
                    "-serial", "none"), "initrd")
