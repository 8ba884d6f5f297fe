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

"""The private RabbitMQ, for real: up in a temporary state dir, an RPC call
through it, guest refused, and nothing of it left after down."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator
from pathlib import Path

import kombu
import oslo_messaging
import pytest
from oslo_config import cfg
from oslo_messaging import conffixture

from nova_docker_aio import host
from nova_docker_aio import procs
from nova_docker_aio.layout import PORT_SPAN
from nova_docker_aio.layout import Layout
from nova_docker_aio.private import free_port_base
from nova_docker_aio.services import rabbitmq
from nova_docker_aio.services.base import Context

#: Pid files of the broker's processes.
PIDFILES = ("rabbitmq", "rabbitmq-beam", "rabbitmq-epmd")
#: Clear of the launcher's default (25000) and the e2e clouds' (25100 on),
#: and spread so that concurrent runs rarely probe the same range first.
FIRST_PORT_BASE = 26000 + PORT_SPAN * random.randrange(100)
ROOT_COOKIE = Path.home() / ".erlang.cookie"


def _unavailable(reason: str) -> None:
    """Skip, or fail when CI promises the environment is complete."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def ctx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Context]:
    root = tmp_path_factory.mktemp("rabbitmq-cloud")
    layout = Layout(root.resolve(), free_port_base(FIRST_PORT_BASE))
    made = Context(layout, "fake", with_neutron=False)
    try:
        rabbitmq.RabbitMQ().ensure_installed(made)
    except host.HostError as exc:
        _unavailable(f"RabbitMQ cannot be installed: {exc}")
    try:
        yield made
    finally:
        rabbitmq.RabbitMQ().stop(made)


@pytest.fixture
def broker(ctx: Context) -> Context:
    """The broker up, as ``up`` brings it up (again after a test's down)."""
    service = rabbitmq.RabbitMQ()
    if not service.running(ctx):
        for path, text in service.configs(ctx).items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        service.setup(ctx)
        started = time.monotonic()
        service.start(ctx)
        print(f"rabbitmq started in {time.monotonic() - started:.1f}s")
        service.bootstrap(ctx)
    return ctx


class Echo:
    def echo(self, context: dict, value: str) -> str:
        return value


def test_an_rpc_call_goes_through_the_clouds_user(broker: Context) -> None:
    conf = cfg.ConfigOpts()
    conf([])
    # Registers every option the library reads (it registers some on the
    # global CONF only, which Nova uses and this test does not).
    conffixture.ConfFixture(conf)
    url = rabbitmq.transport_url(broker.layout, broker.secrets)
    transport = oslo_messaging.get_rpc_transport(conf, url=url)
    server = oslo_messaging.get_rpc_server(
        transport,
        oslo_messaging.Target(topic="aio-test", server="here"),
        [Echo()],
    )
    server.start()
    try:
        client = oslo_messaging.get_rpc_client(
            transport, oslo_messaging.Target(topic="aio-test"), timeout=30
        )
        assert client.call({}, "echo", value="round trip") == "round trip"
    finally:
        server.stop()
        server.wait()
        transport.cleanup()


def test_guest_cannot_log_in_and_the_clouds_user_can(broker: Context) -> None:
    port = broker.layout.port("rabbitmq")
    # A fresh database starts without guest; one that has it (made by
    # another broker's defaults) loses it on the next bootstrap.
    assert rabbitmq.users(broker.layout) == {rabbitmq.USER}
    rabbitmq._run(broker.layout, "add_user", "guest", "guest")
    rabbitmq.RabbitMQ().bootstrap(broker)
    assert rabbitmq.users(broker.layout) == {rabbitmq.USER}
    with kombu.Connection(f"amqp://guest:guest@127.0.0.1:{port}//") as guest:
        with pytest.raises(Exception, match="ACCESS_REFUSED"):
            guest.connect()
    # kombu spells oslo.messaging's rabbit:// scheme amqp://.
    url = rabbitmq.transport_url(broker.layout, broker.secrets)
    with kombu.Connection(url.replace("rabbit://", "amqp://", 1)) as own:
        own.connect()
        assert own.connected


def test_it_listens_on_loopback_only_with_a_cookie_of_its_own(broker: Context) -> None:
    layout = broker.layout
    cookie = layout.rabbitmq_cookie
    assert cookie.stat().st_mode & 0o777 == 0o400
    assert rabbitmq.transport_url(layout, broker.secrets).startswith(
        f"rabbit://openstack:{broker.secrets['rabbitmq']}@127.0.0.1:"
    )
    pid = procs.read_pid(layout.pidfile("rabbitmq-beam"))
    assert pid is not None
    for port in (layout.port("rabbitmq"), layout.port("rabbitmq-dist")):
        assert procs.port_in_use(port)
        assert _listeners(port) == {"127.0.0.1"}


def test_down_leaves_nothing_running_and_twice_is_harmless(broker: Context) -> None:
    layout = broker.layout
    cookie_was_there = ROOT_COOKIE.exists()
    pids = {name: procs.read_pid(layout.pidfile(name)) for name in PIDFILES}
    assert None not in pids.values()
    service = rabbitmq.RabbitMQ()
    started = time.monotonic()
    service.stop(broker)
    print(f"rabbitmq stopped in {time.monotonic() - started:.1f}s")
    service.stop(broker)
    assert not service.running(broker)
    for pid in pids.values():
        assert not _alive(pid)
    for name in ("rabbitmq", "rabbitmq-dist", "rabbitmq-epmd"):
        assert not procs.port_in_use(layout.port(name)), name
    assert _processes_under(layout.root) == []
    assert ROOT_COOKIE.exists() == cookie_was_there


def _alive(pid: int | None) -> bool:
    """Running, that is: a zombie nobody reaped yet does not count."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _processes_under(root: Path) -> list[int]:
    """Live processes whose command line or environment names ``root``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            text = (entry / "cmdline").read_bytes() + (entry / "environ").read_bytes()
        except OSError:
            continue
        if str(root).encode() in text and _alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def _listeners(port: int) -> set[str]:
    """The IPv4 addresses a TCP socket listens on ``port`` at."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if state == "0A" and int(hex_port, 16) == port:
            octets = bytes.fromhex(address)[::-1]
            found.add(".".join(str(b) for b in octets))
    return found
