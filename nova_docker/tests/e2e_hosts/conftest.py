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

"""A cloud of two compute hosts, as a user and an operator drive it.

``nova-docker-aio up --hosts 2``: Nova's API, conductor, scheduler and two
nova-computes over RabbitMQ, each host with its own engine and OVN chassis.
The tests reach it only through the OpenStack API and, where they check
what a host holds, that host's own engine.
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Iterator
from pathlib import Path

import docker
import openstack
import pytest

from nova_docker.tests import engine_support
from nova_docker.tests.e2e import support
from nova_docker_aio import engine
from nova_docker_aio import images
from nova_docker_aio import procs
from nova_docker_aio.clouds_yaml import ADMIN_CLOUD
from nova_docker_aio.clouds_yaml import DEMO_CLOUD
from nova_docker_aio.private import PrivateCloud
from nova_docker_aio.services import engine_host

FIRST_PORT_BASE = 25300
LOGS = Path(tempfile.gettempdir()) / "nova-docker-hosts-logs"
HOSTS = 2
UP_TIMEOUT = 900
#: Pid files: ``<name>.pid`` (ours and the daemons' own) and the metadata
#: agent's ``<network id>.pid.haproxy``.
PID_FILE_PATTERNS = ("*.pid", "*.pid.haproxy")
#: Nova's default scheduler filters plus the two that read the
#: ``same_host``/``different_host`` hints (tempest's multi-node tests).
SCHEDULER_FILTERS = (
    "ComputeFilter",
    "ComputeCapabilitiesFilter",
    "ImagePropertiesFilter",
    "ServerGroupAntiAffinityFilter",
    "ServerGroupAffinityFilter",
    "SameHostFilter",
    "DifferentHostFilter",
)
#: Power states checked every few seconds; a two-core machine holds many
#: small servers; the hint filters above.
LOCAL_CONF = f"""[DEFAULT]
cpu_allocation_ratio = 40.0
sync_power_state_interval = 5
running_deleted_instance_poll_interval = 5
running_deleted_instance_timeout = 0
running_deleted_instance_action = reap

[filter_scheduler]
enabled_filters = {",".join(SCHEDULER_FILTERS)}
"""


class HostsCloud(PrivateCloud):
    """The two-host cloud: its hosts, each host's engine, its Nova
    processes by name."""

    #: What ``up`` said, among it how long it took.
    up_output = ""

    def up(self) -> str:
        self.up_output = super().up()
        return self.up_output

    @property
    def hosts(self) -> list[str]:
        return [self.layout.host_name(i) for i in range(1, HOSTS + 1)]

    def index(self, host: str) -> int:
        return self.hosts.index(host) + 1

    @functools.cached_property
    def engines(self) -> dict[str, docker.APIClient]:
        """Each host's own engine, by host name."""
        return {
            host: docker.APIClient(
                base_url=engine_host.api_url(self.layout, self.index(host)),
                version="auto",
                timeout=60,
            )
            for host in self.hosts
        }

    def containers_of(self, host: str, server_id: str) -> list[dict]:
        """The server's container and sandbox on ``host``'s engine."""
        return engine_support.containers_of_instance(self.engines[host], server_id)

    def compute(self, host: str) -> str:
        """The launcher's name of ``host``'s nova-compute process."""
        return f"nova-compute-{self.index(host)}"

    def restart(self, service: str) -> str:
        return self.cli("restart", service, timeout=300)

    def upload(self, conn, ref: str, prefix: str, wait: float = 300):
        """``docker save`` of ``ref`` (on the machine's engine, where images
        are built) into a new Glance image, once active."""
        created = conn.image.create_image(
            name=support.name(prefix),
            container_format="docker",
            disk_format="raw",
            data=b"".join(engine_support.engine_client().get_image(ref)),
        )
        return conn.image.wait_for_status(created, "active", wait=wait)


def say(config: pytest.Config, line: str) -> None:
    """``line`` on the terminal even while output is captured: a figure
    to read, never to assert on."""
    terminal = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if terminal is None or capture is None:
        print(line)
        return
    # A fixture's output is captured, even the terminal reporter's.
    with capture.global_and_fixture_disabled():
        terminal.write_line(f"\n{line}")


