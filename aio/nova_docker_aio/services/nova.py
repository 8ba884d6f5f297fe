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

"""Nova: API, conductor, scheduler and compute in one process (see
:mod:`nova_docker_aio.nova_runner`), with the Docker driver or Nova's fake
driver, over the in-process ``fake://`` bus.

``nova.conf`` is written anew by every ``up`` and ``restart nova``; the
operator's own settings go in ``local.conf``, which Nova reads after it.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from collections.abc import Sequence
from pathlib import Path

from nova_docker_aio import clouds_yaml
from nova_docker_aio import engine
from nova_docker_aio import ini
from nova_docker_aio import procs
from nova_docker_aio import tools
from nova_docker_aio.layout import Layout
from nova_docker_aio.services import mariadb
from nova_docker_aio.services import null_network
from nova_docker_aio.services import ovs
from nova_docker_aio.services.base import Context
from nova_docker_aio.services.base import Service
from nova_docker_aio.services.base import stop
from nova_docker_aio.steps import step

#: ``fake`` is Nova's fake driver in the variant with a stable node identity
#: (plain ``fake.FakeDriver`` invents a node UUID per process, so its cloud
#: could not be restarted).
DRIVERS = {"docker": "docker.DockerDriver", "fake": "fake.FakeDriverWithoutFakeNodes"}
#: The module the Nova process runs.
RUNNER = "nova_docker_aio.nova_runner"
#: Flavors sized for containers: (name, MiB of memory, vCPUs, GB of disk).
FLAVORS = (
    ("c1.tiny", 64, 1, 1),
    ("c1.small", 128, 1, 1),
    ("c1.medium", 512, 1, 1),
)


class Nova(Service):
    name = "nova"
    setup_after = ("mariadb",)
    start_after = ("keystone", "glance", "placement", "neutron")
    databases = ("nova_api", "nova_cell0", "nova_cell1")
    catalog = ("compute", "/v2.1")

    def ports(self, ctx: Context) -> tuple[str, ...]:
        if ctx.with_neutron:
            return ("nova", "nova-metadata")
        return ("nova", "null-network")

    def ensure_installed(self, ctx: Context) -> None:
        if ctx.driver == "docker":
            engine.ensure_running(ctx.layout.log("dockerd"))

    def configs(self, ctx: Context) -> dict[Path, str]:
        layout = ctx.layout
        switch_db = ovs.Switch().connection if ctx.with_neutron else None
        text = config(layout, ctx.secrets, DRIVERS[ctx.driver], switch_db)
        paste = tools.data_file("nova/api-paste.ini").read_text()
        return {layout.nova_conf: text, layout.nova_paste: paste}

    def setup(self, ctx: Context) -> None:
        layout = ctx.layout
        for needed in (layout.nova_instances, layout.lock_dir(self.name)):
            needed.mkdir(parents=True, exist_ok=True)
        ctx.once(
            self.name,
            "databases and cells",
            lambda: sync_databases(layout, ctx.secrets),
            layout.log("nova-manage"),
        )

    def start(self, ctx: Context) -> None:
        start_process(ctx.layout, ctx.with_neutron)

    def healthy(self, ctx: Context) -> bool:
        return ctx.layout.nova_ready.exists()

    def bootstrap(self, ctx: Context) -> None:
        with step(self.name, "container flavors", ctx.layout.log(self.name)):
            ensure_flavors(ctx.layout)

    def stop(self, ctx: Context) -> None:
        stop_process(ctx.layout)


def _network(
    layout: Layout,
    client: Mapping[str, str],
    switch_db: str | None,
    metadata_secret: str,
) -> dict[str, dict[str, str]]:
    """Nova's ``[neutron]`` and the driver's plugging options; without
    Neutron, the null network's."""
    if switch_db is None:
        return null_network.nova_settings(layout, client)
    helper = f"{tools.bin_path('privsep-helper')} --config-file {layout.nova_conf}"
    return {
        "neutron": {
            **client,
            "ovs_bridge": layout.bridge("int"),
            "default_floating_pool": "public",
            # Requests come through Neutron's metadata agent, which says
            # which instance asks, signed with this secret.
            "service_metadata_proxy": "true",
            "metadata_proxy_shared_secret": metadata_secret,
        },
        "os_vif_ovs": {"ovsdb_connection": switch_db},
        "nova_docker_privileged": {"helper_command": helper},
        "vif_plug_ovs_privileged": {"helper_command": helper},
    }


