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

"""Plug real containers into a real (userspace) Open vSwitch through os-vif.

Two busybox containers on one test network must reach each other (ping and
TCP, both ways) directly on OVS and through hybrid-plug bridges, again after
a restart gives one of them a new namespace, and leave nothing behind once
unplugged.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator

import pytest
from nova import objects
from nova.network import model
from pyroute2 import IPRoute

from nova_docker.network import exception
from nova_docker.network import plan
from nova_docker.network import vifs
from nova_docker.tests import waiting
from nova_docker.tests.functional.network import support
from nova_docker_aio.services import ovs as aio_ovs

SUBNET4 = "10.250.7.0/24"
SUBNET6 = "fdd7:250:7::/64"
_ports = itertools.count(18080)


def make_vif(index: int, hybrid: bool, datapath: str | None) -> model.VIF:
    vif_id = support.new_vif_id()
    details = {"port_filter": True, "ovs_hybrid_plug": hybrid}
    if datapath:
        details["datapath_type"] = datapath
    subnets = [
        model.Subnet(
            cidr=SUBNET4,
            gateway=model.IP("10.250.7.1", type="gateway"),
            dns=[model.IP("10.250.7.53", type="dns")],
            ips=[model.FixedIP(address=f"10.250.7.{10 + index}")],
        ),
        model.Subnet(
            cidr=SUBNET6,
            gateway=model.IP("fdd7:250:7::1", type="gateway"),
            ips=[model.FixedIP(address=f"fdd7:250:7::{10 + index}")],
        ),
    ]
    network = model.Network(
        id=str(uuid.uuid4()),
        bridge=support.BRIDGE,
        label="ndt",
        subnets=subnets,
        mtu=1450,
    )
    return model.VIF(
        id=vif_id,
        address=f"fa:16:3e:d7:00:{index:02x}",
        network=network,
        type="ovs",
        details=details,
        devname=("tap" + vif_id)[:14],
        ovs_interfaceid=vif_id,
        active=True,
    )


def make_instance(index: int) -> objects.Instance:
    return objects.Instance(id=index, uuid=str(uuid.uuid4()), project_id="ndt")


def reaches_by_ping(src, address: str) -> bool:
    applet = "ping6" if ":" in address else "ping"
    for _ in range(10):
        code, _out = src.exec_run([applet, "-c", "1", "-W", "1", address])
        if code == 0:
            return True
    return False


def reach_by_tcp(server, client, address: str) -> None:
    """Wait until ``client`` reads a greeting from ``server`` at ``address``
    (the listener starts detached, so the first tries may find none)."""
    port = str(next(_ports))
    server.exec_run(["nc", "-l", "-p", port, "-e", "echo", "ndt-hello"], detach=True)

    def greeted() -> bool:
        _code, out = client.exec_run(["nc", "-w", "2", address, port])
        return b"ndt-hello" in out

    waiting.until(greeted, f"a TCP greeting from {address}:{port}")


def assert_connected(one, two, ip_one: str, ip_two: str) -> None:
    assert reaches_by_ping(one, ip_two)
    assert reaches_by_ping(two, ip_one)
    reach_by_tcp(two, one, ip_two)
    reach_by_tcp(one, two, ip_one)


def host_links() -> set[str]:
    with IPRoute() as ipr:
        return {link.get("ifname") for link in ipr.get_links()}


def leftovers(vif: model.VIF, ovs: support.Ovs) -> list[str]:
    devices = plan.host_devices(vif["id"], vif["devname"])
    names = {devices.tap, devices.peer, devices.bridge, devices.qvb, devices.qvo}
    found = sorted(names & host_links())
    found += [p for p in ovs.vsctl("list-ports", support.BRIDGE).split() if p]
    if f"nova-docker {devices.bridge}" in support.forward_rules():
        found.append(f"FORWARD rule for {devices.bridge}")
    return found


@pytest.fixture
def plugged(osvif: None) -> Iterator[list[tuple[vifs.VifPlugger, object, list]]]:
    """Records what a test plugged; unplugs it all whatever happens."""
    made: list[tuple[vifs.VifPlugger, object, list]] = []
    yield made
    for plugger, instance, network_info in made:
        plugger.unplug(instance, network_info)


@pytest.mark.parametrize(
    ("hybrid", "details_datapath"),
    [(False, None), (True, "netdev")],
    ids=["ovs", "hybrid"],
)
def test_two_containers_talk_survive_restart_and_leave_nothing(
    containers, ovs, plugged, hybrid, details_datapath
):
    # Neutron's binding names the datapath in one case; the option in the other.
    plugger = support.netdev_plugger()
    one, two = containers(), containers()
    vif_one, vif_two = make_vif(1, hybrid, details_datapath), make_vif(2, hybrid, None)
    inst_one, inst_two = make_instance(1), make_instance(2)
    plugged += [(plugger, inst_one, [vif_one]), (plugger, inst_two, [vif_two])]

    net_plan = plugger.plug(inst_one, [vif_one], support.target_of(one))
    plugger.plug(inst_two, [vif_two], support.target_of(two))

    assert net_plan.nameservers == ("10.250.7.53",)
    _code, routes = one.exec_run(["ip", "route"])
    assert b"default via 10.250.7.1 dev eth0" in routes
    _code, link = one.exec_run(["ip", "link", "show", "eth0"])
    assert b"mtu 1450" in link and b"fa:16:3e:d7:00:01" in link
    assert_connected(one, two, "10.250.7.11", "10.250.7.12")
    assert reaches_by_ping(one, "fdd7:250:7::12")
    assert reaches_by_ping(two, "fdd7:250:7::11")

    # Plugging again changes nothing.
    plugger.plug(inst_two, [vif_two], support.target_of(two))
    assert_connected(one, two, "10.250.7.11", "10.250.7.12")

    # A restart means a new namespace and no veth; plugging rebuilds it.
    one.restart(timeout=5)
    plugger.plug(inst_one, [vif_one], support.target_of(one))
    assert_connected(one, two, "10.250.7.11", "10.250.7.12")

    plugger.unplug(inst_one, [vif_one])
    plugger.unplug(inst_two, [vif_two])
    assert leftovers(vif_one, ovs) == []
    assert leftovers(vif_two, ovs) == []
    assert support.links_in(two) == {"lo"}

    # Unplugging what is gone is fine.
    plugger.unplug(inst_one, [vif_one])


def test_attach_takes_the_next_free_name_and_detach_removes_it(
    containers, ovs, plugged
):
    plugger = support.netdev_plugger()
    one = containers()
    first, second = make_vif(3, False, None), make_vif(4, False, None)
    instance = make_instance(3)
    plugged.append((plugger, instance, [first, second]))
    plugger.plug(instance, [first], support.target_of(one))

    link = plugger.plug_one(instance, second, support.target_of(one))
    again = plugger.plug_one(instance, second, support.target_of(one))

    assert link.ifname == again.ifname == "eth1"
    assert not any(r.is_default for r in link.routes)
    assert support.links_in(one) == {"lo", "eth0", "eth1"}
    plugger.unplug_one(instance, second)
    assert support.links_in(one) == {"lo", "eth0"}
    assert leftovers(second, ovs) == [plan.host_devices(first["id"]).tap]


@pytest.fixture
def other_bridge(ovs) -> Iterator[str]:
    """Another host's integration bridge on the same switch."""
    name = "ndtbrother"
    aio_ovs.add_bridge(ovs.switch, name)
    yield name
    aio_ovs.del_bridge(ovs.switch, name)


