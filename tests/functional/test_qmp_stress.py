"""Hostile and busy QMP clients must not disturb the guest or the monitor:
1000 malformed, too-deep or oversized messages, and 100 connect/disconnect
cycles from concurrent clients (some vanishing mid-message or without reading
their replies), while the guest kit ticks at 100 Hz. Afterwards tern still
answers, and the guest's tick rate stayed near 100 Hz throughout."""
import socket
import threading
import time

from ternlib.qmp import QmpClient

IDLE = "tg.workload=idle tg.hz=100 tg.print=5"
MAX_MESSAGE = 1024 * 1024       # monitor/qmp-framer.h QMP_FRAMER_MAX_SIZE


def last_tick(vm):
    found = vm.serial.findall(r"^TG tick (\d+)$")
    return int(found[-1].group(1)) if found else 0


def raw_connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(str(path))
    return s


def recv_lines(s, n):
    buf = b""
    while buf.count(b"\n") < n:
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    return buf.split(b"\r\n")[:n]


MALFORMED = [
    b'{"execute": foo}', b'}', b']', b'{"a" 1}', b'"abc"', b'[1, 2]', b'{}',
    b'{"execute": 1}', b'{"execute": "nope"}', b'{"execute": "query-status", "x": 1}',
    b'{"execute": "query-status", "arguments": 5}', b'\xc3\x28', b'tru', b'1e999999',
]


def malformed_burst(path, count):
    """count malformed messages on one connection; each gets an error reply."""
    s = raw_connect(path)
    try:
        recv_lines(s, 1)                                   # greeting
        s.sendall(b'{"execute": "qmp_capabilities"}')
        assert b'"return"' in recv_lines(s, 1)[0]
        sent = 0
        while sent < count:
            batch = [MALFORMED[(sent + i) % len(MALFORMED)] for i in range(50)]
            s.sendall(b" ".join(batch) + b" ")
            replies = recv_lines(s, len(batch))
            assert len(replies) == len(batch)
            assert all(b'"error"' in r for r in replies), replies
            sent += len(batch)
        s.sendall(b"[" * 2000 + b"]" * 2000)               # too deep: error, still open
        assert b"nesting too deep" in recv_lines(s, 1)[0]
        s.sendall(b'{"execute": "query-version"}')
        assert b'"return"' in recv_lines(s, 1)[0]
        return sent + 1
    finally:
        s.close()


def oversized(path):
    """One oversized message: an error reply, then the server hangs up."""
    s = raw_connect(path)
    try:
        recv_lines(s, 1)
        body = b'{"execute": "' + b"a" * (MAX_MESSAGE + 10) + b'"}'
        try:
            s.sendall(body)
        except (BrokenPipeError, ConnectionResetError):
            pass                                           # closed while we wrote
        rest = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            rest += chunk
        assert b"message too large" in rest
    finally:
        s.close()


def churn(path, cycles, errors):
    try:
        for i in range(cycles):
            s = raw_connect(path)
            if i % 4 == 0:
                s.sendall(b'{"execute": "qmp_capabilities"}{"execute": "query-commands"}')
            elif i % 4 == 1:
                s.sendall(b'{"execute": "qmp_capab')          # vanish mid-message
            elif i % 4 == 2:
                recv_lines(s, 1)
            s.close()                                         # i % 4 == 3: never read
    except Exception as e:          # reported by the main thread
        errors.append(e)


class TickSampler(threading.Thread):
    """Records (time, last tick) every 50 ms until stopped."""

    def __init__(self, vm):
        super().__init__(daemon=True)
        self.vm = vm
        self.samples = []
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            self.samples.append((time.monotonic(), last_tick(self.vm)))
            time.sleep(0.05)

    def longest_stall(self):
        """Longest time the tick count stood still."""
        worst, since = 0.0, None
        for (t, n), (_, prev) in zip(self.samples[1:], self.samples):
            if n == prev:
                since = since or t
                worst = max(worst, t - since)
            else:
                since = None
        return worst

    def rate(self):
        (t0, n0), (t1, n1) = self.samples[0], self.samples[-1]
        return (n1 - n0) / (t1 - t0)


def baseline_rate(vm, seconds=1.0):
    t0, n0 = time.monotonic(), last_tick(vm)
    time.sleep(seconds)
    return (last_tick(vm) - n0) / (time.monotonic() - t0)


def test_hostile_and_busy_clients_leave_guest_and_monitor_alone(tern_vm):
    vm = tern_vm(qmp=True, append=IDLE)
    vm.start()
    q = vm.qmp()
    vm.serial.wait_for(r"^TG tick (\d+)$", timeout=10, where=lambda m: int(m[1]) >= 10)
    base = baseline_rate(vm)
    sampler = TickSampler(vm)
    sampler.start()

    handled = malformed_burst(vm.qmp_path, 900)
    for _ in range(100):
        oversized(vm.qmp_path)
    handled += 100
    assert handled >= 1000

    errors = []
    threads = [threading.Thread(target=churn, args=(vm.qmp_path, 10, errors))
               for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert not any(t.is_alive() for t in threads)

    # Still responsive, and the long-lived session was never disturbed.
    assert q.execute("query-status")["status"] == "running"
    with QmpClient(vm.qmp_path) as fresh:
        assert fresh.execute("query-version")["qemu"]["major"] == 7
    time.sleep(0.3)
    sampler.done.set()
    sampler.join(5)
    # Ticks are printed every 5 at 100 Hz (50 ms apart): a 0.5 s stall means
    # the guest stopped, which a QMP client must never cause.
    assert sampler.longest_stall() < 0.5, f"guest ticks stalled {sampler.longest_stall():.2f}s"
    assert sampler.rate() > 0.5 * base, \
        f"guest ticked at {sampler.rate():.0f} Hz during the QMP storm, {base:.0f} Hz before"
    assert vm.running()
