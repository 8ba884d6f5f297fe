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

"""network_info → link plan: names, addresses, the one default route, DNS."""

from __future__ import annotations

import json

from nova.network import model

from nova_docker.network import plan
from nova_docker.tests.unit.network import fakes


def defaults(link: plan.LinkPlan) -> list[plan.Route]:
    return [r for r in link.routes if r.is_default]


def test_dual_stack_port_gets_both_addresses_with_prefix_lengths():
    link = plan.build([fakes.dual_stack()]).links[0]

    assert link.addresses == (
        plan.Address("10.0.0.5", 24, 4),
        plan.Address("fd00:1::5", 64, 6),
    )


def test_first_port_carries_the_only_default_route_per_family():
    first = fakes.dual_stack()
    second = fakes.dual_stack(fakes.OTHER_ID, mac="fa:16:3e:00:00:02")

    eth0, eth1 = plan.build([first, second]).links

    assert defaults(eth0) == [
        plan.Route("0.0.0.0/0", "10.0.0.1", 4),
        plan.Route("::/0", "fd00:1::1", 6),
    ]
    assert defaults(eth1) == []


def test_default_of_a_family_comes_from_the_first_port_that_has_a_gateway():
    v6_only = fakes.vif([fakes.subnet("fd00:2::/64", ["fd00:2::5"], "fd00:2::1")])
    v4 = fakes.vif(
        [fakes.subnet("10.1.0.0/24", ["10.1.0.5"], "10.1.0.1")],
        vif_id=fakes.OTHER_ID,
    )

    eth0, eth1 = plan.build([v6_only, v4]).links

    assert defaults(eth0) == [plan.Route("::/0", "fd00:2::1", 6)]
    assert defaults(eth1) == [plan.Route("0.0.0.0/0", "10.1.0.1", 4)]


def test_host_routes_are_kept_but_a_default_host_route_is_not():
    routed = fakes.vif(
        [
            fakes.subnet(
                "10.2.0.0/24",
                ["10.2.0.5"],
                routes=[("192.168.0.0/16", "10.2.0.254"), ("0.0.0.0/0", "10.2.0.9")],
            )
        ],
        vif_id=fakes.OTHER_ID,
    )

    eth0, eth1 = plan.build([fakes.dual_stack(), routed]).links

    assert eth1.routes == (plan.Route("192.168.0.0/16", "10.2.0.254", 4),)
    assert len(defaults(eth0)) == 2


def test_port_without_gateway_gets_no_default_route():
    isolated = fakes.vif([fakes.subnet("10.3.0.0/24", ["10.3.0.5"])])

    assert plan.build([isolated]).links[0].routes == ()


def test_mtu_comes_from_the_network_and_is_optional():
    with_mtu = fakes.dual_stack()
    without = fakes.vif([fakes.subnet("10.3.0.0/24", ["10.3.0.5"])], mtu=None)

    assert plan.build([with_mtu]).links[0].mtu == 1450
    assert plan.build([without]).links[0].mtu is None


def test_interfaces_are_named_in_network_info_order_with_lower_case_macs():
    first = fakes.dual_stack()
    second = fakes.dual_stack(fakes.OTHER_ID, mac="FA:16:3E:00:00:02")

    links = plan.build([first, second]).links

    assert [(x.ifname, x.mac) for x in links] == [
        ("eth0", "fa:16:3e:00:00:01"),
        ("eth1", "fa:16:3e:00:00:02"),
    ]


def test_host_devices_follow_nova_and_os_vif_names():
    devices = plan.build([fakes.dual_stack()]).links[0].host

    assert devices == plan.HostDevices(
        tap="tap0dd7a1b2-c3",
        peer="ns0dd7a1b2-c3",
        bridge="qbr0dd7a1b2-c3",
        qvb="qvb0dd7a1b2-c3",
        qvo="qvo0dd7a1b2-c3",
    )


def test_tap_name_is_derived_from_the_id_when_neutron_gave_no_devname():
    assert plan.host_devices(fakes.VIF_ID).tap == "tap0dd7a1b2-c3"
    assert plan.host_devices(fakes.VIF_ID, "tapcustom").tap == "tapcustom"


def test_nameservers_are_every_subnets_servers_once_first_seen_first():
    first = fakes.dual_stack()
    second = fakes.dual_stack(fakes.OTHER_ID)

    net_plan = plan.build([first, second])

    assert net_plan.nameservers == ("10.0.0.2", "fd00:1::2")


def test_subnets_without_dns_servers_give_no_nameservers():
    isolated = fakes.vif([fakes.subnet("10.3.0.0/24", ["10.3.0.5"])])

    assert plan.build([isolated]).nameservers == ()


def test_network_info_as_plain_json_dicts_plans_the_same():
    info = model.NetworkInfo([fakes.dual_stack()])
    as_dicts = json.loads(info.json())

    assert plan.build(as_dicts) == plan.build(info)


def test_vif_without_network_gets_a_bare_link():
    bare = model.VIF(id=fakes.VIF_ID, address="fa:16:3e:00:00:09", type="ovs")

    link = plan.build([bare]).links[0]

    assert (link.addresses, link.routes, link.mtu) == ((), (), None)


def test_link_plan_for_an_attached_port_can_skip_defaults():
    link = plan.link_plan(fakes.dual_stack(), "eth3", default_families=())

    assert link.ifname == "eth3"
    assert defaults(link) == []


# -- the route to the metadata service ---------------------------------------

METADATA = plan.Route("169.254.169.254/32", None, 4)


def dhcp_vif(vif_id: str = fakes.VIF_ID, **kwargs) -> model.VIF:
    v4 = fakes.subnet("10.0.0.0/24", ["10.0.0.5"], "10.0.0.1", dhcp=True, **kwargs)
    return fakes.vif([v4], vif_id=vif_id)


def test_metadata_is_on_link_over_the_first_port_with_a_dhcp_ipv4_subnet():
    no_dhcp = fakes.dual_stack()
    with_dhcp = dhcp_vif(fakes.OTHER_ID)

    eth0, eth1 = plan.build([no_dhcp, with_dhcp], metadata_route=True).links

    assert METADATA not in eth0.routes
    assert METADATA in eth1.routes


def test_only_one_port_routes_metadata():
    eth0, eth1 = plan.build(
        [dhcp_vif(), dhcp_vif(fakes.OTHER_ID)], metadata_route=True
    ).links

    assert METADATA in eth0.routes
    assert METADATA not in eth1.routes


def test_no_metadata_route_unless_asked():
    (eth0,) = plan.build([dhcp_vif()]).links

    assert METADATA not in eth0.routes


def test_a_subnet_host_route_to_metadata_wins_over_the_on_link_one():
    routed = dhcp_vif(routes=[("169.254.169.254/32", "10.0.0.3")])

    (eth0,) = plan.build([routed], metadata_route=True).links

    assert METADATA not in eth0.routes
    assert plan.Route("169.254.169.254/32", "10.0.0.3", 4) in eth0.routes


def test_a_dhcp_ipv6_subnet_alone_gives_no_metadata_route():
    v6 = fakes.subnet("fd00:1::/64", ["fd00:1::5"], "fd00:1::1", dhcp=True)

    (eth0,) = plan.build([fakes.vif([v6])], metadata_route=True).links

    assert METADATA not in eth0.routes
