"""pytest fixtures for tern's functional tests.

Fixtures: `workdir` (a per-test directory), `guest_kit` (the built PVH test
guest; skips if it is not built), `image_tools` (ternlib.imgtools; skips
without qemu-io or tern-img), `qemu_vm` / `tern_vm` (factories whose VMs are
always killed at teardown), `tiny_kernel` (writes a tiny hand-assembled PVH
kernel, ternlib.tinykernel). Markers: `needs_kvm` (skip without /dev/kvm) and
`linux_boot` (skip without hardware KVM: on the PVM host a Linux kernel cannot
boot in test time)."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ternlib import paths  # noqa: E402
from ternlib.tinykernel import write_kernel  # noqa: E402
from ternlib.vm import QemuVm, TernVm  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line("markers", "needs_kvm: skip unless /dev/kvm is usable")
    config.addinivalue_line(
        "markers", "linux_boot: boots a Linux kernel; skip without hardware KVM "
        "(kvm_intel/kvm_amd)")


def pytest_collection_modifyitems(config, items):
    no_kvm = pytest.mark.skip(reason="/dev/kvm is missing or not accessible")
    no_hw = pytest.mark.skip(
        reason="needs hardware KVM (kvm_intel/kvm_amd); this host's KVM emulates "
        "guest ring 0, so a Linux kernel cannot boot in test time")
    for item in items:
        if "needs_kvm" in item.keywords and not paths.has_kvm():
            item.add_marker(no_kvm)
        if "linux_boot" in item.keywords and not paths.has_hardware_kvm():
            item.add_marker(no_hw)


def require_hardware_kvm():
    """Call at the top of a Linux-boot test (alternative to the marker)."""
    if not paths.has_hardware_kvm():
        pytest.skip("needs hardware KVM (kvm_intel/kvm_amd); this host's KVM "
                    "emulates guest ring 0, so Linux cannot boot in test time")


@pytest.fixture
def workdir(tmp_path):
    return tmp_path


@pytest.fixture
def guest_kit():
    p = paths.guest_kit()
    if not p.exists():
        pytest.skip(f"guest kit not built: {p} (build with ninja -C "
                    f"{paths.build_dir()} tests/guest/tguest.elf)")
    if not paths.has_kvm():
        pytest.skip("/dev/kvm is missing or not accessible")
    return p


@pytest.fixture
def image_tools():
    """qemu-img, qemu-io and tern-img (ternlib.imgtools); skips without them."""
    from ternlib import imgtools
    why = imgtools.missing()
    if why:
        pytest.skip(why)
    return imgtools


@pytest.fixture
def tiny_kernel(tmp_path):
    """write(code) -> path of a tiny PVH kernel (ternlib.tinykernel) around
    `code`, in tmp_path; skips if tern is not built."""
    if not paths.tern_binary().exists():
        pytest.skip(f"tern not built: {paths.tern_binary()}")
    return lambda code: write_kernel(tmp_path, code)


def _vm_factory(cls, tmp_path):
    vms = []

    def make(**kw):
        kw.setdefault("name", f"{cls.__name__.lower()}{len(vms)}")
        vm = cls(kw.pop("workdir", tmp_path), **kw)
        vms.append(vm)
        return vm

    return make, vms


@pytest.fixture
def qemu_vm(tmp_path, guest_kit):
    """Factory: qemu_vm(append=..., smp=..., qmp=True) -> an unstarted QemuVm
    booting the guest kit; every VM made is killed at teardown."""
    make, vms = _vm_factory(QemuVm, tmp_path)
    try:
        yield make
    finally:
        for vm in vms:
            vm.kill()


@pytest.fixture
def tern_vm(tmp_path, guest_kit):
    """Factory like qemu_vm for tern; skips if tern is not built."""
    if not paths.tern_binary().exists():
        pytest.skip(f"tern not built: {paths.tern_binary()}")
    make, vms = _vm_factory(TernVm, tmp_path)
    try:
        yield make
    finally:
        for vm in vms:
            vm.kill()
