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

"""nova-serialproxy: its place in the table, Nova's ``[serial_console]``,
the clouds' console port ranges, and the one-host runner's port check."""

import itertools
import sys
from pathlib import Path
from unittest import mock

import pytest

from nova_docker_aio import serialproxy_runner
from nova_docker_aio import services
from nova_docker_aio.layout import PORT_OFFSETS
from nova_docker_aio.layout import PORT_SPAN
from nova_docker_aio.layout import Layout
from nova_docker_aio.services import nova
from nova_docker_aio.services import nova_hosts
from nova_docker_aio.services import serialproxy
from nova_docker_aio.tests.conf_support import SECRETS
from nova_docker_aio.tests.conf_support import parse as _parse

LAYOUT = Layout(Path("/state"), 27200)


def _names(with_neutron: bool, hosts: int) -> list[str]:
    return [s.name for s in services.table(with_neutron, hosts)]


@pytest.mark.parametrize(("with_neutron", "hosts"), [(True, 1), (False, 1), (True, 3)])
def test_the_proxy_starts_after_nova(with_neutron: bool, hosts: int) -> None:
    names = _names(with_neutron, hosts)
    assert names[-1] == "nova-serialproxy"
    proxy = services.table(with_neutron, hosts)[-1]
    nova_services = {"nova", "nova-api", "nova-conductor"} & set(names)
    assert nova_services
    assert nova_services <= set(proxy.start_after)


def test_its_port_is_inside_the_clouds_span() -> None:
    assert PORT_OFFSETS["serialproxy"] == 11
    assert len(set(PORT_OFFSETS.values())) == len(PORT_OFFSETS)
    assert max(PORT_OFFSETS.values()) < PORT_SPAN


def test_nova_conf_points_consoles_at_the_clouds_proxy() -> None:
    conf = _parse(nova.config(LAYOUT, SECRETS, "docker.DockerDriver"))
    serial = {
        key: conf["serial_console"][key] for key in conf.options("serial_console")
    }
    expected = {
        "enabled": "true",
        "port_range": "51000:51100",
        "proxyclient_address": "127.0.0.1",
        "base_url": "ws://127.0.0.1:27211/",
        "serialproxy_host": "127.0.0.1",
        "serialproxy_port": "27211",
    }
    assert {key: serial[key] for key in expected} == expected
    # The proxy validates tokens in the cell database.
    assert "nova_cell1" in conf["database"]["connection"]


def test_each_compute_host_has_its_own_share_of_the_ports() -> None:
    ranges = []
    for index in (1, 2, 3):
        text = nova_hosts.compute_config(LAYOUT, index, True, hosts=3)
        start, stop = map(int, _parse(text)["serial_console"]["port_range"].split(":"))
        ranges.append(range(start, stop))
    first, stop = LAYOUT.serial_port_range()
    for one, other in itertools.combinations(ranges, 2):
        assert not set(one) & set(other)
    assert all(r and first <= r.start and r.stop <= stop for r in ranges)


@pytest.mark.parametrize("apart", [PORT_SPAN, 100, 2000, 4980])
def test_two_clouds_never_share_a_console_port(apart: int) -> None:
    for base in (25000, 25100, 26980, 27200):
        one = range(*Layout(Path("/a"), base).serial_port_range())
        other = range(*Layout(Path("/b"), base + apart).serial_port_range())
        assert not set(one) & set(other)


@pytest.mark.parametrize("base", [25000, 25120, 26000, 27000, 27200, 29980])
def test_console_ports_miss_every_clouds_service_ports(base: int) -> None:
    start, stop = Layout(Path("/a"), base).serial_port_range()
    assert stop - start == 100
    assert 40000 <= start and stop <= 65535
    # Above every service port of a cloud based below 40000 - PORT_SPAN.
    assert start >= 40000


def test_one_host_runs_the_runner_several_run_novas_script() -> None:
    one = serialproxy.argv(LAYOUT, 1)
    assert one[:3] == [sys.executable, "-m", serialproxy.RUNNER]
    assert one[one.index("--") + 1 :] == ["--config-file", str(LAYOUT.nova_conf)]
    several = serialproxy.argv(LAYOUT, 2)
    assert several[0].endswith("/nova-serialproxy")
    assert several[1:] == ["--config-file", str(LAYOUT.nova_conf)]


def test_the_runner_reads_the_token_of_a_console_url() -> None:
    url = "ws://127.0.0.1:27211/?token=abc-123"
    assert serialproxy_runner.token_of(url) == "abc-123"


@pytest.mark.parametrize(("current", "valid"), [(51003, True), (51004, False)])
def test_the_runner_accepts_only_the_servers_current_port(current, valid) -> None:
    upstream = mock.Mock()
    check = serialproxy_runner.check_through_api(LAYOUT, upstream)
    with mock.patch.object(serialproxy_runner, "current_port", return_value=current):
        assert check(None, "ctxt", "uuid", "51003", "serial") is valid
    upstream.assert_not_called()


def test_the_runner_refuses_a_server_with_no_console() -> None:
    check = serialproxy_runner.check_through_api(LAYOUT, mock.Mock())
    with mock.patch.object(serialproxy_runner, "current_port", return_value=None):
        assert check(None, "ctxt", "uuid", "51003", "serial") is False


def test_the_runner_leaves_other_console_kinds_to_nova() -> None:
    upstream = mock.Mock(return_value=True)
    check = serialproxy_runner.check_through_api(LAYOUT, upstream)
    assert check("h", "ctxt", "uuid", "5900", "novnc") is True
    upstream.assert_called_once_with("h", "ctxt", "uuid", "5900", "novnc")
