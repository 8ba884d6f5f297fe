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

"""Restarting nova-compute leaves the host as it was, and what Nova expects.

In the all-in-one cloud Nova's API, conductor, scheduler and compute share
one process, so every restart here restarts all four: a harsher fault than a
compute-only restart, with the same ``init_host`` path.  The cloud checks
power states every 5 s and deleted-but-running containers every 5 s (see
``LOCAL_CONF`` in conftest), so what Nova does after a restart shows within
seconds.  Containers are looked at through the engine; servers through the
compute API only.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest

from nova_docker.engine import naming
from nova_docker.tests.e2e import support
from nova_docker.tests.e2e.conftest import Cloud
from nova_docker_aio import images

pytestmark = pytest.mark.usefixtures("nova_back_up")

#: Long enough for several power-state syncs and deleted-instance sweeps
#: (each every 5 s in this cloud) to run after a restart.
PERIODIC_ROUNDS = 15


def _container(cloud: Cloud, server) -> dict:
    """The engine's view of a server's own container."""
    return cloud.container_of(server.id)


def _fingerprint(cloud: Cloud, server) -> tuple[str, str, str]:
    """What a restart must not change: the container, its state, and when
    its process started."""
    state = _container(cloud, server)
    return state["Id"], state["State"]["Status"], state["State"]["StartedAt"]


def _settle(user_conn, server, status: str):
    return support.eventually(
        lambda: (
            user_conn.compute.get_server(server).status == status
            and user_conn.compute.get_server(server)
        ),
        f"{server.name} is {status}",
        timeout=support.TIMEOUT,
    )


def _compute_up(admin_conn, cloud: Cloud) -> None:
    def up() -> bool:
        return any(
            s.binary == "nova-compute" and s.state == "up" and s.status == "enabled"
            for s in admin_conn.compute.services(host=cloud.compute_host)
        )

    support.eventually(up, "nova-compute reports up", timeout=120)


@pytest.fixture
def foreign(cloud: Cloud) -> Iterator[list[str]]:
    """Containers that are not this cloud's: one with no labels at all, one
    labelled as another compute host's instance."""
    image = images.build("nova-docker-e2e-foreign", ["sleep", "3600"])
    made = []
    try:
        for labels in (
            {},
            {naming.HOST_LABEL: "another-host", naming.UUID_LABEL: str(uuid.uuid4())},
        ):
            created = cloud.engine.create_container(
                image,
                host_config=cloud.engine.create_host_config(network_mode="none"),
                name=f"nova-docker-e2e-foreign-{uuid.uuid4().hex[:8]}",
                labels=labels,
            )
            made.append(created["Id"])
            cloud.engine.start(created["Id"])
        yield made
    finally:
        for container in made:
            cloud.engine.remove_container(container, force=True)
        cloud.engine.remove_image(image, force=True)


def _started_at(cloud: Cloud, container: str) -> tuple[str, str]:
    state = cloud.engine.inspect_container(container)["State"]
    return state["Status"], state["StartedAt"]


def test_restart_changes_nothing_for_running_stopped_and_paused_servers(
    cloud: Cloud, user_conn, admin_conn, servers, foreign
) -> None:
    running, stopped, paused = (servers.boot() for _ in range(3))
    user_conn.compute.stop_server(stopped)
    user_conn.compute.pause_server(paused)
    _settle(user_conn, stopped, "SHUTOFF")
    _settle(user_conn, paused, "PAUSED")
    url = f"http://{servers.floating_ip(running)}/"
    support.eventually(lambda: support.fetch(url), f"{url} answers")
    made = (running, stopped, paused)
    before = {s.id: _fingerprint(cloud, s) for s in made}
    foreign_before = [_started_at(cloud, c) for c in foreign]

    cloud.restart_nova()
    _compute_up(admin_conn, cloud)

    time.sleep(PERIODIC_ROUNDS)
    page = support.eventually(lambda: support.fetch(url), f"{url} answers again")
    assert page == f"Hello from {running.name}"
    for server, status in zip(made, ("ACTIVE", "SHUTOFF", "PAUSED"), strict=True):
        assert user_conn.compute.get_server(server).status == status
        assert _fingerprint(cloud, server) == before[server.id]
    assert [_started_at(cloud, c) for c in foreign] == foreign_before
    assert "another-host" not in cloud.nova_log()


