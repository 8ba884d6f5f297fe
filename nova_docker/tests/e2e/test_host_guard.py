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

"""A server cannot reach what listens on the all-in-one's host.

Tried as a hostile tenant would: a server on ``private`` connects, through
its router's SNAT, to a service listening on every address of the host,
once at the public network's gateway (the host's address there) and once
at the host's own primary address.  The launcher's guard drops both.  The
control lifts the guard for a moment: the same server then reaches the
service, so the path exists and the guard is what closes it.  The
floating-IP path, host to server, is covered by ``test_networking``.
"""

from __future__ import annotations

import http.server
import socket
import threading
import uuid
from collections.abc import Iterator

import pytest

from nova_docker.tests.e2e import support
from nova_docker_aio import external

#: Enough tries (each ``nc -w 2`` plus a second's sleep) that a packet lost
#: by chance cannot pass for the guard.
TRIES = 3


class _Answer(http.server.BaseHTTPRequestHandler):
    token = ""

    def do_GET(self) -> None:
        body = self.token.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        """Quiet: the test reads the server's console, not this log."""


@pytest.fixture
def host_service() -> Iterator[tuple[int, str]]:
    """An HTTP service on every host address, as an operator's Keystone or
    Glance would listen; its port and the token it answers with."""
    handler = type("Answer", (_Answer,), {"token": f"host-{uuid.uuid4().hex}"})
    server = http.server.ThreadingHTTPServer(("0.0.0.0", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], handler.token
    server.shutdown()
    server.server_close()


def _primary_address() -> str:
    """The host's source address towards the rest of the world; a UDP
    connect only chooses the route, it sends nothing."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))
        except OSError as exc:
            pytest.skip(f"the host has no default route to take an address from: {exc}")
        return probe.getsockname()[0]


@pytest.mark.parametrize("where", ["public-gateway", "host-primary"])
def test_a_server_cannot_reach_a_service_listening_on_the_host(
    cloud, servers, host_service, where: str
) -> None:
    port, token = host_service
    if where == "public-gateway":
        address = external.ranges(cloud.layout).host_address
    else:
        address = _primary_address()
    server = servers.boot(peer=address, port=port)

    tried = support.eventually(
        lambda: servers.console(server).count("peer says:") >= TRIES,
        f"{server.name} tries {address}:{port} {TRIES} times",
    )
    assert tried
    assert token not in servers.console(server)

    external.unguard_host(cloud.layout)
    try:
        reached = support.eventually(
            lambda: token in servers.console(server),
            f"without the guard, {server.name} reaches {address}:{port}",
        )
    finally:
        external.guard_host(cloud.layout)
    assert reached