def serial_console(layout: Layout) -> dict[str, str]:
    """Nova's ``[serial_console]``: every compute host's console ports on
    loopback, from the cloud's own range, reached through the cloud's
    ``nova-serialproxy`` (see :mod:`.serialproxy`)."""
    first, stop = layout.serial_port_range()
    proxy = layout.port("serialproxy")
    return {
        "enabled": "true",
        "port_range": f"{first}:{stop}",
        "proxyclient_address": "127.0.0.1",
        "base_url": f"ws://127.0.0.1:{proxy}/",
        "serialproxy_host": "127.0.0.1",
        "serialproxy_port": str(proxy),
    }


def config(
    layout: Layout,
    secrets: Mapping[str, str],
    driver: str,
    switch_db: str | None = None,
    docker_url: str = engine.DEFAULT_URL,
    transport_url: str = "fake://",
) -> str:
    """``nova.conf`` (pure); ``switch_db`` is the shared switch's OVSDB when
    Neutron runs; ``transport_url`` is RabbitMQ's in a cloud of several
    hosts."""
    client = ini.service_client(layout, "nova", secrets["nova"])
    docker = {"api_url": docker_url}
    if switch_db:
        docker["ovs_datapath_type"] = "netdev"
    return ini.render(
        {
            "DEFAULT": {
                "host": layout.compute_host,
                "compute_driver": driver,
                "transport_url": transport_url,
                "state_path": str(layout.data_dir("nova")),
                "instances_path": str(layout.nova_instances),
                "my_ip": "127.0.0.1",
                "use_stderr": "true",
                # A container's memory is not a VM's: do not reserve the
                # host's 512 MiB default away from a small machine.
                "reserved_host_memory_mb": "0",
                # Containers share the host's cores; a laptop's two or four
                # should hold dozens of small ones, not Nova's 4 per core.
                "cpu_allocation_ratio": "16.0",
                # After the machine reboots, `up` brings back the servers
                # that were running (the engine left them stopped).
                "resume_guests_state_on_host_boot": "true",
            },
            "api": {"auth_strategy": "keystone"},
            "api_database": {
                "connection": mariadb.url(layout, "nova_api", secrets["db_nova_api"])
            },
            "database": {
                "connection": mariadb.url(
                    layout, "nova_cell1", secrets["db_nova_cell1"]
                )
            },
            "keystone_authtoken": ini.authtoken(layout, "nova", secrets["nova"]),
            "placement": client,
            "glance": {"region_name": ini.REGION, "valid_interfaces": "public"},
            **_network(layout, client, switch_db, secrets["metadata"]),
            # Neutron lets only a service (a request carrying a service
            # token) delete or rebind a compute port.
            "service_user": {
                **client,
                "send_service_user_token": "true" if switch_db else "false",
            },
            "scheduler": {"discover_hosts_in_cells_interval": "-1"},
            "oslo_concurrency": {"lock_path": str(layout.lock_dir("nova"))},
            "oslo_messaging_notifications": {"driver": "noop"},
            "vnc": {"enabled": "false"},
            "serial_console": serial_console(layout),
            # The proxy lets a browser in only from its own host name: a
            # dashboard opened as localhost may connect to it as 127.0.0.1.
            "console": {"allowed_origins": "localhost,127.0.0.1"},
            "docker": docker,
        }
    )


