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

"""A remote engine the test can cut off from the network.

The host's engine is reached over plain TCP at an address in a network
namespace of the test's own, through a relay to the engine's unix socket
that runs in that namespace. Cutting the namespace's end of the veth pair
drops every packet while both ends' connections stay open: as an engine
host that lost power or its network looks to nova-compute, with nothing to
close the connection.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import uuid

import fixtures

from nova_docker.tests import waiting

#: The relay: TCP clients in, the engine's unix socket out, both ways.
RELAY = """
import socket, sys, threading
engine_path, address, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
server = socket.create_server((address, port))
def pump(source, sink):
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    for end in (source, sink):
        try:
            end.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
while True:
    client, _ = server.accept()
    engine = socket.socket(socket.AF_UNIX)
    engine.connect(engine_path)
    for pair in ((client, engine), (engine, client)):
        threading.Thread(target=pump, args=pair, daemon=True).start()
"""
#: Addresses of the test's own: a /30 of the benchmarking range (RFC 2544)
#: that the all-in-one cloud does not use (its underlay is 198.18.0.0/16).
HOST_ADDRESS = "198.19.250.1"
RELAY_ADDRESS = "198.19.250.2"
PREFIX = 30
RELAY_PORT = 2375


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


class CuttableEngine(fixtures.Fixture):
    """``url`` reaches the engine at ``engine_socket`` until :meth:`cut`."""

    def __init__(self, engine_socket: str = "/var/run/docker.sock") -> None:
        super().__init__()
        self.engine_socket = engine_socket
        tag = uuid.uuid4().hex[:6]
        self.netns = f"ndk-relay-{tag}"
        self.host_end = f"ndkr{tag}h"
        self.relay_end = f"ndkr{tag}n"

    @property
    def url(self) -> str:
        return f"http://{RELAY_ADDRESS}:{RELAY_PORT}"

    def _setUp(self) -> None:  # noqa: N802 (the fixtures API)
        _ip("netns", "add", self.netns)
        self.addCleanup(_ip, "netns", "del", self.netns)
        _ip(
            "link", "add", self.host_end, "type", "veth", "peer", "name", self.relay_end
        )
        # Not left to the namespace's end: a namespace outlives its name
        # while a closed connection of the relay's still holds it.
        self.addCleanup(_remove_link, self.host_end)
        _ip("link", "set", self.relay_end, "netns", self.netns)
        _ip("addr", "add", f"{HOST_ADDRESS}/{PREFIX}", "dev", self.host_end)
        _ip("link", "set", self.host_end, "up")
        self._in_netns(
            "addr", "add", f"{RELAY_ADDRESS}/{PREFIX}", "dev", self.relay_end
        )
        self._in_netns("link", "set", self.relay_end, "up")
        self._in_netns("link", "set", "lo", "up")
        command = ["ip", "netns", "exec", self.netns, sys.executable, "-c", RELAY]
        relay = subprocess.Popen(
            [*command, self.engine_socket, RELAY_ADDRESS, str(RELAY_PORT)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.addCleanup(_stop, relay)
        waiting.until(self._listening, "the relay listens")

    def cut(self) -> None:
        """Drop every packet: the relay's end goes down, the connections
        stay open."""
        self._in_netns("link", "set", self.relay_end, "down")

    def mend(self) -> None:
        self._in_netns("link", "set", self.relay_end, "up")

    def _in_netns(self, *args: str) -> None:
        _ip("-n", self.netns, *args)

    def _listening(self) -> bool:
        try:
            with socket.create_connection((RELAY_ADDRESS, RELAY_PORT), timeout=1):
                return True
        except OSError:
            return False


def _remove_link(name: str) -> None:
    command = ["ip", "link", "show", name]
    if subprocess.run(command, check=False, capture_output=True).returncode == 0:
        _ip("link", "del", name)


def _stop(process: subprocess.Popen) -> None:
    process.kill()
    process.wait()
