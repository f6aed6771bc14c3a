"""A reader over a growing serial log (tern's or QEMU's `-serial file:PATH`).

The guest kit writes greppable lines: `TG ready ...`, `TG tick N`,
`TG FAIL ...`, `TG done rc=N`. wait_for() polls the file until a regex matches
and fails early, with the log tail, when the guest reports `TG FAIL` or the VM
process has exited."""
import re
import time
from pathlib import Path


class SerialTimeout(AssertionError):
    pass


class GuestFailure(AssertionError):
    """The guest printed `TG FAIL ...` where the test did not expect it."""


FAIL_RE = re.compile(r"^TG FAIL.*$", re.M)


class SerialLog:
    def __init__(self, path, proc=None):
        self.path = Path(path)
        self.proc = proc        # a subprocess.Popen to notice early exit, or None

    def text(self):
        try:
            return self.path.read_bytes().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def complete_text(self):
        """The log up to its last newline: a line still being written (the
        guest writes byte by byte) is left out until it ends, unless the VM
        has exited."""
        text = self.text()
        if self.proc is not None and self.proc.poll() is not None:
            return text
        return text[:text.rfind("\n") + 1]

    def mark(self):
        """Current length in characters: pass as `start` to wait only for
        output that comes after this point."""
        return len(self.complete_text())

    def lines(self):
        """Complete lines (see complete_text)."""
        return [l.rstrip("\r") for l in self.complete_text().splitlines()]

    def tg_lines(self):
        return [l for l in self.lines() if l.startswith("TG ")]

    def tail(self, n=20):
        return "\n".join(self.text().splitlines()[-n:])

    def wait_for(self, regex, timeout=10.0, start=0, allow_fail=False, where=None):
        """Return the first re.Match of `regex` (multiline) in the log from
        character `start` on, for which `where(match)` is true if given (e.g.
        where=lambda m: int(m[1]) >= 50). Raises SerialTimeout with the log tail after
        `timeout` seconds or once the VM has exited without a match, and
        GuestFailure if a `TG FAIL` line appears first (unless allow_fail)."""
        rx = re.compile(regex, re.M)
        deadline = time.monotonic() + timeout
        while True:
            exited = self.proc is not None and self.proc.poll() is not None
            text = self.complete_text()
            for m in rx.finditer(text, start):
                if where is None or where(m):
                    return m
            if not allow_fail:
                f = FAIL_RE.search(text, start)
                if f:
                    raise GuestFailure(f"guest reported failure while waiting for "
                                       f"{regex!r}: {f.group(0)}\n--- serial tail "
                                       f"({self.path}):\n{self.tail()}")
            if exited:
                raise SerialTimeout(f"VM exited (status {self.proc.returncode}) "
                                    f"before {regex!r} appeared\n--- serial tail "
                                    f"({self.path}):\n{self.tail()}")
            if time.monotonic() >= deadline:
                raise SerialTimeout(f"{regex!r} not seen within {timeout}s\n"
                                    f"--- serial tail ({self.path}):\n{self.tail()}")
            time.sleep(0.02)

    def findall(self, regex, start=0):
        return list(re.compile(regex, re.M).finditer(self.complete_text(), start))

    def assert_no_fail(self):
        f = FAIL_RE.search(self.complete_text())
        if f:
            raise GuestFailure(f"{f.group(0)}\n--- serial tail:\n{self.tail()}")
