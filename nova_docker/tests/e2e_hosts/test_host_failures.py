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

"""A compute host that fails, and a move that a failure interrupts.

The failure is real: the host's nova-compute is killed with SIGKILL, as a
crash or the OOM killer would, while its engine and containers stay.  The
operator then does what Nova's documentation says: force the service down
and evacuate, or bring the service back.
"""

from __future__ import annotations

from collections.abc import Iterator

import openstack
import pytest

from nova_docker.tests.e2e_hosts.test_moves import TIMEOUT
from nova_docker.tests.e2e_hosts.test_moves import Moves
from nova_docker_aio import poll


@pytest.fixture
def moves(hosts_cloud, hosts_admin, hosts_net_image) -> Iterator[Moves]:
    made = Moves(hosts_cloud, hosts_admin, hosts_net_image)
    yield made
    made.delete_all()


@pytest.fixture
def computes_back(hosts_cloud, hosts_admin) -> Iterator[None]:
    """Whatever a test kills or forces down, the next finds every compute
    service running and not forced down."""
    yield
    for host in hosts_cloud.hosts:
        if hosts_cloud.pid(hosts_cloud.compute(host)) is None:
            hosts_cloud.restart(hosts_cloud.compute(host))
        _force_up_once_evacuations_are_completed(hosts_admin, host)


def _compute_service(admin, host: str):
    (found,) = admin.compute.services(binary="nova-compute", host=host)
    return found


def _force_down(admin, host: str, forced: bool) -> None:
    service = _compute_service(admin, host)
    admin.compute.update_service_forced_down(service, forced=forced)


def _force_up_once_evacuations_are_completed(admin, host: str) -> None:
    """Nova refuses to let a host up while its evacuations are ``done`` and
    not yet ``completed`` by its restarted nova-compute."""

    def forced_up() -> bool:
        try:
            _force_down(admin, host, False)
        except openstack.exceptions.BadRequestException:
            return False
        return True

    poll.until(forced_up, f"{host} let up after its evacuations", TIMEOUT)


def test_evacuate_rebuilds_elsewhere_and_the_returning_host_removes_only_its_stale_container(  # noqa: E501
    hosts_cloud, hosts_admin, moves, computes_back
) -> None:
    failed = hosts_cloud.hosts[1]
    evacuated, bystander = moves.boot(failed), moves.boot(failed)
    moves.mark(evacuated, failed)
    (kept,) = moves.container_ids(bystander, failed)

    hosts_cloud.kill(hosts_cloud.compute(failed))
    _force_down(hosts_admin, failed, True)
    hosts_admin.compute.evacuate_server(evacuated)
    survivor = moves.other(failed)
    moves.wait_settled_on(evacuated, survivor)
    # Evacuate rebuilds from the image: the failed host's disk is not
    # reachable, so the change made there does not come along.
    assert moves.read_mark(evacuated, survivor) == ""
    # Until the failed host comes back, its stale container is still there.
    assert len(moves.container_ids(evacuated, failed)) == 1

    # As Nova says: the failed host's nova-compute comes back while it is
    # still forced down, finishes the evacuations, and only then is it
    # let up.
    hosts_cloud.restart(hosts_cloud.compute(failed))
    gone = poll.until(
        lambda: moves.anything_of(evacuated, failed) == [],
        f"{failed} removes the evacuated server's stale container",
        TIMEOUT,
    )
    assert gone
    _force_up_once_evacuations_are_completed(hosts_admin, failed)
    assert moves.container_ids(bystander, failed) == [kept]
    assert hosts_cloud.engines[failed].inspect_container(kept)["State"]["Running"]
    assert moves.wait(bystander, "ACTIVE").compute_host == failed
    assert len(moves.container_ids(evacuated, survivor)) == 1


def test_a_migration_whose_destination_compute_dies_completes_once_it_returns(
    hosts_cloud, hosts_admin, moves, computes_back
) -> None:
    source = hosts_cloud.hosts[0]
    destination = moves.other(source)
    server = moves.boot(source)
    token = moves.mark(server, source)
    # Enough changes that the source is still streaming them when the
    # destination dies.
    moves.exec(server, source, "head -c 64m /dev/urandom > /root/ballast")

    hosts_admin.compute.migrate_server(server, host=destination)
    started = ("migrating", "post-migrating", "finished")
    status = poll.until(
        lambda: (found := _migration_status(hosts_admin, server)) in started and found,
        "the source starts migrating",
        TIMEOUT,
        interval=0.05,
    )
    hosts_cloud.kill(hosts_cloud.compute(destination))
    assert status in ("migrating", "post-migrating"), status
    # With the destination gone, the move cannot finish...
    poll.until(
        lambda: _migration_status(hosts_admin, server) == "post-migrating",
        "the source hands the move over to the dead destination",
        TIMEOUT,
    )
    assert moves.transient_images(server) != []

    # ...and when it returns it takes the move up where it stopped.
    hosts_cloud.restart(hosts_cloud.compute(destination))
    moves.wait(server, "VERIFY_RESIZE")
    assert moves.host_of(server) == destination
    assert moves.read_mark(server, destination) == token
    hosts_admin.compute.confirm_server_resize(server)
    moves.wait(server, "ACTIVE")
    assert moves.anything_of(server, source) == []
    assert len(moves.container_ids(server, destination)) == 1
    assert moves.transient_images(server) == []


def _migration_status(admin, server) -> str | None:
    found = [
        m
        for m in admin.compute.migrations(instance_uuid=server.id)
        if m.migration_type == "migration"
    ]
    return found[-1].status if found else None
