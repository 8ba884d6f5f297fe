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

"""A whole cloud for the end-to-end tests: the launcher's
:class:`~nova_docker_aio.private.PrivateCloud`, as the benchmarks use it.

It gets its own state dir under /tmp and its own ports, so ``make test``
passes while the demo cloud runs (``NOVA_DOCKER_E2E_CLOUD=STATE_DIR:PORT_BASE``
points the tests at a cloud that is already up instead, for quick rounds
while developing; it is left up); its Neutron's bridges sit on the host's
shared Open vSwitch next to the demo cloud's (see doc/aio.md), with the next
free external range.  It comes down at the end of the session even when
tests fail, and must leave none of its host devices behind.  Tests talk to
it over HTTP only, as a user.
"""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import openstack
import pytest

from nova_docker.engine import naming
from nova_docker.tests import engine_support
from nova_docker.tests.e2e import support
from nova_docker_aio import engine
from nova_docker_aio import images
from nova_docker_aio.clouds_yaml import ADMIN_CLOUD
from nova_docker_aio.clouds_yaml import DEMO_CLOUD
from nova_docker_aio.demo import DEMO_CMD
from nova_docker_aio.private import PrivateCloud
from nova_docker_aio.services import ovs

if TYPE_CHECKING:
    import docker

FIRST_PORT_BASE = 25100
UP_TIMEOUT = 600
#: Where every service's log is copied when the cloud goes, so a failure
#: seen only in CI (a race between Nova and Neutron) can be read afterwards.
LOGS = Path(tempfile.gettempdir()) / "nova-docker-e2e-logs"


#: Nova settings the fault tests rely on, in the cloud's ``local.conf``:
#: power states and deleted-but-running containers are checked every few
#: seconds instead of every 10 and 30 minutes, and a two-core machine holds
#: the burst test's 50 one-vCPU servers.
LOCAL_CONF = """[DEFAULT]
cpu_allocation_ratio = 40.0
sync_power_state_interval = 5
running_deleted_instance_poll_interval = 5
running_deleted_instance_timeout = 0
running_deleted_instance_action = {action}
"""


class Cloud(PrivateCloud):
    """What the tests know about the cloud: how a user reaches it, how an
    operator restarts its Nova, and what it left on the engine."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        #: Glance images the tests made; the engine's copies go at the end.
        self.glance_ids: list[str] = []

    @functools.cached_property
    def engine(self) -> docker.APIClient:
        return engine_support.engine_client()

    def forget_engine_copies(self) -> None:
        """Remove the images the driver loaded from this cloud's Glance."""
        for image_id in self.glance_ids:
            ref = naming.glance_image_ref(image_id)
            for found in self.engine.images(name=ref):
                self.engine.remove_image(found["Id"], force=True)

    @property
    def clouds_yaml(self) -> Path:
        return self.layout.clouds_yaml

    @property
    def nova_tmp(self) -> Path:
        """Nova's own temp dir (the launcher's ``TMPDIR`` for it)."""
        return self.layout.tmp_dir("nova")

    def nova_log(self) -> str:
        return self.log_text("nova")

    def set_deleted_instance_action(self, action: str = "reap") -> None:
        """Takes effect at the next (re)start of Nova."""
        self.write_local_conf(LOCAL_CONF.format(action=action))

    def nova_running(self) -> bool:
        return self.pid("nova") is not None

    def kill_nova(self) -> None:
        """SIGKILL Nova's process, as a crash or the OOM killer would."""
        self.kill("nova")

    def switch_ports(self) -> list[str]:
        """The ports on this cloud's integration bridge."""
        listed = ovs.vsctl(ovs.Switch(), "list-ports", self.layout.bridge("int"))
        return listed.split()

    def upload(
        self, conn, ref: str, prefix: str, wait: float = 300, move: bool = False
    ):
        """``docker save`` of ``ref`` into a new Glance image, once active;
        with ``move``, ``ref`` leaves the engine whatever happens."""
        try:
            created = conn.image.create_image(
                name=support.name(prefix),
                container_format="docker",
                disk_format="raw",
                data=b"".join(self.engine.get_image(ref)),
            )
        finally:
            if move:
                self.engine.remove_image(ref, force=True)
        self.glance_ids.append(created.id)
        return conn.image.wait_for_status(created, "active", wait=wait)

    @contextlib.contextmanager
    def script_image(self, conn, prefix: str, script: str) -> Iterator:
        """A Glance image whose command is the shell ``script``, built here
        and uploaded; deleted on exit."""
        ref = images.build(f"nova-docker-{prefix}", ["/bin/sh", "-c", script])
        created = self.upload(conn, ref, f"{prefix}-image", move=True)
        try:
            yield created
        finally:
            conn.image.delete_image(created, ignore_missing=True)

    def containers_of(self, server_id: str) -> list[dict]:
        """The server's container and network sandbox, stopped ones too."""
        return engine_support.containers_of_instance(self.engine, server_id)

    def container_of(self, server_id: str) -> dict:
        """The engine's view of the server's own container (not its sandbox)."""
        return self.engine.inspect_container(naming.container_name(server_id))


