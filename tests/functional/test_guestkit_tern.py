"""Guest-kit helpers that need devices QEMU microvm does not have, checked on
tern's `virt` machine: PCI config space through ports 0xcf8/0xcfc (the path
the virtio-blk driver takes) and IOAPIC routing of COM1's interrupt. (QEMU
q35 has them too, but its SeaBIOS boot takes ~15 s on this host.)"""
from ternlib import debug_exit_status


def test_pci_scan_finds_host_bridge(tern_vm):
    vm = tern_vm(append="tg.workload=pci tg.find=8086:29c0")
    vm.start()
    assert vm.wait_exit(20) == debug_exit_status(0), vm.stderr_text()[-2000:]
    m = vm.serial.wait_for(r"^TG pci functions=(\d+)$", timeout=1)
    assert int(m[1]) >= 1
    assert vm.serial.findall(r"^TG pci 00:00\.0 id=8086:29c0 class=0600\d\d")
    assert vm.serial.findall(r"^TG pci found 8086:29c0 at 00:00\.0$")


def test_pci_find_absent_device_fails(tern_vm):
    vm = tern_vm(append="tg.workload=pci tg.find=1234:5678")
    vm.start()
    vm.serial.wait_for(r"^TG FAIL pci: no device 1234:5678 on bus 0$", timeout=20,
                       allow_fail=True)
    assert vm.wait_exit(20) == debug_exit_status(1)


def test_ioapic_routes_com1_interrupt_on_tern(tern_vm):
    vm = tern_vm(append="tg.workload=irq")
    vm.start()
    vm.serial.wait_for(r"^TG irq gsi=4 vector=0x34 count=[1-9]\d*$", timeout=20)
    assert vm.wait_exit(20) == debug_exit_status(0)


def test_pci_find_bad_argument_fails(tern_vm):
    vm = tern_vm(append="tg.workload=pci tg.find=8086-29c0")
    vm.start()
    vm.serial.wait_for(r"^TG FAIL bad argument tg.find=8086-29c0", timeout=20,
                       allow_fail=True)
    assert vm.wait_exit(20) == debug_exit_status(1)
