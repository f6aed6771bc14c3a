"""A small QMP client over a unix socket, for tests of tern and of QEMU.

Messages are JSON objects separated by newlines. Asynchronous events that arrive
while a reply is awaited are kept in `events` so that wait_event() finds them
later. cmd() returns the whole reply so a test can inspect error.class;
execute() returns `return` and raises QmpError on an error reply."""
import json
import socket
import time


class QmpError(Exception):
    """The server answered with {"error": {...}}."""

    def __init__(self, reply):
        err = reply.get("error", {})
        self.reply = reply
        self.error_class = err.get("class")
        self.desc = err.get("desc")
        super().__init__(f"{self.error_class}: {self.desc}")


class QmpTimeout(TimeoutError):
    pass


class QmpClient:
    """Connect to a QMP unix socket and negotiate capabilities.

    connect_timeout bounds the retry loop while the VM creates its socket;
    timeout is the default bound on every later wait."""

    def __init__(self, path, connect_timeout=10.0, timeout=10.0, negotiate=True):
        self.path = str(path)
        self.timeout = timeout
        self.events = []
        self.greeting = None
        self._buf = b""
        self._sock = self._connect(connect_timeout)
        if negotiate:
            self.greeting = self.read_message(timeout)
            if "QMP" not in self.greeting:
                raise QmpError({"error": {"class": "NoGreeting",
                                          "desc": repr(self.greeting)}})
            self.execute("qmp_capabilities")

    def _connect(self, connect_timeout):
        deadline = time.monotonic() + connect_timeout
        while True:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(self.path)
                return s
            except (FileNotFoundError, ConnectionRefusedError) as e:
                s.close()
                if time.monotonic() >= deadline:
                    raise QmpTimeout(f"QMP socket {self.path} not ready after "
                                     f"{connect_timeout}s: {e}") from e
                time.sleep(0.02)

    # -- raw transport ---------------------------------------------------------
    def send_raw(self, data):
        """Send bytes as they are (for malformed-input tests)."""
        if isinstance(data, str):
            data = data.encode()
        self._sock.sendall(data)

    def send(self, obj):
        self.send_raw(json.dumps(obj).encode() + b"\n")

    def read_message(self, timeout=None):
        """The next message, event or not. Raises QmpTimeout, or EOFError
        when the server closed the connection."""
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while True:
            line, sep, rest = self._buf.partition(b"\n")
            if sep:
                self._buf = rest
                if line.strip():
                    return json.loads(line)
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                raise QmpTimeout(f"no QMP message within {timeout}s "
                                 f"(partial: {self._buf[:200]!r})")
            self._sock.settimeout(left)
            try:
                chunk = self._sock.recv(65536)
            except socket.timeout:
                continue
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                raise EOFError(f"QMP connection closed (partial: {self._buf[:200]!r})")
            self._buf += chunk

    def read_reply(self, timeout=None):
        """The next non-event message; events met on the way are buffered."""
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while True:
            msg = self.read_message(max(deadline - time.monotonic(), 0.001))
            if "event" in msg:
                self.events.append(msg)
                continue
            return msg

    # -- commands --------------------------------------------------------------
    def cmd(self, name, args=None, timeout=None, **kwargs):
        """Run a command and return the whole reply dict.

        `args` is sent verbatim; keyword arguments are added with '_' turned
        into '-' (QMP's usual spelling): cmd('blockdev-add', node_name='x')."""
        msg = {"execute": name}
        arguments = dict(args or {})
        arguments.update({k.replace("_", "-"): v for k, v in kwargs.items()})
        if arguments:
            msg["arguments"] = arguments
        self.send(msg)
        return self.read_reply(timeout)

    def execute(self, name, args=None, timeout=None, **kwargs):
        """Run a command; return its `return` value or raise QmpError."""
        reply = self.cmd(name, args, timeout, **kwargs)
        if "error" in reply:
            raise QmpError(reply)
        if "return" not in reply:
            raise QmpError({"error": {"class": "BadReply", "desc": repr(reply)}})
        return reply["return"]

    # -- events ----------------------------------------------------------------
    def wait_event(self, name, timeout=None, match=None):
        """Return (and remove from the buffer) the first event called `name`
        whose data includes every key/value of `match`."""
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout

        def fits(ev):
            if ev.get("event") != name:
                return False
            data = ev.get("data", {})
            return all(data.get(k) == v for k, v in (match or {}).items())

        while True:
            for i, ev in enumerate(self.events):
                if fits(ev):
                    return self.events.pop(i)
            left = deadline - time.monotonic()
            if left <= 0:
                seen = [e.get("event") for e in self.events]
                raise QmpTimeout(f"event {name} not seen within {timeout}s "
                                 f"(buffered: {seen})")
            try:
                msg = self.read_message(left)
            except QmpTimeout:
                continue
            if "event" in msg:
                self.events.append(msg)
            # a stray reply (e.g. to send_raw) is dropped while waiting

    def clear_events(self):
        self.events.clear()

    def close(self):
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