@pytest.fixture(scope="session")
def cloud() -> Iterator[Cloud]:
    engine_support.engine_client()  # skip, or fail under CI, without engine
    reuse = os.environ.get("NOVA_DOCKER_E2E_CLOUD")
    if reuse:
        state, base = reuse.rsplit(":", 1)
        made = Cloud.existing(Path(state), int(base))
        made.set_deleted_instance_action()
        made.restart_nova()
    else:
        made = Cloud.create(
            "nova-docker-e2e-", FIRST_PORT_BASE, up_timeout=UP_TIMEOUT, keep_logs=LOGS
        )
        made.set_deleted_instance_action()
    try:
        with made:
            yield made
    finally:
        made.forget_engine_copies()
    if made.owned:
        left = made.host_devices()
        assert left == [], f"the cloud's host devices outlived its down: {left}"


@pytest.fixture(scope="session")
def conn(cloud: Cloud) -> openstack.connection.Connection:
    return cloud.connect()


@pytest.fixture
def nova_back_up(cloud: Cloud) -> Iterator[None]:
    """For tests that kill or restart Nova: whatever happens, the next test
    finds it running with the usual settings."""
    yield
    if not cloud.nova_running():
        cloud.set_deleted_instance_action()
        cloud.restart_nova()


@pytest.fixture(scope="session")
def admin_conn(cloud: Cloud) -> openstack.connection.Connection:
    """The cloud's admin at compute 2.53 (services by ID, ``forced_down``)."""
    return cloud.connect(ADMIN_CLOUD, compute_api_version="2.53")


@pytest.fixture(scope="session")
def image_ref(cloud: Cloud) -> Iterator[str]:
    """The demo image, built locally (never pulled)."""
    ref = images.build("nova-docker-e2e", DEMO_CMD)
    yield ref
    engine.remove_image(ref)


@pytest.fixture(scope="session")
def user_conn(cloud: Cloud) -> openstack.connection.Connection:
    """The demo user at compute 2.56, the last microversion with injected
    files (``personality``)."""
    return cloud.connect(DEMO_CLOUD, compute_api_version="2.56")


@pytest.fixture(scope="session")
def net_image(cloud: Cloud, user_conn) -> Iterator:
    ref = images.build("nova-docker-e2e-net", ["/bin/sh", "-c", support.NET_SCRIPT])
    created = cloud.upload(user_conn, ref, "e2e-net-image")
    yield created
    user_conn.image.delete_image(created, ignore_missing=True)
    engine.remove_image(ref)


@pytest.fixture
def servers(user_conn, net_image) -> Iterator[support.Servers]:
    made = support.Servers(user_conn, net_image)
    yield made
    made.delete_all()
