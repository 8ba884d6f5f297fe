"""Fixtures: a Docker Engine, an Open vSwitch of our own, os-vif on it.

See :mod:`.support` for what gets created and how it is cleaned up.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import tempfile
import uuid
from collections.abc import Iterator

import docker
import os_vif
import pytest
import vif_plug_ovs.privsep
from nova import objects
from oslo_config import cfg

import nova_docker.privsep
from nova_docker.tests.functional.network import support
from nova_docker.tests.functional.network.support import unavailable


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
    missing = [b for b in support.OVS_BINARIES if shutil.which(b) is None]
    if missing:
        unavailable(f"Open vSwitch is not installed ({', '.join(missing)})")
    if pathlib.Path("/sys/class/net/ovs-netdev").exists():
        # The userspace datapath is a kernel tap of this fixed name, so only
        # one ovs-vswitchd per host can run it (e.g. the all-in-one cloud's).
        unavailable("another ovs-vswitchd already runs the netdev datapath")
    rundir = pathlib.Path(tempfile.mkdtemp(prefix="ndt-ovs-"))
    switch = support.Ovs(rundir)
    try:
        switch.start()
        yield switch
    finally:
        switch.stop()
        shutil.rmtree(rundir, ignore_errors=True)


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
