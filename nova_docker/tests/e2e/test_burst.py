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

"""A burst of parallel boots and deletes of one image leaves nothing behind.

``BURST`` servers (``NOVA_DOCKER_BURST``, default 50) are created at once by
several clients, all reach ACTIVE, then are deleted at once.  Afterwards no
container, engine tag or temp file of theirs remains, and the engine loaded
the image exactly once (its ``load`` events say so).  They boot without a
network (``--nic none``): the burst is about the driver, and Neutron's
ports are covered in test_networking.

Soak: ``NOVA_DOCKER_SOAK=1`` repeats the burst ``NOVA_DOCKER_SOAK_ROUNDS``
times (default 5); without it one round runs.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from nova_docker.engine import naming
from nova_docker.tests.e2e import support
from nova_docker.tests.e2e.conftest import Cloud
from nova_docker_aio import images

BURST = int(os.environ.get("NOVA_DOCKER_BURST", "50"))
ROUNDS = (
    int(os.environ.get("NOVA_DOCKER_SOAK_ROUNDS", "5"))
    if os.environ.get("NOVA_DOCKER_SOAK")
    else 1
)
CLIENTS = 8
COMMAND = ["/bin/sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"]


@pytest.fixture
def no_quota(admin_conn, user_conn) -> Iterator[None]:
    """The demo project may run the whole burst; defaults come back after."""
    project = user_conn.current_project_id
    admin_conn.set_compute_quotas(project, instances=-1, cores=-1, ram=-1)
    yield
    admin_conn.delete_compute_quotas(project)


@pytest.fixture
def burst_image(cloud: Cloud, user_conn) -> Iterator[object]:
    """A Glance image the engine does not hold yet."""
    ref = images.build("nova-docker-e2e-burst", COMMAND)
    image = cloud.upload(user_conn, ref, "e2e-burst", move=True)
    yield image
    user_conn.image.delete_image(image, ignore_missing=True)


def _create_all(user_conn, image, count: int) -> list:
    flavor = user_conn.compute.find_flavor(support.FLAVOR, ignore_missing=False)

    def create(index: int):
        return user_conn.compute.create_server(
            name=f"e2e-burst-{index}",
            image_id=image.id,
            flavor_id=flavor.id,
            networks="none",
        )

    with ThreadPoolExecutor(CLIENTS) as pool:
        return list(pool.map(create, range(count)))


def _statuses(user_conn, ids: set[str]) -> dict[str, str]:
    return {s.id: s.status for s in user_conn.compute.servers() if s.id in ids}


def _all_active(user_conn, ids: set[str]) -> bool:
    statuses = _statuses(user_conn, ids)
    failed = [i for i, status in statuses.items() if status == "ERROR"]
    assert not failed, f"servers in ERROR: {failed}"
    return len(statuses) == len(ids) and set(statuses.values()) == {"ACTIVE"}


def _delete_all(user_conn, servers: list) -> None:
    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(user_conn.compute.delete_server, servers))


class LoadWatch:
    """Collects the engine's image ``load`` events while it is open.

    Listened to live: the engine keeps only its last 256 events, fewer
    than a burst makes.
    """

    def __init__(self, cloud: Cloud) -> None:
        self._stream = cloud.engine.events(
            filters={"type": "image", "event": "load"}, decode=True
        )
        self.loaded: list[str] = []
        self._thread = threading.Thread(target=self._collect, daemon=True)
        self._thread.start()

    def _collect(self) -> None:
        try:
            for event in self._stream:
                self.loaded.append(event.get("id", ""))
        except Exception:  # noqa: S110 - close() ends the stream this way
            pass

    def close(self) -> list[str]:
        self._stream.close()
        self._thread.join(10)
        return self.loaded


def _our_tags(cloud: Cloud, glance_id: str) -> list[str]:
    """The image's tags, and snapshot tags this cloud's host left.

    A snapshot's image carries its container's labels, the host's among
    them: another cloud's, or a killed run's, are not this test's.
    """
    ours = []
    for image in cloud.engine.images():
        host = (image.get("Labels") or {}).get(naming.HOST_LABEL)
        for tag in image.get("RepoTags") or ():
            snapshot = tag.startswith(f"{naming.SNAPSHOT_REPOSITORY}:")
            if glance_id in tag or (snapshot and host == cloud.compute_host):
                ours.append(tag)
    return ours


def test_a_burst_of_boots_and_deletes_leaves_nothing_and_loads_once(
    cloud: Cloud, user_conn, no_quota, burst_image
) -> None:
    image = burst_image
    watch = LoadWatch(cloud)
    for _round in range(ROUNDS):
        servers = _create_all(user_conn, image, BURST)
        ids = {s.id for s in servers}
        support.eventually(
            lambda ids=ids: _all_active(user_conn, ids),
            f"all {BURST} servers are ACTIVE",
            timeout=900,
        )
        running = [c for i in ids for c in cloud.containers_of(i)]
        assert len(running) == 2 * BURST  # each server's container and sandbox
        assert all(c["State"] == "running" for c in running)

        _delete_all(user_conn, servers)
        support.eventually(
            lambda ids=ids: not _statuses(user_conn, ids),
            f"all {BURST} servers are gone",
            timeout=900,
        )
        assert [c for i in ids for c in cloud.containers_of(i)] == []

    # The image sits in Glance once; the engine loaded it once, for all.  The
    # driver rebuilds what it loads (its config gains the expanded-size
    # label), so the loaded image's ID is that of its own tag.
    loaded = cloud.engine.inspect_image(naming.glance_image_ref(image.id))["Id"]
    assert watch.close().count(loaded) == 1
    assert _our_tags(cloud, image.id) == [naming.glance_image_ref(image.id)]
    assert [p for p in cloud.nova_tmp.rglob("*") if p.is_file()] == []
