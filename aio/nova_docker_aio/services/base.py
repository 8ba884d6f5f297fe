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

"""What a service of the cloud is, and what every service's module shares.

A service is one entry in the table :data:`nova_docker_aio.services.TABLE`.
``up`` runs, for each entry, in its own thread:

    ensure_installed (all first, one after the other)
    configs          (all rendered before anything starts)
    setup            once ``setup_after`` are ready: schema, keys, data dirs
    start            once ``start_after`` are ready: skipped when it runs
    bootstrap        once ``bootstrap_after`` are ready: catalog, flavors, ...

and the service is *ready* when its bootstrap returns.  ``down`` stops each
service after every service that needs it to run (``setup_after`` and
``start_after``) has stopped.  One-time steps leave a marker in the state
dir (:meth:`Context.once`), so ``up`` twice is harmless.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from pathlib import Path

from nova_docker_aio import procs
from nova_docker_aio import secret
from nova_docker_aio.layout import Layout
from nova_docker_aio.steps import say
from nova_docker_aio.steps import skip
from nova_docker_aio.steps import step


@dataclasses.dataclass
class Context:
    """One cloud as ``up`` and ``down`` see it."""

    layout: Layout
    #: ``docker`` or ``fake`` (see :data:`.nova.DRIVERS`).
    driver: str
    with_neutron: bool
    #: The services of this cloud, in table order.
    services: tuple[Service, ...] = ()
    #: Compute hosts: one is today's single Nova process; more run Nova as
    #: separate services over RabbitMQ (see :mod:`.nova_hosts`).
    hosts: int = 1

    @functools.cached_property
    def secrets(self) -> dict[str, str]:
        return secret.load_or_create(self.layout)

    def once(
        self, service: str, what: str, work: Callable[[], None], log: Path
    ) -> None:
        """Run ``work`` unless a previous ``up`` completed it."""
        marker = self.layout.marker(f"{service}-{what.replace(' ', '-')}")
        if marker.exists():
            skip(service, what)
            return
        with step(service, what, log):
            work()
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()


class Service:
    """A service of the cloud; subclasses override what applies to them."""

    #: Its pid file, log, step label and (when it listens) port name.
    name: str = ""
    #: Services that must be ready before each phase (names absent from
    #: this cloud's table are ignored).
    setup_after: tuple[str, ...] = ()
    start_after: tuple[str, ...] = ()
    bootstrap_after: tuple[str, ...] = ()
    #: Databases it owns on the private MariaDB (the user has the same name).
    databases: tuple[str, ...] = ()
    #: Its Keystone catalog entry ``(type, path after its URL)``, with a
    #: same-named service user.
    catalog: tuple[str, str] | None = None
    #: Its service user, secret and port name, when not its :attr:`name`
    #: (nova-api is the ``nova`` service, as in a cloud of one host).
    account_name: str | None = None
    #: A process of this cloud, under a pid file in ``run/``.
    daemon: bool = True

    @property
    def account(self) -> str:
        return self.account_name or self.name

    def ports(self, ctx: Context) -> tuple[str, ...]:
        """The :data:`~nova_docker_aio.layout.PORT_OFFSETS` names it takes."""
        return ()

    def ensure_installed(self, ctx: Context) -> None:
        """Install what is missing on the host, or say what to install."""

    def configs(self, ctx: Context) -> dict[Path, str]:
        """Its configuration files and their content (pure)."""
        return {}

    def setup(self, ctx: Context) -> None:
        """One-time preparation: data dirs, schema, keys."""

    def start(self, ctx: Context) -> None:
        """Start it and return once :meth:`healthy`."""

    def healthy(self, ctx: Context) -> bool:
        return True

    def bootstrap(self, ctx: Context) -> None:
        """What it needs once it runs: catalog entries, flavors, networks."""

    def stop(self, ctx: Context) -> None:
        stop(ctx.layout, self.name)

    def where(self, ctx: Context) -> str:
        """Where it listens, for ``status``."""
        names = self.ports(ctx)
        return f"127.0.0.1:{ctx.layout.port(names[0])}" if names else "(no port)"

    def running(self, ctx: Context) -> bool:
        return running(ctx.layout, self.name)


def running(layout: Layout, name: str) -> bool:
    return procs.read_pid(layout.pidfile(name)) is not None


def stop(layout: Layout, name: str) -> None:
    """Stop a daemon of this cloud by its recorded PID."""
    with step(name, "stop"):
        if not procs.stop(layout.pidfile(name), timeout=30):
            say(f"  [{name}] was not running")
