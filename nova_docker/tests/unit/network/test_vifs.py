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

"""The VIF service, with privsep entrypoints and os-vif mocked (its seams)."""

from __future__ import annotations

import errno
import json
from collections.abc import Iterator
from types import SimpleNamespace
from unittest import mock

import os_vif.objects
import pytest
from nova import objects
from nova.network import model
from os_vif.objects import vif as osv_vif

from nova_docker.network import exception
from nova_docker.network import vifs
from nova_docker.privsep import netns as real_netns
from nova_docker.tests.unit.network import fakes

CID = "613d0c0c186339f6339b8283823f52ee769f6d6051e2f2911409ecdad5fd434e"
PID = 4242
TARGET = real_netns.NetnsTarget(CID, PID)
MAC = "fa:16:3e:00:00:01"

objects.register_all()
os_vif.objects.register_all()


@pytest.fixture
def seams() -> Iterator[SimpleNamespace]:
    with (
        mock.patch("nova_docker.privsep.netns", autospec=True) as netns,
        mock.patch("nova_docker.privsep.firewall", autospec=True) as firewall,
        mock.patch.object(vifs, "os_vif", autospec=True) as osvif,
        mock.patch.object(vifs.VifPlugger, "_ovs", autospec=True) as ovs,
    ):
        netns.link_addresses.return_value = {"lo": "00:00:00:00:00:00"}
        yield SimpleNamespace(
            netns=netns, firewall=firewall, os_vif=osvif, switch=ovs.return_value
        )


@pytest.fixture
def instance() -> objects.Instance:
    return objects.Instance(id=7, uuid="0dd70000-0000-4000-8000-000000000007")


def plugged_vif(seams: SimpleNamespace) -> osv_vif.VIFBase:
    return seams.os_vif.plug.call_args.args[0]


def test_plug_builds_the_veth_and_hands_the_tap_to_os_vif(seams, instance):
    vifs.VifPlugger("netdev").plug(instance, [fakes.dual_stack()], TARGET)

    seams.netns.create_veth.assert_called_once_with(
        "tap0dd7a1b2-c3", "ns0dd7a1b2-c3", 1450, False
    )
    seams.netns.move_to_netns.assert_called_once_with("ns0dd7a1b2-c3", CID, PID, "eth0")
    seams.netns.configure_link.assert_called_once_with(
        CID,
        PID,
        "eth0",
        MAC,
        1450,
        ["10.0.0.5/24", "fd00:1::5/64"],
        [("0.0.0.0/0", "10.0.0.1"), ("::/0", "fd00:1::1")],
    )
    osvif = plugged_vif(seams)
    assert isinstance(osvif, osv_vif.VIFOpenVSwitch)
    assert osvif.vif_name == "tap0dd7a1b2-c3"
    assert osvif.port_profile.create_port is True
    assert osvif.port_profile.datapath_type == "netdev"


def test_replug_of_a_new_namespace_drops_the_stale_ovs_port_first(seams, instance):
    order = mock.Mock()
    order.attach_mock(seams.os_vif.unplug, "unplug")
    order.attach_mock(seams.switch.delete_ovs_vif_port, "delete_anywhere")
    order.attach_mock(seams.netns.create_veth, "create_veth")
    order.attach_mock(seams.os_vif.plug, "plug")

    vifs.VifPlugger().plug(instance, [fakes.dual_stack()], TARGET)

    assert [c[0] for c in order.mock_calls] == [
        "unplug",
        "delete_anywhere",
        "create_veth",
        "plug",
    ]
    # On whatever bridge it is (None), keeping the kernel device, which
    # os-vif's unplug has already handled.
    seams.switch.delete_ovs_vif_port.assert_called_once_with(
        None, "tap0dd7a1b2-c3", False
    )


def test_plugging_a_plugged_vif_only_reapplies_configuration(seams, instance):
    seams.netns.link_addresses.return_value = {"lo": "", "eth0": MAC}

    vifs.VifPlugger().plug(instance, [fakes.dual_stack()], TARGET)

    seams.netns.create_veth.assert_not_called()
    seams.os_vif.unplug.assert_not_called()
    seams.netns.configure_link.assert_called_once()
    seams.os_vif.plug.assert_called_once()


