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

"""InstanceNetworks: which ports are plugged, recorded and released."""

from __future__ import annotations

import types

import pytest

from nova_docker.network import exception
from nova_docker.network import record
from nova_docker.network import service
from nova_docker.privsep import netns

CID = "613d0c0c186339f6339b8283823f52ee769f6d6051e2f2911409ecdad5fd434e"
TARGET = netns.NetnsTarget(CID, 42)

INSTANCE = types.SimpleNamespace(uuid="0b0c9a52-56a1-4c8e-8f43-4f1f0c8a1e21")


class RecordingPlugger:
    """Stands in for VifPlugger (the seam to os-vif and the kernel)."""

    def __init__(self, fail_unplug: bool = False) -> None:
        self.calls: list[tuple] = []
        self.fail_unplug = fail_unplug

    def plug(self, instance, network_info, target):
        self.calls.append(("plug", [v["id"] for v in network_info], target))

    def plug_one(self, instance, vif, target):
        self.calls.append(("plug_one", vif["id"], target))

    def unplug(self, instance, network_info):
        self.calls.append(("unplug", [v["id"] for v in network_info]))
        if self.fail_unplug:
            raise exception.VifPlugError(action="unplug", vif_id="x", reason="boom")

    def unplug_one(self, instance, vif):
        self.calls.append(("unplug_one", vif["id"]))

    def unplug_leftovers(self, instance, ports):
        self.calls.append(("leftovers", dict(ports)))


def _vif(port_id: str, hybrid: bool = False) -> dict:
    return {"id": port_id, "details": {"ovs_hybrid_plug": hybrid}}


@pytest.fixture
def ports(tmp_path) -> record.PortRecord:
    return record.PortRecord(str(tmp_path))


def _networks(plugger, ports, target=(CID, 42)) -> service.InstanceNetworks:
    return service.InstanceNetworks(plugger, lambda _instance: target, ports)


def test_plug_records_each_port_with_its_kind_before_plugging(ports) -> None:
    plugger = RecordingPlugger()
    _networks(plugger, ports).plug(INSTANCE, [_vif("a"), _vif("b", hybrid=True)])
    assert plugger.calls == [("plug", ["a", "b"], TARGET)]
    assert ports.ports(INSTANCE.uuid) == {"a": record.OVS, "b": record.HYBRID}


def test_nothing_is_plugged_or_recorded_while_the_container_is_stopped(
    ports,
) -> None:
    plugger = RecordingPlugger()
    _networks(plugger, ports, target=None).plug(INSTANCE, [_vif("a")])
    assert plugger.calls == []
    assert ports.ports(INSTANCE.uuid) == {}


def test_release_unplugs_listed_ports_and_the_recorded_rest(ports) -> None:
    plugger = RecordingPlugger()
    networks = _networks(plugger, ports)
    networks.plug(INSTANCE, [_vif("a"), _vif("gone", hybrid=True)])
    networks.release(INSTANCE, [_vif("a")])
    assert plugger.calls[1:] == [
        ("unplug", ["a"]),
        ("leftovers", {"gone": record.HYBRID}),
    ]
    assert ports.ports(INSTANCE.uuid) == {}


def test_release_with_no_ports_listed_unplugs_every_recorded_one(ports) -> None:
    plugger = RecordingPlugger()
    networks = _networks(plugger, ports)
    networks.plug(INSTANCE, [_vif("a")])
    networks.release(INSTANCE, [])
    assert plugger.calls[-1] == ("leftovers", {"a": record.OVS})


def test_release_still_sweeps_when_unplugging_a_listed_port_fails(ports) -> None:
    plugger = RecordingPlugger(fail_unplug=True)
    networks = _networks(plugger, ports)
    networks.plug(INSTANCE, [_vif("a"), _vif("b")])
    with pytest.raises(exception.VifPlugError):
        networks.release(INSTANCE, [_vif("a")])
    assert plugger.calls[-1] == ("leftovers", {"b": record.OVS})


def test_detach_forgets_the_port(ports) -> None:
    plugger = RecordingPlugger()
    networks = _networks(plugger, ports)
    networks.attach(INSTANCE, _vif("a"))
    networks.detach(INSTANCE, _vif("a"))
    assert plugger.calls == [("plug_one", "a", TARGET), ("unplug_one", "a")]
    assert ports.ports(INSTANCE.uuid) == {}


def test_a_port_that_cannot_be_recorded_is_still_plugged(tmp_path) -> None:
    (tmp_path / "not-a-dir").write_text("")
    ports = record.PortRecord(str(tmp_path / "not-a-dir"))
    plugger = RecordingPlugger()
    _networks(plugger, ports).plug(INSTANCE, [_vif("a")])
    assert plugger.calls == [("plug", ["a"], TARGET)]


def test_the_target_is_pinned_once_per_plug_as_container_id_and_pid(ports) -> None:
    asked = []

    def target_of(instance):
        asked.append(instance)
        return (CID, 42)

    plugger = RecordingPlugger()
    networks = service.InstanceNetworks(plugger, target_of, ports)
    networks.plug(INSTANCE, [_vif("a"), _vif("b")])
    networks.attach(INSTANCE, _vif("c"))

    assert asked == [INSTANCE, INSTANCE]
    assert all(isinstance(call[-1], netns.NetnsTarget) for call in plugger.calls)
    assert plugger.calls[0][-1] == netns.NetnsTarget(CID, 42)


def test_nothing_is_attached_while_the_container_is_stopped(ports) -> None:
    plugger = RecordingPlugger()
    _networks(plugger, ports, target=None).attach(INSTANCE, _vif("a"))
    assert plugger.calls == []
    assert ports.ports(INSTANCE.uuid) == {}
