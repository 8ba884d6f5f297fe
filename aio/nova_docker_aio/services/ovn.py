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

"""A cloud's own OVN: NB and SB databases, ovn-northd, and an
ovn-controller that programs the cloud's bridges on the shared switch; four
services of the table.

Several clouds share the host's one ovs-vswitchd (see :mod:`.ovs`), so each
ovn-controller runs under its own chassis name (``-n``) and reads only the
chassis-specific settings (``external_ids:ovn-bridge-<chassis>`` and the
like) of the shared ``Open_vSwitch`` row.  The chassis name and host name are
the cloud's compute host: ML2/OVN binds a port only to the chassis whose
host name is the port's ``binding:host_id``.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from nova_docker_aio import host
from nova_docker_aio import procs
from nova_docker_aio.layout import Layout
from nova_docker_aio.services import ovs
from nova_docker_aio.services.base import Context
from nova_docker_aio.services.base import Service
from nova_docker_aio.steps import skip
from nova_docker_aio.steps import step

SCHEMAS = Path("/usr/share/ovn")
#: Debian's packages, without their init scripts being run.
PACKAGES = ("ovn-central", "ovn-host")
#: Provider network name of the external network, mapped to ``ndae<tag>``.
PHYSNET = "public"


def ensure_installed() -> None:
    ovs.ensure_installed()
    if not shutil.which("ovn-northd") or not shutil.which("ovn-controller"):
        with host.no_service_starts():
            host.apt_install(PACKAGES, why="Neutron's ML2/OVN back end")


class Database(Service):
    """OVN's northbound (``nb``) or southbound (``sb``) ovsdb-server."""

    def __init__(self, db: str) -> None:
        self.db = db
        self.name = f"ovn-{db}"

    def ensure_installed(self, ctx: Context) -> None:
        ensure_installed()

    def setup(self, ctx: Context) -> None:
        """Create the database once (Neutron's data lives there)."""
        path = ctx.layout.ovn_db(self.db)
        if path.exists():
            skip(self.name, "create database")
            return
        with step(self.name, "create database", ctx.layout.log(self.name)):
            path.parent.mkdir(parents=True, exist_ok=True)
            schema = SCHEMAS / f"ovn-{self.db}.ovsschema"
            procs.run(
                ["ovsdb-tool", "create", str(path), str(schema)],
                ctx.layout.log(self.name),
            )

    def start(self, ctx: Context) -> None:
        start_db(ctx.layout, self.db)

    def healthy(self, ctx: Context) -> bool:
        return ctx.layout.ovn_socket(self.db).exists()


class Northd(Service):
    name = "ovn-northd"
    start_after = ("ovn-nb", "ovn-sb")

    def start(self, ctx: Context) -> None:
        start_northd(ctx.layout)

    def healthy(self, ctx: Context) -> bool:
        return ctx.layout.ctl(self.name).exists()


class Controller(Service):
    """The cloud's chassis on the shared switch: its settings there, the
    daemon, and the chassis registered in the SB database."""

    name = "ovn-controller"
    setup_after = ("ovs",)
    start_after = ("ovn-sb", "ovn-northd")

    def setup(self, ctx: Context) -> None:
        with step(self.name, "chassis settings", ctx.layout.log(self.name)):
            configure_chassis(ctx.layout, ovs.Switch())

    def start(self, ctx: Context) -> None:
        start_controller(ctx.layout, ovs.Switch())

    def healthy(self, ctx: Context) -> bool:
        return chassis_registered(ctx.layout)

    def bootstrap(self, ctx: Context) -> None:
        layout = ctx.layout
        pidfile = layout.pidfile(self.name)
        with step(self.name, f"chassis {layout.compute_host} registered"):
            procs.wait_for(lambda: self.healthy(ctx), pidfile, 60, self.name)
            announce_bridge(layout)

    def stop(self, ctx: Context) -> None:
        super().stop(ctx)
        switch = ovs.Switch()
        if ovs.claimed(ctx.layout, switch) and ovs.running(switch):
            unconfigure_chassis(ctx.layout, switch)


def _env(layout: Layout) -> dict[str, str]:
    """Keep every default path of the OVN tools inside the state dir, but
    look for the bridges' OpenFlow sockets where the shared switch is."""
    rundir = str(layout.ovn_rundir)
    return {**ovs.Switch().env, "OVN_RUNDIR": rundir, "OVN_LOGDIR": rundir}


