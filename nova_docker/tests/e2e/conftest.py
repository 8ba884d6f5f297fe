"""A whole cloud for the end-to-end tests, started with the launcher.

It gets its own state dir under /tmp and its own ports, so ``make test``
passes while the demo cloud runs; its Neutron's bridges sit on the host's
shared Open vSwitch next to the demo cloud's (see doc/aio.md), with the next
free external range.  It comes down at the end of the session even when
tests fail, and must leave none of its host devices behind.  Tests talk to
it over HTTP only, as a user.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import openstack
import pytest
import yaml

from nova_docker.aio import demo_image
from nova_docker.aio.launch import free_port_base
from nova_docker.aio.launch import run_cli
from nova_docker.aio.layout import Layout
from nova_docker.tests import engine_support

FIRST_PORT_BASE = 25100
UP_TIMEOUT = 600


class Cloud:
    """What the tests know about the cloud: how a user reaches it."""

    def __init__(self, state: Path) -> None:
        self.state = state
        self.clouds_yaml = state / "clouds.yaml"
        self.engine = engine_support.engine_client()
        #: Glance images the tests made; the engine's copies go at the end.
        self.glance_ids: list[str] = []

    def forget_engine_copies(self) -> None:
        """Remove the images the driver loaded from this cloud's Glance."""
        for image_id in self.glance_ids:
            for found in self.engine.images(name=f"nova-glance:{image_id}"):
                self.engine.remove_image(found["Id"], force=True)

    def connect(self, name: str = "aio-demo") -> openstack.connection.Connection:
        settings = yaml.safe_load(self.clouds_yaml.read_text())["clouds"][name]
        return openstack.connect(load_yaml_config=False, load_envvars=False, **settings)

    def containers_of(self, server_id: str) -> list[dict]:
        label = f"org.openstack.nova.instance-uuid={server_id}"
        return self.engine.containers(all=True, filters={"label": label})


@pytest.fixture(scope="session")
def cloud() -> Iterator[Cloud]:
    engine_support.engine_client()  # skip, or fail under CI, without engine
    state = Path(tempfile.mkdtemp(prefix="nova-docker-e2e-"))
    base = free_port_base(FIRST_PORT_BASE)
    made = None
    try:
        run_cli(state, base, "up", timeout=UP_TIMEOUT)
        made = Cloud(state)
        yield made
    finally:
        try:
            run_cli(state, base, "down", timeout=300)
            if made:
                made.forget_engine_copies()
        finally:
            shutil.rmtree(state, ignore_errors=True)
        left = _host_devices(state)
        assert left == [], f"the cloud's host devices outlived its down: {left}"


def _host_devices(state: Path) -> list[str]:
    """Host devices named after this cloud (its OVS bridges' taps)."""
    tag = Layout(root=state.resolve(), port_base=0).tag
    return sorted(p.name for p in Path("/sys/class/net").iterdir() if tag in p.name)


@pytest.fixture(scope="session")
def conn(cloud: Cloud) -> openstack.connection.Connection:
    return cloud.connect()


@pytest.fixture(scope="session")
def image_ref(cloud: Cloud) -> Iterator[str]:
    """The demo image, built locally (never pulled)."""
    ref = demo_image.build("nova-docker-e2e")
    yield ref
    cloud.engine.remove_image(ref, force=True)