def test_a_container_stopped_behind_novas_back_is_shut_off_and_starts_again(
    cloud: Cloud, user_conn, servers
) -> None:
    """What an engine restart without live-restore does to a server: its
    container stops.  Nova's power-state sync finds it shut down and calls
    the stop API; a start plugs its ports into the new namespace."""
    server = servers.boot()
    url = f"http://{servers.floating_ip(server)}/"
    support.eventually(lambda: support.fetch(url), f"{url} answers")
    container = _container(cloud, server)["Id"]

    cloud.engine.stop(container, timeout=5)
    _settle(user_conn, server, "SHUTOFF")
    assert f"[instance: {server.id}] Instance shutdown by itself" in cloud.nova_log()

    user_conn.compute.start_server(server)
    _settle(user_conn, server, "ACTIVE")
    page = support.eventually(lambda: support.fetch(url), f"{url} answers again")
    assert page == f"Hello from {server.name}"
    assert _container(cloud, server)["Id"] == container


def test_after_a_host_reboot_the_servers_that_ran_run_again(
    cloud: Cloud, user_conn, admin_conn, servers
) -> None:
    """The AIO sets ``resume_guests_state_on_host_boot``.  A reboot is a
    crash of everything: Nova dies, and the engine comes back with every
    container stopped."""
    running, stopped = servers.boot(), servers.boot()
    user_conn.compute.stop_server(stopped)
    _settle(user_conn, stopped, "SHUTOFF")
    url = f"http://{servers.floating_ip(running)}/"
    support.eventually(lambda: support.fetch(url), f"{url} answers")
    stopped_before = _fingerprint(cloud, stopped)

    cloud.kill_nova()
    # A reboot stops every container: the servers' and their sandboxes.
    for server in (running, stopped):
        for found in cloud.containers_of(server.id):
            cloud.engine.stop(found["Id"], timeout=5)
    assert support.fetch(url) is None
    cloud.restart_nova()
    _compute_up(admin_conn, cloud)

    page = support.eventually(lambda: support.fetch(url), f"{url} answers again")
    assert page == f"Hello from {running.name}"
    time.sleep(PERIODIC_ROUNDS)
    assert user_conn.compute.get_server(running).status == "ACTIVE"
    assert _container(cloud, running)["State"]["Status"] == "running"
    assert user_conn.compute.get_server(stopped).status == "SHUTOFF"
    assert _fingerprint(cloud, stopped) == stopped_before
    assert "Rebooting instance after nova-compute restart" in cloud.nova_log()


def _delete_while_compute_down(user_conn, admin_conn, cloud, server) -> list[str]:
    """Delete ``server`` with its compute service forced down; return the
    IDs of the ports the API deleted with it."""
    ports = [p.id for p in user_conn.network.ports(device_id=server.id)]
    (service,) = admin_conn.compute.services(
        host=cloud.compute_host, binary="nova-compute"
    )
    admin_conn.compute.update_service_forced_down(service, forced=True)
    try:
        user_conn.compute.delete_server(server)
        user_conn.compute.wait_for_delete(server, wait=support.TIMEOUT)
    finally:
        admin_conn.compute.update_service_forced_down(service, forced=False)
    assert all(user_conn.network.find_port(p) is None for p in ports)
    return ports


def test_deleted_while_compute_was_down_is_logged_then_reaped(
    cloud: Cloud, user_conn, admin_conn, servers
) -> None:
    """``running_deleted_instance_action``: ``log`` reports the container
    and leaves it; ``reap`` (Nova's default) removes it and its devices."""
    server = servers.boot()
    container = _container(cloud, server)["Id"]
    cloud.set_deleted_instance_action("log")
    cloud.restart_nova()
    try:
        ports = _delete_while_compute_down(user_conn, admin_conn, cloud, server)
        assert ports and all(support.tap(p).exists() for p in ports)
        support.eventually(
            lambda: (
                f"[instance: {server.id}] Detected instance with name label"
                in cloud.nova_log()
            ),
            "Nova reports the deleted server's running container",
        )
        assert cloud.engine.inspect_container(container)["State"]["Running"]
    finally:
        cloud.set_deleted_instance_action("reap")
        cloud.restart_nova()
    _compute_up(admin_conn, cloud)

    support.eventually(
        lambda: not cloud.containers_of(server.id), "the container is reaped"
    )
    support.eventually(
        lambda: not any(support.tap(p).exists() for p in ports), "the taps are gone"
    )
    # The taps die with the container's namespace; the reap's unplug removes
    # their switch ports a moment later.
    gone = support.eventually(
        lambda: not [p for p in ports if support.tap(p).name in cloud.switch_ports()],
        "the switch ports are gone",
    )
    assert gone
