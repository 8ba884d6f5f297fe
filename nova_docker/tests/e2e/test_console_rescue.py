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

"""End-to-end: a server's serial console through the cloud's
``nova-serialproxy``, and a rescue that keeps what was written in it.

As a user, over the APIs and the console's websocket only: the console URL
(compute microversion >= 2.6, ``openstack console url show --serial``) is
opened with a websocket client, commands are typed into the shell the
driver runs behind it, and what they print is read back.  Each test boots
a server of its own from the networking tests' image (PID 1 a shell loop,
busybox ``httpd`` beside it), and every server goes at the end.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator

import openstack.exceptions
import pytest
import websocket

from nova_docker.tests.e2e import support

#: Where the rescue shell writes, on the server's own filesystem.
RESCUED_FILE = "/etc/rescued"
#: Seconds to wait for a line the shell prints.
READ_TIMEOUT = 60


class Console:
    """One websocket session of a server's serial console."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.ws = websocket.create_connection(url, subprotocols=["binary"], timeout=5)
        self.seen = ""

    def type(self, line: str) -> None:
        self.ws.send_binary(f"{line}\n".encode())

    def read_until(self, wanted: str, timeout: float = READ_TIMEOUT) -> str:
        """All that the console printed until ``wanted`` appeared."""
        deadline = time.monotonic() + timeout
        while wanted not in self.seen:
            if time.monotonic() > deadline:
                raise AssertionError(f"no {wanted!r} on the console: {self.seen!r}")
            with contextlib.suppress(websocket.WebSocketTimeoutException):
                self.seen += self.ws.recv_data()[1].decode(errors="replace")
        return self.seen

    def run(self, command: str, wanted: str) -> str:
        self.type(command)
        return self.read_until(wanted)

    def close(self) -> None:
        self.ws.close()


@contextlib.contextmanager
def console_of(conn, server) -> Iterator[Console]:
    created = conn.compute.create_console(server, console_type="serial")
    assert created["type"] == "serial"
    assert created["url"].startswith("ws://127.0.0.1:")
    opened = Console(created["url"])
    try:
        yield opened
    finally:
        opened.close()


def test_the_serial_console_is_a_shell_in_the_server(servers) -> None:
    server = servers.boot()
    with console_of(servers.conn, server) as console:
        # The shell computes 42: the typed line itself does not hold it.
        console.run("echo hello-$((6*7))", "hello-42")


def test_a_console_url_with_a_made_up_token_is_refused(servers) -> None:
    server = servers.boot()
    created = servers.conn.compute.create_console(server, console_type="serial")
    forged = created["url"].split("token=")[0] + f"token={uuid.uuid4()}"
    with pytest.raises((websocket.WebSocketException, OSError)):
        console = Console(forged)
        console.run("echo hello-$((6*7))", "hello-42")


def test_a_rescue_shell_writes_what_unrescue_keeps(servers) -> None:
    conn = servers.conn
    server = servers.boot()
    marker = uuid.uuid4().hex

    conn.compute.rescue_server(server)
    conn.compute.wait_for_server(server, status="RESCUE", wait=support.TIMEOUT)
    with console_of(conn, server) as console:
        # The rescue shell, not the image's loop: no httpd runs there.
        console.run(
            f"echo {marker} > {RESCUED_FILE}; pidof httpd || echo no-$((2*3))-httpd",
            "no-6-httpd",
        )

    conn.compute.unrescue_server(server)
    conn.compute.wait_for_server(server, status="ACTIVE", wait=support.TIMEOUT)
    with console_of(conn, server) as console:
        seen = console.run(f"cat {RESCUED_FILE}; echo read-$((3*3))", "read-9")
        assert marker in seen, seen
        # The image's own command runs again: its httpd and its loop.
        console.run("pidof httpd >/dev/null && echo httpd-$((40+2))-up", "httpd-42-up")
    support.eventually(
        lambda: "addrs:" in servers.console(server), "the image's loop prints"
    )


def test_a_stopped_server_has_no_console(servers) -> None:
    conn = servers.conn
    server = servers.boot()
    conn.compute.stop_server(server)
    conn.compute.wait_for_server(server, status="SHUTOFF", wait=support.TIMEOUT)
    with pytest.raises(openstack.exceptions.ConflictException):
        conn.compute.create_console(server, console_type="serial")
