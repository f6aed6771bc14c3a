"""A private libvirt 9.0 daemon for tests that drive tern through virsh.

LibvirtDaemon starts `libvirtd` as root in a mount namespace of its own, where
a fresh temporary directory is bound over /etc/libvirt, /run and /var: the
daemon's configuration, sockets, state, capability cache and logs live there
and nowhere else, so nothing of the host's (or another test's) libvirt is
read or touched. It may also run in a network namespace with a hostname of
its own (UTS namespace), for migration between two daemons. stop() destroys
its domains, kills the daemon and any emulator it left (by PID), and removes
the directory.

Console: console_watch() runs `virsh console` on a pseudo-terminal, as a
person would, and collects what the guest prints."""
import os
import pty
import re
import select
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

LIBVIRTD = "/usr/sbin/libvirtd"
VIRSH = "/usr/bin/virsh"
QEMU_CONF = """\
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
stdio_handler = "file"
"""


class LibvirtError(AssertionError):
    pass


def available():
    """Why libvirt tests cannot run here, or None."""
    if os.geteuid() != 0:
        return "the libvirt tests run libvirtd as root"
    for p in (LIBVIRTD, VIRSH):
        if not os.access(p, os.X_OK):
            return f"{p} is missing (scripts/setup-deps installs libvirt)"
    try:
        import pwd
        pwd.getpwnam("libvirt-qemu")
    except KeyError:
        return "the user libvirt-qemu is missing (scripts/setup-deps creates it)"
    if subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode:
        return "cannot create a mount namespace (unshare -m)"
    return None


