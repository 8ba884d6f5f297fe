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

"""Servers that move between the two hosts, driven as an operator would.

A server is booted on a chosen host (``host`` at compute 2.74); a change to
its filesystem is made in its container, on that host's own engine.  Each
move is then checked where it matters: the server's host in Nova, its
container on each engine, the change kept (or, for evacuate, rebuilt from
the image), and no transient Glance image left.
"""

from __future__ import annotations

import base64
import contextlib
import uuid
from collections.abc import Iterator

import openstack
import pytest

from nova_docker import migration
from nova_docker.engine import naming
from nova_docker.tests.e2e import support
from nova_docker.tests.e2e_hosts.conftest import LOCAL_CONF
from nova_docker.tests.e2e_hosts.conftest import HostsCloud
from nova_docker_aio import poll
from nova_docker_aio.clouds_yaml import ADMIN_CLOUD

TIMEOUT = 300
MIB = 1024 * 1024
#: Where a test leaves its mark in a server's filesystem.
MARK = "/root/moved-mark"


class Moves:
    """Boots servers on a chosen host and looks at them on both engines."""

    def __init__(self, cloud: HostsCloud, admin, image) -> None:
        self.cloud = cloud
        self.admin = admin
        self.image = image
        self.network = admin.network.find_network("private", ignore_missing=False)
        self.made: list = []

    def boot(
        self,
        host: str,
        flavor: str = support.FLAVOR,
        peer: str | None = None,
        group: str | None = None,
    ):
        """A server on ``host``; with ``peer``, one that prints the page it
        fetches from that address (see :mod:`..e2e.support`); with
        ``group``, in that security group."""
        conn, placement = self.admin, {"host": host}
        extra: dict = {}
        if group:
            extra["security_groups"] = [{"name": group}]
        if peer:
            # Injected files end at compute 2.56, before a host could be
            # named (2.74); an admin's zone ``nova:<host>`` still names one.
            conn = self.cloud.connect(ADMIN_CLOUD, compute_api_version="2.56")
            placement = {"availability_zone": f"nova:{host}"}
            contents = base64.b64encode(f"{peer} 80".encode()).decode()
            extra["personality"] = [{"path": "/etc/peer", "contents": contents}]
        server = conn.compute.create_server(
            name=support.name("hosts-move"),
            image_id=self.image.id,
            flavor_id=self.admin.compute.find_flavor(flavor, ignore_missing=False).id,
            networks=[{"uuid": self.network.id}],
            **placement,
            **extra,
        )
        self.made.append(server)
        return self.wait(server, "ACTIVE")

    def wait(self, server, status: str):
        return self.admin.compute.wait_for_server(server, status=status, wait=TIMEOUT)

    def wait_settled_on(self, server, host: str):
        """``server`` ACTIVE on ``host`` with no task running: a move whose
        API call returns before the server's status changes."""

        def settled():
            shown = self.admin.compute.get_server(server)
            if shown.status == "ERROR":
                raise AssertionError(f"{server.id} went to ERROR: {shown.fault}")
            done = shown.status == "ACTIVE" and shown.task_state is None
            return shown if done and shown.compute_host == host else None

        return poll.until(settled, f"{server.id} ACTIVE on {host}", TIMEOUT)

    def host_of(self, server) -> str:
        return self.admin.compute.get_server(server).compute_host

    def other(self, host: str) -> str:
        (other,) = [h for h in self.cloud.hosts if h != host]
        return other

    def mark(self, server, host: str) -> str:
        """Write a token into the server's filesystem on ``host``."""
        token = uuid.uuid4().hex
        self.exec(server, host, f"echo {token} > {MARK}")
        return token

    def read_mark(self, server, host: str) -> str:
        return self.exec(server, host, f"cat {MARK} 2>/dev/null || true").strip()

    def exec(self, server, host: str, command: str) -> str:
        engine = self.cloud.engines[host]
        name = naming.container_name(server.id)
        run = engine.exec_create(name, ["/bin/sh", "-c", command])
        return engine.exec_start(run["Id"]).decode(errors="replace")

    def container_ids(self, server, host: str) -> list[str]:
        """The server's own container on ``host`` (not its sandbox)."""
        return [
            c["Id"]
            for c in self.cloud.containers_of(host, server.id)
            if naming.UUID_LABEL in (c.get("Labels") or {})
        ]

    def anything_of(self, server, host: str) -> list[str]:
        """Whatever the server has on ``host``: its container, its sandbox."""
        return [c["Id"] for c in self.cloud.containers_of(host, server.id)]

    def transient_images(self, server) -> list[str]:
        """Hidden migration images Glance still holds for ``server``."""
        found = self.admin.image.images(
            os_hidden=True, **{migration.INSTANCE_PROPERTY: server.id}
        )
        return [image.id for image in found]

    def delete_all(self) -> None:
        for server in self.made:
            self.admin.compute.delete_server(server, ignore_missing=True)
        for server in self.made:
            self.admin.compute.wait_for_delete(server, wait=TIMEOUT)


