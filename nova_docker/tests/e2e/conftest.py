"""A whole cloud for the end-to-end tests, started with the launcher.

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

import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import openstack
import pytest
import yaml

from nova_docker.aio import demo_image
from nova_docker.aio import ovs
from nova_docker.aio.launch import free_port_base
from nova_docker.aio.launch import run_cli
from nova_docker.aio.layout import Layout
from nova_docker.aio.procs import read_pid
from nova_docker.aio.procs import reap
from nova_docker.tests import engine_support
from nova_docker.tests.e2e import support

FIRST_PORT_BASE = 25100
UP_TIMEOUT = 600


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


class Cloud:
    """What the tests know about the cloud: how a user reaches it, and how
    an operator restarts its Nova."""

    def __init__(self, state: Path, base: int) -> None:
        self.state = state
        self.base = base
        self.layout = Layout(root=state.resolve(), port_base=base)
        self.clouds_yaml = state / "clouds.yaml"
        self.engine = engine_support.engine_client()
        #: Glance images the tests made; the engine's copies go at the end.
        self.glance_ids: list[str] = []

    def forget_engine_copies(self) -> None:
        """Remove the images the driver loaded from this cloud's Glance."""
        for image_id in self.glance_ids:
            for found in self.engine.images(name=f"nova-glance:{image_id}"):
                self.engine.remove_image(found["Id"], force=True)

    @property
    def compute_host(self) -> str:
        return self.layout.compute_host

    @property
    def nova_tmp(self) -> Path:
        """Nova's own temp dir (the launcher's ``TMPDIR`` for it)."""
        return self.state / "nova" / "tmp"

    def nova_log(self) -> str:
        return self.layout.log("nova").read_text(errors="replace")

    def set_deleted_instance_action(self, action: str) -> None:
        """Takes effect at the next (re)start of Nova."""
        write_local_conf(self.state, action)

    def restart_nova(self) -> None:
        """``nova-docker-aio restart nova``: stop by PID, start again."""
        run_cli(self.state, self.base, "restart", "nova", timeout=300)

    def nova_running(self) -> bool:
        return read_pid(self.layout.pidfile("nova")) is not None

    def kill_nova(self) -> None:
        """SIGKILL Nova's process, as a crash or the OOM killer would."""
        pidfile = self.layout.pidfile("nova")
        pid = read_pid(pidfile)
        assert pid, "Nova is not running"
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while read_pid(pidfile) == pid and time.monotonic() < deadline:
            reap(pid)
            time.sleep(0.1)
        assert read_pid(pidfile) != pid, f"Nova (pid {pid}) outlived SIGKILL"

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

    def connect(
        self, name: str = "aio-demo", **options: str
    ) -> openstack.connection.Connection:
        settings = yaml.safe_load(self.clouds_yaml.read_text())["clouds"][name]
        return openstack.connect(
            load_yaml_config=False, load_envvars=False, **settings, **options
        )

    def containers_of(self, server_id: str) -> list[dict]:
        label = f"org.openstack.nova.instance-uuid={server_id}"
        return self.engine.containers(all=True, filters={"label": label})


def write_local_conf(state: Path, action: str = "reap") -> None:
    path = state / "etc" / "nova" / "local.conf"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(LOCAL_CONF.format(action=action))


@pytest.fixture(scope="session")
def cloud() -> Iterator[Cloud]:
    engine_support.engine_client()  # skip, or fail under CI, without engine
    reuse = os.environ.get("NOVA_DOCKER_E2E_CLOUD")
    if reuse:
        state_text, base_text = reuse.rsplit(":", 1)
        made = Cloud(Path(state_text), int(base_text))
        write_local_conf(made.state)
        made.restart_nova()
        yield made
        made.forget_engine_copies()
        return
    state = Path(tempfile.mkdtemp(prefix="nova-docker-e2e-"))
    base = free_port_base(FIRST_PORT_BASE)
    made = None
    try:
        write_local_conf(state)
        run_cli(state, base, "up", timeout=UP_TIMEOUT)
        made = Cloud(state, base)
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


@pytest.fixture
def nova_back_up(cloud: Cloud) -> Iterator[None]:
    """For tests that kill or restart Nova: whatever happens, the next test
    finds it running with the usual settings."""
    yield
    if not cloud.nova_running():
        write_local_conf(cloud.state)
        cloud.restart_nova()


@pytest.fixture(scope="session")
def admin_conn(cloud: Cloud) -> openstack.connection.Connection:
    """The cloud's admin at compute 2.53 (services by ID, ``forced_down``)."""
    return cloud.connect("aio-admin", compute_api_version="2.53")


@pytest.fixture(scope="session")
def image_ref(cloud: Cloud) -> Iterator[str]:
    """The demo image, built locally (never pulled)."""
    ref = demo_image.build("nova-docker-e2e")
    yield ref
    cloud.engine.remove_image(ref, force=True)


@pytest.fixture(scope="session")
def user_conn(cloud: Cloud) -> openstack.connection.Connection:
    """The demo user at compute 2.56, the last microversion with injected
    files (``personality``)."""
    return cloud.connect("aio-demo", compute_api_version="2.56")


@pytest.fixture(scope="session")
def net_image(cloud: Cloud, user_conn) -> Iterator:
    ref = demo_image.build("nova-docker-e2e-net", ["/bin/sh", "-c", support.NET_SCRIPT])
    created = cloud.upload(user_conn, ref, "e2e-net-image")
    yield created
    user_conn.image.delete_image(created, ignore_missing=True)
    cloud.engine.remove_image(ref, force=True)


@pytest.fixture
def servers(user_conn, net_image) -> Iterator[support.Servers]:
    made = support.Servers(user_conn, net_image)
    yield made
    made.delete_all()
