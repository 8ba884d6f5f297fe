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

"""Neutron across the two hosts: each host is its own OVN chassis.

Two servers on ``private``, one per host, reach each other through the
Geneve tunnel between the chassis; a server on the host that is not the
gateway chassis answers on its floating IP, and keeps answering after it
moved to the other host.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from nova_docker.tests.e2e import support
from nova_docker.tests.e2e_hosts.test_moves import Moves


class CrossHost(Moves):
    """Moves' servers, with a peer to fetch from and floating IPs."""

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.floating: list = []

    def floating_ip(self, server) -> str:
        made = support.add_floating_ip(self.admin, server)
        self.floating.append(made)
        return made.floating_ip_address

    def delete_all(self) -> None:
        for made in self.floating:
            self.admin.network.delete_ip(made, ignore_missing=True)
        super().delete_all()


@pytest.fixture
def cross(hosts_cloud, hosts_admin, hosts_net_image) -> Iterator[CrossHost]:
    made = CrossHost(hosts_cloud, hosts_admin, hosts_net_image)
    yield made
    made.delete_all()


def _fixed_ip(admin, server) -> str:
    server = admin.compute.get_server(server)
    (address,) = [
        a["addr"] for a in server.addresses[support.NETWORK] if a["version"] == 4
    ]
    return address


def test_servers_on_different_hosts_reach_each_other(hosts_cloud, cross) -> None:
    first_host, second_host = hosts_cloud.hosts
    first = cross.boot(first_host)
    second = cross.boot(second_host, peer=_fixed_ip(cross.admin, first))
    assert {cross.host_of(first), cross.host_of(second)} == set(hosts_cloud.hosts)
    printed = support.eventually(
        lambda: (
            f"peer says: Hello from {first.name}"
            in cross.admin.compute.get_server_console_output(second)["output"]
        ),
        f"{second.name} on {second_host} fetches the page of {first.name} "
        f"on {first_host}",
    )
    assert printed


def test_floating_ip_answers_off_the_gateway_host_and_after_a_move(
    hosts_cloud, cross, web_group
) -> None:
    # Host 1 is the gateway chassis: a server on host 2 is reached through
    # the tunnel.
    server = cross.boot(hosts_cloud.hosts[1], group=web_group.name)
    address = cross.floating_ip(server)
    page = support.eventually(
        lambda: support.fetch(f"http://{address}/"), f"http://{address}/ answers"
    )
    assert page == f"Hello from {server.name}"

    cross.admin.compute.migrate_server(server)
    cross.wait(server, "VERIFY_RESIZE")
    cross.admin.compute.confirm_server_resize(server)
    cross.wait(server, "ACTIVE")
    assert cross.host_of(server) == hosts_cloud.hosts[0]
    page = support.eventually(
        lambda: support.fetch(f"http://{address}/"),
        f"http://{address}/ answers after the move",
    )
    assert page == f"Hello from {server.name}"
