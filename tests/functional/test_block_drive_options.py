"""Every -drive option tern accepts is honoured or refused, checked one by
one with the guest kit's virtio-blk driver (and against QEMU 7.2 microvm
running the same guest where QEMU's behaviour is the reference):

- discard=ignore|off (the default) / unmap|on: a guest DISCARD, and a guest
  WRITE_ZEROES with its unmap flag, deallocate (holes in a raw file, freed
  qcow2 clusters) only with unmap; with ignore the data and the space stay;
- aio=threads runs; aio=native and aio=io_uring are refused by name;
- werror=enospc stops the VM on ENOSPC (a full tmpfs) and reports other
  errors (EFBIG from RLIMIT_FSIZE);
- cache=none and directsync give a qcow2 image O_DIRECT too."""
import json
import os
import resource
import subprocess
import time

import pytest

from ternlib import paths
from ternlib.vm import debug_exit_status

IMG_SIZE = 64 * 1024 * 1024
COUNT = 64                  # 64 x 4 KiB blocks at 2 MiB
OFFSET = 0x200000


def make_image(path, fmt):
    subprocess.run([paths.qemu_img(), "create", "-q", "-f", fmt, str(path),
                    str(IMG_SIZE)], check=True, timeout=30)
    return path


def blk_args(img, fmt, drive_extra=""):
    return ["-drive", f"file={img},format={fmt},if=none,id=d0{drive_extra}",
            "-device", "virtio-blk-pci,drive=d0"]


def allocated(img, fmt):
    """Bytes of the image the host has allocated (raw) or qcow2 clusters in
    use for guest data, as qemu-img counts them."""
    if fmt == "raw":
        return os.stat(img).st_blocks * 512
    p = subprocess.run([paths.qemu_img(), "check", "--output=json", str(img)],
                       capture_output=True, text=True, timeout=60)
    return json.loads(p.stdout).get("allocated-clusters", 0)


def run_discard(vm_factory, img, fmt, drive_extra, op, unmap, **kw):
    append = (f"tg.workload=blk tg.blk.mode=discard tg.blk.count={COUNT} "
              f"tg.blk.offset={OFFSET:#x} tg.blk.op={op} tg.blk.unmap={unmap}")
    vm = vm_factory(append=append, extra_args=blk_args(img, fmt, drive_extra),
                    **kw)
    vm.start()
    assert vm.wait_exit(60) == debug_exit_status(0), vm.serial.tail()
    m = vm.serial.wait_for(r"TG blk discard op=(\w+) status=(\d+) "
                           r"first=0x([0-9a-f]+)")
    return int(m[2]), int(m[3], 16)


# (drive option, guest op, unmap flag) -> space freed?
CASES = [
    ("", "discard", 0, False),                 # default: ignore
    (",discard=ignore", "discard", 0, False),
    (",discard=off", "discard", 0, False),
    (",discard=unmap", "discard", 0, True),
    (",discard=on", "discard", 0, True),
    (",discard=ignore", "zeroes", 1, False),
    (",discard=unmap", "zeroes", 1, True),
    (",discard=unmap", "zeroes", 0, False),    # no unmap flag: stays
]


