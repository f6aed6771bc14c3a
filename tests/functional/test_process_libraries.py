"""tern links GLib and json-c, not GObject or GIO and what they pull in:
`ldd` on the optimised and the sanitizer build's binary (and $TERN_BUILD's)
lists none of libgobject, libgio, libgmodule, libffi, libmount, libblkid,
libselinux. (The optimised build links its libraries statically: ldd shows
only libc there.)"""
import re
import subprocess

import pytest

from ternlib import paths

FORBIDDEN = ("libgobject", "libgio", "libgmodule", "libffi", "libmount", "libblkid",
             "libselinux")


def binaries():
    found = {paths.tern_binary().resolve()}
    for build in ("build", "build-san"):
        p = paths.REPO / build / "tern"
        if p.exists():
            found.add(p.resolve())
    return sorted(found)


@pytest.mark.parametrize("binary", binaries(), ids=str)
def test_links_glib_not_gio(binary):
    out = subprocess.run(["ldd", str(binary)], check=True, capture_output=True,
                         text=True, timeout=60).stdout
    libs = re.findall(r"^\s*(\S+\.so[.\d]*)", out, re.M)
    assert any(lib.startswith("libc.so") for lib in libs), out
    bad = [lib for lib in libs if lib.startswith(FORBIDDEN)]
    assert not bad, f"{binary} links {bad}"
