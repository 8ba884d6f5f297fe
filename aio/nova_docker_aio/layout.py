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

"""Where a cloud keeps its state and which ports it listens on (pure).

Every path under a cloud's state dir is spelled here and nowhere else::

    clouds.yaml  driver  network  network-index  with-dashboard
                                                  what the cloud was made as
    done/<step>                                   one-time steps completed
    etc/secrets.json  etc/<service>/...           passwords, generated configs
    log/<service>.log                             one log per process
    run/<service>.pid  run/*.sock  run/*.ctl      pid files, sockets
    mysql/  keystone/  glance/  nova/  neutron/  ovn/  dashboard/
                                                  each service's data
    dockerd-<i>/                                  compute host i's data root
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
from pathlib import Path

DEFAULT_STATE_DIR = "/var/lib/nova-docker-aio"
DEFAULT_PORT_BASE = 25000
STATE_ENV = "NOVA_DOCKER_AIO_STATE"
PORT_BASE_ENV = "NOVA_DOCKER_AIO_PORT_BASE"

#: Offsets from the port base, one per listening service.
PORT_OFFSETS = {
    "mariadb": 0,
    "keystone": 1,
    "glance": 2,
    "placement": 3,
    "nova": 4,
    "null-network": 5,
    "neutron": 6,
    # The private RabbitMQ: AMQP, Erlang distribution, and its own epmd.
    "rabbitmq": 7,
    "rabbitmq-dist": 8,
    "rabbitmq-epmd": 9,
    # Nova's metadata API, behind Neutron's OVN metadata agent.
    "nova-metadata": 10,
    # nova-serialproxy, the websocket end of every server's serial console.
    "serialproxy": 11,
    # The OpenStack dashboard (Horizon) under gunicorn.
    "dashboard": 12,
}
#: Clouds' port bases are this far apart (more than the offsets above).
PORT_SPAN = 20
#: Servers' serial console ports: each cloud has :data:`SERIAL_PORTS` of
#: them from ``SERIAL_PORT_FIRST + SERIAL_PORT_STRIDE * (port base mod
#: SERIAL_PORT_CYCLE)`` (see :meth:`Layout.serial_port_range`).
SERIAL_PORTS = 100
SERIAL_PORT_FIRST = 40000
SERIAL_PORT_CYCLE = 5000
SERIAL_PORT_STRIDE = SERIAL_PORTS // PORT_SPAN
#: Every host device a cloud creates starts with this (its OVS bridges, whose
#: netdev taps carry the same names), so cleanup can find them.
DEVICE_PREFIX = "nda"
#: Host-wide runtime state of the clouds' private engines, each in a
#: directory named after its cloud's :attr:`Layout.tag` and host index.
ENGINE_RUN_DIR = Path("/run/nova-docker-aio")


@dataclasses.dataclass(frozen=True)
class Layout:
    """Paths and ports of one cloud, all derived from its state dir."""

    root: Path
    port_base: int

    # -- ports and names ---------------------------------------------------

    def port(self, service: str) -> int:
        return self.port_base + PORT_OFFSETS[service]

    def serial_port_range(self) -> tuple[int, int]:
        """The first port of the cloud's serial consoles and the first after
        them (Nova's ``[serial_console] port_range``, ``start:stop``).

        Five ports for each of the 20 between clouds' port bases, from
        40000: two clouds whose bases are 20 to 4999 apart never share one,
        and all lie above the service ports of any cloud based below 40000
        (below 65100, under the last port).
        """
        offset = self.port_base % SERIAL_PORT_CYCLE
        first = SERIAL_PORT_FIRST + SERIAL_PORT_STRIDE * offset
        return first, first + SERIAL_PORTS

    def url(self, service: str, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port(service)}{path}"

    @property
    def compute_host(self) -> str:
        """The nova-compute host name, unique per state dir.

        The driver only lists containers labelled with its own host name, so
        two clouds on one engine must never share it.
        """
        base = re.sub(r"[^a-z0-9-]+", "-", self.root.name.lower()).strip("-")
        return f"{base or 'aio'}-{self.tag}"

    def host_name(self, index: int) -> str:
        """Compute host ``index`` (from 1) of a cloud with ``--hosts N``:
        host 1 is :attr:`compute_host`, as in a cloud of one host, host
        ``i`` is ``<compute_host>-<i>``.  Also the host's OVN chassis."""
        return self.compute_host if index == 1 else f"{self.compute_host}-{index}"

    @property
    def tag(self) -> str:
        """Six hex digits unique per state dir, for host-wide names."""
        return hashlib.sha256(str(self.root).encode()).hexdigest()[:6]

    def bridge(self, role: str) -> str:
        """``ndai<tag>`` (integration) or ``ndae<tag>`` (external): short
        enough for a kernel device name, unique per cloud on the shared
        switch."""
        return f"{DEVICE_PREFIX}{role[0]}{self.tag}"

    # -- what the cloud was made as ---------------------------------------

    @property
    def driver_record(self) -> Path:
        return self.root / "driver"

    @property
    def network_record(self) -> Path:
        return self.root / "network"

    @property
    def dashboard_record(self) -> Path:
        """Whether ``up`` runs the dashboard (``on``/``off``)."""
        return self.root / "with-dashboard"

    @property
    def network_index(self) -> Path:
        """The index of this cloud's address ranges (see ``external``)."""
        return self.root / "network-index"

    @property
    def clouds_yaml(self) -> Path:
        return self.root / "clouds.yaml"

    @property
    def secrets(self) -> Path:
        return self.etc / "secrets.json"

    def marker(self, step: str) -> Path:
        """A file whose presence says a one-time step has completed."""
        return self.root / "done" / step

    # -- configuration, logs, processes -----------------------------------

    @property
    def etc(self) -> Path:
        return self.root / "etc"

    def config_dir(self, service: str) -> Path:
        return self.etc / service

    @property
    def keystone_conf(self) -> Path:
        return self.config_dir("keystone") / "keystone.conf"

    @property
    def glance_conf(self) -> Path:
        """``glance-api.conf``, which Glance finds in its config dir."""
        return self.config_dir("glance") / "glance-api.conf"

    @property
    def placement_conf(self) -> Path:
        """``placement.conf``, which Placement finds in its config dir."""
        return self.config_dir("placement") / "placement.conf"

    @property
    def nova_conf(self) -> Path:
        """Written anew by every ``up`` and ``restart``."""
        return self.config_dir("nova") / "nova.conf"

    def nova_compute_conf(self, index: int) -> Path:
        """What compute host ``index``'s nova-compute reads after the
        shared files: its host name, engine and ports."""
        return self.config_dir("nova") / f"compute-{index}.conf"

    @property
    def nova_paste(self) -> Path:
        return self.config_dir("nova") / "api-paste.ini"

    @property
    def nova_local_conf(self) -> Path:
        """The operator's own Nova settings, read after the generated ones
        and never written by the launcher."""
        return self.config_dir("nova") / "local.conf"

    @property
    def neutron_conf(self) -> Path:
        return self.config_dir("neutron") / "neutron.conf"

    @property
    def ml2_conf(self) -> Path:
        return self.config_dir("neutron") / "ml2_conf.ini"

    @property
    def ovn_metadata_conf(self) -> Path:
        """Neutron's OVN metadata agent's own configuration file."""
        return self.config_dir("neutron") / "ovn_metadata_agent.ini"

    @property
    def dashboard_pythonpath(self) -> Path:
        """What the dashboard's process puts first on ``sys.path``: Horizon
        imports its ``local.local_settings`` from there."""
        return self.config_dir("dashboard")

    @property
    def dashboard_settings(self) -> Path:
        return self.dashboard_pythonpath / "local" / "local_settings.py"

    def dashboard_static(self, version: str) -> Path:
        """Horizon ``version``'s collected and compressed static files."""
        return self.data_dir("dashboard") / f"static-{version}"

    @property
    def logs(self) -> Path:
        return self.root / "log"

    def log(self, service: str) -> Path:
        return self.logs / f"{service}.log"

    @property
    def run(self) -> Path:
        return self.root / "run"

    def pidfile(self, service: str) -> Path:
        return self.run / f"{service}.pid"

    def socket(self, name: str) -> Path:
        return self.run / f"{name}.sock"

    def ctl(self, name: str) -> Path:
        """A daemon's control (``unixctl``) socket."""
        return self.run / f"{name}.ctl"

    # -- each service's own data ------------------------------------------

    def data_dir(self, service: str) -> Path:
        """A service's state: its ``state_path``, store or datadir."""
        return self.root / service

    def lock_dir(self, service: str) -> Path:
        """A service's ``[oslo_concurrency] lock_path``."""
        return self.data_dir(service) / "lock"

    def tmp_dir(self, service: str) -> Path:
        """A service's ``TMPDIR``: what a crash leaves there is the cloud's
        own, and visible."""
        return self.data_dir(service) / "tmp"

    @property
    def mysql_datadir(self) -> Path:
        return self.data_dir("mysql") / "data"

    @property
    def mysql_socket(self) -> Path:
        return self.socket("mysqld")

    @property
    def mysql_own_pidfile(self) -> Path:
        """The pid file mariadbd writes itself (ours is :meth:`pidfile`)."""
        return self.run / "mariadbd.internal.pid"

    @property
    def rabbitmq_node(self) -> str:
        """The broker's Erlang node name, unique per state dir."""
        return f"{DEVICE_PREFIX}{self.tag}@localhost"

    def rabbitmq_dir(self, kind: str) -> Path:
        """``home`` (its private ``HOME`` with the Erlang cookie), ``mnesia``
        (its database) or ``log`` (what it logs besides its output)."""
        return self.data_dir("rabbitmq") / kind

    @property
    def rabbitmq_cookie(self) -> Path:
        """The Erlang cookie the broker and its CLI share: Erlang reads it
        from ``$HOME``, their private :meth:`rabbitmq_dir` ``home``."""
        return self.rabbitmq_dir("home") / ".erlang.cookie"

    @property
    def rabbitmq_own_pidfile(self) -> Path:
        """The pid file the broker writes itself (ours is :meth:`pidfile`)."""
        return self.run / "rabbitmq.internal.pid"

    def keystone_keys(self, kind: str) -> Path:
        """``fernet`` or ``credential`` key repository."""
        return self.data_dir("keystone") / f"{kind}-keys"

    def glance_store(self, kind: str) -> Path:
        """``images``, ``staging`` or ``tasks``."""
        return self.data_dir("glance") / kind

    @property
    def nova_instances(self) -> Path:
        return self.data_dir("nova") / "instances"

    @property
    def nova_ready(self) -> Path:
        """Written by the Nova process once every service in it runs."""
        return self.ready_file("nova")

    def ready_file(self, name: str) -> Path:
        """Written by Nova process ``name`` (run by ``nova_runner``) once
        it serves."""
        return self.run / f"{name}.ready"

    @property
    def hosts_record(self) -> Path:
        """How many compute hosts the cloud was made with (absent: one)."""
        return self.root / "hosts"

    def ovn_db(self, db: str) -> Path:
        """The file of OVN's ``nb`` or ``sb`` database."""
        return self.data_dir("ovn") / f"ovn{db}.db"

    def ovn_socket(self, db: str) -> Path:
        """The unix socket of this cloud's OVN ``nb`` or ``sb`` database."""
        return self.socket(f"ovn{db}_db")

    @property
    def ovn_rundir(self) -> Path:
        """``OVN_RUNDIR``: where ovn-controller puts its control socket."""
        return self.run / "ovn"

    def ovn_controller_ctl(self, pid: int) -> Path:
        """ovn-controller has no ``--unixctl``: its control socket is named
        after its PID in :attr:`ovn_rundir`."""
        return self.ovn_rundir / f"ovn-controller.{pid}.ctl"

    @property
    def ovn_metadata_dir(self) -> Path:
        """The OVN metadata agent's ``state_path``, under which the agent
        itself names the paths below."""
        return self.data_dir("ovn-metadata")

    @property
    def ovn_metadata_socket(self) -> Path:
        """Where the agent listens for its haproxies."""
        return self.ovn_metadata_dir / "metadata_proxy"

    @property
    def ovn_metadata_pids(self) -> Path:
        """The haproxies' pid files, one ``<network id>.pid.haproxy`` each."""
        return self.ovn_metadata_dir / "external" / "pids"

    @property
    def ovn_metadata_proxy_configs(self) -> Path:
        """The haproxies' configs, one ``<network id>.conf`` each."""
        return self.ovn_metadata_dir / "ovn-metadata-proxy"

    # -- compute hosts' private engines -----------------------------------

    def engine_config(self, index: int) -> Path:
        """Compute host ``index``'s ``daemon.json``."""
        return self.config_dir(f"dockerd-{index}") / "daemon.json"

    def engine_data_root(self, index: int) -> Path:
        """Compute host ``index``'s Docker data root: its images, containers
        and containerd content, kept from one ``up`` to the next."""
        return self.data_dir(f"dockerd-{index}")

    def engine_exec_root(self, index: int) -> Path:
        """Compute host ``index``'s Docker exec root, outside the state dir:
        its sockets (containerd's, the shims', the API's) must stay under
        the kernel's 108-byte limit whatever the state dir's length, and
        on /run (a tmpfs on most hosts) what a crash leaves there is gone
        after a reboot, as a host's /var/run/docker is."""
        return ENGINE_RUN_DIR / f"dockerd-{self.tag}-{index}"

    def engine_socket(self, index: int) -> Path:
        """The API socket of compute host ``index``'s engine."""
        return self.engine_exec_root(index) / "docker.sock"

    def engine_pidfile(self, index: int) -> Path:
        """The pid file dockerd writes itself (ours is :meth:`pidfile`)."""
        return self.engine_exec_root(index) / "dockerd.pid"


def resolve(state_dir: str | None, port_base: int | None) -> Layout:
    """Apply the precedence flag > environment > default."""
    root = state_dir or os.environ.get(STATE_ENV) or DEFAULT_STATE_DIR
    base = port_base or int(os.environ.get(PORT_BASE_ENV) or DEFAULT_PORT_BASE)
    return Layout(root=Path(root).resolve(), port_base=base)
