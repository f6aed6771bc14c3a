#!/usr/bin/python3
"""tern's main job, shown plainly: boot the bundled guest kit (a tiny PVH
guest) on build/tern and print what the guest prints on its serial port.

  1. idle   one vCPU, LAPIC timer ticks at 100 Hz, stopped after 2 seconds
  2. smp    four vCPUs: the BSP starts the APs (INIT/SIPI), each checks in
  3. dirty  the page-dirtying workload that migration tests use, 1 second
  4. live migration: dirty runs on tern A, moves to tern B over a unix
     socket while it writes; progress (pass, remaining, rate) and the final
     figures, then B's own verification of every page
Run by scripts/run-demo (which builds build/ first)."""
import os
import subprocess
import sys
import tempfile
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


def live_migration():
    """Step 4, with the functional tests' helpers (tests/functional/ternlib)."""
    sys.path.insert(0, str(REPO / "tests" / "functional"))
    os.environ["TERN_BUILD"] = str(BUILD.resolve())
    from ternlib import TernVm, guestkit

    print("\n== live migration: dirty on tern A -> tern B over a unix socket")
    append = guestkit.cmdline("dirty", mem="32M", rate="16M", report=100)
    with tempfile.TemporaryDirectory(prefix="tern-demo-") as tmp:
        with TernVm(tmp, append=append, memory=128, qmp=True, name="A") as a:
            guestkit.wait_dirty_passes(a.serial, 2, timeout=20)
            uri = "unix:" + a.sock_path("mig")
            with TernVm(tmp, append=append, memory=128, qmp=True, name="B",
                        incoming=uri) as b:
                b.qmp()
                a.qmp().execute("migrate-set-parameters", **{"max-bandwidth": 64 << 20})
                print(f"  A: migrate {uri} (max-bandwidth 64 MiB/s, guest dirties 16 MiB/s)")
                a.qmp().execute("migrate", uri=uri)
                info = {}
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    info = a.qmp().execute("query-migrate")
                    ram = info.get("ram", {})
                    print(f"  A: {info.get('status', 'setup'):10} pass {ram.get('dirty-sync-count', 0):3}"
                          f"  remaining {ram.get('remaining', 0) >> 10:7} KiB"
                          f"  rate {ram.get('mbps', 0):8.1f} Mbit/s")
                    if info.get("status") in ("completed", "failed", "cancelled"):
                        break
                    time.sleep(0.1)
                if info.get("status") != "completed":
                    print(f"  migration ended {info}")
                    return False
                ram = info["ram"]
                print(f"  done: total {info['total-time']} ms, downtime {info['downtime']} ms, "
                      f"{ram['transferred'] >> 20} MiB sent ({ram['normal']} pages, "
                      f"{ram['duplicate']} zero pages), {ram['dirty-sync-count']} passes")
                print(f"  A is {a.qmp().execute('query-status')['status']}, "
                      f"B is {b.qmp().execute('query-status')['status']}")
                last = guestkit.last_dirty_pass(a.serial) or 0
                n = guestkit.wait_dirty_passes(b.serial, last + 3, timeout=30)
                for line in b.serial.lines()[-3:]:
                    print(f"  B serial: {line}")
                print(f"  B verified {n - last} more passes after A's last ({last}): "
                      f"no stale or lost page")
                return not guestkit.fail_lines(b.serial)


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
    ok &= live_migration()
    print("\ndemo: " + ("all guests ran as expected" if ok else "a guest reported a failure"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
