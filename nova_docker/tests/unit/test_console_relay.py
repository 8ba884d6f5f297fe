# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.

"""The serial console relay with real sockets: a socket pair stands in for
the engine's exec stream, and a clock of the test's own decides deadlines."""

from __future__ import annotations

import socket
import threading

import pytest

from nova_docker.console import relay
from nova_docker.tests import waiting

LIMIT = waiting.SAFETY_LIMIT_SECONDS


class FakeBackend:
    """An exec stream: ``sock`` for the relay, ``far`` for the test."""

    def __init__(self) -> None:
        self.sock, self.far = socket.socketpair()
        self.far.settimeout(LIMIT)
        self.closed = threading.Event()
        #: What ``receiver`` read from ``far``.
        self.got = b""

    def close(self) -> None:
        self.sock.close()
        self.closed.set()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Harness:
    def __init__(self, max_sessions: int = 4, idle_timeout: int = 0) -> None:
        self.backends: list[FakeBackend] = []
        self.opened: list[str] = []
        self.refusal: BaseException | None = None
        self.clock = Clock()
        self.released = threading.Event()
        self.relay = relay.Relay(
            self.open, max_sessions, idle_timeout, clock=self.clock
        )

    def open(self, owner: str) -> FakeBackend:
        self.opened.append(owner)
        if self.refusal is not None:
            raise self.refusal
        backend = FakeBackend()
        self.backends.append(backend)
        return backend

    def listen(self, owner: str = "uuid-1", timeout: float = 60) -> int:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.relay.listen(owner, sock, timeout, self.released.set)
        return sock.getsockname()[1]

    def connect(self, port: int) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", port))
        sock.settimeout(LIMIT)
        return sock

    def tick(self, seconds: float) -> None:
        """Move the clock on, and have the relay look at it."""
        self.clock.now += seconds
        self.relay._run_in_loop(lambda: None)


@pytest.fixture
def harness():
    made = Harness()
    yield made
    made.relay.stop()


def read_exactly(sock: socket.socket, size: int) -> bytes:
    seen = b""
    while len(seen) < size:
        chunk = sock.recv(size - len(seen))
        assert chunk, f"closed after {len(seen)} bytes"
        seen += chunk
    return seen


def read_to_end(sock: socket.socket) -> bytes:
    seen = b""
    while chunk := sock.recv(4096):
        seen += chunk
    return seen


def test_bytes_go_both_ways_between_client_and_backend(harness):
    client = harness.connect(harness.listen())
    client.sendall(b"typed")
    waiting.until(lambda: harness.backends, "the backend")
    backend = harness.backends[0]

    assert read_exactly(backend.far, 5) == b"typed"
    backend.far.sendall(b"printed")
    assert read_exactly(client, 7) == b"printed"
    assert harness.opened == ["uuid-1"]


def test_each_connection_gets_its_own_backend(harness):
    port = harness.listen()
    one, two = harness.connect(port), harness.connect(port)
    one.sendall(b"1")
    two.sendall(b"2")
    waiting.until(lambda: len(harness.backends) == 2, "two backends")

    said = {read_exactly(b.far, 1) for b in harness.backends}
    assert said == {b"1", b"2"}
    assert harness.relay.sessions() == 2


def test_closing_the_client_closes_its_backend_only(harness):
    port = harness.listen()
    one, two = harness.connect(port), harness.connect(port)
    waiting.until(lambda: len(harness.backends) == 2, "two backends")
    one.sendall(b"x")
    first = receiver(harness.backends)
    (second,) = [b for b in harness.backends if b is not first]

    one.close()

    assert first.closed.wait(LIMIT)
    assert not second.closed.is_set()
    second.far.sendall(b"still here")
    assert read_exactly(two, 10) == b"still here"


def test_a_backend_that_ends_is_sent_on_in_full_then_the_client_closed(harness):
    client = harness.connect(harness.listen())
    waiting.until(lambda: harness.backends, "the backend")
    backend = harness.backends[0]
    payload = bytes(range(256)) * 2048  # 512 KiB: more than the buffer

    backend.far.sendall(payload)
    backend.far.close()

    assert read_to_end(client) == payload
    assert backend.closed.wait(LIMIT)
    assert harness.relay.sessions() == 0


def test_a_client_that_does_not_read_holds_at_most_the_buffer(harness, monkeypatch):
    most = [0]
    send_some = relay._send_some

    def measured(end):
        most[0] = max(most[0], len(end.pending))
        send_some(end)

    monkeypatch.setattr(relay, "_send_some", measured)
    client = harness.connect(harness.listen())
    waiting.until(lambda: harness.backends, "the backend")
    backend = harness.backends[0]
    # More than the kernel buffers of both sockets hold.
    payload = b"y" * (32 * 1024 * 1024)
    writer = threading.Thread(target=backend.far.sendall, args=(payload,))
    writer.start()
    # The client reads nothing until the relay's buffer for it is full.
    waiting.until(lambda: most[0] >= relay.BUFFER_BYTES, "a full buffer")

    assert read_exactly(client, len(payload)) == payload
    writer.join(LIMIT)
    assert most[0] <= relay.BUFFER_BYTES


