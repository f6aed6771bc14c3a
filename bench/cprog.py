"""Builds one of bench/'s helper C programs (libc and pthreads only, such as
the limit programs beside the migration benchmarks) with cc -O2 -Wall."""
import subprocess
from pathlib import Path

BENCH = Path(__file__).resolve().parent


def build(name, tmp):
    """bench/<name>.c built into tmp; returns the executable's path."""
    exe = Path(tmp) / name
    subprocess.run(["cc", "-O2", "-Wall", "-o", str(exe),
                    str(BENCH / f"{name}.c"), "-lpthread"], check=True)
    return exe