def test_name_held_by_another_port_is_refused(seams, instance):
    seams.netns.link_addresses.return_value = {"eth0": "fa:16:3e:99:99:99"}

    with pytest.raises(exception.VifPlugError, match="another port"):
        vifs.VifPlugger().plug(instance, [fakes.dual_stack()], TARGET)
    seams.netns.create_veth.assert_not_called()


def test_binding_datapath_wins_and_system_keeps_checksum_offload(seams, instance):
    details = {"ovs_hybrid_plug": False, "datapath_type": "system"}
    vif = fakes.dual_stack(details=details)

    vifs.VifPlugger("netdev").plug(instance, [vif], TARGET)

    assert plugged_vif(seams).port_profile.datapath_type == "system"
    assert seams.netns.create_veth.call_args.args[3] is True


def test_hybrid_plug_bridges_the_tap_and_opens_forwarding(seams, instance):
    vif = fakes.dual_stack(details={"ovs_hybrid_plug": True, "port_filter": True})

    vifs.VifPlugger().plug(instance, [vif], TARGET)

    assert isinstance(plugged_vif(seams), osv_vif.VIFBridge)
    seams.os_vif.unplug.assert_not_called()
    seams.netns.add_bridge_port.assert_called_once_with(
        "qbr0dd7a1b2-c3", "tap0dd7a1b2-c3"
    )
    seams.firewall.allow_bridged.assert_called_once_with("qbr0dd7a1b2-c3")


def test_plug_returns_the_plan_it_plugged(seams, instance):
    net_plan = vifs.VifPlugger().plug(instance, [fakes.dual_stack()], TARGET)

    assert [link.ifname for link in net_plan.links] == ["eth0"]
    assert net_plan.nameservers == ("10.0.0.2", "fd00:1::2")


def test_unplug_removes_rule_veth_and_os_vif_devices(seams, instance):
    vif = fakes.dual_stack(details={"ovs_hybrid_plug": True})

    vifs.VifPlugger().unplug(instance, [vif])

    seams.firewall.revoke_bridged.assert_called_once_with("qbr0dd7a1b2-c3")
    seams.netns.delete_link.assert_called_once_with("tap0dd7a1b2-c3")
    assert isinstance(seams.os_vif.unplug.call_args.args[0], osv_vif.VIFBridge)


def test_unplug_of_a_non_hybrid_port_touches_no_firewall(seams, instance):
    vifs.VifPlugger().unplug(instance, [fakes.dual_stack()])

    seams.firewall.revoke_bridged.assert_not_called()
    seams.netns.delete_link.assert_called_once_with("tap0dd7a1b2-c3")


def test_os_vif_failure_becomes_vif_plug_error_with_the_cause(seams, instance):
    cause = RuntimeError("ovsdb unreachable")
    seams.os_vif.plug.side_effect = cause

    with pytest.raises(exception.VifPlugError) as info:
        vifs.VifPlugger().plug(instance, [fakes.dual_stack()], TARGET)

    assert info.value.__cause__ is cause
    assert "ovsdb unreachable" in str(info.value)
    assert fakes.VIF_ID in str(info.value)


def test_vanished_container_process_becomes_vif_plug_error(seams, instance):
    seams.netns.link_addresses.side_effect = FileNotFoundError("/proc/4242/ns/net")

    with pytest.raises(exception.VifPlugError, match="plug"):
        vifs.VifPlugger().plug_one(instance, fakes.dual_stack(), TARGET)


def test_unplug_failure_becomes_vif_plug_error(seams, instance):
    seams.netns.delete_link.side_effect = OSError(1, "Operation not permitted")

    with pytest.raises(exception.VifPlugError, match="unplug"):
        vifs.VifPlugger().unplug_one(instance, fakes.dual_stack())