@pytest.mark.parametrize("fmt", ["raw", "qcow2"])
@pytest.mark.parametrize("opt,op,unmap,frees", CASES)
def test_discard_option(tern_vm, tmp_path, fmt, opt, op, unmap, frees):
    img = make_image(tmp_path / f"d.{fmt}", fmt)
    # the guest writes, flushes and verifies first; measure after a run
    # that only writes, so both runs start from the same allocation
    status, _ = run_discard(tern_vm, img, fmt, ",discard=ignore", "discard",
                            0)
    assert status == 0
    before = allocated(img, fmt)
    status, first = run_discard(tern_vm, img, fmt, opt, op, unmap)
    assert status == 0
    after = allocated(img, fmt)
    if op == "zeroes":
        assert first == 0
    else:   # a discarded block reads as zeroes only when it went
        assert first == (0 if frees else 0x5a)
    if frees:
        assert after < before, (before, after)
    else:
        assert after >= before, (before, after)
    if fmt == "qcow2":
        p = subprocess.run([paths.qemu_img(), "check", str(img)],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stdout + p.stderr


@pytest.mark.parametrize("opt,frees", [("", False), (",discard=unmap", True)])
def test_discard_option_as_qemu(tern_vm, qemu_vm, tmp_path, opt, frees):
    """The same guest on QEMU 7.2 microvm and on tern, same -drive option:
    the raw file loses the discarded blocks in both or in neither."""
    out = {}
    for vmm, factory, kw in (("tern", tern_vm, {}),
                             ("qemu", qemu_vm, {"machine": "microvm,pcie=on"})):
        img = make_image(tmp_path / f"{vmm}.raw", "raw")
        run_discard(factory, img, "raw", ",discard=ignore", "discard", 0,
                    **kw)
        before = allocated(img, "raw")
        _, first = run_discard(factory, img, "raw", opt, "discard", 0, **kw)
        out[vmm] = (allocated(img, "raw") < before, first)
    assert out["tern"] == out["qemu"], out
    assert out["tern"][0] == frees


def tern_argv(guest_kit, *extra):
    return [str(paths.tern_binary()), "-M", "virt", "-accel", "kvm", "-m",
            "64M", "-kernel", str(guest_kit), "-display", "none", "-serial",
            "none", *extra]


@pytest.mark.parametrize("aio", ["native", "io_uring"])
def test_aio_engines_tern_lacks_are_refused(tmp_path, guest_kit, aio):
    img = make_image(tmp_path / "a.raw", "raw")
    r = subprocess.run(tern_argv(guest_kit, *blk_args(img, "raw",
                                                      f",aio={aio}")),
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert f"aio={aio} is not supported" in r.stderr, r.stderr


def test_aio_threads_runs(tern_vm, tmp_path):
    img = make_image(tmp_path / "t.raw", "raw")
    vm = tern_vm(append="tg.workload=blk tg.blk.mode=verify tg.blk.count=8",
                 extra_args=blk_args(img, "raw", ",aio=threads"))
    vm.start()
    assert vm.wait_exit(30) == debug_exit_status(0), vm.serial.tail()
    vm.serial.wait_for(r"TG blk verify ok blocks=8")


def wrapper(tmp_path, body):
    w = tmp_path / "tern-wrapper"
    w.write_text("#!/bin/sh\n" + body + "\n")
    w.chmod(0o755)
    return w


def test_werror_enospc_stops_on_a_full_disk(tern_vm, tmp_path):
    """The image on a 256 KiB tmpfs (a private mount namespace): the guest's
    writes run out of space; werror=enospc pauses the VM in io-error with
    BLOCK_IO_ERROR action=stop, nospace=true."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    img = mnt / "disk.raw"
    w = wrapper(tmp_path, f"exec unshare -m sh -c 'mount -t tmpfs -o "
                f"size=256k none {mnt} && truncate -s {IMG_SIZE} {img} && "
                f"exec {paths.tern_binary()} \"$@\"' tern \"$@\"")
    # Paused until the QMP client is there: an event before it is lost.
    vm = tern_vm(binary=w, qmp=True, paused=True,
                 append="tg.workload=blk tg.blk.mode=verify tg.blk.count=256",
                 extra_args=blk_args(img, "raw", ",werror=enospc"))
    vm.start()
    q = vm.qmp()
    q.execute("cont")
    ev = q.wait_event("BLOCK_IO_ERROR", timeout=60)
    assert ev["data"]["action"] == "stop" and ev["data"]["nospace"], ev
    deadline = time.monotonic() + 10
    while q.execute("query-status")["status"] != "io-error":
        assert time.monotonic() < deadline, q.execute("query-status")
        time.sleep(0.05)


def test_werror_enospc_reports_other_errors(tern_vm, tmp_path):
    """EFBIG (RLIMIT_FSIZE) is not ENOSPC: werror=enospc reports it."""
    img = make_image(tmp_path / "disk.raw", "raw")
    w = wrapper(tmp_path, f"trap '' XFSZ\nexec {paths.tern_binary()} \"$@\"")
    vm = tern_vm(binary=w, qmp=True, paused=True,
                 append="tg.workload=blk tg.blk.mode=verify tg.blk.count=2 "
                        "tg.blk.offset=0x200000",
                 extra_args=blk_args(img, "raw", ",werror=enospc"))
    vm.start()
    q = vm.qmp()
    _, hard = resource.prlimit(vm.proc.pid, resource.RLIMIT_FSIZE)
    resource.prlimit(vm.proc.pid, resource.RLIMIT_FSIZE, (1 << 20, hard))
    q.execute("cont")
    ev = q.wait_event("BLOCK_IO_ERROR", timeout=30)
    assert ev["data"]["action"] == "report" and not ev["data"]["nospace"]
    assert vm.wait_exit(30) == debug_exit_status(1)


def odirect(pid, path):
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == str(path):
                with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                    flags = int(f.read().split("flags:")[1].split()[0], 8)
                return bool(flags & os.O_DIRECT)
        except OSError:
            continue
    return None


@pytest.mark.parametrize("cache", ["none", "directsync"])
def test_cache_none_is_odirect_for_qcow2(tern_vm, tmp_path, cache):
    img = make_image(tmp_path / "c.qcow2", "qcow2")
    vm = tern_vm(qmp=True, append="tg.workload=blk tg.blk.mode=verify "
                 "tg.blk.count=16 tg.blk.hold=1",
                 extra_args=blk_args(img, "qcow2", f",cache={cache}"))
    vm.start()
    vm.serial.wait_for(r"TG blk holding", timeout=30)
    assert odirect(vm.proc.pid, img) is True
    vm.qmp().execute("quit")
    vm.wait_exit(30)
    p = subprocess.run([paths.qemu_img(), "check", str(img)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
