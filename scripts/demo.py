#!/usr/bin/python3
"""tern's main job, shown plainly: boot the bundled guest kit (a tiny PVH
guest) on build/tern and print what the guest prints on its serial port.

  1. idle   one vCPU, LAPIC timer ticks at 100 Hz, stopped after 2 seconds
  2. smp    four vCPUs: the BSP starts the APs (INIT/SIPI), each checks in
  3. dirty  the page-dirtying workload that migration tests use, 1 second
Run by scripts/run-demo (which builds build/ first)."""
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BUILD = Path(os.environ.get("TERN_DEMO_BUILD", REPO / "build"))
TERN = BUILD / "tern"
KIT = BUILD / "tests" / "guest" / "tguest.elf"


def boot(title, append, smp=1, stop_after=None):
    cmd = [str(TERN), "-M", "virt", "-accel", "kvm", "-m", "128M", "-smp", str(smp),
           "-kernel", str(KIT), "-append", append, "-serial", "stdio",
           "-display", "none", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]
    print(f"\n== {title}")
    print("$ " + " ".join(cmd[:1] + [c if " " not in c else repr(c) for c in cmd[1:]]))
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, bufsize=1)
    try:
        for line in p.stdout:
            print(f"  [{(time.monotonic() - t0) * 1000:7.1f} ms] {line.rstrip()}")
            if stop_after and time.monotonic() - t0 > stop_after:
                p.terminate()
                break
        status = p.wait(timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    how = ("stopped by SIGTERM" if stop_after else
           f"guest wrote {status >> 1} to isa-debug-exit" if status & 1 else "")
    print(f"  tern exited with status {status} {('(' + how + ')') if how else ''}")
    return status


def main():
    for need in (TERN, KIT):
        if not need.exists():
            sys.exit(f"demo: {need} is missing; run scripts/run-demo (it builds build/)")
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        sys.exit("demo: /dev/kvm is not accessible; tern needs KVM")
    print(f"tern: {subprocess.run([str(TERN), '-version'], capture_output=True, text=True).stdout.strip()}")
    boot("idle: one vCPU, LAPIC timer at 100 Hz", "tg.workload=idle tg.print=50",
         stop_after=2.0)
    ok = boot("smp: four vCPUs check in", "tg.workload=smp", smp=4) == 1
    ok &= boot("dirty: write and verify guest pages", "tg.workload=dirty tg.seconds=1") == 1
    print("\ndemo: " + ("all guests ran as expected" if ok else "a guest reported a failure"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
