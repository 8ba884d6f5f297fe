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

"""End-to-end: each server's network sandbox, seen as a user sees it.

One server boots on ``private`` from an image whose first instructions
print its addresses, routes and resolver between markers, then idle: every
start of its container adds such a section to the console log, and each must
show the whole network the ports give it, with nothing of the host's.  The
sandbox holds the namespace, so the server's floating IP (hence its fixed IP
behind it) answers ping from the host through its reboots and while it is
shut off.  The tests run in file order on that one server, as test_cloud's
do; the last deletes it.  The engine is only looked at.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import subprocess
from collections.abc import Iterator

import pytest

from nova_docker.engine import naming
from nova_docker.tests.e2e import support
from nova_docker.tests.e2e.conftest import Cloud
from nova_docker_aio import images

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

BEGIN = "=== network at start ==="
END = "=== end of network ==="
ADDRESSES = "ip -o addr"
ROUTES = "ip route"
ROUTES6 = "ip -6 route"
RESOLVER = "/etc/resolv.conf"
#: The first instructions print the network (each part under ``-- <what>``;
#: the ``echo`` ends a resolver file with no newline of its own), then PID 1
#: idles, trapping TERM so that stops are quick.
PROBE_SCRIPT = (
    f"echo '{BEGIN}'; "
    f"echo '-- {ADDRESSES}'; {ADDRESSES}; "
    f"echo '-- {ROUTES}'; {ROUTES}; "
    f"echo '-- {ROUTES6}'; {ROUTES6}; "
    f"echo '-- {RESOLVER}'; cat {RESOLVER}; echo; "
    f"echo '{END}'; "
    "trap 'exit 0' TERM; while :; do sleep 1; done"
)
_ADDRESS = re.compile(r"\binet6? (\S+)/\d+")


@dataclasses.dataclass(frozen=True)
class Expected:
    """What Neutron gave the server's ports: the network it must see."""

    addresses: frozenset[IPAddress]
    #: IP version → its subnet's gateway.
    gateways: dict[int, IPAddress]
    #: Every DNS server of the ports' subnets.
    nameservers: frozenset[str]

    @classmethod
    def of(cls, conn, server) -> Expected:
        fixed = [
            ip
            for port in conn.network.ports(device_id=server.id)
            for ip in port.fixed_ips
        ]
        subnets = [
            conn.network.get_subnet(s) for s in {ip["subnet_id"] for ip in fixed}
        ]
        return cls(
            addresses=frozenset(ipaddress.ip_address(ip["ip_address"]) for ip in fixed),
            gateways={
                s.ip_version: ipaddress.ip_address(s.gateway_ip)
                for s in subnets
                if s.gateway_ip
            },
            nameservers=frozenset(ns for s in subnets for ns in s.dns_nameservers),
        )


@dataclasses.dataclass(frozen=True)
class Probe:
    """The one server of this module, and how it is reached."""

    servers: support.Servers
    server: object
    floating_ip: str
    expected: Expected


def _sections(console: str) -> list[dict[str, str]]:
    """Every complete section of the console, oldest first: what was run →
    what it printed."""
    found = []
    for block in console.split(BEGIN)[1:]:
        body, ended, _rest = block.partition(END)
        if not ended:
            continue  # still printing
        parts = {}
        for chunk in body.split("\n-- ")[1:]:
            what, _newline, printed = chunk.partition("\n")
            parts[what] = printed
        found.append(parts)
    return found


def _defaults(routes: str) -> list[list[str]]:
    """The default routes of an ``ip route`` listing, split into words."""
    return [line.split() for line in routes.splitlines() if line.startswith("default")]


def _assert_network(section: dict[str, str], expected: Expected) -> None:
    shown = {ipaddress.ip_address(a) for a in _ADDRESS.findall(section[ADDRESSES])}
    missing = expected.addresses - shown
    assert not missing, f"fixed IPs {missing} missing from:\n{section[ADDRESSES]}"

    defaults = _defaults(section[ROUTES])
    assert len(defaults) == 1, f"not one IPv4 default route:\n{section[ROUTES]}"
    assert defaults[0][1:3] == ["via", str(expected.gateways[4])]

    if 6 in expected.gateways:
        # Its own, via the subnet's gateway (the router may add a learned one).
        vias = [ipaddress.ip_address(d[2]) for d in _defaults(section[ROUTES6])]
        assert expected.gateways[6] in vias, section[ROUTES6]

    # The demo cloud's private subnets name no DNS servers (see
    # nova_docker_aio.services.neutron): then the resolver must have no
    # nameserver at all, rather than the host's own (the engine's fallback).
    nameservers = {
        line.split()[1]
        for line in section[RESOLVER].splitlines()
        if line.startswith("nameserver ")
    }
    assert nameservers == expected.nameservers, section[RESOLVER]


def _answers_ping(address: str) -> bool:
    """Whether ``address`` answers any of three pings from the host, one a
    second, within 5 s of the last: False means several seconds without one
    reply.  The host reaches floating IPs as for the HTTP tests; the tests
    run as root, as the cloud needs, and busybox is the images' own."""
    ping = [str(images.BUSYBOX), "ping", "-c", "3", "-W", "5", address]
    return subprocess.run(ping, capture_output=True, check=False).returncode == 0