@pytest.fixture
def moves(hosts_cloud, hosts_admin, hosts_net_image) -> Iterator[Moves]:
    made = Moves(hosts_cloud, hosts_admin, hosts_net_image)
    yield made
    made.delete_all()


def test_both_hosts_are_hypervisors_and_the_scheduler_uses_both(
    hosts_cloud, hosts_admin, moves
) -> None:
    listed = {
        h.name: h.hypervisor_type for h in hosts_admin.compute.hypervisors(details=True)
    }
    assert listed == {host: "docker" for host in hosts_cloud.hosts}
    flavor = hosts_admin.compute.find_flavor(support.FLAVOR, ignore_missing=False)
    # No host named: Nova's scheduler spreads the servers over free RAM.
    servers = []
    for _ in range(2):
        server = hosts_admin.compute.create_server(
            name=support.name("hosts-spread"),
            image_id=moves.image.id,
            flavor_id=flavor.id,
            networks=[{"uuid": moves.network.id}],
        )
        moves.made.append(server)
        servers.append(moves.wait(server, "ACTIVE"))
    assert {moves.host_of(s) for s in servers} == set(hosts_cloud.hosts)
    for server in servers:
        assert len(moves.container_ids(server, moves.host_of(server))) == 1


def test_cold_migration_keeps_the_filesystem_and_confirm_removes_the_source(
    hosts_cloud, hosts_admin, moves
) -> None:
    source = hosts_cloud.hosts[0]
    server = moves.boot(source)
    token = moves.mark(server, source)

    hosts_admin.compute.migrate_server(server)
    moves.wait(server, "VERIFY_RESIZE")
    destination = moves.host_of(server)
    assert destination == moves.other(source)
    assert moves.read_mark(server, destination) == token
    assert moves.transient_images(server) == []

    hosts_admin.compute.confirm_server_resize(server)
    moves.wait(server, "ACTIVE")
    assert moves.anything_of(server, source) == []
    assert len(moves.container_ids(server, destination)) == 1


def test_resize_to_the_other_host_then_revert_gives_back_the_same_container(
    hosts_cloud, hosts_admin, moves
) -> None:
    source = hosts_cloud.hosts[1]
    server = moves.boot(source)
    token = moves.mark(server, source)
    (original,) = moves.container_ids(server, source)
    bigger = hosts_admin.compute.find_flavor("c1.small", ignore_missing=False)

    # Nova never resizes onto the same host unless allowed: the other one.
    hosts_admin.compute.resize_server(server, bigger.id)
    moves.wait(server, "VERIFY_RESIZE")
    destination = moves.host_of(server)
    assert destination == moves.other(source)
    assert moves.read_mark(server, destination) == token
    assert hosts_admin.compute.get_server(server).flavor["original_name"] == "c1.small"

    hosts_admin.compute.revert_server_resize(server)
    moves.wait(server, "ACTIVE")
    assert moves.host_of(server) == source
    assert moves.container_ids(server, source) == [original]
    assert moves.read_mark(server, source) == token
    assert moves.anything_of(server, destination) == []
    assert moves.transient_images(server) == []


