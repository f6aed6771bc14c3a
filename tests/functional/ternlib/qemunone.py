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
