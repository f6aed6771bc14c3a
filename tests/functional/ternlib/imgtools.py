"""Running the image tools from block tests: qemu-img, qemu-io (QEMU 7.2, the
reference) and tern-img, with text output captured and never raising, so a
test can compare exit codes and messages of both sides."""
import os
import subprocess

from . import paths

QEMU_IMG = paths.qemu_img()
QEMU_IO = "/usr/bin/qemu-io"


def missing():
    """Why the tools cannot run here, or None."""
    if not paths.tern_img().exists():
        return f"tern-img not built in {paths.build_dir()}"
    if not os.path.exists(QEMU_IO):
        return "qemu-io (qemu-utils) not installed"
    return None


def run(*args, timeout=120):
    return subprocess.run([str(a) for a in args], capture_output=True,
                          text=True, timeout=timeout)


def tern_img(*args, timeout=120):
    return run(paths.tern_img(), *args, timeout=timeout)
