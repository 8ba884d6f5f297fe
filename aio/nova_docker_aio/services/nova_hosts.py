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

"""Nova of a cloud of several compute hosts: one process per service.

With ``up --hosts N`` (N >= 2) Nova runs as it does across real machines:
nova-api (the WSGI application, served by :mod:`nova_docker_aio.nova_runner`
``--api-only``), and Nova's own ``nova-conductor``, ``nova-scheduler`` and
one ``nova-compute`` per host, talking over the cloud's private RabbitMQ.
Each compute host has its own name (its OVN chassis too), its own Docker
Engine (:mod:`.engine_host`), its own integration bridge, state and locks.

Every process reads ``nova.conf`` (the cloud's, as in a cloud of one host
but with RabbitMQ), a compute host also ``compute-<i>.conf`` (what differs
per host), then the operator's ``local.conf``.
"""

from __future__ import annotations

import datetime
import time
from pathlib import Path

from nova_docker_aio import clouds_yaml
from nova_docker_aio import ini
from nova_docker_aio import procs
from nova_docker_aio import tools
from nova_docker_aio.layout import Layout
from nova_docker_aio.services import engine_host
from nova_docker_aio.services import nova
from nova_docker_aio.services import ovn
from nova_docker_aio.services import ovs
from nova_docker_aio.services import rabbitmq
from nova_docker_aio.services.base import Context
from nova_docker_aio.services.base import Service
from nova_docker_aio.steps import step

#: Seconds a service has to report itself up in Nova's service list.
UP_TIMEOUT = 180


def compute_name(index: int) -> str:
    """Compute host ``index``'s process: its pid file, log and step label."""
    return f"nova-compute-{index}"


def config(ctx: Context) -> str:
    """``nova.conf`` of every Nova process (pure but for the secrets)."""
    layout = ctx.layout
    text = nova.config(
        layout,
        ctx.secrets,
        nova.DRIVERS[ctx.driver],
        ovs.Switch().connection if ctx.with_neutron else None,
        transport_url=rabbitmq.transport_url(layout, ctx.secrets),
    )
    # One worker each: two cores hold the whole cloud.
    return text + ini.render(
        {"conductor": {"workers": "1"}, "scheduler": {"workers": "1"}}
    )


def serial_ports(layout: Layout, index: int, hosts: int) -> str:
    """Compute host ``index``'s share of the cloud's serial console ports
    (``start:stop``): every host listens on loopback, so two hosts picking
    the same free port at once must not be possible."""
    first, stop = layout.serial_port_range()
    share = (stop - first) // hosts
    start = first + share * (index - 1)
    return f"{start}:{start + share}"


def compute_config(
    layout: Layout, index: int, with_neutron: bool, hosts: int = 1
) -> str:
    """What compute host ``index`` of ``hosts`` sets over ``nova.conf``
    (pure); the rest of ``[serial_console]`` is nova.conf's."""
    state = layout.data_dir(compute_name(index))
    sections: dict[str, dict[str, str]] = {
        "DEFAULT": {
            "host": layout.host_name(index),
            "state_path": str(state),
            "instances_path": str(state / "instances"),
        },
        "docker": {"api_url": engine_host.api_url(layout, index)},
        "oslo_concurrency": {"lock_path": str(layout.lock_dir(compute_name(index)))},
        "serial_console": {"port_range": serial_ports(layout, index, hosts)},
    }
    if with_neutron:
        sections["neutron"] = {"ovs_bridge": ovn.integration_bridge(layout, index)}
    return ini.render(sections)


def config_files(layout: Layout, *extra: Path) -> list[str]:
    """``--config-file`` arguments, in the order a cloud of one host reads
    the same files (:func:`.nova.config_paths`)."""
    files = nova.config_paths(layout, *extra)
    return [arg for path in files for arg in ("--config-file", str(path))]


def service_up(
    layout: Layout, binary: str, host: str | None = None, since: float = 0.0
) -> bool:
    """Whether Nova's service list shows ``binary`` (on ``host``) alive: the
    health check of every RPC service, as an operator would check it.

    A service an operator forced down is listed ``down`` however well it
    runs (evacuation needs that while its host is restarted), so there a
    report newer than ``since`` (a Unix time) counts instead.
    """
    conn = clouds_yaml.connect(layout, clouds_yaml.ADMIN_CLOUD)
    try:
        return any(
            _alive(found, since)
            for found in conn.compute.services(binary=binary)
            if host is None or found.host == host
        )
    except Exception:  # not up yet is all a failure can mean here
        return False
    finally:
        conn.close()


def _alive(service, since: float) -> bool:
    if service.state == "up":
        return True
    if not service.is_forced_down or not service.updated_at:
        return False
    reported = datetime.datetime.fromisoformat(service.updated_at)
    if reported.tzinfo is None:
        reported = reported.replace(tzinfo=datetime.UTC)
    return reported.timestamp() > since