def test_a_port_left_on_another_hosts_bridge_moves_to_this_one(
    containers, ovs, plugged, other_bridge
):
    """An evacuated server's port, still on its failed host's bridge of a
    shared switch, is plugged here: the port ends on this host's bridge and
    carries traffic."""
    plugger = support.netdev_plugger()
    one, two = containers(), containers()
    moved, peer = make_vif(6, False, None), make_vif(7, False, None)
    inst_one, inst_two = make_instance(6), make_instance(7)
    plugged += [(plugger, inst_one, [moved]), (plugger, inst_two, [peer])]
    tap = plan.host_devices(moved["id"], moved["devname"]).tap
    ovs.vsctl(
        "add-port", other_bridge, tap,
        "--", "set", "Interface", tap, "type=internal",
        f"external_ids:iface-id={moved['id']}",
    )  # fmt: skip

    plugger.plug(inst_one, [moved], support.target_of(one))
    plugger.plug(inst_two, [peer], support.target_of(two))

    assert ovs.vsctl("port-to-br", tap).strip() == support.BRIDGE
    assert tap not in ovs.vsctl("list-ports", other_bridge).split()
    assert_connected(one, two, "10.250.7.16", "10.250.7.17")


def test_plug_into_a_vanished_process_raises_vif_plug_error(containers, ovs, plugged):
    plugger = support.netdev_plugger()
    one = containers()
    target = support.target_of(one)
    one.remove(force=True)
    vif, instance = make_vif(5, False, None), make_instance(5)
    plugged.append((plugger, instance, [vif]))

    with pytest.raises(exception.VifPlugError, match=vif["id"]):
        plugger.plug(instance, [vif], target)
