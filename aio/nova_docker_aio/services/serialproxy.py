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

"""Nova's ``nova-serialproxy``: the websocket end of every server's serial
console, on ``127.0.0.1:<base + 11>``.

``openstack console url show --serial`` answers ``ws://127.0.0.1:<port>/
?token=...``; the proxy checks the token in Nova's database and relays the
websocket to the server's console port on its compute host (the driver's,
from the cloud's ``[serial_console] port_range``: see
:meth:`~nova_docker_aio.layout.Layout.serial_port_range`).  It reads
``nova.conf`` (``[serial_console]``, the cell database) and ``local.conf``.

A cloud of several hosts runs Nova's console script as it is, over
RabbitMQ; a cloud of one host runs it through
:mod:`nova_docker_aio.serialproxy_runner`, which asks its one question of
nova-compute through the compute API, since that nova-compute answers RPC
only inside the Nova process.
"""

from __future__ import annotations

import sys

from nova_docker_aio import procs
from nova_docker_aio import tools
from nova_docker_aio.layout import Layout
from nova_docker_aio.services import nova
from nova_docker_aio.services.base import Context
from nova_docker_aio.services.base import Service

RUNNER = "nova_docker_aio.serialproxy_runner"
#: Its port's name in :data:`~nova_docker_aio.layout.PORT_OFFSETS`.
PORT = "serialproxy"
#: Seconds it has to listen after it starts.
START_TIMEOUT = 60


class SerialProxy(Service):
    name = "nova-serialproxy"

    def __init__(self, hosts: int = 1) -> None:
        # After Nova's databases and the API it asks (one host), or the
        # conductor the computes it asks over RabbitMQ report through.
        one = hosts == 1
        self.start_after = ("nova",) if one else ("nova-api", "nova-conductor")

    def ports(self, ctx: Context) -> tuple[str, ...]:
        return (PORT,)

    def start(self, ctx: Context) -> None:
        start(ctx.layout, ctx.hosts)

    def healthy(self, ctx: Context) -> bool:
        return self.running(ctx) and procs.port_in_use(ctx.layout.port(PORT))


def argv(layout: Layout, hosts: int) -> list[str]:
    """Its command line (pure but for finding the programs)."""
    files = [a for p in nova.config_paths(layout) for a in ("--config-file", str(p))]
    if hosts > 1:
        return [tools.bin_path("nova-serialproxy"), *files]
    own = ["--state-dir", str(layout.root), "--port-base", str(layout.port_base)]
    return [sys.executable, "-m", RUNNER, *own, "--", *files]


def start(layout: Layout, hosts: int) -> None:
    pidfile = layout.pidfile(SerialProxy.name)
    # Nova's native threading: its eventlet mode is deprecated.
    env = {"OS_NOVA_DISABLE_EVENTLET_PATCHING": "true"}
    procs.spawn(argv(layout, hosts), pidfile, layout.log(SerialProxy.name), env)
    port = layout.port(PORT)
    procs.wait_for(
        lambda: procs.port_in_use(port), pidfile, START_TIMEOUT, SerialProxy.name
    )
