#!/usr/bin/python3
"""Boot benchmark: tern vs QEMU 7.2 microvm on the same guest kit, same RAM,
in one run (not a test; figures go to docs/benchmarks.md, section "Boot").

For each VMM, N runs, alternating, reporting medians:
  ready_ms   exec() -> the guest's first "TG ready" line read from the VMM's
             stdout (-serial stdio through a pipe)
  vmm_rss    VMM memory excluding guest RAM, read from /proc/PID/status when
             "TG ready" arrives: RssAnon + RssFile. Guest RAM is a shared
             memfd in both VMMs (tern always; QEMU with a memory-backend-memfd
             for -M microvm's RAM), so it is counted in RssShmem and left out.
  vmm_pss    the same from /proc/PID/smaps_rollup as Pss_Anon + Pss_File:
             shared-library pages count only for this process's share, so it
             is closer to what one more VM costs the host.
It also prints the load average before and after (this host is shared; the
load moves the times more than anything the VMMs do), both command lines, and
for tern's last run where its resident pages are, per mapped file
(/proc/PID/smaps at "TG ready"), so the RSS figure can be explained.
Usage: bench/boot.py [--runs N] [--build DIR] [--mem MiB]
(default build: <repo>/build, the optimised tree; scripts/build build makes it).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def read_status(pid):
    fields = {}
    for name in ("status", "smaps_rollup"):
        with open(f"/proc/{pid}/{name}") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("RssAnon", "RssFile", "RssShmem", "Pss_Anon", "Pss_File"):
                    fields[key] = int(rest.split()[0])   # kB
    return fields


def rss_by_mapping(pid):
    """kB resident per mapped file ('[anon]' for the rest), from smaps."""
    out, name = {}, None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            head = line.split()
            if "-" in head[0] and ":" not in head[0]:
                name = os.path.basename(head[5]) if len(head) > 5 else "[anon]"
            elif head[0] == "Rss:":
                out[name] = out.get(name, 0) + int(head[1])
    return out


def tern_cmd(build, kit, mem):
    return [str(build / "tern"), "-M", "virt", "-accel", "kvm", "-m", f"{mem}M",
            "-kernel", str(kit), "-append", "tg.workload=idle", "-serial", "stdio",
            "-display", "none"]


def qemu_cmd(build, kit, mem):
    return ["qemu-system-x86_64", "-M", "microvm,memory-backend=ram0", "-accel", "kvm",
            "-cpu", "host,-arch-capabilities", "-nodefaults", "-no-user-config",
            "-object", f"memory-backend-memfd,id=ram0,size={mem}M",
            "-m", f"{mem}M", "-kernel", str(kit), "-append", "tg.workload=idle",
            "-serial", "stdio", "-display", "none"]


def one_run(cmd, timeout=20.0):
    """Returns (ms to 'TG ready', /proc status fields at that moment)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        deadline = t0 + timeout
        for line in p.stdout:
            if line.startswith(b"TG ready"):
                ms = (time.perf_counter() - t0) * 1000
                fields = read_status(p.pid)
                fields["by_mapping"] = rss_by_mapping(p.pid)
                return ms, fields
            if time.perf_counter() > deadline:
                break
        raise RuntimeError(f"no 'TG ready' from {cmd[0]}: {p.stderr.read(2000)!r}")
    finally:
        p.kill()
        p.wait()
        p.stdout.close()
        p.stderr.close()


def summarize(runs):
    ms = [r[0] for r in runs]
    rss = [(r[1]["RssAnon"] + r[1]["RssFile"]) / 1024 for r in runs]
    pss = [(r[1]["Pss_Anon"] + r[1]["Pss_File"]) / 1024 for r in runs]
    shm = [r[1]["RssShmem"] / 1024 for r in runs]
    return {"ready_ms": statistics.median(ms), "ready_ms_min": min(ms),
            "vmm_rss_mib": statistics.median(rss), "vmm_pss_mib": statistics.median(pss),
            "guest_shmem_mib": statistics.median(shm)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--build", type=Path, default=REPO / "build")
    ap.add_argument("--mem", type=int, default=256)
    args = ap.parse_args()
    kit = args.build / "tests" / "guest" / "tguest.elf"
    for need in (args.build / "tern", kit):
        if not need.exists():
            sys.exit(f"missing {need}: run scripts/build build")

    cmds = {"tern": tern_cmd(args.build, kit, args.mem),
            "qemu": qemu_cmd(args.build, kit, args.mem)}
    runs = {"tern": [], "qemu": []}
    load_before = os.getloadavg()
    one_run(cmds["tern"])          # warm the page cache for both
    one_run(cmds["qemu"])
    for _ in range(args.runs):
        for name in ("tern", "qemu"):
            runs[name].append(one_run(cmds[name]))
    load_after = os.getloadavg()
    res = {name: summarize(r) for name, r in runs.items()}
    t, q = res["tern"], res["qemu"]
    for name in ("tern", "qemu"):
        print(f"{name}: {' '.join(cmds[name])}")
    print("load average before: %.2f %.2f %.2f, after: %.2f %.2f %.2f"
          % (load_before + load_after))
    print(f"Boot: guest kit (idle), -m {args.mem}M, median of {args.runs} runs each")
    print(f"{'':6} {'exec->TG ready':>15} {'RSS w/o guest RAM':>18} {'PSS w/o guest RAM':>18}")
    for name in ("tern", "qemu"):
        r = res[name]
        print(f"{name:6} {r['ready_ms']:12.1f} ms {r['vmm_rss_mib']:14.1f} MiB "
              f"{r['vmm_pss_mib']:14.1f} MiB")
    print(f"ratio  QEMU/tern: time {q['ready_ms'] / t['ready_ms']:.1f}x, "
          f"RSS {q['vmm_rss_mib'] / t['vmm_rss_mib']:.1f}x, "
          f"PSS {q['vmm_pss_mib'] / t['vmm_pss_mib']:.1f}x")
    maps = runs["tern"][-1][1]["by_mapping"]
    top = sorted(maps.items(), key=lambda kv: -kv[1])
    print("tern's last run, resident kB per mapping (guest RAM is the memfd):")
    print("  " + ", ".join(f"{k} {v}" for k, v in top if v >= 16))
    out = REPO / "bench" / "out"
    out.mkdir(exist_ok=True)
    (out / "boot.json").write_text(json.dumps(
        {"mem_mib": args.mem, "runs": args.runs, "load_before": load_before,
         "load_after": load_after, "results": res, "tern_rss_kib_by_mapping": maps},
        indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
