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

"""End-to-end networking on the cloud's real Neutron (ML2/OVN).

Servers boot on the ``private`` network (see :mod:`.support` for what they
run and print).  The host fetches pages at floating IPs, as a user's browser
would.  Nothing else is touched but the host's device list.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from nova_docker.tests.e2e import support
from nova_docker_aio import poll


@pytest.mark.parametrize("version", [4, 6], ids=["ipv4", "ipv6"])
def test_two_servers_on_the_private_network_reach_each_other(
    servers, version: int
) -> None:
    first = servers.boot()
    second = servers.boot(peer=servers.fixed_ip(first, version=version))
    printed = support.eventually(
        lambda: f"peer says: Hello from {first.name}" in servers.console(second),
        f"{second.name} prints the page of {first.name} fetched over IPv{version}",
    )
    assert printed


def test_floating_ip_reaches_the_server_from_the_host(servers) -> None:
    server = servers.boot()
    address = servers.floating_ip(server)
    page = support.eventually(
        lambda: support.fetch(f"http://{address}/"), f"http://{address}/ answers"
    )
    assert page == f"Hello from {server.name}"


@pytest.fixture
def web_group(user_conn) -> Iterator:
    """A security group that admits only ICMP (and what it sends out)."""
    group = user_conn.network.create_security_group(name=support.name("e2e-web"))
    user_conn.network.create_security_group_rule(
        security_group_id=group.id, direction="ingress", protocol="icmp"
    )
    yield group
    user_conn.network.delete_security_group(group, ignore_missing=True)


def test_security_group_blocks_then_allows_http(user_conn, web_group, servers) -> None:
    def allow_http():
        return user_conn.network.create_security_group_rule(
            security_group_id=web_group.id,
            direction="ingress",
            protocol="tcp",
            port_range_min=80,
            port_range_max=80,
        )

    rule = allow_http()
    server = servers.boot(groups=(web_group.name,))
    url = f"http://{servers.floating_ip(server)}/"
    support.eventually(
        lambda: support.fetch(url), f"{url} answers while TCP 80 is allowed"
    )

    user_conn.network.delete_security_group_rule(rule)
    support.eventually(
        lambda: support.fetch(url) is None, f"{url} blocked without the rule"
    )
    assert support.fetch(url) is None, "blocked once, then answered again"

    allow_http()
    page = support.eventually(
        lambda: support.fetch(url), f"{url} answers once allowed again"
    )
    assert page == f"Hello from {server.name}"


def test_attach_and_detach_a_second_port(user_conn, admin_conn, cloud, servers) -> None:
    server = servers.boot()
    network = user_conn.network.find_network(support.NETWORK, ignore_missing=False)
    port = user_conn.network.create_port(
        network_id=network.id, name=support.name("e2e-port")
    )
    try:
        (address,) = [
            ip["ip_address"] for ip in port.fixed_ips if "." in ip["ip_address"]
        ]
        user_conn.compute.create_server_interface(server, port_id=port.id)
        support.eventually(
            lambda: address in str(user_conn.compute.get_server(server).addresses),
            f"server show lists {address}",
        )
        support.eventually(
            lambda: f"eth1={address}/" in servers.console(server),
            f"the container has {address} on eth1",
        )
        assert support.tap(port.id).exists()
        # ACTIVE: OVN found the port on this host's switch, through the tap
        # the driver plugged.  Waiting for it also lets Neutron finish its
        # own update of the port before the detach updates it again.
        support.eventually(
            lambda: user_conn.network.get_port(port.id).status == "ACTIVE",
            f"port {port.id} is ACTIVE",
        )

        user_conn.compute.delete_server_interface(port.id, server)
        try:
            support.eventually(
                lambda: (
                    address not in str(user_conn.compute.get_server(server).addresses)
                ),
                f"server show no longer lists {address}",
            )
        except poll.Timeout as timeout:
            story = _detach_story(admin_conn, cloud, server.id, port.id)
            raise AssertionError(f"{timeout}\n{story}") from timeout
        support.eventually(lambda: not support.tap(port.id).exists(), "the tap is gone")
        last = servers.console(server).rsplit("addrs:", 1)[1].splitlines()[0]
        assert address not in last
        assert not user_conn.network.get_port(port.id).device_id
    finally:
        user_conn.network.delete_port(port, ignore_missing=True)


def _detach_story(admin_conn, cloud, server_id: str, port_id: str) -> str:
    """What tells a detach that failed in the driver (the action's event)
    from one Nova could not finish in Neutron (the port still names the
    server; Nova logs that and carries on)."""
    port = admin_conn.network.get_port(port_id)
    lines = [
        f"port: status={port.status} device_id={port.device_id!r} "
        f"binding_host_id={port.binding_host_id!r}"
    ]
    for action in admin_conn.compute.server_actions(server_id):
        if action.action != "detach_interface":
            continue
        detail = admin_conn.compute.get_server_action(action.request_id, server_id)
        for event in detail.events or ():
            lines.append(f"detach_interface: {event['event']} {event['result']}")
    lines += [
        line
        for line in cloud.nova_log().splitlines()
        if port_id in line
        and (" WARNING " in line or " ERROR " in line)
        # Neutron's late news of the port, which every detach here gets.
        and "Received unexpected event" not in line
    ]
    return "\n".join(lines)


def test_deleting_servers_leaves_no_ports_or_host_devices(user_conn, net_image) -> None:
    made = support.Servers(user_conn, net_image)
    try:
        booted = [made.boot(), made.boot()]
        made.floating_ip(booted[0])
        ports = [p.id for s in booted for p in user_conn.network.ports(device_id=s.id)]
        assert len(ports) == 2
        assert all(support.tap(port).exists() for port in ports)
    finally:
        made.delete_all()
    for port in ports:
        assert user_conn.network.find_port(port) is None
        assert not support.tap(port).exists()
