"""End-to-end networking on the cloud's real Neutron (ML2/OVN).

Servers boot on the ``private`` network from an image whose busybox httpd
answers ``Hello from <server name>`` on port 80.  What happens inside a
server is read from its console log over the compute API: a server given the
file ``/etc/peer`` (an injected file, hence compute microversion 2.56) prints
what it fetches from that address, and every server prints its IPv4
addresses whenever they change.  The host fetches pages at floating IPs, as
a user's browser would.  Nothing else is touched but the host's device list.
"""

from __future__ import annotations

import base64
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import openstack
import pytest
import yaml

from nova_docker.aio import demo_image
from nova_docker.tests.e2e.conftest import Cloud

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
    'nc -w 2 $(cat /etc/peer) 80 | tail -n 1)"; fi; '
    "now=$(ip -o -4 addr show | while read n dev f addr rest; do "
    "echo $dev=$addr; done); "
    '[ "$now" != "$old" ] && echo addrs: $now && old="$now"; sleep 1; done'
)


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def _fetch(url: str) -> str | None:
    """The page at ``url``, or None when nothing answers within 3 s."""
    try:
        with urllib.request.urlopen(url, timeout=3) as reply:  # noqa: S310
            return reply.read().decode().strip()
    except (urllib.error.URLError, OSError):
        return None


def _eventually(check, what: str, timeout: float = 90):
    """Poll ``check`` until it returns something true; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"after {timeout}s still not: {what}")
        time.sleep(1)


@pytest.fixture(scope="module")
def conn(cloud: Cloud) -> openstack.connection.Connection:
    """The demo user at compute 2.56, the last microversion with injected
    files (``personality``)."""
    settings = yaml.safe_load(cloud.clouds_yaml.read_text())["clouds"]["aio-demo"]
    return openstack.connect(
        load_yaml_config=False,
        load_envvars=False,
        compute_api_version="2.56",
        **settings,
    )


@pytest.fixture(scope="module")
def image(cloud: Cloud, conn) -> Iterator:
    ref = demo_image.build("nova-docker-e2e-net", ["/bin/sh", "-c", NET_SCRIPT])
    created = conn.image.create_image(
        name=_name("e2e-net-image"),
        container_format="docker",
        disk_format="raw",
        data=b"".join(cloud.engine.get_image(ref)),
    )
    cloud.glance_ids.append(created.id)
    yield conn.image.wait_for_status(created, "active", wait=120)
    conn.image.delete_image(created, ignore_missing=True)
    cloud.engine.remove_image(ref, force=True)


class Servers:
    """Boots servers on ``private``; deletes them and their floating IPs."""

    def __init__(self, conn, image) -> None:
        self.conn = conn
        self.image = image
        self.network = conn.network.find_network(NETWORK, ignore_missing=False)
        self.made: list = []
        self.floating: list = []

    def boot(self, peer: str | None = None, groups: tuple[str, ...] = ()):
        flavor = self.conn.compute.find_flavor(FLAVOR, ignore_missing=False)
        extra = {}
        if peer:
            contents = base64.b64encode(peer.encode()).decode()
            extra["personality"] = [{"path": "/etc/peer", "contents": contents}]
        if groups:
            extra["security_groups"] = [{"name": g} for g in groups]
        server = self.conn.compute.create_server(
            name=_name("e2e-net"),
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
        (port,) = self.conn.network.ports(device_id=server.id)
        external = self.conn.network.find_network("public", ignore_missing=False)
        fip = self.conn.network.create_ip(
            floating_network_id=external.id, port_id=port.id
        )
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


@pytest.fixture
def servers(conn, image) -> Iterator[Servers]:
    made = Servers(conn, image)
    yield made
    made.delete_all()


def _tap(port_id: str) -> Path:
    """The host end os-vif makes for a port (``tap`` + 11 characters)."""
    return Path("/sys/class/net") / f"tap{port_id[:11]}"


def test_two_servers_on_the_private_network_reach_each_other(servers) -> None:
    first = servers.boot()
    second = servers.boot(peer=servers.fixed_ip(first))
    printed = _eventually(
        lambda: f"peer says: Hello from {first.name}" in servers.console(second),
        f"{second.name} prints the page of {first.name}",
    )
    assert printed


def test_floating_ip_reaches_the_server_from_the_host(servers) -> None:
    server = servers.boot()
    address = servers.floating_ip(server)
    page = _eventually(
        lambda: _fetch(f"http://{address}/"), f"http://{address}/ answers"
    )
    assert page == f"Hello from {server.name}"


@pytest.fixture
def web_group(conn) -> Iterator:
    """A security group that admits only ICMP (and what it sends out)."""
    group = conn.network.create_security_group(name=_name("e2e-web"))
    conn.network.create_security_group_rule(
        security_group_id=group.id, direction="ingress", protocol="icmp"
    )
    yield group
    conn.network.delete_security_group(group, ignore_missing=True)


def test_security_group_blocks_then_allows_http(conn, web_group, servers) -> None:
    def allow_http():
        return conn.network.create_security_group_rule(
            security_group_id=web_group.id,
            direction="ingress",
            protocol="tcp",
            port_range_min=80,
            port_range_max=80,
        )

    rule = allow_http()
    server = servers.boot(groups=(web_group.name,))
    url = f"http://{servers.floating_ip(server)}/"
    _eventually(lambda: _fetch(url), f"{url} answers while TCP 80 is allowed")

    conn.network.delete_security_group_rule(rule)
    _eventually(lambda: _fetch(url) is None, f"{url} blocked without the rule")
    assert _fetch(url) is None, "blocked once, then answered again"

    allow_http()
    page = _eventually(lambda: _fetch(url), f"{url} answers once allowed again")
    assert page == f"Hello from {server.name}"


def test_attach_and_detach_a_second_port(conn, servers) -> None:
    server = servers.boot()
    network = conn.network.find_network(NETWORK, ignore_missing=False)
    port = conn.network.create_port(network_id=network.id, name=_name("e2e-port"))
    try:
        (address,) = [
            ip["ip_address"] for ip in port.fixed_ips if "." in ip["ip_address"]
        ]
        conn.compute.create_server_interface(server, port_id=port.id)
        _eventually(
            lambda: address in str(conn.compute.get_server(server).addresses),
            f"server show lists {address}",
        )
        _eventually(
            lambda: f"eth1={address}/" in servers.console(server),
            f"the container has {address} on eth1",
        )
        assert _tap(port.id).exists()

        conn.compute.delete_server_interface(port.id, server)
        _eventually(
            lambda: address not in str(conn.compute.get_server(server).addresses),
            f"server show no longer lists {address}",
        )
        _eventually(lambda: not _tap(port.id).exists(), "the tap is gone")
        last = servers.console(server).rsplit("addrs:", 1)[1].splitlines()[0]
        assert address not in last
        assert not conn.network.get_port(port.id).device_id
    finally:
        conn.network.delete_port(port, ignore_missing=True)


def test_deleting_servers_leaves_no_ports_or_host_devices(conn, image) -> None:
    made = Servers(conn, image)
    try:
        booted = [made.boot(), made.boot()]
        made.floating_ip(booted[0])
        ports = [p.id for s in booted for p in conn.network.ports(device_id=s.id)]
        assert len(ports) == 2
        assert all(_tap(port).exists() for port in ports)
    finally:
        made.delete_all()
    for port in ports:
        assert conn.network.find_port(port) is None
        assert not _tap(port).exists()
