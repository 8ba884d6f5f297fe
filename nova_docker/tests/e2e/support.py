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

"""Servers on the e2e cloud's ``private`` network, as a user makes them.

Servers boot from an image whose busybox httpd answers ``Hello from <server
name>`` on port 80.  What happens inside a server is read from its console
log over the compute API: a server given the file ``/etc/peer`` (an injected
file, hence compute microversion 2.56) prints what it fetches from the
address and port written there, and every server prints its IPv4 and IPv6
addresses whenever they change.
"""

from __future__ import annotations

import base64
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from nova_docker_aio import poll

FLAVOR = "c1.tiny"
TIMEOUT = 300
NETWORK = "private"
#: PID 1 traps TERM; httpd serves a page naming the server; the loop prints
#: the peer's page (when there is a peer) and the addresses when they change.
NET_SCRIPT = (
    "trap 'exit 0' TERM; mkdir -p /www; "
    'echo "Hello from $(hostname)" > /www/index.html; httpd -p 80 -h /www; '
    "old=; while :; do "
    "if [ -f /etc/peer ]; then "
    # busybox's static wget crashes without the C library's NSS files.
    "echo \"peer says: $(printf 'GET / HTTP/1.0\\r\\n\\r\\n' | "
    'nc -w 2 $(cat /etc/peer) | tail -n 1)"; fi; '
    "now=$(ip -o -4 addr show | while read n dev f addr rest; do "
    "echo $dev=$addr; done); "
    '[ "$now" != "$old" ] && echo addrs: $now && old="$now"; sleep 1; done'
)


def name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def fetch(url: str) -> str | None:
    """The page at ``url``, or None when nothing answers within 3 s."""
    try:
        with urllib.request.urlopen(url, timeout=3) as reply:  # noqa: S310
            return reply.read().decode().strip()
    except (urllib.error.URLError, OSError):
        return None


def add_floating_ip(conn, server):
    """A floating IP from ``public`` on the server's one port."""
    (port,) = conn.network.ports(device_id=server.id)
    external = conn.network.find_network("public", ignore_missing=False)
    return conn.network.create_ip(floating_network_id=external.id, port_id=port.id)


def eventually(check, what: str, timeout: float = 90):
    """Poll ``check`` until it returns something true; fail naming ``what``
    (the launcher's poll helper, with the tests' usual patience)."""
    return poll.until(check, what, timeout)


class Servers:
    """Boots servers on ``private``; deletes them and their floating IPs."""

    def __init__(self, conn, image) -> None:
        self.conn = conn
        self.image = image
        self.network = conn.network.find_network(NETWORK, ignore_missing=False)
        self.made: list = []
        self.floating: list = []

    def boot(
        self, peer: str | None = None, groups: tuple[str, ...] = (), port: int = 80
    ):
        flavor = self.conn.compute.find_flavor(FLAVOR, ignore_missing=False)
        extra = {}
        if peer:
            contents = base64.b64encode(f"{peer} {port}".encode()).decode()
            extra["personality"] = [{"path": "/etc/peer", "contents": contents}]
        if groups:
            extra["security_groups"] = [{"name": g} for g in groups]
        server = self.conn.compute.create_server(
            name=name("e2e-net"),
            image_id=self.image.id,
            flavor_id=flavor.id,
            networks=[{"uuid": self.network.id}],
            **extra,
        )
        self.made.append(server)
        return self.conn.compute.wait_for_server(server, wait=TIMEOUT)

    def fixed_ip(self, server, version: int = 4) -> str:
        server = self.conn.compute.get_server(server)
        (address,) = [
            a["addr"] for a in server.addresses[NETWORK] if a["version"] == version
        ]
        return address

    def floating_ip(self, server) -> str:
        fip = add_floating_ip(self.conn, server)
        self.floating.append(fip)
        return fip.floating_ip_address

    def console(self, server) -> str:
        return self.conn.compute.get_server_console_output(server)["output"]

    def delete_all(self) -> None:
        for fip in self.floating:
            self.conn.network.delete_ip(fip, ignore_missing=True)
        for server in self.made:
            self.conn.compute.delete_server(server, ignore_missing=True)
        for server in self.made:
            self.conn.compute.wait_for_delete(server, wait=TIMEOUT)


def tap(port_id: str) -> Path:
    """The host end os-vif makes for a port (``tap`` + 11 characters)."""
    return Path("/sys/class/net") / f"tap{port_id[:11]}"