def test_unsupported_vif_type_is_refused(seams, instance):
    vif = fakes.dual_stack(type="vhostuser", details={})

    with pytest.raises(exception.VifPlugError):
        vifs.VifPlugger().plug(instance, [vif], TARGET)
    seams.netns.create_veth.assert_not_called()


def test_attach_takes_the_lowest_free_name_without_default_routes(seams, instance):
    seams.netns.link_addresses.return_value = {"lo": "", "eth0": "x", "eth2": "y"}
    vif = fakes.dual_stack(fakes.OTHER_ID, mac="fa:16:3e:00:00:02")

    link = vifs.VifPlugger().plug_one(instance, vif, TARGET)

    assert link.ifname == "eth1"
    assert not any(route.is_default for route in link.routes)


def test_attach_as_eth0_gets_the_default_routes(seams, instance):
    link = vifs.VifPlugger().plug_one(instance, fakes.dual_stack(), TARGET)

    assert link.ifname == "eth0"
    assert sum(route.is_default for route in link.routes) == 2


def test_attaching_an_attached_port_keeps_its_name(seams, instance):
    seams.netns.link_addresses.return_value = {"eth0": "x", "eth3": MAC}

    link = vifs.VifPlugger().plug_one(instance, fakes.dual_stack(), TARGET)

    assert link.ifname == "eth3"
    seams.netns.create_veth.assert_not_called()


def test_network_info_as_plain_json_is_accepted(seams, instance):
    as_json = json.loads(model.NetworkInfo([fakes.dual_stack()]).json())

    vifs.VifPlugger().plug(instance, as_json, TARGET)

    seams.os_vif.plug.assert_called_once()


def test_unplug_tries_every_vif_and_raises_the_first_failure(seams, instance):
    first = fakes.dual_stack()
    second = fakes.dual_stack(fakes.OTHER_ID)
    seams.netns.delete_link.side_effect = [OSError(5, "EIO"), None]

    with pytest.raises(exception.VifPlugError, match=fakes.VIF_ID):
        vifs.VifPlugger().unplug(instance, [first, second])

    assert seams.netns.delete_link.call_count == 2
    assert seams.os_vif.unplug.call_count == 1


def test_unplug_of_a_failed_binding_still_removes_host_devices(seams, instance):
    vif = fakes.dual_stack(type="binding_failed", details={})

    vifs.VifPlugger().unplug_one(instance, vif)

    seams.firewall.revoke_bridged.assert_called_once_with("qbr0dd7a1b2-c3")
    seams.netns.delete_link.assert_called_once_with("tap0dd7a1b2-c3")
    seams.os_vif.unplug.assert_not_called()


def test_malformed_network_info_becomes_vif_plug_error(seams, instance):
    broken = json.loads(model.NetworkInfo([fakes.dual_stack()]).json())
    broken[0]["network"]["subnets"][0]["cidr"] = "not-a-cidr"

    with pytest.raises(exception.VifPlugError, match="plan"):
        vifs.VifPlugger().plug(instance, broken, TARGET)
    seams.netns.create_veth.assert_not_called()


def test_a_refused_namespace_fails_the_plug_naming_pid_and_container(seams, instance):
    seams.netns.link_addresses.side_effect = real_netns._refusal(
        errno.EPERM, CID, PID, "the process is not in the container's cgroup"
    )

    with pytest.raises(exception.VifPlugError) as info:
        vifs.VifPlugger().plug(instance, [fakes.dual_stack()], TARGET)

    assert f"pid {PID} for container {CID}" in str(info.value)
    assert "cgroup" in str(info.value)
    seams.netns.link_addresses.assert_called_once_with(CID, PID)
    seams.netns.create_veth.assert_not_called()
    seams.netns.configure_link.assert_not_called()
    seams.os_vif.plug.assert_not_called()


def test_every_netns_call_of_a_plug_names_the_pinned_container(seams, instance):
    vifs.VifPlugger().plug(instance, [fakes.dual_stack()], TARGET)

    for call in (
        seams.netns.link_addresses,
        seams.netns.move_to_netns,
        seams.netns.configure_link,
    ):
        assert CID in call.call_args.args
        assert PID in call.call_args.args
