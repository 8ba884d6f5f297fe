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

"""Fixtures: a Docker Engine, the host's shared Open vSwitch, os-vif on it.

See :mod:`.support` for what gets created and how it is cleaned up.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Iterator

import docker
import os_vif
import pytest
import vif_plug_ovs.privsep
from nova import objects
from nova.virt import fake
from oslo_config import cfg

import nova_docker.privsep
from nova_docker import conf
from nova_docker import driver as driver_mod
from nova_docker.engine import naming
from nova_docker.tests import engine_support
from nova_docker.tests.functional.network import support
from nova_docker.tests.functional.network.support import unavailable
from nova_docker_aio.procs import ProcessError
from nova_docker_aio.services import ovs as aio_ovs

CONF = cfg.CONF


@pytest.fixture(scope="session")
def root() -> None:
    if os.geteuid() != 0:
        unavailable("plugging needs root (netlink, setns, iptables)")


@pytest.fixture(scope="session")
def engine(root: None) -> Iterator[docker.DockerClient]:
    try:
        client = docker.from_env(timeout=60)
        client.ping()
    except Exception as exc:
        unavailable(f"no Docker Engine answers ({exc}); run tools/ensure-engine.sh")
    yield client
    client.close()


@pytest.fixture(scope="session")
def image(engine: docker.DockerClient) -> Iterator[str]:
    """A busybox image imported from a local rootfs; never pulled."""
    repository, tag = "ndt-busybox", uuid.uuid4().hex[:12]
    engine.api.import_image_from_data(support.rootfs(), repository=repository, tag=tag)
    yield f"{repository}:{tag}"
    engine.images.remove(f"{repository}:{tag}", force=True)


@pytest.fixture(scope="session")
def ovs(root: None) -> Iterator[support.Ovs]:
    """The host's one userspace switch, shared with any running cloud.

    Only one ovs-vswitchd per host can run the netdev datapath, so the tests
    claim the switch the all-in-one clouds share (starting it if none runs),
    work on their own bridge, and release their claim at the end.
    """
    missing = aio_ovs.missing_binaries()
    if missing:
        unavailable(f"Open vSwitch is not installed ({', '.join(missing)})")
    claim = f"functional-tests-{os.getpid()}"
    try:
        switch = aio_ovs.acquire(claim, aio_ovs.pid_owner())
    except (aio_ovs.SwitchError, ProcessError) as exc:
        unavailable(f"no usable Open vSwitch: {exc}")
    try:
        # Made here, not by the first plug: a test that checks the bridge
        # before (or without) plugging must not depend on test order.
        aio_ovs.add_bridge(switch, support.BRIDGE)
        yield support.Ovs(switch)
    finally:
        with contextlib.suppress(aio_ovs.SwitchError):
            aio_ovs.del_bridge(switch, support.BRIDGE)
        aio_ovs.release(claim, switch)


@pytest.fixture(scope="session")
def in_process_privsep() -> Iterator[None]:
    """Run our and os-vif's entrypoints in this (root) process."""
    contexts = (
        nova_docker.privsep.nova_docker_privileged,
        vif_plug_ovs.privsep.vif_plug,
    )
    for context in contexts:
        context.set_client_mode(False)
    yield
    for context in contexts:
        context.set_client_mode(True)


@pytest.fixture(scope="session")
def osvif(ovs: support.Ovs, in_process_privsep: None) -> Iterator[None]:
    """os-vif's OVS plugin, talking to our OVSDB."""
    objects.register_all()
    os_vif.initialize()
    cfg.CONF.set_override("ovsdb_connection", ovs.connection, "os_vif_ovs")
    os_vif.initialize(reset=True)
    yield
    cfg.CONF.clear_override("ovsdb_connection", "os_vif_ovs")


@pytest.fixture
def containers(
    engine: docker.DockerClient, image: str
) -> Iterator[support.ContainerFactory]:
    factory = support.ContainerFactory(engine, image)
    yield factory
    factory.cleanup()


@pytest.fixture
def engine_url() -> str:
    """Where the driver under test finds its engine: the host's."""
    return "unix:///var/run/docker.sock"


@pytest.fixture
def target_engine(engine: docker.DockerClient) -> docker.DockerClient:
    """The engine the driver under test uses (overridden for a private one)."""
    return engine


@contextlib.contextmanager
def cached_image(
    engine: docker.DockerClient, command: list[str]
) -> Iterator[objects.ImageMeta]:
    """A Glance image running ``command``, already cached on the engine
    under its UUID tag; removed on exit."""
    image_id = str(uuid.uuid4())
    repository, tag = naming.glance_image_ref(image_id).split(":")
    engine.api.import_image_from_data(
        support.rootfs(),
        repository=repository,
        tag=tag,
        changes=[f"CMD {json.dumps(command)}"],
    )
    try:
        yield objects.ImageMeta.from_dict(
            {"id": image_id, "container_format": "docker", "disk_format": "raw"}
        )
    finally:
        engine.images.remove(f"{repository}:{tag}", force=True)


@pytest.fixture
def image_meta(target_engine: docker.DockerClient) -> Iterator[objects.ImageMeta]:
    """A Glance image already cached on the engine under its UUID tag."""
    with cached_image(target_engine, support.COMMAND) as meta:
        yield meta


@pytest.fixture
def docker_driver(
    osvif: None, target_engine: docker.DockerClient, engine_url: str, tmp_path
) -> Iterator[driver_mod.DockerDriver]:
    engine = target_engine
    host = f"ndt-driver-{uuid.uuid4().hex[:8]}"
    conf.register_opts(CONF)
    CONF.set_override("host", host)
    CONF.set_override("api_url", engine_url, "docker")
    CONF.set_override("instances_path", str(tmp_path))
    CONF.set_override("ovs_datapath_type", "netdev", "docker")
    driver = driver_mod.DockerDriver(fake.FakeVirtAPI())
    driver.init_host(host)
    yield driver
    driver.cleanup_host(host)
    for found in engine_support.containers_of_host(engine.api, host):
        engine.api.remove_container(found["Id"], force=True)
    CONF.clear_override("ovs_datapath_type", "docker")
    CONF.clear_override("api_url", "docker")
    CONF.clear_override("instances_path")
    CONF.clear_override("host")
