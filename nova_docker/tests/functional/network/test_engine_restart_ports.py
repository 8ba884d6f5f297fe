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

"""Ports across a restart of the Docker Engine, on a real Open vSwitch.

The engine is a private ``dockerd`` (see functional/private_engine.py), so
the host's engine and any cloud on it are never disturbed.  With
``live-restore`` the containers, their namespaces and so their interfaces
outlive the engine: nothing needs plugging again.  Without it the engine
stops every container; Nova's power-state sync then records them SHUTOFF,
and the next start (``openstack server start`` calls ``power_on``) plugs
the ports into the new namespaces.
"""

from __future__ import annotations

from collections.abc import Iterator

import docker
import pytest
from nova import context
from nova.compute import power_state

from nova_docker.conf import docker as docker_conf
from nova_docker.engine import naming
from nova_docker.tests.functional import private_engine
from nova_docker.tests.functional.network.test_driver_ports import make_instance
from nova_docker.tests.functional.network.test_plug import assert_connected
from nova_docker.tests.functional.network.test_plug import leftovers
from nova_docker.tests.functional.network.test_plug import make_vif

ADDRESSES = ("10.250.7.36", "10.250.7.37")


@pytest.fixture(params=[True, False], ids=["live-restore", "no-live-restore"])
def private(request, root: None) -> Iterator[private_engine.PrivateEngine]:
    engine = private_engine.PrivateEngine(live_restore=request.param)
    engine.setUp()
    try:
        yield engine
    finally:
        engine.cleanUp()


@pytest.fixture
def engine_url(private: private_engine.PrivateEngine) -> str:
    return private.url


@pytest.fixture
def target_engine(
    private: private_engine.PrivateEngine,
) -> Iterator[docker.DockerClient]:
    client = docker.DockerClient(
        base_url=private.url, version=docker_conf.MIN_API_VERSION, timeout=60
    )
    yield client
    client.close()


def _state(target_engine, instance) -> dict:
    return target_engine.api.inspect_container(naming.container_name(instance.uuid))[
        "State"
    ]


def test_ports_work_after_the_engine_restarts(
    private, docker_driver, image_meta, target_engine, ovs
) -> None:
    ctxt = context.get_admin_context()
    vifs = [make_vif(26, False, None), make_vif(27, False, None)]
    instances = [make_instance(ctxt, index) for index in (26, 27)]
    for instance, vif in zip(instances, vifs, strict=True):
        docker_driver.spawn(ctxt, instance, image_meta, [], None, {}, [vif])
    containers = [
        target_engine.containers.get(naming.container_name(i.uuid)) for i in instances
    ]
    assert_connected(*containers, *ADDRESSES)
    started = [_state(target_engine, i)["StartedAt"] for i in instances]

    private.stop()
    private.start()

    if private.live_restore:
        # The same processes, in the same namespaces, with the same ports.
        assert [_state(target_engine, i)["StartedAt"] for i in instances] == started
    else:
        for instance, vif in zip(instances, vifs, strict=True):
            info = docker_driver.get_info(instance, use_cache=False)
            assert info.state == power_state.SHUTDOWN
            docker_driver.power_on(ctxt, instance, [vif])
    containers = [
        target_engine.containers.get(naming.container_name(i.uuid)) for i in instances
    ]
    assert_connected(*containers, *ADDRESSES)

    for instance, vif in zip(instances, vifs, strict=True):
        docker_driver.destroy(ctxt, instance, [vif])
    assert [found for vif in vifs for found in leftovers(vif, ovs)] == []
