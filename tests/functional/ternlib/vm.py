"""Launchers for a VM under test: tern itself (TernVm) and the reference peer
QEMU 7.2 (QemuVm), with the same shape so a test can run one guest on either.

A Vm owns its process, its serial log (`.serial`), its QMP client (`.qmp()`)
and a short private socket directory (unix socket paths must stay under 108
bytes, which pytest's tmp_path does not guarantee). Use it as a context
manager, or call kill(): both always kill and reap the process."""
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from . import paths
from .qmp import QmpClient
from .serial import SerialLog

DEBUG_EXIT_DEVICE = "isa-debug-exit,iobase=0xf4,iosize=0x04"


def debug_exit_status(value):
    """The exit status QEMU (and tern) give for a write of `value` to the
    isa-debug-exit port."""
    return ((value << 1) | 1) & 0xff


class VmError(AssertionError):
    pass


class Vm:
    """Common process handling; subclasses build the command line in args().

    workdir   - a directory for logs (use pytest's tmp_path)
    kernel    - the PVH ELF to boot (default: the guest kit)
    append    - the kernel command line, e.g. 'tg.workload=idle tg.hz=100'
    memory    - '-m' value: int MiB or a QEMU size string
    qmp       - create a QMP socket (.qmp_path) and allow .qmp()
    paused    - start with -S
    incoming  - '-incoming' value (migration destination), or None
    extra_args- appended verbatim
    """

    binary_name = "vm"

    def __init__(self, workdir, kernel=None, append="", memory=256, smp=1,
                 qmp=False, paused=False, incoming=None, debug_exit=True,
                 extra_args=(), name="vm", env=None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.name = name
        if kernel is None:
            kernel = paths.guest_kit()
        self.kernel = str(kernel) if kernel else None   # '' / False: no -kernel
        self.append = append
        self.memory = f"{memory}M" if isinstance(memory, int) else str(memory)
        self.smp = smp
        self.paused = paused
        self.incoming = incoming
        self.debug_exit = debug_exit
        self.extra_args = list(extra_args)
        self.env = env
        self.sockdir = Path(tempfile.mkdtemp(prefix="tern-", dir="/tmp"))
        self.qmp_path = self.sockdir / f"{name}.qmp" if qmp else None
        self.serial_path = self.workdir / f"{name}-serial.log"
        self.stdout_path = self.workdir / f"{name}-stdout.log"
        self.stderr_path = self.workdir / f"{name}-stderr.log"
        self.proc = None
        self.serial = SerialLog(self.serial_path)
        self._qmp = None

    # -- command line ----------------------------------------------------------
    def args(self):
        raise NotImplementedError

    def _common_tail(self):
        a = ["-m", self.memory, "-smp", str(self.smp)]
        if self.kernel:
            a += ["-kernel", self.kernel, "-append", self.append]
        a += ["-serial", f"file:{self.serial_path}", "-display", "none"]
        if self.debug_exit:
            a += ["-device", DEBUG_EXIT_DEVICE]
        if self.qmp_path:
            a += ["-qmp", f"unix:{self.qmp_path},server=on,wait=off"]
        if self.paused:
            a.append("-S")
        if self.incoming:
            a += ["-incoming", self.incoming]
        return a + self.extra_args

    def sock_path(self, suffix):
        """A unique short path in this VM's socket dir (e.g. for migration)."""
        return str(self.sockdir / f"{self.name}-{suffix}")

    # -- lifecycle -------------------------------------------------------------
    def start(self):
        if self.proc is not None:
            raise VmError(f"{self.name} already started")
        self.serial_path.write_bytes(b"")
        env = dict(os.environ, **(self.env or {}))
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(self.args(), stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=err, env=env)
        self.serial.proc = self.proc
        return self

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def wait_exit(self, timeout=10.0):
        """Wait for the process to exit by itself and return its status."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise VmError(f"{self.name} still running after {timeout}s\n"
                          f"--- serial tail:\n{self.serial.tail()}\n"
                          f"--- stderr tail:\n{self.stderr_text()[-2000:]}") from None

    def qmp(self, connect_timeout=10.0):
        """The connected QMP client (created on first use)."""
        if self.qmp_path is None:
            raise VmError(f"{self.name} was started without qmp=True")
        if self._qmp is None:
            try:
                self._qmp = QmpClient(self.qmp_path, connect_timeout=connect_timeout)
            except (OSError, EOFError) as e:
                status = self.proc.poll() if self.proc else "not started"
                raise VmError(f"{self.name}: QMP connect failed ({e}); process "
                              f"status {status}\n--- stderr tail:\n"
                              f"{self.stderr_text()[-2000:]}") from e
        return self._qmp

    def terminate(self, timeout=5.0):
        """SIGTERM, then SIGKILL after `timeout`; return the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill(self):
        """Kill and reap the process, close QMP, remove the socket dir."""
        if self._qmp is not None:
            self._qmp.close()
            self._qmp = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.sockdir, ignore_errors=True)

    def stderr_text(self):
        try:
            return self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stdout_text(self):
        try:
            return self.stdout_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def __enter__(self):
        if self.proc is None:
            self.start()
        return self

    def __exit__(self, *exc):
        self.kill()

    def __del__(self):
        proc = getattr(self, "proc", None)
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()


class QemuVm(Vm):
    """QEMU 7.2 with KVM on the microvm machine: boots a PVH ELF in ~55 ms.

    machine - the -M value ('microvm' plus any ',opt=val')
    cpu     - the -cpu value. Plain 'host' aborts on the PVM host (KVM refuses
              MSR_IA32_ARCH_CAPABILITIES, 0x10a), so that feature is dropped.
    no_reboot - pass -no-reboot (default)"""

    binary_name = "qemu-system-x86_64"
    DEFAULT_CPU = "host,-arch-capabilities"

    def __init__(self, workdir, machine="microvm", cpu=DEFAULT_CPU, no_reboot=True, **kw):
        kw.setdefault("name", "qemu")
        super().__init__(workdir, **kw)
        self.machine = machine
        self.cpu = cpu
        self.no_reboot = no_reboot

    def args(self):
        # -no-reboot: a triple fault ends QEMU instead of rebooting the guest
        # in a loop until the test's timeout
        return [paths.qemu_binary(), "-M", self.machine, "-accel", "kvm",
                "-cpu", self.cpu, "-nodefaults", "-no-user-config",
                *(["-no-reboot"] if self.no_reboot else []),
                *self._common_tail()]


class TernVm(Vm):
    """tern from the build under test, with QEMU-style options.

    machine - tern's machine name ('virt')"""

    binary_name = "tern"

    def __init__(self, workdir, machine="virt", binary=None, **kw):
        kw.setdefault("name", "tern")
        super().__init__(workdir, **kw)
        self.machine = machine
        self.binary = str(binary or paths.tern_binary())

    def args(self):
        return [self.binary, "-M", self.machine, "-accel", "kvm",
                *self._common_tail()]