def test_a_refused_session_tells_the_client_why_in_one_line(harness):
    harness.refusal = relay.Refused("the server is gone")
    client = harness.connect(harness.listen())

    assert read_to_end(client) == b"nova-docker: the server is gone\r\n"
    assert harness.relay.sessions() == 0


def test_a_failure_to_open_tells_the_client_to_see_the_log(harness):
    harness.refusal = RuntimeError("engine internals")
    client = harness.connect(harness.listen())

    said = read_to_end(client)
    assert b"see nova-compute's log" in said
    assert b"internals" not in said


def test_connections_beyond_the_limit_are_refused_saying_so():
    harness = Harness(max_sessions=1)
    try:
        port = harness.listen()
        first = harness.connect(port)
        waiting.until(lambda: harness.backends, "the first backend")

        said = read_to_end(harness.connect(port))

        assert b"all 1 serial console sessions of this host are in use" in said
        assert len(harness.backends) == 1
        harness.backends[0].far.sendall(b"ok")
        assert read_exactly(first, 2) == b"ok"
    finally:
        harness.relay.stop()


def test_a_listener_expires_unless_extended(harness):
    port = harness.listen(timeout=60)
    harness.tick(50)
    assert harness.relay.extend("uuid-1", 60) == port
    harness.tick(50)
    # Extended to 110 s from the start: still open at 100.
    harness.connect(port).close()
    assert not harness.released.is_set()

    harness.tick(11)

    assert harness.released.wait(LIMIT)
    assert harness.relay.extend("uuid-1", 60) is None
    with pytest.raises(ConnectionRefusedError):
        harness.connect(port)


def test_an_idle_session_is_closed_and_an_active_one_kept():
    harness = Harness(idle_timeout=30)
    try:
        port = harness.listen()
        idle, busy = harness.connect(port), harness.connect(port)
        waiting.until(lambda: len(harness.backends) == 2, "two backends")
        # Both relayed before the clock moves: both sessions are open.
        for backend in harness.backends:
            backend.far.sendall(b".")
        assert read_exactly(idle, 1) == read_exactly(busy, 1) == b"."
        harness.tick(20)
        busy.sendall(b"k")
        receiver(harness.backends)
        harness.tick(20)

        assert read_to_end(idle) == b""
        waiting.until(lambda: harness.relay.sessions() == 1, "one session left")
        busy.sendall(b"alive")
    finally:
        harness.relay.stop()


def receiver(backends: list[FakeBackend]) -> FakeBackend:
    """The backend that the byte just typed reaches."""
    waiting.until(
        lambda: any(_has_byte(b) for b in backends), "the byte to reach a backend"
    )
    return next(b for b in backends if b.got)


def _has_byte(backend: FakeBackend) -> bool:
    backend.far.setblocking(False)
    try:
        backend.got += backend.far.recv(1)
    except BlockingIOError:
        pass
    finally:
        backend.far.settimeout(LIMIT)
    return bool(backend.got)


def test_closing_an_owner_closes_its_listener_and_sessions_only(harness):
    mine = harness.connect(harness.listen("uuid-1"))
    other_released = threading.Event()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    harness.relay.listen("uuid-2", sock, 60, other_released.set)
    theirs = harness.connect(sock.getsockname()[1])
    waiting.until(lambda: len(harness.backends) == 2, "two backends")

    harness.relay.close_owner("uuid-1")

    # Returned with the backend already closed.
    assert sum(b.closed.is_set() for b in harness.backends) == 1
    assert harness.released.is_set() and not other_released.is_set()
    assert read_to_end(mine) == b""
    theirs.sendall(b"z")
    assert harness.relay.sessions() == 1


def test_stop_closes_everything_and_ends_the_thread(harness):
    client = harness.connect(harness.listen())
    waiting.until(lambda: harness.backends, "the backend")
    thread = harness.relay._thread

    harness.relay.stop()

    assert not thread.is_alive()
    assert harness.backends[0].closed.is_set()
    assert harness.released.is_set()
    assert read_to_end(client) == b""


def test_listening_again_for_an_owner_closes_its_old_port(harness):
    old = harness.listen("uuid-1")
    new = harness.listen("uuid-1")

    assert harness.released.wait(LIMIT)
    assert harness.relay.extend("uuid-1", 60) == new
    with pytest.raises(ConnectionRefusedError):
        harness.connect(old)
