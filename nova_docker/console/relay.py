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

"""One selector thread relays every serial console of the host.

It owns the listening sockets (one per instance that has a console handed
out) and the sessions (a TCP connection paired with a backend stream, the
engine's exec socket), and enforces their deadlines.  What may block (the
engine calls that open and end a backend) runs in a small pool of workers,
so a slow engine never stalls the bytes of other sessions.  Threads and
memory stay bounded: one selector thread, ``WORKERS`` workers, and at most
``BUFFER_BYTES`` waiting in each direction of each of ``max_sessions``.

Nothing here knows Docker or Nova: sessions are opened by the ``open``
callable given to :class:`Relay`, which returns a :class:`Backend`.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import Protocol

from oslo_log import log as logging

LOG = logging.getLogger(__name__)

#: Bytes that may wait for a slow reader in each direction of a session;
#: beyond it the other side is not read until the reader catches up.
BUFFER_BYTES = 64 * 1024
RECV_BYTES = 16 * 1024
#: Threads for the engine calls that open and close backends.
WORKERS = 4
#: A safety net for callers waiting on the relay, never reached when the
#: engine answers.
CLOSE_TIMEOUT = 120
#: Connections the kernel queues on a listener before it is accepted.
BACKLOG = 4
# Errors of a non-blocking socket (or TLS over one) that mean "not now".
_NOT_NOW = (BlockingIOError, InterruptedError, ssl.SSLWantReadError,
            ssl.SSLWantWriteError)  # fmt: skip


class Backend(Protocol):
    """The far end of a session: ``sock`` carries its bytes."""

    sock: socket.socket

    def close(self) -> None:
        """Close ``sock`` and end whatever runs behind it (may block)."""


class Refused(Exception):
    """A session cannot be opened; the message is sent to the client."""


@dataclasses.dataclass
class _End:
    """One socket of a session and the bytes waiting to be sent to it."""

    sock: socket.socket
    pending: bytearray = dataclasses.field(default_factory=bytearray)
    #: What the selector watches it for; 0 when not registered.
    mask: int = 0


@dataclasses.dataclass(eq=False)
class _Session:
    owner: str
    client: _End
    backend: Backend | None = None
    far: _End | None = None
    last_active: float = 0.0
    #: The backend ended: close once the client has what is left.
    draining: bool = False


@dataclasses.dataclass(eq=False)
class _Listener:
    owner: str
    sock: socket.socket
    deadline: float
    on_close: Callable[[], None]

    @property
    def port(self) -> int:
        return self.sock.getsockname()[1]


class Relay:
    """The selector thread and what it serves; started on first use."""

    def __init__(
        self,
        open_backend: Callable[[str], Backend],
        max_sessions: int,
        idle_timeout: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._open_backend = open_backend
        self._max_sessions = max_sessions
        self._idle_timeout = idle_timeout
        self._clock = clock
        self._lock = threading.Lock()
        self._listeners: dict[str, _Listener] = {}
        self._sessions: set[_Session] = set()
        self._calls: list[Callable[[], None]] = []
        self._selector: selectors.BaseSelector | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._workers: concurrent.futures.ThreadPoolExecutor | None = None

    # -- called from any thread -------------------------------------------

    def listen(
        self, owner: str, sock: socket.socket, timeout: float, on_close: Callable
    ) -> None:
        """Serve ``owner``'s consoles on the bound socket ``sock`` until
        ``timeout`` seconds pass without :meth:`extend`; ``on_close`` runs
        once it is closed."""
        self._start()
        sock.listen(BACKLOG)
        sock.setblocking(False)
        listener = _Listener(owner, sock, self._clock() + timeout, on_close)
        with self._lock:
            replaced = self._listeners.get(owner)
            self._listeners[owner] = listener
        if replaced is not None:
            self._run_in_loop(lambda: self._close_listener(replaced))
        self._run_in_loop(lambda: self._register_listener(listener))

    def extend(self, owner: str, timeout: float) -> int | None:
        """The port of ``owner``'s listener, now open ``timeout`` seconds
        more; None when it has none."""
        with self._lock:
            listener = self._listeners.get(owner)
            if listener is None:
                return None
            listener.deadline = max(listener.deadline, self._clock() + timeout)
            return listener.port

    def sessions(self) -> int:
        with self._lock:
            return len(self._sessions)

    def close_owner(self, owner: str) -> None:
        """Close ``owner``'s listener and sessions; returns once their
        backends are closed."""
        if self._thread is None:
            return
        done: concurrent.futures.Future = concurrent.futures.Future()
        self._run_in_loop(lambda: _settle(done, lambda: self._close_owner(owner)))
        try:
            closing = done.result(timeout=CLOSE_TIMEOUT)
        except Exception:
            # What the caller goes on to do (a delete) must not fail for it.
            LOG.exception("Could not close the serial consoles",
                          instance_uuid=owner)  # fmt: skip
            return
        concurrent.futures.wait(closing, timeout=CLOSE_TIMEOUT)

    def stop(self) -> None:
        """Close everything and end the thread and the workers."""
        if self._thread is None:
            return
        self._run_in_loop(self._shut_down)
        self._thread.join()
        self._workers.shutdown(wait=True)
        # Backends that finished opening as the loop ended are closed here.
        with self._lock:
            calls, self._calls = self._calls, []
        for call in calls:
            call()
        self._wake_r.close()
        self._wake_w.close()
        self._selector.close()
        self._thread = None

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._stopping = False
            self._selector = selectors.DefaultSelector()
            self._wake_r, self._wake_w = socket.socketpair()
            # One byte waiting wakes the loop: more need not be sent.
            self._wake_r.setblocking(False)
            self._wake_w.setblocking(False)
            self._selector.register(self._wake_r, selectors.EVENT_READ, None)
            self._workers = concurrent.futures.ThreadPoolExecutor(
                WORKERS, thread_name_prefix="serial-console-engine"
            )
            self._thread = threading.Thread(
                target=self._loop, name="serial-console-relay", daemon=True
            )
            self._thread.start()

    def _run_in_loop(self, call: Callable[[], None]) -> None:
        with self._lock:
            self._calls.append(call)
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")

    # -- the selector thread ----------------------------------------------

    def _loop(self) -> None:
        while not self._stopping:
            try:
                self._turn()
            except Exception:
                # A bug in one session's handling must not end every
                # console of the host, nor hang close_owner's callers.
                LOG.exception("Serial console relay error")
        LOG.debug("Serial console relay stopped")

    def _turn(self) -> None:
        events = self._selector.select(self._next_deadline())
        for key, mask in events:
            self._dispatch(key, mask)
        self._expire()

    def _dispatch(self, key: selectors.SelectorKey, mask: int) -> None:
        if key.data is None:
            self._run_calls()
        elif isinstance(key.data, _Listener):
            self._accept(key.data)
        else:
            session, end = key.data
            if session not in self._sessions:
                return  # closed by an earlier event of this round
            try:
                self._pump(session, end, mask)
            except OSError as e:
                LOG.debug("Serial console session of %s ended: %s", session.owner, e)
                self._close_session(session)

    def _run_calls(self) -> None:
        with contextlib.suppress(*_NOT_NOW):
            while self._wake_r.recv(4096):
                pass
        with self._lock:
            calls, self._calls = self._calls, []
        for call in calls:
            call()

    def _next_deadline(self) -> float | None:
        with self._lock:
            deadlines = [listener.deadline for listener in self._listeners.values()]
        if self._idle_timeout:
            deadlines += [s.last_active + self._idle_timeout for s in self._sessions]
        if not deadlines:
            return None
        return max(0.0, min(deadlines) - self._clock())

    def _expire(self) -> None:
        now = self._clock()
        # Decided under the lock: a request that extends a listener either
        # comes first and keeps it, or finds it gone and opens another.
        with self._lock:
            expired = [x for x in self._listeners.values() if x.deadline <= now]
            for listener in expired:
                del self._listeners[listener.owner]
        for listener in expired:
            LOG.debug("Serial console port %d expired", listener.port)
            self._close_listener(listener)
        if not self._idle_timeout:
            return
        for session in list(self._sessions):
            if session.last_active + self._idle_timeout <= now:
                LOG.info(
                    "Closing a serial console session idle for %d seconds",
                    self._idle_timeout,
                    instance_uuid=session.owner,
                )
                self._close_session(session)

    def _register_listener(self, listener: _Listener) -> None:
        if listener.sock.fileno() >= 0:  # not closed before its turn came
            self._selector.register(listener.sock, selectors.EVENT_READ, listener)

    def _accept(self, listener: _Listener) -> None:
        try:
            conn, _peer = listener.sock.accept()
        except _NOT_NOW:
            return
        conn.setblocking(False)
        session = _Session(listener.owner, _End(conn), last_active=self._clock())
        with self._lock:
            full = len(self._sessions) >= self._max_sessions
            if not full:
                self._sessions.add(session)
        if full:
            _say_and_close(
                conn,
                f"all {self._max_sessions} serial console sessions of this "
                "host are in use; try again later",
            )
            return
        # The client is not read until its backend is open: what it types
        # meanwhile waits in the kernel.
        future = self._workers.submit(self._open_backend, listener.owner)
        future.add_done_callback(
            lambda f: self._run_in_loop(lambda: self._opened(session, f))
        )

    def _opened(self, session: _Session, future: concurrent.futures.Future) -> None:
        error = future.exception()
        if session not in self._sessions:
            # Closed while it opened (destroy, stop): end the new backend.
            if error is None:
                self._close_later(future.result())
            return
        if error is not None:
            message = str(error)
            if not isinstance(error, Refused):
                LOG.error("Could not open a serial console session: %s", error,
                          instance_uuid=session.owner)  # fmt: skip
                message = "the console could not start; see nova-compute's log"
            self._forget(session)
            _say_and_close(session.client.sock, message)
            return
        session.backend = future.result()
        session.far = _End(session.backend.sock)
        session.far.sock.setblocking(False)
        session.last_active = self._clock()
        self._update_interest(session)

    def _pump(self, session: _Session, end: _End, mask: int) -> None:
        """Move what ``end`` has to the other side, and what waits for
        ``end`` to it; either side's end of stream ends the session."""
        other = session.far if end is session.client else session.client
        if mask & selectors.EVENT_WRITE and end.pending:
            _send_some(end)
        if mask & selectors.EVENT_READ and not session.draining:
            data = _recv_some(end.sock, BUFFER_BYTES - len(other.pending))
            # Active from the moment the bytes came, before they go on: the
            # far side may act on them before this thread runs again.
            session.last_active = self._clock()
            if data == b"":
                if end is session.far and other.pending:
                    session.draining = True
                else:
                    self._close_session(session)
                    return
            elif data:
                other.pending += data
                _send_some(other)
        if session.draining and not session.client.pending:
            self._close_session(session)
            return
        self._update_interest(session)
        # TLS may hold decrypted bytes that the selector cannot see: read
        # them while there is room for them.
        for readable in (session.client, session.far):
            if readable.mask & selectors.EVENT_READ and _tls_pending(readable.sock):
                self._pump(session, readable, selectors.EVENT_READ)

    def _update_interest(self, session: _Session) -> None:
        """Watch each end for what it can do now: read only while the other
        side's buffer has room (so a slow reader slows the writer down, and
        memory stays bounded), write only while something waits."""
        for end, other in ((session.client, session.far),
                           (session.far, session.client)):  # fmt: skip
            mask = 0
            if len(other.pending) < BUFFER_BYTES and not session.draining:
                mask |= selectors.EVENT_READ
            if end.pending:
                mask |= selectors.EVENT_WRITE
            if mask == end.mask:
                continue
            if not mask:
                self._selector.unregister(end.sock)
            elif end.mask:
                self._selector.modify(end.sock, mask, (session, end))
            else:
                self._selector.register(end.sock, mask, (session, end))
            end.mask = mask

    def _close_owner(self, owner: str) -> list[concurrent.futures.Future]:
        listener = self._listeners.get(owner)
        if listener is not None:
            self._close_listener(listener)
        closing = []
        for session in [s for s in self._sessions if s.owner == owner]:
            closing.extend(self._close_session(session))
        return closing

    def _close_listener(self, listener: _Listener) -> None:
        with self._lock:
            if self._listeners.get(listener.owner) is listener:
                del self._listeners[listener.owner]
        if listener.sock.fileno() < 0:
            return  # closed already
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(listener.sock)
        listener.sock.close()
        listener.on_close()

    def _close_session(self, session: _Session) -> list[concurrent.futures.Future]:
        """Close the client at once; the backend in a worker, since ending
        what runs behind it may take the engine a moment."""
        if session not in self._sessions:
            return []
        self._forget(session)
        closing = []
        for end in (session.client, session.far):
            if end is not None and end.mask:
                self._selector.unregister(end.sock)
                end.mask = 0
        with contextlib.suppress(OSError):
            session.client.sock.close()
        if session.backend is not None:
            closing.append(self._close_later(session.backend, session.owner))
        return closing

    def _close_later(
        self, backend: Backend, owner: str = ""
    ) -> concurrent.futures.Future:
        try:
            return self._workers.submit(_close_backend, backend, owner)
        except RuntimeError:
            # Stopping: the workers are gone, and so is the hurry.
            _close_backend(backend, owner)
            done: concurrent.futures.Future = concurrent.futures.Future()
            done.set_result(None)
            return done

    def _forget(self, session: _Session) -> None:
        with self._lock:
            self._sessions.discard(session)

    def _shut_down(self) -> None:
        for owner in {*self._listeners, *(s.owner for s in self._sessions)}:
            self._close_owner(owner)
        self._stopping = True


def _settle(done: concurrent.futures.Future, call: Callable) -> None:
    try:
        done.set_result(call())
    except Exception as e:
        done.set_exception(e)


def _close_backend(backend: Backend, owner: str) -> None:
    try:
        backend.close()
    except Exception:
        LOG.exception("Could not close a serial console session cleanly",
                      instance_uuid=owner or None)  # fmt: skip


def _recv_some(sock: socket.socket, room: int) -> bytes | None:
    """At most ``room`` bytes that ``sock`` has now; b"" at its end, None
    when nothing yet."""
    if room <= 0:
        return None  # recv(0) would look like the end
    try:
        return sock.recv(min(RECV_BYTES, room))
    except _NOT_NOW:
        return None


def _tls_pending(sock: socket.socket) -> int:
    pending = getattr(sock, "pending", None)
    return pending() if pending is not None else 0


def _send_some(end: _End) -> None:
    try:
        sent = end.sock.send(end.pending)
    except _NOT_NOW:
        return
    del end.pending[:sent]


def _say_and_close(sock: socket.socket, message: str) -> None:
    """Best effort: one line fits any socket's send buffer."""
    with contextlib.suppress(OSError):
        sock.send(f"nova-docker: {message}\r\n".encode())
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