def _spawn_console_script(
    layout: Layout, name: str, script: str, *extra: Path, until
) -> None:
    """Start one of Nova's own console scripts and wait for ``until``,
    which is given the Unix time the process started."""
    pidfile = layout.pidfile(name)
    tmp = layout.tmp_dir(name)
    tmp.mkdir(parents=True, exist_ok=True)
    argv = [tools.bin_path(script), *config_files(layout, *extra)]
    started = time.time()
    procs.spawn(argv, pidfile, layout.log(name), {"TMPDIR": str(tmp)})
    procs.wait_for(lambda: until(started), pidfile, UP_TIMEOUT, name)


class NovaApi(Service):
    """nova-api; it also owns Nova's databases, cells and flavors."""

    name = "nova-api"
    account_name = "nova"
    setup_after = ("mariadb", "rabbitmq")
    start_after = ("keystone", "glance", "placement", "neutron")
    databases = nova.Nova.databases
    catalog = nova.Nova.catalog

    def ports(self, ctx: Context) -> tuple[str, ...]:
        # The same process as a one-host cloud's Nova serves the same ports.
        return nova.Nova().ports(ctx)

    def configs(self, ctx: Context) -> dict[Path, str]:
        layout = ctx.layout
        paste = tools.data_file("nova/api-paste.ini").read_text()
        files = {layout.nova_conf: config(ctx), layout.nova_paste: paste}
        for index in range(1, ctx.hosts + 1):
            text = compute_config(layout, index, ctx.with_neutron, ctx.hosts)
            files[layout.nova_compute_conf(index)] = text
        return files

    def setup(self, ctx: Context) -> None:
        layout = ctx.layout
        ctx.once(
            "nova",
            "databases and cells",
            lambda: nova.sync_databases(layout, ctx.secrets),
            layout.log("nova-manage"),
        )

    def start(self, ctx: Context) -> None:
        nova.start_process(
            ctx.layout, ctx.with_neutron, extra_args=("--api-only",), name=self.name
        )

    def healthy(self, ctx: Context) -> bool:
        return ctx.layout.ready_file(self.name).exists()

    def bootstrap(self, ctx: Context) -> None:
        with step(self.name, "container flavors", ctx.layout.log(self.name)):
            nova.ensure_flavors(ctx.layout)

    def stop(self, ctx: Context) -> None:
        nova.stop_process(ctx.layout, self.name)


class NovaControl(Service):
    """``nova-conductor`` or ``nova-scheduler``: Nova's console script."""

    start_after = ("nova-api",)

    def __init__(self, binary: str) -> None:
        self.name = binary

    def start(self, ctx: Context) -> None:
        _spawn_console_script(
            ctx.layout,
            self.name,
            self.name,
            until=lambda started: service_up(ctx.layout, self.name, since=started),
        )

    def healthy(self, ctx: Context) -> bool:
        return self.running(ctx) and service_up(ctx.layout, self.name)


class NovaCompute(Service):
    """``nova-compute`` of host ``index``, on that host's own engine."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.name = compute_name(index)
        self.start_after = (
            "nova-conductor",
            engine_host.PrivateEngine(index).name,
            ovn.controller_name(index),
        )
        # One host at a time: Nova's host discovery is not safe to run
        # twice at once.
        self.bootstrap_after = (compute_name(index - 1),) if index > 1 else ()

    def setup(self, ctx: Context) -> None:
        layout = ctx.layout
        state = layout.data_dir(self.name)
        for needed in (state / "instances", layout.lock_dir(self.name)):
            needed.mkdir(parents=True, exist_ok=True)

    def start(self, ctx: Context) -> None:
        layout = ctx.layout
        _spawn_console_script(
            layout,
            self.name,
            "nova-compute",
            layout.nova_compute_conf(self.index),
            until=lambda started: service_up(
                layout, "nova-compute", self.host(layout), since=started
            ),
        )

    def healthy(self, ctx: Context) -> bool:
        layout = ctx.layout
        return self.running(ctx) and service_up(
            layout, "nova-compute", self.host(layout)
        )

    def bootstrap(self, ctx: Context) -> None:
        """Map the host into cell1, as ``nova-manage cell_v2
        discover_hosts`` does after a new compute host joins."""
        with step(self.name, "host mapped into cell1", ctx.layout.log("nova-manage")):
            nova.manage(ctx.layout, "cell_v2", "discover_hosts")

    def host(self, layout: Layout) -> str:
        return layout.host_name(self.index)

    def where(self, ctx: Context) -> str:
        url = engine_host.api_url(ctx.layout, self.index)
        return f"host {self.host(ctx.layout)}, engine {url}"


def table(hosts: int) -> tuple[Service, ...]:
    """Nova's services for a cloud of ``hosts`` compute hosts."""
    return (
        NovaApi(),
        NovaControl("nova-conductor"),
        NovaControl("nova-scheduler"),
        *(NovaCompute(index) for index in range(1, hosts + 1)),
    )