@pytest.fixture(scope="session")
def hosts_cloud(request: pytest.FixtureRequest) -> Iterator[HostsCloud]:
    engine_support.engine_client()  # skip, or fail under CI, without engine
    made = HostsCloud.create(
        "nova-docker-hosts-",
        FIRST_PORT_BASE,
        # Tempest tests no dashboard (service_available horizon = false).
        up_args=("--hosts", str(HOSTS), "--no-dashboard"),
        up_timeout=UP_TIMEOUT,
        # Every service's log outlives the cloud, for a failure's story.
        keep_logs=LOGS,
    )
    made.write_local_conf(LOCAL_CONF)
    with made:
        took = [line for line in made.up_output.splitlines() if " is up in " in line]
        say(request.config, f"hosts cloud: {(took or ['?'])[0]} ({made.layout.root})")
        yield made
        # Read before down, which removes the files with the state dir.
        named = processes_in_pid_files(made)
    left = made.host_devices()
    assert left == [], f"the cloud's host devices outlived its down: {left}"
    unseen = sorted(set(core_pid_files(made)) - named.keys())
    assert unseen == [], f"pid files not found running before down: {unseen}"
    alive = [
        f"{path} ({pid})"
        for path, (pid, started) in named.items()
        if procs.is_running(pid, started)
    ]
    assert alive == [], f"processes outlived the cloud's down: {alive}"


def pid_files(cloud: HostsCloud) -> Iterator[Path]:
    """The cloud's pid files: those of its run dir (the launcher's, and
    those mariadbd, rabbitmq and epmd write), the metadata agent's
    haproxies', and each host engine's (dockerd's, its containerd's)."""
    layout = cloud.layout
    roots = [layout.run, layout.ovn_metadata_pids]
    roots += [layout.engine_exec_root(cloud.index(host)) for host in cloud.hosts]
    for root in roots:
        for pattern in PID_FILE_PATTERNS:
            yield from root.rglob(pattern)


def core_pid_files(cloud: HostsCloud) -> list[str]:
    """Pid files that name a running process in every two-host cloud:
    the broker (its script, VM and epmd), the API, and each host's nova-compute, dockerd
    and containerd (so that the check above is never of nothing)."""
    layout = cloud.layout
    paths = [
        layout.pidfile(name)
        for name in ("rabbitmq", "rabbitmq-beam", "rabbitmq-epmd", "nova-api")
    ]
    for host in cloud.hosts:
        exec_root = layout.engine_exec_root(cloud.index(host))
        paths += [
            layout.pidfile(cloud.compute(host)),
            exec_root / "dockerd.pid",
            exec_root / "containerd" / "containerd.pid",
        ]
    return [str(path) for path in paths]


def processes_in_pid_files(cloud: HostsCloud) -> dict[str, tuple[int, str]]:
    """Each live process a pid file of ``cloud`` names, by file: its PID
    and start time, which tell it from a later process of the same PID."""
    named = {}
    for path in pid_files(cloud):
        try:
            pid = int(path.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue  # a file mid-write or emptied: it names nothing
        started = procs.start_time(pid)
        if started is not None:
            named[str(path)] = (pid, started)
    return named


@pytest.fixture(scope="session")
def hosts_admin(hosts_cloud: HostsCloud) -> openstack.connection.Connection:
    """The admin at compute 2.91: a host named at boot (2.74) and at
    unshelve (2.91)."""
    return hosts_cloud.connect(ADMIN_CLOUD, compute_api_version="2.91")


@pytest.fixture(scope="session")
def hosts_user(hosts_cloud: HostsCloud) -> openstack.connection.Connection:
    """The demo user at compute 2.56 (injected files)."""
    return hosts_cloud.connect(DEMO_CLOUD, compute_api_version="2.56")


@pytest.fixture(scope="session")
def web_group(hosts_admin) -> Iterator:
    """Admits ICMP and HTTP: the admin's servers answer on their floating
    IPs as the demo project's do (its default group admits the same)."""
    group = hosts_admin.network.create_security_group(name=support.name("hosts-web"))
    for protocol, port in (("icmp", None), ("tcp", 80)):
        hosts_admin.network.create_security_group_rule(
            security_group_id=group.id,
            direction="ingress",
            protocol=protocol,
            port_range_min=port,
            port_range_max=port,
        )
    yield group
    hosts_admin.network.delete_security_group(group, ignore_missing=True)


@pytest.fixture(scope="session")
def hosts_net_image(hosts_cloud: HostsCloud, hosts_user) -> Iterator:
    """The networking tests' image (see :mod:`..e2e.support`): httpd, the
    peer's page and the addresses on the console."""
    ref = images.build("nova-docker-hosts-net", ["/bin/sh", "-c", support.NET_SCRIPT])
    created = hosts_cloud.upload(hosts_user, ref, "hosts-net-image")
    yield created
    hosts_user.image.delete_image(created, ignore_missing=True)
    engine.remove_image(ref)
