"""Every QMP connection reads the greeting first, even when the same -qmp
socket is reconnected while another monitor makes events flow (stop/cont in
a loop). QEMU 7.2 fails this: its monitor stays negotiated after a client
leaves, so an event can reach the next client before that client's greeting
(seen as NoGreeting: STOP/RESUME, a few times per 10,000 reconnects). tern
keeps a session per connection and sends events only to negotiated ones."""
import threading
import time

import pytest

from ternlib import TernVm
from ternlib.qmp import QmpClient, QmpError
from ternlib.tinykernel import SPIN

pytestmark = pytest.mark.needs_kvm

SECONDS = 3


def test_greeting_first_on_reconnect_while_events_flow(tmp_path, tiny_kernel):
    vm = TernVm(tmp_path, kernel=tiny_kernel(SPIN), memory=64, debug_exit=False, qmp=True)
    second = vm.sock_path("qmp2")
    vm.extra_args = ["-qmp", f"unix:{second},server=on,wait=off"]
    done = threading.Event()
    bad, connects, errors = [], [0], []

    def toggle(q):
        try:
            while not done.is_set():
                q.execute("stop")
                q.execute("cont")
                q.events.clear()
        except Exception as e:      # reported by the main thread
            errors.append(repr(e))

    try:
        vm.start()
        toggler = threading.Thread(target=toggle, args=(vm.qmp(),))
        toggler.start()
        deadline = time.monotonic() + SECONDS
        try:
            while time.monotonic() < deadline:
                try:
                    QmpClient(second, connect_timeout=5).close()
                except QmpError as e:
                    bad.append(str(e))
                connects[0] += 1
        finally:
            done.set()
            toggler.join(15)
        assert not errors, errors
        assert not bad, bad[:3]
        assert connects[0] >= 100, connects
    finally:
        vm.kill()