@pytest.fixture
def resize_to_same_host(hosts_cloud: HostsCloud) -> Iterator[None]:
    """Nova's API with ``allow_resize_to_same_host`` for one test.

    Only the API reads the option (it keeps the server's host among the
    scheduler's candidates). Set for the whole cloud, it would let the
    scheduler keep any resized server where it is, and the other resize
    tests here and tempest's would no longer be sure to move one.
    """
    same_host = "[DEFAULT]\nallow_resize_to_same_host = true\n"
    hosts_cloud.write_local_conf(LOCAL_CONF.replace("[DEFAULT]\n", same_host, 1))
    try:
        hosts_cloud.restart("nova-api")
        yield
    finally:
        hosts_cloud.write_local_conf(LOCAL_CONF)
        hosts_cloud.restart("nova-api")


@contextlib.contextmanager
def only_host(admin, host: str) -> Iterator[None]:
    """The scheduler may place on ``host`` alone: every other compute
    service disabled meanwhile (their servers run on)."""
    others = [
        s for s in admin.compute.services(binary="nova-compute") if s.host != host
    ]
    for service in others:
        admin.compute.disable_service(service, disabled_reason="same-host resize")
    try:
        yield
    finally:
        for service in others:
            admin.compute.enable_service(service)


def test_resize_on_the_same_host_updates_the_limits_of_the_same_container(
    hosts_cloud, hosts_admin, moves, resize_to_same_host
) -> None:
    host = hosts_cloud.hosts[0]
    server = moves.boot(host)
    token = moves.mark(server, host)
    (original,) = moves.container_ids(server, host)
    bigger = hosts_admin.compute.find_flavor("c1.small", ignore_missing=False)
    engine = hosts_cloud.engines[host]

    with only_host(hosts_admin, host):
        hosts_admin.compute.resize_server(server, bigger.id)
        moves.wait(server, "VERIFY_RESIZE")
    assert moves.host_of(server) == host
    assert moves.container_ids(server, host) == [original]
    assert engine.inspect_container(original)["HostConfig"]["Memory"] == (
        bigger.ram * MIB
    )
    assert moves.transient_images(server) == []

    hosts_admin.compute.confirm_server_resize(server)
    moves.wait(server, "ACTIVE")
    assert moves.container_ids(server, host) == [original]
    assert engine.inspect_container(original)["State"]["Running"]
    assert moves.read_mark(server, host) == token
    assert moves.anything_of(server, moves.other(host)) == []


def test_shelve_offload_then_unshelve_on_the_other_host_keeps_the_filesystem(
    hosts_cloud, hosts_admin, moves
) -> None:
    admin = hosts_admin
    source = hosts_cloud.hosts[0]
    server = moves.boot(source)
    token = moves.mark(server, source)

    admin.compute.shelve_server(server)
    moves.wait(server, "SHELVED_OFFLOADED")
    assert moves.anything_of(server, source) == []

    destination = moves.other(source)
    admin.compute.unshelve_server(server, host=destination)
    moves.wait(server, "ACTIVE")
    assert moves.host_of(server) == destination
    assert moves.read_mark(server, destination) == token


def test_live_migration_is_refused_naming_why_and_the_server_stays_where_it_was(
    hosts_cloud, hosts_admin, moves
) -> None:
    source = hosts_cloud.hosts[0]
    server = moves.boot(source)
    (before,) = moves.container_ids(server, source)

    for destination in (None, moves.other(source)):
        with pytest.raises(openstack.exceptions.BadRequestException) as refused:
            hosts_admin.compute.live_migrate_server(
                server, host=destination, block_migration="auto"
            )
        assert "cold-migrate the server instead" in str(refused.value)
        shown = moves.wait(server, "ACTIVE")
        assert shown.compute_host == source
        assert moves.container_ids(server, source) == [before]
        assert hosts_cloud.engines[source].inspect_container(before)["State"]["Running"]
    records = list(hosts_admin.compute.migrations(instance_uuid=server.id))
    assert {r.migration_type for r in records} == {"live-migration"}
    assert {r.status for r in records} <= {"error", "failed"}
