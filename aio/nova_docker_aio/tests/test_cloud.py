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

"""The table of services and the order ``up`` and ``down`` run it in."""

import threading
from pathlib import Path

import pytest

from nova_docker_aio import cloud
from nova_docker_aio import services
from nova_docker_aio.layout import PORT_OFFSETS
from nova_docker_aio.layout import Layout
from nova_docker_aio.services.base import Context
from nova_docker_aio.services.base import Service

EVERY = services.table(with_neutron=True)


def test_every_dependency_names_a_service_of_the_table() -> None:
    names = {s.name for s in EVERY}
    assert len(names) == len(EVERY)
    for service in EVERY:
        needs = (*service.setup_after, *service.start_after, *service.bootstrap_after)
        assert set(needs) <= names, service.name


def test_a_cloud_without_neutron_runs_no_network_service() -> None:
    names = [s.name for s in services.table(with_neutron=False)]
    assert names == [
        "mariadb",
        "keystone",
        "glance",
        "placement",
        "nova",
        "nova-serialproxy",
    ]


def test_every_port_a_service_takes_has_an_offset() -> None:
    for with_neutron in (True, False):
        ctx = Context(Layout(Path("/x"), 1), "docker", with_neutron)
        for service in services.table(with_neutron):
            assert set(service.ports(ctx)) <= set(PORT_OFFSETS)


def test_each_database_belongs_to_one_service() -> None:
    databases = [db for s in EVERY for db in s.databases]
    assert len(databases) == len(set(databases))


class _Recorder(Service):
    def __init__(self, name: str, after: tuple[str, ...] = (), fail: bool = False):
        self.name = name
        self.start_after = after
        self.fail = fail


def _run(table, seen, reverse=False):
    lock = threading.Lock()

    def work(service, order=None):
        if order is not None:
            order.wait(service.start_after)
        with lock:
            seen.append(service.name)
        if service.fail:
            raise RuntimeError(f"{service.name} failed")

    order = cloud._Order(table, reverse=reverse)
    if reverse:
        order.run(work, keep_going=True)
    else:
        order.run(lambda s: work(s, order))


def test_a_service_starts_after_what_it_needs() -> None:
    table = (_Recorder("c", ("a", "b")), _Recorder("b", ("a",)), _Recorder("a"))
    seen: list[str] = []
    _run(table, seen)
    assert seen == ["a", "b", "c"]


def test_what_needs_a_failed_service_never_starts() -> None:
    table = (_Recorder("a", fail=True), _Recorder("b", ("a",)), _Recorder("c"))
    seen: list[str] = []
    with pytest.raises(RuntimeError, match="a failed"):
        _run(table, seen)
    assert sorted(seen) == ["a", "c"]


def test_down_stops_a_service_after_everything_that_needs_it() -> None:
    table = (_Recorder("a"), _Recorder("b", ("a",)), _Recorder("c", ("b",)))
    seen: list[str] = []
    _run(table, seen, reverse=True)
    assert seen == ["c", "b", "a"]


def test_down_goes_on_when_a_stop_fails() -> None:
    table = (_Recorder("a"), _Recorder("b", ("a",), fail=True))
    seen: list[str] = []
    with pytest.raises(RuntimeError, match="b failed"):
        _run(table, seen, reverse=True)
    assert seen == ["b", "a"]
