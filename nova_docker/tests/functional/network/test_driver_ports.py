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

"""The driver plugs Neutron ports into each instance's sandbox, on a real
Open vSwitch.

Two instances spawned by DockerDriver with one OVS port each must reach each
other, again after a soft reboot and after a power cycle, and leave no host
device once destroyed.  The first instruction of every start sees the
configured network, and the namespace (with its address) stays while the
instance is stopped.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import docker
import pytest
from nova import context
from nova import objects
from oslo_config import cfg

from nova_docker.engine import naming
from nova_docker.network import plan
from nova_docker.tests import waiting
from nova_docker.tests.functional.network.conftest import cached_image
from nova_docker.tests.functional.network.test_plug import assert_connected
from nova_docker.tests.functional.network.test_plug import leftovers
from nova_docker.tests.functional.network.test_plug import make_vif
from nova_docker.tests.functional.network.test_plug import reaches_by_ping

CONF = cfg.CONF


def make_instance(ctxt: context.RequestContext, index: int) -> objects.Instance:
    # Built by hand: Nova's test helpers import nova.tests, which patches the
    # process with eventlet and breaks in-process pyroute2.
    flavor = objects.Flavor(
        memory_mb=64, vcpus=1, root_gb=0, ephemeral_gb=0, swap=0, extra_specs={}
    )
    return objects.Instance(
        ctxt,
        id=index,
        uuid=str(uuid.uuid4()),
        hostname=f"ndt-{index}",
        project_id="ndt",
        flavor=flavor,
        metadata={},
        key_data=None,
        # Loaded by nova-compute before it builds: no config drive here.
        system_metadata={},
        image_ref="",
        config_drive="",
        launched_at=None,
    )


def test_ports_follow_the_container_through_reboots_and_go_with_it(
    docker_driver, image_meta, engine, ovs
):
    ctxt = context.get_admin_context()
    vifs = [make_vif(21, False, None), make_vif(22, False, None)]
    instances = [make_instance(ctxt, index) for index in (21, 22)]
    for instance, vif in zip(instances, vifs, strict=True):
        docker_driver.spawn(ctxt, instance, image_meta, [], None, {}, [vif])
    one, two = (engine.containers.get(naming.container_name(i.uuid)) for i in instances)

    assert_connected(one, two, "10.250.7.31", "10.250.7.32")
    _code, resolv = one.exec_run(["cat", "/etc/resolv.conf"])
    assert b"nameserver 10.250.7.53" in resolv
    # Diagnostics count the port's traffic, read in the sandbox.
    found = docker_driver.get_instance_diagnostics(instances[0])
    (nic,) = found.nic_details
    assert nic.mac_address == vifs[0]["address"]
    assert nic.rx_packets > 0 and nic.tx_packets > 0
    assert (found.state, found.hypervisor) == ("running", "docker")
    assert found.memory_details.maximum == 64

    docker_driver.reboot(ctxt, instances[0], [vifs[0]], "SOFT")
    assert_connected(one, two, "10.250.7.31", "10.250.7.32")

    docker_driver.power_off(instances[1], timeout=5)
    docker_driver.power_on(ctxt, instances[1], [vifs[1]])
    assert_connected(one, two, "10.250.7.31", "10.250.7.32")

    for instance, vif in zip(instances, vifs, strict=True):
        docker_driver.destroy(ctxt, instance, [vif])
    assert leftovers(vifs[0], ovs) == []
    assert leftovers(vifs[1], ovs) == []


def test_attach_and_detach_a_port_on_a_running_instance(
    docker_driver, image_meta, engine, ovs
):
    ctxt = context.get_admin_context()
    first, second = make_vif(23, False, None), make_vif(24, False, None)
    instance = make_instance(ctxt, 23)
    docker_driver.spawn(ctxt, instance, image_meta, [], None, {}, [first])
    container = engine.containers.get(naming.container_name(instance.uuid))
    try:
        docker_driver.attach_interface(ctxt, instance, image_meta, second)
        _code, links = container.exec_run(["ip", "-o", "link"])
        assert b"eth1" in links
        assert b"fa:16:3e:d7:00:18" in links
        _code, addresses = container.exec_run(["ip", "-o", "addr", "show", "eth1"])
        assert b"10.250.7.34/24" in addresses

        docker_driver.detach_interface(ctxt, instance, second)
        _code, links = container.exec_run(["ip", "-o", "link"])
        assert b"eth1" not in links
        # Only the first port's tap remains, on the bridge and on the host.
        assert leftovers(second, ovs) == [plan.host_devices(first["id"]).tap]
    finally:
        docker_driver.destroy(ctxt, instance, [first, second])
    assert leftovers(first, ovs) == []


@pytest.mark.parametrize("hybrid", [False, True], ids=["ovs", "hybrid"])
def test_destroy_without_ports_still_removes_what_was_plugged(
    docker_driver, image_meta, engine, ovs, tmp_path, hybrid
):
    """Nova's local delete: the server was deleted while its compute service
    was down, so the API deleted its ports, and the periodic reap of the
    still-running container calls destroy with no network_info."""
    ctxt = context.get_admin_context()
    vif = make_vif(25, hybrid, "netdev" if hybrid else None)
    instance = make_instance(ctxt, 25)
    docker_driver.spawn(ctxt, instance, image_meta, [], None, {}, [vif])
    assert leftovers(vif, ovs) != []

    docker_driver.destroy(ctxt, instance, [])

    assert leftovers(vif, ovs) == []
    assert not (tmp_path / instance.uuid).exists()
    with pytest.raises(docker.errors.NotFound):
        engine.containers.get(naming.container_name(instance.uuid))


#: Prints what the network looks like to the very first instruction, then
#: idles as the other images do.
PROBE = (
    "echo BOOT; ip -o addr; ip route; ip -6 route; cat /etc/resolv.conf; "
    "echo END; trap 'exit 0' TERM; while :; do sleep 1; done"
)


@pytest.fixture
def probe_image(target_engine: docker.DockerClient) -> Iterator[objects.ImageMeta]:
    with cached_image(target_engine, ["/bin/sh", "-c", PROBE]) as meta:
        yield meta


def _boots(docker_driver, ctxt, instance) -> list[str]:
    """What each start of the instance printed first, in order."""
    output = docker_driver.get_console_output(ctxt, instance)
    return [part.split("END")[0] for part in output.split("BOOT")[1:] if "END" in part]


def _assert_configured(boot: str, index: int) -> None:
    assert f"10.250.7.{10 + index}/24" in boot
    assert f"fdd7:250:7::{10 + index}/64" in boot
    # One default route per family, the first subnet's gateway.
    defaults = [
        line.strip() for line in boot.splitlines() if line.startswith("default")
    ]
    assert len(defaults) == 2, defaults
    assert defaults[0] == "default via 10.250.7.1 dev eth0"
    assert defaults[1].startswith("default via fdd7:250:7::1 dev eth0")
    assert "nameserver 10.250.7.53" in boot


def test_the_first_instruction_of_every_start_sees_the_network(
    docker_driver, probe_image, engine, ovs
):
    ctxt = context.get_admin_context()
    vif, peer_vif = make_vif(26, False, None), make_vif(27, False, None)
    instance, peer = make_instance(ctxt, 26), make_instance(ctxt, 27)
    docker_driver.spawn(ctxt, instance, probe_image, [], None, {}, [vif])
    docker_driver.spawn(ctxt, peer, probe_image, [], None, {}, [peer_vif])
    peer_container = engine.containers.get(naming.container_name(peer.uuid))
    try:
        starts = [
            lambda: None,
            lambda: docker_driver.reboot(ctxt, instance, [vif], "SOFT"),
            lambda: docker_driver.reboot(ctxt, instance, [vif], "HARD"),
            lambda: docker_driver.power_on(ctxt, instance, [vif]),
        ]
        for count, start in enumerate(starts, 1):
            if count == len(starts):
                docker_driver.power_off(instance, timeout=5)
                # Stopped, the server keeps its address: the sandbox holds it.
                assert reaches_by_ping(peer_container, "10.250.7.36")
            start()
            waiting.until(
                lambda n=count: len(_boots(docker_driver, ctxt, instance)) == n,
                f"start {count} printed its network",
            )
            _assert_configured(_boots(docker_driver, ctxt, instance)[-1], 26)
    finally:
        for each, each_vif in ((instance, vif), (peer, peer_vif)):
            docker_driver.destroy(ctxt, each, [each_vif])
    assert leftovers(vif, ovs) == []
    assert (
        engine.containers.list(
            all=True, filters={"label": f"{naming.SANDBOX_OF_LABEL}={instance.uuid}"}
        )
        == []
    )
