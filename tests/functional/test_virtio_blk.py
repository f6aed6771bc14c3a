"""virtio-blk-pci under tern, driven by the guest kit's `blk` workload (a ring-3
virtio 1.x driver): data written by the guest is what QEMU's tools read back
(raw and qcow2), survives kill -9 once FLUSH completed, marks dirty bitmaps
exactly; read-only drives fail writes with IOERR; hostile rings leave tern
running; the same driver works on QEMU 7.2 microvm (pcie=on). Bad -drive /
-device options are clear errors."""
import json
import os
import resource
import shutil
import subprocess
import time

import pytest

from ternlib import paths
from ternlib.vm import debug_exit_status

IMG_SIZE = 64 * 1024 * 1024
BS = 4096


def qemu_io(img, fmt, *cmds):
    args = ["qemu-io", "-f", fmt]
    for c in cmds:
        args += ["-c", c]
    r = subprocess.run(args + [str(img)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "Pattern verification failed" not in r.stdout, r.stdout
    return r.stdout


def make_image(path, fmt):
    subprocess.run([paths.qemu_img(), "create", "-q", "-f", fmt, str(path),
                    str(IMG_SIZE)], check=True, timeout=30)
    return path


def blk_args(img, fmt, drive_extra="", device_extra=""):
    return ["-drive", f"file={img},format={fmt},if=none,id=d0{drive_extra}",
            "-device", f"virtio-blk-pci,drive=d0{device_extra}"]


def run_blk(tern_vm, img, fmt, append, drive_extra="", device_extra="", **kw):
    vm = tern_vm(append=f"tg.workload=blk {append}",
                 extra_args=blk_args(img, fmt, drive_extra, device_extra), **kw)
    vm.start()
    return vm


def check_patterns(img, fmt, offset, count, pattern):
    cmds = [f"read -P {(pattern + k) & 0xff:#x} {offset + k * BS} {BS}"
            for k in range(count)]
    out = qemu_io(img, fmt, *cmds)
    assert out.count(f"read {BS}/{BS} bytes") == count


@pytest.mark.parametrize("fmt", ["raw", "qcow2"])
def test_guest_writes_verified_and_qemu_io_reads_them(tern_vm, tmp_path, fmt):
    img = make_image(tmp_path / f"disk.{fmt}", fmt)
    vm = run_blk(tern_vm, img, fmt, "tg.blk.mode=verify tg.blk.count=32 "
                 "tg.blk.offset=0x100000 tg.blk.pattern=0x40", device_extra=",serial=tern-d0")
    assert vm.wait_exit(30) == debug_exit_status(0), vm.serial.tail()
    vm.serial.wait_for(r"TG blk device capacity=131072 .* id=tern-d0$")
    vm.serial.wait_for(r"TG blk verify ok blocks=32")
    check_patterns(img, fmt, 0x100000, 32, 0x40)
    qemu_io(img, fmt, f"read -P 0 0 {0x100000}", f"read -P 0 {0x100000 + 32 * BS} {BS}")
    if fmt == "qcow2":
        r = subprocess.run([paths.qemu_img(), "check", str(img)], capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr


def test_flushed_data_survives_kill9(tern_vm, tmp_path):
    img = make_image(tmp_path / "disk.qcow2", "qcow2")
    vm = run_blk(tern_vm, img, "qcow2", "tg.blk.mode=verify tg.blk.count=16 "
                 "tg.blk.pattern=0x71 tg.blk.hold=1",
                 device_extra=",addr=0x5,num-queues=4,bootindex=1")
    vm.serial.wait_for(r"TG blk flush ok", timeout=30)
    vm.serial.wait_for(r"TG blk holding", timeout=30)
    vm.proc.kill()                      # SIGKILL: no close, no final flush
    vm.proc.wait(10)
    check_patterns(img, "qcow2", 0, 16, 0x71)


def nbd_dirty_ranges(tmp_path, img, bitmap):
    """(start, length) of the ranges set in `bitmap`, as qemu-nbd exports them."""
    sock = tmp_path / "nbd.sock"
    nbd = subprocess.Popen(["qemu-nbd", "-r", "-f", "qcow2", "-B", bitmap, "-k", str(sock),
                            str(img)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while not sock.exists():
            assert nbd.poll() is None, nbd.stderr.read()
            assert time.monotonic() < deadline, "qemu-nbd did not start"
            time.sleep(0.05)
        r = subprocess.run([paths.qemu_img(), "map", "--output=json", "--image-opts",
                            f"driver=nbd,server.type=unix,server.path={sock},"
                            f"x-dirty-bitmap=qemu:dirty-bitmap:{bitmap}"],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
    finally:
        nbd.kill()
        nbd.wait()
    # In x-dirty-bitmap mode, dirty areas are the ones reported without data.
    return [(e["start"], e["length"]) for e in json.loads(r.stdout) if not e["data"]]


def test_persistent_bitmap_marks_exactly_written_ranges(tern_vm, tmp_path):
    img = make_image(tmp_path / "disk.qcow2", "qcow2")
    subprocess.run([paths.qemu_img(), "bitmap", "--add", str(img), "bm0"], check=True,
                   timeout=30)
    # 4 KiB blocks at 1 MiB + 16 KiB .. + 144 KiB: granules 1 MiB and 1 MiB + 64 KiB,
    # and 1 MiB + 128 KiB (64 KiB granularity)
    vm = run_blk(tern_vm, img, "qcow2", "tg.blk.mode=verify tg.blk.count=32 "
                 "tg.blk.offset=0x104000")
    assert vm.wait_exit(30) == debug_exit_status(0), vm.serial.tail()
    assert nbd_dirty_ranges(tmp_path, img, "bm0") == [(0x100000, 0x30000)]


def test_in_memory_bitmap_counts_guest_writes(tern_vm, tmp_path):
    img = make_image(tmp_path / "disk.raw", "raw")
    vm = tern_vm(append="tg.workload=blk tg.blk.mode=verify tg.blk.count=4 "
                 "tg.blk.offset=0x200000 tg.blk.hold=1", qmp=True, paused=True,
                 extra_args=blk_args(img, "raw"))
    vm.start()
    q = vm.qmp()
    q.execute("block-dirty-bitmap-add", {"node": "d0", "name": "m0", "granularity": 65536})
    q.execute("cont")
    vm.serial.wait_for(r"TG blk holding", timeout=30)
    blocks = q.execute("query-block")
    d0 = [b for b in blocks if b["device"] == "d0"]
    assert d0, blocks
    bitmaps = {b["name"]: b for b in d0[0]["inserted"]["dirty-bitmaps"]}
    assert bitmaps["m0"]["count"] == 65536, bitmaps


def test_readonly_drive_refuses_writes(tern_vm, tmp_path):
    img = make_image(tmp_path / "disk.raw", "raw")
    qemu_io(img, "raw", "write -P 0x66 0 4096")
    vm = run_blk(tern_vm, img, "raw", "tg.blk.mode=readonly", drive_extra=",readonly=on")
    assert vm.wait_exit(30) == debug_exit_status(0), vm.serial.tail()
    vm.serial.wait_for(r"TG blk readonly write status=1 ro_feature=1")
    vm.serial.wait_for(r"TG blk readonly read status=0 first=0x66")
    qemu_io(img, "raw", "read -P 0x66 0 4096")


def test_hostile_guest_leaves_tern_running(tern_vm, tmp_path):
    img = make_image(tmp_path / "disk.raw", "raw")
    vm = run_blk(tern_vm, img, "raw", "tg.blk.mode=hostile")
    assert vm.wait_exit(60) == debug_exit_status(0), vm.serial.tail()
    text = vm.serial.text()
    for case in ["loop", "outside_ram", "direction", "write_then_read",
                 "indirect_nested", "avail_jump"]:
        assert f"TG blk hostile {case} needs_reset status=0x4f" in text, text
        assert f"TG blk hostile {case} recovered" in text
    assert "TG blk hostile seg_max ioerr" in text
    for case in ["queue_size", "queue_addr"]:
        assert f"TG blk hostile {case} status=0x4f enabled=0" in text
        assert f"TG blk hostile {case} recovered" in text
    assert "TG blk hostile done cases=9" in text
    assert "needs reset" in vm.stderr_text()      # tern warned, did not die


def test_if_virtio_shorthand_and_iops(tern_vm, tmp_path):
    img = make_image(tmp_path / "disk.raw", "raw")
    vm = tern_vm(append="tg.workload=blk tg.blk.mode=iops tg.blk.rw=randwrite "
                 "tg.blk.qd=8 tg.blk.seconds=1",
                 extra_args=["-drive", f"file={img},format=raw,if=virtio,cache=unsafe"])
    vm.start()
    assert vm.wait_exit(30) == debug_exit_status(0), vm.serial.tail()
    m = vm.serial.wait_for(r"TG blk iops=(\d+) mbps=\d+ rw=randwrite bs=4096 qd=8 "
                           r"requests=(\d+)")
    assert int(m[1]) > 0 and int(m[2]) > 8


def test_same_driver_on_qemu_microvm(qemu_vm, tmp_path):
    img = make_image(tmp_path / "disk.raw", "raw")
    vm = qemu_vm(machine="microvm,pcie=on",
                 append="tg.workload=blk tg.blk.mode=verify tg.blk.count=16 "
                        "tg.blk.pattern=0x21",
                 extra_args=blk_args(img, "raw", ",cache=writeback", ",serial=qemu-d0"))
    vm.start()
    assert vm.wait_exit(30) == debug_exit_status(0), vm.serial.tail()
    vm.serial.wait_for(r"TG blk verify ok blocks=16")
    check_patterns(img, "raw", 0, 16, 0x21)


@pytest.mark.parametrize("args,message", [
    (["-drive", "if=none,id=d0,format=raw"], "file= is required"),
    (["-drive", "file=/nonexistent/tern.img,if=none,id=d0,format=raw"], "-drive"),
    (["-drive", "file=@IMG@,if=none,format=raw"], "needs an id"),
    (["-drive", "file=@IMG@,if=none,id=d0,cache=sometimes"], "invalid cache"),
    (["-drive", "file=@IMG@,if=none,id=d0,bogus=1"], "bogus"),
    (["-drive", "file=@IMG@,if=none,id=d0,format=vmdk"],
     "Image format 'vmdk' is not supported by tern"),
    (["-drive", "file=@IMG@,if=none,id=d0,format=nosuch"],
     "Unknown driver 'nosuch'"),
    (["-device", "virtio-blk-pci,drive=nope"], "no drive with id 'nope'"),
    (["-device", "virtio-blk-pci"], "drive= is required"),
    (["-drive", "file=@IMG@,if=none,id=d0,format=raw", "-device",
      "virtio-blk-pci,drive=d0", "-device", "virtio-blk-pci,drive=d0"], "already used"),
    (["-drive", "file=@IMG@,if=none,id=d0,format=raw", "-device",
      "virtio-blk-pci,drive=d0,num-queues=99"], "num-queues"),
    (["-drive", "file=@IMG@,if=none,id=d0,format=raw", "-device",
      "virtio-blk-pci,drive=d0,addr=0x20"], "addr '0x20'"),
    (["-drive", "file=@IMG@,if=none,id=d0,format=raw", "-device",
      "virtio-blk-pci,drive=d0,addr=0"], "PCI address in use"),
])
def test_bad_drive_options(tmp_path, guest_kit, args, message):
    img = make_image(tmp_path / "disk.raw", "raw")
    argv = [str(paths.tern_binary()), "-M", "virt", "-accel", "kvm", "-m", "64M",
            "-kernel", str(guest_kit), "-display", "none", "-serial", "none"]
    argv += [a.replace("@IMG@", str(img)) for a in args]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert message in r.stderr, r.stderr
    assert "AddressSanitizer" not in r.stderr and "runtime error" not in r.stderr


@pytest.mark.linux_boot
def test_linux_formats_mounts_and_reads_back_vda(tmp_path):
    """Debian's kernel with the virtio/ext4 modules from its package sees
    /dev/vda on tern's virtio-blk-pci, formats it (busybox has mke2fs, not
    mkfs.ext4: an ext2 layout that the ext4 driver mounts), writes, remounts
    and reads back; the data is then on the qcow2 image. Needs hardware KVM:
    skipped on the PVM host, where Linux cannot boot in test time."""
    import test_linux_boot as lb
    img = make_image(tmp_path / "vda.qcow2", "qcow2")
    cmds = ["echo TERN-VDA size=$(cat /sys/block/vda/size)",
            "mke2fs -q /dev/vda", "mkdir -p /mnt",
            "mount -t ext4 /dev/vda /mnt && echo tern-vda-data > /mnt/f && sync",
            "umount /mnt", "mount -t ext4 /dev/vda /mnt",
            "echo TERN-VDA read=$(cat /mnt/f)", "umount /mnt", "poweroff -f"]
    vm, _ = lb._boot(tmp_path, "amd64", "", cmds,
                     extra=blk_args(img, "qcow2", "", ",serial=tern-vda"))
    with vm:
        vm.serial.wait_for(r"^TERN-LINUX init up", timeout=lb.BOOT_TIMEOUT)
        m = vm.serial.wait_for(r"^TERN-VDA size=(\d+)", timeout=60)
        assert int(m[1]) == IMG_SIZE // 512, vm.serial.tail(60)
        vm.serial.wait_for(r"^TERN-VDA read=tern-vda-data", timeout=120)
        assert vm.wait_exit(timeout=60) == 0, vm.stderr_text()[-2000:]
    r = subprocess.run([paths.qemu_img(), "check", str(img)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def sigxfsz_ignoring_tern(tmp_path):
    """A wrapper that runs tern with SIGXFSZ ignored; the test then lowers
    tern's RLIMIT_FSIZE (after guest RAM exists, since the memfd counts too),
    so image writes past the limit fail with EFBIG: a host I/O error on demand."""
    wrapper = tmp_path / "tern-nosigxfsz"
    wrapper.write_text(f"#!/bin/sh\ntrap '' XFSZ\nexec {paths.tern_binary()} \"$@\"\n")
    wrapper.chmod(0o755)
    return wrapper


def start_with_fsize_limit(tern_vm, tmp_path, img, append, drive_extra):
    vm = tern_vm(binary=sigxfsz_ignoring_tern(tmp_path), qmp=True, paused=True,
                 append=append, extra_args=blk_args(img, "raw", drive_extra))
    vm.start()
    q = vm.qmp()
    _, hard = resource.prlimit(vm.proc.pid, resource.RLIMIT_FSIZE)
    resource.prlimit(vm.proc.pid, resource.RLIMIT_FSIZE, (1 << 20, hard))
    q.execute("cont")
    return vm, q


def test_werror_stop_pauses_then_retries_on_cont(tern_vm, tmp_path):
    img = make_image(tmp_path / "disk.raw", "raw")
    vm, q = start_with_fsize_limit(tern_vm, tmp_path, img,
                                   "tg.workload=blk tg.blk.mode=verify tg.blk.count=8 "
                                   "tg.blk.offset=0x200000 tg.blk.pattern=0x33",
                                   ",werror=stop,rerror=stop")
    ev = q.wait_event("BLOCK_IO_ERROR", timeout=30)
    assert ev["data"]["device"] == "d0"
    assert ev["data"]["operation"] == "write"
    assert ev["data"]["action"] == "stop"
    deadline = time.monotonic() + 10
    while q.execute("query-status")["status"] != "io-error":
        assert time.monotonic() < deadline, q.execute("query-status")
        time.sleep(0.05)
    assert vm.running()
    _, hard = resource.prlimit(vm.proc.pid, resource.RLIMIT_FSIZE)
    resource.prlimit(vm.proc.pid, resource.RLIMIT_FSIZE, (hard, hard))
    q.execute("cont")
    assert vm.wait_exit(30) == debug_exit_status(0), vm.serial.tail()
    vm.serial.wait_for(r"TG blk verify ok blocks=8")
    check_patterns(img, "raw", 0x200000, 8, 0x33)


def test_werror_report_fails_the_request(tern_vm, tmp_path):
    img = make_image(tmp_path / "disk.raw", "raw")
    vm, q = start_with_fsize_limit(tern_vm, tmp_path, img,
                                   "tg.workload=blk tg.blk.mode=verify tg.blk.count=2 "
                                   "tg.blk.offset=0x200000", ",werror=report")
    ev = q.wait_event("BLOCK_IO_ERROR", timeout=30)
    assert ev["data"]["action"] == "report"
    assert "File too large" in ev["data"]["reason"]
    assert vm.wait_exit(30) == debug_exit_status(1)
    vm.serial.wait_for(r"TG FAIL blk: write block 0 status=1", allow_fail=True)


@pytest.mark.parametrize("vmm", ["tern", "qemu"])
def test_msix_interrupt_per_completion(tern_vm, qemu_vm, tmp_path, vmm):
    """MSI-X mode: each completion raises the guest's vector through KVM
    (tern: an irqfd bound to an MSI route), checked against QEMU 7.2."""
    img = make_image(tmp_path / "disk.raw", "raw")
    append = "tg.workload=blk tg.blk.mode=msix tg.blk.count=32"
    if vmm == "tern":
        vm = tern_vm(append=append, extra_args=blk_args(img, "raw"))
    else:
        vm = qemu_vm(machine="microvm,pcie=on", append=append,
                     extra_args=blk_args(img, "raw"))
    vm.start()
    assert vm.wait_exit(30) == debug_exit_status(0), vm.serial.tail()
    vm.serial.wait_for(r"TG blk msix requests=64 irqs=64 vector=0x35")