def _next_section(probe: Probe, seen: int, ping: str | None = None) -> dict[str, str]:
    """Once the server is ACTIVE again, the section its new start printed;
    with ``ping``, that address must answer every round until then."""
    conn = probe.servers.conn

    def printed() -> dict[str, str] | None:
        if ping:
            assert _answers_ping(ping), f"{ping} went silent before start {seen + 1}"
        found = conn.compute.get_server(probe.server)
        if found.status == "ERROR":
            pytest.fail(f"server {found.name} went ERROR: {found.fault}")
        sections = _sections(probe.servers.console(probe.server))
        if found.status != "ACTIVE" or found.task_state or len(sections) <= seen:
            return None
        return sections[-1]

    return support.eventually(
        printed, f"{probe.server.name} prints start {seen + 1}", support.TIMEOUT
    )


def _seen(probe: Probe) -> int:
    return len(_sections(probe.servers.console(probe.server)))


def _states(cloud: Cloud, server_id: str) -> dict[str, str]:
    """Container name → its state, for the server's container and sandbox."""
    return {
        c["Names"][0].lstrip("/"): c["State"] for c in cloud.containers_of(server_id)
    }


def _sandbox_started(cloud: Cloud, server_id: str) -> str:
    """When the server's sandbox last started: a kept namespace keeps it."""
    found = cloud.engine.inspect_container(naming.sandbox_name(server_id))
    return found["State"]["StartedAt"]


@pytest.fixture(scope="module")
def probe_image(cloud: Cloud, user_conn) -> Iterator:
    with cloud.script_image(user_conn, "e2e-probe", PROBE_SCRIPT) as created:
        yield created


@pytest.fixture(scope="module")
def probe(user_conn, probe_image) -> Iterator[Probe]:
    servers = support.Servers(user_conn, probe_image)
    try:
        server = servers.boot()
        yield Probe(
            servers, server, servers.floating_ip(server), Expected.of(user_conn, server)
        )
    finally:
        servers.delete_all()


def test_first_instruction_sees_addresses_routes_and_dns(
    cloud: Cloud, probe: Probe
) -> None:
    server_id = probe.server.id
    assert _states(cloud, server_id) == {
        naming.container_name(server_id): "running",
        naming.sandbox_name(server_id): "running",
    }
    # Both families: the cloud's private network has an IPv4 and an IPv6
    # (SLAAC) subnet, so a test that saw only one would prove less.
    assert {a.version for a in probe.expected.addresses} == {4, 6}
    _assert_network(_next_section(probe, 0), probe.expected)
    assert _seen(probe) == 1, "the first boot printed its network once"
    support.eventually(
        lambda: _answers_ping(probe.floating_ip), f"{probe.floating_ip} answers ping"
    )


@pytest.mark.parametrize("kind", ["SOFT", "HARD"])
def test_reboot_keeps_answering_ping_and_shows_the_network(
    cloud: Cloud, probe: Probe, kind: str
) -> None:
    address = probe.floating_ip
    support.eventually(lambda: _answers_ping(address), f"{address} answers ping")
    seen, sandbox = _seen(probe), _sandbox_started(cloud, probe.server.id)
    probe.servers.conn.compute.reboot_server(probe.server, kind)
    # Every round from the request until the new start has printed must be
    # answered: the sandbox kept the namespace, and the ports in it.
    _assert_network(_next_section(probe, seen, ping=address), probe.expected)
    assert _sandbox_started(cloud, probe.server.id) == sandbox


def test_shut_off_server_answers_ping_and_start_shows_the_network(
    cloud: Cloud, probe: Probe
) -> None:
    conn, server_id = probe.servers.conn, probe.server.id
    sandbox = _sandbox_started(cloud, server_id)
    conn.compute.stop_server(probe.server)
    conn.compute.wait_for_server(probe.server, status="SHUTOFF", wait=support.TIMEOUT)
    assert _states(cloud, server_id) == {
        naming.container_name(server_id): "exited",
        naming.sandbox_name(server_id): "running",
    }
    assert _answers_ping(probe.floating_ip), "the sandbox keeps the address up"

    seen = _seen(probe)
    conn.compute.start_server(probe.server)
    _assert_network(_next_section(probe, seen), probe.expected)
    assert _sandbox_started(cloud, server_id) == sandbox


def test_delete_leaves_no_container_sandbox_or_port(cloud: Cloud, probe: Probe) -> None:
    conn = probe.servers.conn
    ports = [p.id for p in conn.network.ports(device_id=probe.server.id)]
    assert ports
    assert all(support.tap(port).exists() for port in ports)

    conn.compute.delete_server(probe.server)
    conn.compute.wait_for_delete(probe.server, wait=support.TIMEOUT)
    assert cloud.containers_of(probe.server.id) == []
    for port in ports:
        assert conn.network.find_port(port) is None
        assert not support.tap(port).exists()
