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

"""nova-compute dies (SIGKILL) in the middle of spawn, snapshot and delete.

Afterwards the server must be in a state Nova can explain (ERROR with a
fault, ACTIVE again, or gone), and a retry or a delete must leave nothing:
no container, no engine tag, no file in Nova's temp dir, no Neutron port or
host device, no Glance image holding part of an upload.  In the all-in-one
cloud the whole Nova process dies, API included, as in a host crash.

The image is large (``BIG_MIB`` of random data) so that its load and a
snapshot's upload take long enough to be caught in the act through the API.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from nova_docker.engine import naming
from nova_docker.tests.e2e import support
from nova_docker.tests.e2e.conftest import Cloud
from nova_docker_aio import images
from nova_docker_aio import poll

pytestmark = pytest.mark.usefixtures("nova_back_up")

BIG_MIB = 256
COMMAND = ["/bin/sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"]


@pytest.fixture(scope="module")
def big_image(cloud: Cloud, user_conn) -> Iterator:
    ref = images.build(
        "nova-docker-e2e-big", COMMAND, extra_files={"/big": os.urandom(BIG_MIB << 20)}
    )
    created = cloud.upload(user_conn, ref, "e2e-big", move=True)
    yield created
    user_conn.image.delete_image(created, ignore_missing=True)


def _boot(user_conn, image, wait: bool = False) -> object:
    flavor = user_conn.compute.find_flavor(support.FLAVOR, ignore_missing=False)
    network = user_conn.network.find_network(support.NETWORK, ignore_missing=False)
    server = user_conn.compute.create_server(
        name=support.name("e2e-killed"),
        image_id=image.id,
        flavor_id=flavor.id,
        networks=[{"uuid": network.id}],
    )
    if wait:
        return user_conn.compute.wait_for_server(server, wait=support.TIMEOUT)
    return server


def _catch(user_conn, server, task_state: str, timeout: float = 300) -> None:
    """Return as soon as the server's task state is ``task_state``."""

    def caught() -> bool:
        found = user_conn.compute.get_server(server)
        assert found.status != "ERROR", found.fault
        return found.task_state == task_state

    poll.until(caught, f"{server.name} in task state {task_state}", timeout, 0.05)


def _restart(cloud: Cloud, admin_conn) -> None:
    cloud.restart_nova()
    support.eventually(
        lambda: any(
            s.state == "up"
            for s in admin_conn.compute.services(
                host=cloud.compute_host, binary="nova-compute"
            )
        ),
        "nova-compute reports up",
        timeout=120,
    )


def _temp_files(cloud: Cloud) -> list[Path]:
    """Files in Nova's temp dir but oslo.privsep's sockets, whose per-process
    directories a killed Nova cannot remove (they hold no data)."""
    return [
        path
        for path in cloud.nova_tmp.rglob("*")
        if not path.is_dir() and path.name != "privsep.sock"
    ]


def _delete_and_check_nothing_left(cloud: Cloud, user_conn, server) -> None:
    ports = [p.id for p in user_conn.network.ports(device_id=server.id)]
    user_conn.compute.delete_server(server, ignore_missing=True)
    user_conn.compute.wait_for_delete(server, wait=support.TIMEOUT)
    assert cloud.containers_of(server.id) == []
    assert [p for p in ports if user_conn.network.find_port(p)] == []
    assert [p for p in ports if support.tap(p).exists()] == []
    assert _temp_files(cloud) == []


def _snapshot_tags(cloud: Cloud) -> list[str]:
    found = cloud.engine.images(
        name=naming.SNAPSHOT_REPOSITORY,
        filters={"label": f"{naming.HOST_LABEL}={cloud.compute_host}"},
    )
    return [tag for image in found for tag in image.get("RepoTags") or ()]


def test_killed_during_spawn_the_server_errors_and_delete_cleans_up(
    cloud: Cloud, user_conn, admin_conn, big_image
) -> None:
    server = _boot(user_conn, big_image)
    _catch(user_conn, server, "spawning")
    cloud.kill_nova()
    _restart(cloud, admin_conn)

    # Nova's init_host: a build the compute service did not finish fails.
    found = support.eventually(
        lambda: (
            user_conn.compute.get_server(server).status == "ERROR"
            and user_conn.compute.get_server(server)
        ),
        f"{server.name} is ERROR",
    )
    assert found.task_state is None
    _delete_and_check_nothing_left(cloud, user_conn, server)

    # The retry finds the image whole, or loads it again.
    retry = _boot(user_conn, big_image, wait=True)
    assert retry.status == "ACTIVE"
    _delete_and_check_nothing_left(cloud, user_conn, retry)


def test_killed_during_a_snapshot_upload_nothing_half_made_remains(
    cloud: Cloud, user_conn, admin_conn, big_image
) -> None:
    server = _boot(user_conn, big_image, wait=True)
    try:
        snapshot = user_conn.compute.create_server_image(
            server, support.name("e2e-cut"), wait=False
        )
        snapshot_id = getattr(snapshot, "id", snapshot)
        cloud.glance_ids.append(snapshot_id)
        _catch(user_conn, server, "image_uploading")
        cloud.kill_nova()
        _restart(cloud, admin_conn)

        found = support.eventually(
            lambda: (
                user_conn.compute.get_server(server).task_state is None
                and user_conn.compute.get_server(server)
            ),
            f"{server.name} has no task left",
        )
        assert found.status == "ACTIVE"
        assert _snapshot_tags(cloud) == []
        # Glance dropped the cut upload: the image holds no data.
        image = user_conn.image.get_image(snapshot_id)
        assert image.status == "queued"
        assert not image.size
        user_conn.image.delete_image(snapshot_id)

        retried = user_conn.compute.create_server_image(
            server, support.name("e2e-retry"), wait=True, timeout=support.TIMEOUT
        )
        cloud.glance_ids.append(retried.id)
        assert user_conn.image.get_image(retried.id).status == "active"
        user_conn.image.delete_image(retried.id)
    finally:
        _delete_and_check_nothing_left(cloud, user_conn, server)


def test_killed_during_delete_the_restart_finishes_it(
    cloud: Cloud, user_conn, admin_conn, net_image
) -> None:
    server = _boot(user_conn, net_image, wait=True)
    ports = [p.id for p in user_conn.network.ports(device_id=server.id)]
    user_conn.compute.delete_server(server)
    cloud.kill_nova()
    _restart(cloud, admin_conn)

    user_conn.compute.wait_for_delete(server, wait=support.TIMEOUT)
    assert cloud.containers_of(server.id) == []
    assert [p for p in ports if user_conn.network.find_port(p)] == []
    assert [p for p in ports if support.tap(p).exists()] == []
    assert _temp_files(cloud) == []
    assert f"[instance: {server.id}] Service started deleting" in cloud.nova_log()
