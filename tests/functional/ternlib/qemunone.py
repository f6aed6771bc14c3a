"""QEMU 7.2 with -M none and a QMP socket: the reference peer for tests that
compare QMP behaviour and need no guest (no CPU, no -cpu, starts in tens of
milliseconds). QemuVm is for booting guests."""
import contextlib
import shutil
import subprocess
import tempfile
from pathlib import Path

from . import paths


@contextlib.contextmanager
def qemu_none(*extra_args):
    """Starts `qemu-system-x86_64 -M none ... extra_args` and yields its QMP
    socket path; QEMU is killed and its socket directory removed on exit."""
    d = Path(tempfile.mkdtemp(prefix="qnone-", dir="/tmp"))
    sock = d / "q.sock"
    proc = subprocess.Popen([paths.qemu_binary(), "-M", "none", "-display", "none",
                             "-nodefaults", "-no-user-config", *extra_args,
                             "-qmp", f"unix:{sock},server=on,wait=off"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        yield sock
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(d, ignore_errors=True)


class NoneVm:
    """A running `-M none` QEMU or tern: its QMP socket, process, stderr."""

    def __init__(self, sock, proc, stderr_path):
        self.sock, self.proc, self.stderr_path = sock, proc, stderr_path

    def stderr(self):
        return Path(self.stderr_path).read_text(errors="replace")


@contextlib.contextmanager
def none_vm(kind, *extra_args):
    """Starts QEMU 7.2 (kind "qemu", with -accel kvm) or tern (kind "tern") as
    `-M none -nodefaults -no-user-config ... extra_args` with a QMP socket, so
    a test can give both the same command line and questions. Killed and
    cleaned up on exit."""
    d = Path(tempfile.mkdtemp(prefix=f"{kind}none-", dir="/tmp"))
    sock = d / "q.sock"
    if kind == "qemu":
        argv = [paths.qemu_binary(), "-M", "none", "-accel", "kvm", "-display", "none"]
    else:
        argv = [str(paths.tern_binary()), "-M", "none"]
    argv += ["-nodefaults", "-no-user-config", *extra_args,
             "-qmp", f"unix:{sock},server=on,wait=off"]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=open(d / "stderr", "wb"))
    try:
        yield NoneVm(sock, proc, d / "stderr")
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(d, ignore_errors=True)