class LibvirtDaemon:
    def __init__(self, name="lv", netns=None, hostname=None):
        self.name = name
        self.netns = netns
        self.hostname = hostname
        # Short: sockets live under it and unix socket paths are limited.
        self.dir = Path(tempfile.mkdtemp(prefix=f"tlv-{name}-", dir="/tmp"))
        self.proc = None

    # ---- paths -------------------------------------------------------------
    @property
    def socket(self):
        return self.dir / "run/libvirt/libvirt-sock"

    @property
    def uri(self):
        return f"qemu:///system?socket={self.socket}"

    @property
    def log(self):
        return self.dir / "libvirtd.log"

    def domain_log(self, domain):
        return self.dir / f"var/log/libvirt/qemu/{domain}.log"

    def cache_files(self):
        return sorted((self.dir / "var/cache/libvirt/qemu/capabilities").glob("*.xml"))

    # ---- life cycle ----------------------------------------------------------
    def _write_config(self):
        for sub in ("etc", "run/lock", "var/lib/libvirt", "var/cache/libvirt",
                    "var/log/libvirt", "var/tmp"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        # Debian's /var/run and /var/lock (virsh console's tty lock files).
        (self.dir / "var/run").symlink_to("/run")
        (self.dir / "var/lock").symlink_to("/run/lock")
        (self.dir / "etc/qemu.conf").write_text(QEMU_CONF)
        (self.dir / "etc/libvirtd.conf").write_text(
            f'log_outputs = "1:file:{self.log}"\n'
            'log_filters = "1:qemu.qemu_monitor 1:qemu.qemu_process '
            '1:qemu.qemu_migration 3:qemu 3:util 3:rpc 3:object 3:event"\n'
            f'host_uuid = "{uuid.uuid4()}"\n')

    def _command(self):
        d = self.dir
        script = (f"mount --bind {d}/etc /etc/libvirt && mount --bind {d}/run /run && "
                  f"mount --bind {d}/var /var && ")
        if self.hostname:
            script = f"hostname {self.hostname} && " + script
        script += f"exec {LIBVIRTD} -f /etc/libvirt/libvirtd.conf"
        cmd = ["unshare", "-m", "--propagation", "private"]
        if self.hostname:
            cmd.append("-u")
        cmd += ["sh", "-c", script]
        if self.netns:
            cmd = ["ip", "netns", "exec", self.netns] + cmd
        return cmd

    def start(self, timeout=60):
        self._write_config()
        # unshare and ip netns exec exec in place: the pid is libvirtd's.
        self.proc = subprocess.Popen(self._command(), stdin=subprocess.DEVNULL,
                                     stdout=open(self.dir / "stdout", "wb"),
                                     stderr=subprocess.STDOUT,
                                     start_new_session=True)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise LibvirtError(f"libvirtd exited {self.proc.returncode}: "
                                   + (self.dir / "stdout").read_text()[-2000:])
            if self.socket.exists() and self.virsh("version", check=False).returncode == 0:
                return self
            time.sleep(0.2)
        raise LibvirtError(f"libvirtd did not answer within {timeout} s")

    def emulator_pids(self):
        """The running domains' emulator processes (libvirt's pid files;
        driver.pid is the daemon's own)."""
        pids = []
        for f in (self.dir / "run/libvirt/qemu").glob("*.pid"):
            if f.name == "driver.pid":
                continue
            try:
                pids.append(int(f.read_text().split()[0]))
            except (ValueError, IndexError, OSError):
                pass
        return pids

    def emulator_pid(self, domain):
        return int((self.dir / f"run/libvirt/qemu/{domain}.pid").read_text().split()[0])

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            names = self.virsh("list", "--name", check=False, timeout=30).stdout.split()
            for n in names:
                self.virsh("destroy", n, check=False, timeout=60)
        leftovers = self.emulator_pids()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for pid in leftovers:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # ---- virsh ----------------------------------------------------------------
    def virsh(self, *args, check=True, timeout=120):
        r = subprocess.run([VIRSH, "-c", self.uri, *args], capture_output=True,
                           text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise LibvirtError(f"virsh {' '.join(args)}: {r.stderr.strip()}\n"
                               f"{self.log_tail()}")
        return r

    def monitor(self, domain, command, hmp=False):
        args = ["qemu-monitor-command", domain]
        if hmp:
            args.append("--hmp")
        return self.virsh(*args, command).stdout.strip()

    def domstate(self, domain):
        return self.virsh("domstate", domain).stdout.strip()

    def log_tail(self, n=30):
        try:
            lines = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        errors = [l for l in lines if " error : " in l]
        return "\n".join(errors[-n:])

    def qmp_sent(self):
        """The QMP commands the daemon sent, in order (from its debug log)."""
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return []
        return re.findall(r'QEMU_MONITOR_SEND_MSG: mon=\S+ msg=(\{.*?\})\s*$', text, re.M)


def domain_xml(name, emulator, kernel, cmdline, disk, memory_mib=128, vcpus=1):
    """A minimal KVM domain for tern: direct kernel boot (tern has no
    firmware), a qcow2 virtio disk at a fixed address on the PCIe root bus
    (libvirt would add root ports tern does not have), a pty serial console,
    no USB and no balloon."""
    return f"""<domain type='kvm'>
  <name>{name}</name>
  <memory unit='MiB'>{memory_mib}</memory>
  <vcpu>{vcpus}</vcpu>
  <os>
    <type arch='x86_64' machine='virt'>hvm</type>
    <kernel>{kernel}</kernel>
    <cmdline>{cmdline}</cmdline>
  </os>
  <features><acpi/></features>
  <cpu mode='host-passthrough'/>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>{emulator}</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='{disk}'/>
      <target dev='vda' bus='virtio'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x01' function='0x0'/>
    </disk>
    <controller type='usb' model='none'/>
    <controller type='pci' index='0' model='pcie-root'/>
    <serial type='pty'><target port='0'/></serial>
    <console type='pty'><target type='serial' port='0'/></console>
    <memballoon model='none'/>
  </devices>
</domain>
"""


class ConsoleTimeout(AssertionError):
    pass


def console_watch(daemon, domain, regex, count=1, timeout=60.0):
    """Runs `virsh console` on a pseudo-terminal until `regex` has matched
    `count` whole lines (or timeout), leaves it with ^] and returns the
    matches (re.Match objects)."""
    rx = re.compile(regex)
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(VIRSH, [VIRSH, "-c", daemon.uri, "console", "--force", domain])
    buf, found = b"", []
    end = time.monotonic() + timeout
    try:
        while len(found) < count and time.monotonic() < end:
            r, _, _ = select.select([fd], [], [], 0.5)
            if not r:
                continue
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
            *done, buf = buf.split(b"\n")
            for line in done:
                m = rx.search(line.decode("utf-8", "replace").strip("\r"))
                if m:
                    found.append(m)
        try:
            os.write(fd, b"\x1d")
        except OSError:
            pass
    finally:
        _reap(pid)
        os.close(fd)
    if len(found) < count:
        raise ConsoleTimeout(f"virsh console: {len(found)} of {count} lines "
                             f"matching {regex!r} in {timeout} s")
    return found


def _reap(pid, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
