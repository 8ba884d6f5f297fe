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

"""TCP keepalive on the event stream's socket: real sockets, read back."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from nova_docker import driver
from nova_docker.conf import docker as docker_conf
from nova_docker.engine import client


@pytest.fixture
def tcp_socket() -> Iterator[socket.socket]:
    with socket.create_server(("127.0.0.1", 0)) as server:
        with socket.create_connection(server.getsockname()) as sock:
            yield sock


def options(sock: socket.socket) -> tuple[int, int, int, int]:
    return (
        sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
        sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
        sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
        sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
    )


def test_a_tcp_socket_is_probed_after_the_silence_a_fifth_of_it_apart(tcp_socket):
    client.keep_alive(tcp_socket, 30)

    assert options(tcp_socket) == (1, 30, 6, client.KEEPALIVE_PROBES)


def test_probes_are_at_least_a_second_apart(tcp_socket):
    client.keep_alive(tcp_socket, 3)

    assert options(tcp_socket) == (1, 3, 1, client.KEEPALIVE_PROBES)


def test_a_unix_socket_is_left_alone():
    ours, theirs = socket.socketpair(socket.AF_UNIX)
    with ours, theirs:
        client.keep_alive(ours, 30)

        assert ours.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 0


def test_no_socket_found_is_no_error():
    client.keep_alive(None, 30)


def test_the_option_reaches_the_engine_settings():
    defaults = {opt.dest: opt.default for opt in docker_conf.ALL_OPTS}
    defaults["events_keepalive"] = 45
    opts = type("DockerOpts", (), defaults)

    assert driver.engine_settings(opts).events_keepalive == 45