def manage(layout: Layout, *args: str, ok: tuple[int, ...] = (0,)) -> None:
    """``nova-manage ARGS`` on the cloud's nova.conf."""
    conf = str(layout.nova_conf)
    procs.run(
        [tools.bin_path("nova-manage"), "--config-file", conf, *args],
        layout.log("nova-manage"),
        env={"OS_NOVA_DISABLE_EVENTLET_PATCHING": "true"},
        ok=ok,
    )


def sync_databases(layout: Layout, secrets: Mapping[str, str]) -> None:
    """The API database, cell0 and cell1 (whose transport is nova.conf's:
    the in-process ``fake://`` bus, or RabbitMQ)."""
    cell0 = mariadb.url(layout, "nova_cell0", secrets["db_nova_cell0"])
    manage(layout, "api_db", "sync")
    manage(layout, "cell_v2", "map_cell0", "--database_connection", cell0)
    # Exit status 2: that cell exists already (a re-run after a failure).
    manage(layout, "cell_v2", "create_cell", "--name", "cell1", ok=(0, 2))
    # Migrates cell0 and cell1 alike.
    manage(layout, "db", "sync")


def config_paths(layout: Layout, *extra: Path) -> list[Path]:
    """The configuration files a Nova process reads, in order: the
    generated ``nova.conf``, ``extra`` (a compute host's own), then the
    operator's ``local.conf`` when there is one, so its settings win and
    survive every ``up``."""
    files = [layout.nova_conf, *extra]
    if layout.nova_local_conf.exists():
        files.append(layout.nova_local_conf)
    return files


def config_files(layout: Layout) -> str:
    """The files the Nova process reads from its config dir, in order (its
    ``OS_NOVA_CONFIG_FILES``): the API's paste file, then
    :func:`config_paths`."""
    names = [layout.nova_paste.name, *(p.name for p in config_paths(layout))]
    return ";".join(names)


def start_process(
    layout: Layout,
    with_neutron: bool,
    runner: str = RUNNER,
    extra_args: Sequence[str] = (),
    extra_env: Mapping[str, str] | None = None,
    timeout: float = 120,
    name: str = "nova",
) -> None:
    """Start the Nova process ``name`` and wait until it is ready.

    ``runner`` is the module to run: :data:`RUNNER`, or one that takes the
    same arguments (the benchmarks' probe) plus ``extra_args``.
    """
    argv = [
        sys.executable,
        "-m",
        runner,
        "--config-dir",
        str(layout.config_dir("nova")),
        "--api-port",
        str(layout.port("nova")),
        "--ready-file",
        str(layout.ready_file(name)),
        *extra_args,
    ]
    if with_neutron:
        argv += ["--metadata-port", str(layout.port("nova-metadata"))]
    else:
        argv += ["--null-network-port", str(layout.port("null-network"))]
    pidfile = layout.pidfile(name)
    tmp = layout.tmp_dir(name)
    tmp.mkdir(parents=True, exist_ok=True)
    env = {
        "OS_NOVA_CONFIG_FILES": config_files(layout),
        "TMPDIR": str(tmp),
        **(extra_env or {}),
    }
    # A ready file left by a process that did not stop cleanly (the machine
    # went down) would say ready before the new process listens.
    layout.ready_file(name).unlink(missing_ok=True)
    procs.spawn(argv, pidfile, layout.log(name), env)
    what = f"{name} under {runner}"
    procs.wait_for(layout.ready_file(name).exists, pidfile, timeout, what)


def stop_process(layout: Layout, name: str = "nova") -> None:
    stop(layout, name)
    layout.ready_file(name).unlink(missing_ok=True)


def ensure_flavors(layout: Layout) -> None:
    conn = clouds_yaml.connect(layout, clouds_yaml.ADMIN_CLOUD)
    existing = {flavor.name for flavor in conn.compute.flavors()}
    for name, ram, vcpus, disk in FLAVORS:
        if name not in existing:
            conn.compute.create_flavor(name=name, ram=ram, vcpus=vcpus, disk=disk)