def start_db(layout: Layout, db: str) -> None:
    name = f"ovn-{db}"
    sock = layout.ovn_socket(db)
    sock.unlink(missing_ok=True)
    pidfile = layout.pidfile(name)
    procs.spawn(
        [
            "ovsdb-server",
            str(layout.ovn_db(db)),
            f"--remote=punix:{sock}",
            f"--unixctl={layout.ctl(name)}",
            "--no-chdir",
        ],
        pidfile,
        layout.log(name),
        env=_env(layout),
    )
    procs.wait_for(sock.exists, pidfile, 30, f"ovsdb-server ({db.upper()})")


def start_northd(layout: Layout) -> None:
    ctl = layout.ctl("ovn-northd")
    ctl.unlink(missing_ok=True)
    pidfile = layout.pidfile("ovn-northd")
    procs.spawn(
        [
            "ovn-northd",
            f"--ovnnb-db=unix:{layout.ovn_socket('nb')}",
            f"--ovnsb-db=unix:{layout.ovn_socket('sb')}",
            f"--unixctl={ctl}",
            "--no-chdir",
        ],
        pidfile,
        layout.log("ovn-northd"),
        env=_env(layout),
    )
    procs.wait_for(ctl.exists, pidfile, 30, "ovn-northd")


def chassis_settings(layout: Layout) -> dict[str, str]:
    """The chassis-specific ``external_ids`` of this cloud (pure).

    Geneve on loopback is only what OVN needs to register a chassis: with one
    chassis per cloud no tunnel is ever made.  The chassis hosts the router
    gateways (``enable-chassis-as-gw``), so floating IPs answer here.
    """
    plain = {
        "ovn-remote": f"unix:{layout.ovn_socket('sb')}",
        "ovn-bridge": layout.bridge("int"),
        "ovn-bridge-datapath-type": "netdev",
        "ovn-encap-type": "geneve",
        "ovn-encap-ip": "127.0.0.1",
        "ovn-bridge-mappings": f"{PHYSNET}:{layout.bridge('ext')}",
        "ovn-cms-options": "enable-chassis-as-gw",
        "hostname": layout.compute_host,
    }
    return {f"{key}-{layout.compute_host}": value for key, value in plain.items()}


def configure_chassis(layout: Layout, switch: ovs.Switch) -> None:
    """Write this cloud's chassis settings into the shared switch."""
    pairs = [
        f'external_ids:"{key}"="{value}"'
        for key, value in chassis_settings(layout).items()
    ]
    ovs.vsctl(switch, "set", "Open_vSwitch", ".", *pairs)


def unconfigure_chassis(layout: Layout, switch: ovs.Switch) -> None:
    for key in chassis_settings(layout):
        ovs.vsctl(switch, "remove", "Open_vSwitch", ".", "external_ids", key)


def start_controller(layout: Layout, switch: ovs.Switch) -> None:
    """ovn-controller has no ``--unixctl``: its control socket appears as
    ``ovn-controller.<pid>.ctl`` in ``OVN_RUNDIR``."""
    rundir = layout.ovn_rundir
    rundir.mkdir(parents=True, exist_ok=True)
    pidfile = layout.pidfile("ovn-controller")
    pid = procs.spawn(
        ["ovn-controller", "-n", layout.compute_host, switch.connection, "--no-chdir"],
        pidfile,
        layout.log("ovn-controller"),
        env=_env(layout),
    )
    ctl = layout.ovn_controller_ctl(pid)
    procs.wait_for(ctl.exists, pidfile, 30, "ovn-controller")


def sbctl(layout: Layout, *args: str) -> str:
    """``ovn-sbctl`` against this cloud's SB database; its output."""
    result = subprocess.run(
        ["ovn-sbctl", f"--db=unix:{layout.ovn_socket('sb')}", "--timeout=10", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise procs.ProcessError(f"ovn-sbctl {args[0]}: {result.stderr.strip()}")
    return result.stdout


def chassis_registered(layout: Layout) -> bool:
    """The health check: our ovn-controller's chassis is in the SB."""
    try:
        names = sbctl(layout, "--bare", "--columns=name", "list", "Chassis_Private")
    except procs.ProcessError:
        return False
    return layout.compute_host in names.split()


def announce_bridge(layout: Layout) -> None:
    """Tell ML2/OVN the chassis' integration bridge.

    ML2/OVN puts into each port binding the bridge named in the chassis'
    ``Chassis_Private.external_ids:neutron:ovn-bridge``, which the OVN
    metadata agent writes; without that agent it says ``br-int``.
    """
    sbctl(
        layout, "set", "Chassis_Private", layout.compute_host,
        f'external_ids:"neutron:ovn-bridge"={layout.bridge("int")}',
    )  # fmt: skip
