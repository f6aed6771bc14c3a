"""A forwarding proxy between a migration source and its destination, to
slow the link down (bytes per second, source -> destination only), to
record what the source sends (one file per connection, for tern-stream),
and to cut it: kill() resets every connection at once, as a failing network
would, kill_connection(n) only the n-th (a multifd channel). Each accepted connection is forwarded to a new connection to the
target, in the order they come (a postcopy-preempt source opens two)."""
import socket
import struct
import threading
import time


def _parse(uri):
    kind, _, rest = uri.partition(":")
    if kind == "unix":
        return socket.AF_UNIX, rest
    host, _, port = rest.rpartition(":")
    return socket.AF_INET, (host.strip("[]"), int(port))


class Proxy:
    """listen_uri ('unix:PATH' or 'tcp:HOST:0'), target_uri; .uri is what a
    source connects to."""

    CHUNK = 64 << 10

    def __init__(self, listen_uri, target_uri, rate=0, record=None):
        """record: a path prefix; connection N's bytes go to PREFIX.N"""
        self.target = target_uri
        self.rate = rate
        self.record = record
        self.nconn = 0
        family, addr = _parse(listen_uri)
        self.lsock = socket.socket(family, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(addr)
        self.lsock.listen(8)
        if family == socket.AF_UNIX:
            self.uri = listen_uri
        else:
            self.uri = "tcp:%s:%d" % self.lsock.getsockname()[:2]
        self.socks = []
        self.lock = threading.Lock()
        self.dead = False
        self.forwarded = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            family, addr = _parse(self.target)
            u = socket.socket(family, socket.SOCK_STREAM)
            try:
                u.connect(addr)
            except OSError:
                c.close()
                continue
            with self.lock:
                if self.dead:
                    c.close()
                    u.close()
                    return
                self.socks += [c, u]
                rec = f"{self.record}.{self.nconn}" if self.record else None
                self.nconn += 1
            threading.Thread(target=self._pump, args=(c, u, self.rate, rec),
                             daemon=True).start()
            threading.Thread(target=self._pump, args=(u, c, 0),
                             daemon=True).start()

    def _pump(self, a, b, rate, record=None):
        start = time.monotonic()
        sent = 0
        out = open(record, "wb") if record else None
        try:
            while True:
                data = a.recv(self.CHUNK)
                if not data:
                    break
                if out:
                    out.write(data)
                b.sendall(data)
                sent += len(data)
                if rate:
                    self.forwarded += len(data)
                    ahead = sent / rate - (time.monotonic() - start)
                    if ahead > 0:
                        time.sleep(ahead)
        except OSError:
            pass
        if out:
            out.close()
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def kill_connection(self, n):
        """Reset connection n (in the order they came) on both sides, as a
        network failing for that connection only would."""
        with self.lock:
            socks = self.socks[2 * n:2 * n + 2]
        self._reset(socks)

    @staticmethod
    def _reset(socks):
        for s in socks:
            try:
                # Linger 0: close resets a TCP connection; shutting the
                # read side first wakes the pump blocked in recv.
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                             struct.pack("ii", 1, 0))
                s.shutdown(socket.SHUT_RD)
            except OSError:
                pass
        for s in socks:
            s.close()

    def kill(self):
        """Reset every connection (RST, not FIN) and stop accepting."""
        with self.lock:
            self.dead = True
            socks, self.socks = self.socks, []
        self._reset(socks)
        try:
            self.lsock.close()
        except OSError:
            pass

    def close(self):
        self.kill()
