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

"""A cloud's own OVN: NB and SB databases, ovn-northd, and one
ovn-controller per compute host that programs that host's bridges on the
shared switch; with several hosts also the underlay the chassis tunnel over.

Several clouds share the host's one ovs-vswitchd (see :mod:`.ovs`), so each
ovn-controller runs under its own chassis name (``-n``) and reads only the
chassis-specific settings (``external_ids:ovn-bridge-<chassis>`` and the
like) of the shared ``Open_vSwitch`` row.  The chassis name and host name are
the compute host's: ML2/OVN binds a port only to the chassis whose host name
is the port's ``binding:host_id``.

One host (``--hosts 1``, the default) is one chassis named after the cloud's
compute host, on the integration bridge ``ndai<tag>``, with Geneve on
127.0.0.1 only so that it registers: no tunnel is ever made.

Several hosts (``--hosts N``) are N chassis on the same switch, each with its
own integration bridge (host 1 keeps the single host's names; host ``i``
is ``<compute_host>-<i>`` on ``ndai<tag><i>``), and only host 1 is a gateway
chassis (``enable-chassis-as-gw``), so floating IPs and router gateways stay
where the external bridge's host address is.  Ports of one network on two
hosts talk over a Geneve tunnel between their chassis, which needs a network
between the chassis' encap IPs.  Here that *underlay* is one netdev bridge
of the cloud, ``ndau<tag>``:

* every chassis' encap IP is a /32 on the underlay bridge's internal port
  (its kernel tap), from the cloud's own range (:func:`underlay_network`);
  ``ovn-set-local-ip-<chassis>`` makes each tunnel leave from its own
  chassis' IP, so the userspace datapath knows which tunnel port receives;
* the userspace tunnel sends an encapsulated packet out of the bridge that
  routes its destination, i.e. out of the underlay bridge's ``LOCAL`` port,
  and terminates a tunnel only on a packet *output to* a port holding a
  tunnel endpoint IP: a flow sends Geneve packets from ``LOCAL`` back to
  ``in_port`` (:data:`LOOPBACK_FLOW`), which the datapath turns into the
  receiving chassis' tunnel port;
* nothing answers the switch's ARP for these addresses (the kernel drops a
  request from its own address), so each IP has an entry in the switch's
  tunnel neighbour cache (``tnl/neigh/set``); OVS 3.1 ages such entries out
  after 15 idle minutes, so a small process of the cloud (the underlay's
  "daemon") sets them again every minute.

A real multi-machine deployment has none of this: each machine runs its own
ovs-vswitchd (kernel datapath or DPDK) and ovn-controller with the default
chassis name (its ``system-id``) and the plain settings, its encap IP is the
address of its real NIC, and the tunnels cross the real network, whose
routers and ARP do what the loopback flow and the static entries do here.
"""

from __future__ import annotations

import ipaddress
import json
import shutil
import string
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

from nova_docker_aio import external
from nova_docker_aio import host
from nova_docker_aio import poll
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
#: Geneve's UDP port.
GENEVE_PORT = 6081
#: On the underlay bridge: a Geneve packet the datapath sends out of the
#: bridge's own port comes back in, where the receiving tunnel port is.
LOOPBACK_FLOW = f"priority=100,in_port=LOCAL,udp,tp_dst={GENEVE_PORT},actions=in_port"
#: RFC 2544's benchmarking range: set aside for test networks, not routed
#: anywhere, so a host is unlikely to use it; a /24 per cloud.
UNDERLAY_BASE = "198.18"
MAX_HOSTS = 250
#: Seconds between refreshes of the tunnel neighbour entries, well inside
#: the switch's aging (``tnl/neigh/aging``, 900 s by default).
NEIGH_REFRESH = 60
#: Seconds the chassis get, once all are registered, to make their tunnels
#: to each other (each is made within a second or two of the other's
#: registration).
TUNNEL_TIMEOUT = 60


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
    """The chassis of compute host ``host_index`` (from 1) of ``hosts``: its
    settings on the shared switch, its integration bridge (host 1's is the
    cloud's, made by :class:`.ovs.OpenVSwitch`), the daemon, and the chassis
    registered in the SB database."""

    setup_after = ("ovs",)

    def __init__(self, host_index: int = 1, hosts: int = 1) -> None:
        if not 1 <= host_index <= hosts <= MAX_HOSTS:
            raise ValueError(f"host {host_index} of {hosts}")
        self.index, self.hosts = host_index, hosts
        # Host 1 keeps the single host's name: Neutron waits for it.
        self.name = controller_name(host_index)
        underlay = ("ovn-underlay",) if hosts > 1 else ()
        self.start_after = ("ovn-sb", "ovn-northd", *underlay)

    def setup(self, ctx: Context) -> None:
        layout, switch = ctx.layout, ovs.Switch()
        with step(self.name, "chassis settings", ctx.layout.log(self.name)):
            if self.index > 1:
                ovs.add_bridge(switch, integration_bridge(layout, self.index))
            # Under the switch's lock: no other cloud is between its claim
            # and its own settings while the dead ones' go.
            with ovs.locked(switch):
                prune_dead_chassis(switch, live_hosts(switch))
                configure_chassis(layout, switch, self.index, self.hosts)

    def start(self, ctx: Context) -> None:
        start_controller(ctx.layout, ovs.Switch(), self.index)

    def healthy(self, ctx: Context) -> bool:
        return chassis_registered(ctx.layout, self.index)

    def bootstrap(self, ctx: Context) -> None:
        layout = ctx.layout
        pidfile = layout.pidfile(self.name)
        chassis = chassis_name(layout, self.index)
        with step(self.name, f"chassis {chassis} registered"):
            procs.wait_for(lambda: self.healthy(ctx), pidfile, 60, self.name)
            announce_bridge(layout, self.index)
        if self.index == self.hosts > 1:
            # The last chassis up: each now has a tunnel to every other, or
            # the servers of different hosts would not reach each other.
            with step("ovn-underlay", "a tunnel between every two hosts"):
                wait_for_tunnels(layout, ovs.Switch(), self.hosts)

    def stop(self, ctx: Context) -> None:
        super().stop(ctx)
        layout, switch = ctx.layout, ovs.Switch()
        if ovs.claimed(layout, switch) and ovs.running(switch):
            unconfigure_chassis(layout, switch, self.index, self.hosts)
            if self.index > 1:
                ovs.del_bridge(switch, integration_bridge(layout, self.index))


class Underlay(Service):
    """The network the cloud's chassis tunnel over, with several hosts: a
    netdev bridge whose tap holds every chassis' encap IP (see the module's
    description), and a small loop that keeps their neighbour entries."""

    name = "ovn-underlay"
    start_after = ("ovs",)

    def __init__(self, hosts: int) -> None:
        self.hosts = hosts

    def start(self, ctx: Context) -> None:
        layout, switch = ctx.layout, ovs.Switch()
        bridge = layout.bridge("underlay")
        with step(self.name, f"tunnel network on {bridge}", layout.log(self.name)):
            create_underlay(layout, switch, self.hosts)
            start_neighbour_keeper(layout, switch, self.hosts)

    def healthy(self, ctx: Context) -> bool:
        return underlay_present(ctx.layout) and super().running(ctx)

    def running(self, ctx: Context) -> bool:
        return self.healthy(ctx)

    def stop(self, ctx: Context) -> None:
        super().stop(ctx)
        layout, switch = ctx.layout, ovs.Switch()
        if ovs.claimed(layout, switch) and ovs.running(switch):
            with step(self.name, f"remove {layout.bridge('underlay')}"):
                remove_underlay(layout, switch)


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


def controller_name(index: int) -> str:
    """The service (pid file, log) of host ``index``'s ovn-controller."""
    return "ovn-controller" if index == 1 else f"ovn-controller-{index}"


def chassis_name(layout: Layout, index: int) -> str:
    """The chassis of compute host ``index`` (pure): its Nova host name,
    since ML2/OVN binds a port on the chassis named by the port's host."""
    return layout.host_name(index)


def integration_bridge(layout: Layout, index: int) -> str:
    """Host ``index``'s integration bridge (pure): the cloud's ``ndai<tag>``
    for host 1, ``ndai<tag><index>`` for the others (kernel-sized)."""
    base = layout.bridge("int")
    return base if index == 1 else f"{base}{index}"


def underlay_network(layout: Layout) -> ipaddress.IPv4Network:
    """The cloud's tunnel addresses: a /24 numbered like its external range,
    whose index the state dir records, so two clouds never share one."""
    index = external.ranges(layout).index
    return ipaddress.IPv4Network(f"{UNDERLAY_BASE}.{index}.0/24")


def encap_ip(layout: Layout, index: int, hosts: int) -> str:
    """Where host ``index``'s tunnels start and end: loopback for a single
    host (registering needs one, no tunnel is made), else its /32 on the
    underlay."""
    if hosts == 1:
        return "127.0.0.1"
    return str(underlay_network(layout).network_address + index)


def chassis_settings(layout: Layout, index: int = 1, hosts: int = 1) -> dict[str, str]:
    """The chassis-specific ``external_ids`` of host ``index`` (pure for one
    host; with several the underlay's range is read from the state dir).

    Host 1 hosts the router gateways (``enable-chassis-as-gw``), so floating
    IPs answer where the host's address on the external bridge is.
    """
    chassis = chassis_name(layout, index)
    plain = {
        "ovn-remote": f"unix:{layout.ovn_socket('sb')}",
        "ovn-bridge": integration_bridge(layout, index),
        "ovn-bridge-datapath-type": "netdev",
        "ovn-encap-type": "geneve",
        "ovn-encap-ip": encap_ip(layout, index, hosts),
        "ovn-bridge-mappings": f"{PHYSNET}:{layout.bridge('ext')}",
        "hostname": chassis,
    }
    if index == 1:
        plain["ovn-cms-options"] = "enable-chassis-as-gw"
    if hosts > 1:
        # All chassis' tunnel ports share one switch: each must send from,
        # and so receive on, its own IP.
        plain["ovn-set-local-ip"] = "true"
    return {f"{key}-{chassis}": value for key, value in plain.items()}


#: Where each ovn-controller on a shared switch keeps the one-character
#: index it takes (``other_config``): there are only 36, so the index of a
#: chassis that is gone must not stay.
CHASSIS_INDEX = "ovn-chassis-idx"
#: The indices, in the order ovn-controller hands them out: none (tunnel
#: port names without an index) first.
CHASSIS_INDICES = ("", *string.digits, *string.ascii_lowercase)
#: The prefixes of the chassis-specific keys a cloud's chassis leave in the
#: shared ``Open_vSwitch`` row (see :func:`chassis_settings`).
CHASSIS_KEYS = (
    "ovn-remote-",
    "ovn-bridge-",
    "ovn-encap-type-",
    "ovn-encap-ip-",
    "ovn-cms-options-",
    "ovn-set-local-ip-",
    "hostname-",
)


def configure_chassis(
    layout: Layout, switch: ovs.Switch, index: int = 1, hosts: int = 1
) -> None:
    """Write host ``index``'s chassis settings, and reserve its controller
    index, in the shared switch (call under :func:`.ovs.locked`)."""
    pairs = [
        f'external_ids:"{key}"="{value}"'
        for key, value in chassis_settings(layout, index, hosts).items()
    ]
    index_key = f"{CHASSIS_INDEX}-{chassis_name(layout, index)}"
    taken = row_map(switch, "other_config")
    if index_key not in taken:
        # ovn-controller picks a free index itself, but without a lock: two
        # controllers started together both took "0", so their tunnel ports
        # to each other had one name and neither tunnel was made.
        free = free_chassis_index(
            value for key, value in taken.items() if key.startswith(CHASSIS_INDEX)
        )
        pairs.append(f'other_config:"{index_key}"="{free}"')
    ovs.vsctl(switch, "set", "Open_vSwitch", ".", *pairs)


def free_chassis_index(taken: Iterable[str]) -> str:
    """The first controller index not in ``taken``, in ovn-controller's
    own order (pure)."""
    used = set(taken)
    for candidate in CHASSIS_INDICES:
        if candidate not in used:
            return candidate
    raise ovs.SwitchError(
        f"all {len(CHASSIS_INDICES)} OVN controller indices of the shared "
        "switch are taken: stop a cloud (`nova-docker-aio down`) first"
    )


def unconfigure_chassis(
    layout: Layout, switch: ovs.Switch, index: int = 1, hosts: int = 1
) -> None:
    for key in chassis_settings(layout, index, hosts):
        ovs.vsctl(switch, "remove", "Open_vSwitch", ".", "external_ids", key)
    index_key = f"{CHASSIS_INDEX}-{chassis_name(layout, index)}"
    ovs.vsctl(switch, "remove", "Open_vSwitch", ".", "other_config", index_key)


def prune_dead_chassis(switch: ovs.Switch, alive: set[str]) -> list[str]:
    """Remove the settings and index of every chassis whose cloud holds no
    live claim on the switch (a cloud killed without ``down``, a removed
    state dir); returns the keys removed.

    A chassis is a cloud's compute host ``<host>`` or ``<host>-<i>``.
    """
    removed = []
    for column, prefixes in (
        ("external_ids", CHASSIS_KEYS),
        ("other_config", (f"{CHASSIS_INDEX}-",)),
    ):
        for key in row_keys(switch, column):
            if key.startswith(prefixes) and not _owned(key, alive):
                ovs.vsctl(switch, "remove", "Open_vSwitch", ".", column, key)
                removed.append(key)
    return removed


def row_keys(switch: ovs.Switch, column: str) -> list[str]:
    """The keys of a map column of the switch's one ``Open_vSwitch`` row."""
    return list(row_map(switch, column))


def row_map(switch: ovs.Switch, column: str) -> dict[str, str]:
    """A map column of the switch's one ``Open_vSwitch`` row."""
    listed = ovs.vsctl(
        switch, "--format=json", f"--columns={column}", "list", "Open_vSwitch"
    )
    (row,) = json.loads(listed)["data"]
    _kind, pairs = row[0]
    return dict(pairs)


def live_hosts(switch: ovs.Switch) -> set[str]:
    """The compute hosts of the clouds that hold a live claim."""
    prefix = "cloud-"
    return {
        name.removeprefix(prefix)
        for name in ovs.live_claims(switch)
        if name.startswith(prefix)
    }


def _owned(key: str, alive: set[str]) -> bool:
    """Whether ``key`` names a chassis of a live cloud (pure)."""
    head, _, index = key.rpartition("-")
    for compute_host in alive:
        if key.endswith(f"-{compute_host}"):
            return True
        if index.isdigit() and head.endswith(f"-{compute_host}"):
            return True
    return False


def start_controller(layout: Layout, switch: ovs.Switch, index: int = 1) -> None:
    """ovn-controller has no ``--unixctl``: its control socket appears as
    ``ovn-controller.<pid>.ctl`` in ``OVN_RUNDIR``."""
    rundir = layout.ovn_rundir
    rundir.mkdir(parents=True, exist_ok=True)
    name = controller_name(index)
    pidfile = layout.pidfile(name)
    chassis = chassis_name(layout, index)
    pid = procs.spawn(
        ["ovn-controller", "-n", chassis, switch.connection, "--no-chdir"],
        pidfile,
        layout.log(name),
        env=_env(layout),
    )
    ctl = layout.ovn_controller_ctl(pid)
    procs.wait_for(ctl.exists, pidfile, 30, name)


def missing_tunnels(
    layout: Layout, switch: ovs.Switch, hosts: int
) -> list[tuple[int, int]]:
    """The pairs (from host, to host) of the cloud with no Geneve tunnel
    port on the shared switch."""
    listed = ovs.vsctl(
        switch, "--format=json", "--columns=options", "find", "Interface",
        "type=geneve",
    )  # fmt: skip
    present = set()
    for (column,) in json.loads(listed)["data"]:
        _kind, pairs = column
        options = dict(pairs)
        present.add((options.get("local_ip"), options.get("remote_ip")))
    return [
        (source, target)
        for source in range(1, hosts + 1)
        for target in range(1, hosts + 1)
        if source != target
        and (encap_ip(layout, source, hosts), encap_ip(layout, target, hosts))
        not in present
    ]


def wait_for_tunnels(layout: Layout, switch: ovs.Switch, hosts: int) -> None:
    """Wait until every chassis has its tunnels; name the missing ones."""
    try:
        poll.until(
            lambda: not missing_tunnels(layout, switch, hosts),
            "every chassis has its tunnels", TUNNEL_TIMEOUT, interval=0.5,
        )  # fmt: skip
    except poll.Timeout:
        missing = ", ".join(
            f"host {a} to host {b}" for a, b in missing_tunnels(layout, switch, hosts)
        )
        raise ovs.SwitchError(
            f"no Geneve tunnel from {missing} after {TUNNEL_TIMEOUT}s: see "
            f"the ovn-controller logs in {layout.log('ovn-controller').parent}"
        ) from None


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


def chassis_registered(layout: Layout, index: int = 1) -> bool:
    """The health check: host ``index``'s chassis is in the SB."""
    try:
        names = sbctl(layout, "--bare", "--columns=name", "list", "Chassis_Private")
    except procs.ProcessError:
        return False
    return chassis_name(layout, index) in names.split()


def announce_bridge(layout: Layout, index: int = 1) -> None:
    """Tell ML2/OVN the chassis' integration bridge.

    ML2/OVN puts into each port binding the bridge named in the chassis'
    ``Chassis_Private.external_ids:neutron:ovn-bridge``, which the OVN
    metadata agent writes; without that agent it says ``br-int``.
    """
    sbctl(
        layout, "set", "Chassis_Private", chassis_name(layout, index),
        f'external_ids:"neutron:ovn-bridge"={integration_bridge(layout, index)}',
    )  # fmt: skip


# -- the underlay of several hosts -------------------------------------------


def _appctl(switch: ovs.Switch, *args: str) -> str:
    """``ovs-appctl`` to the shared ovs-vswitchd; its output."""
    argv = ["ovs-appctl", "-t", str(switch.ctl("ovs-vswitchd")), *args]
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ovs.SwitchError(f"ovs-appctl {args[0]}: {result.stderr.strip()}")
    return result.stdout


def underlay_addresses(layout: Layout, hosts: int) -> list[str]:
    """Every chassis' encap IP, host 1 first."""
    return [encap_ip(layout, index, hosts) for index in range(1, hosts + 1)]


def create_underlay(layout: Layout, switch: ovs.Switch, hosts: int) -> None:
    """The underlay bridge, its loopback flow, the chassis' addresses on its
    tap and their neighbour entries (idempotent)."""
    bridge = layout.bridge("underlay")
    addresses = underlay_addresses(layout, hosts)
    _refuse_foreign(bridge, addresses)
    ovs.add_bridge(switch, bridge)
    ovs.vsctl(switch, "--", "set", "Bridge", bridge, "fail_mode=standalone")
    _ofctl(switch, "add-flow", bridge, LOOPBACK_FLOW)
    _set_addresses(bridge, addresses)
    learn_neighbours(layout, switch, hosts)


def learn_neighbours(layout: Layout, switch: ovs.Switch, hosts: int) -> None:
    """Entries in the tunnel neighbour cache: the userspace tunnel resolves
    the next hop's MAC there, and no ARP reply for our own addresses ever
    reaches it.  Every chassis IP is at the bridge's own MAC."""
    for argv in neighbour_commands(layout, switch, hosts, _mac(layout, switch)):
        _appctl(switch, *argv[3:])


def neighbour_commands(
    layout: Layout, switch: ovs.Switch, hosts: int, mac: str
) -> list[list[str]]:
    """The ``ovs-appctl tnl/neigh/set`` of every chassis IP (pure)."""
    bridge = layout.bridge("underlay")
    ctl = str(switch.ctl("ovs-vswitchd"))
    return [
        ["ovs-appctl", "-t", ctl, "tnl/neigh/set", bridge, address, mac]
        for address in underlay_addresses(layout, hosts)
    ]


#: The keeper: one Python process (a shell loop would leave its ``sleep``
#: behind when stopped by PID).
KEEPER = (
    "import json, subprocess, sys, time\n"
    "commands, interval = json.loads(sys.argv[1]), int(sys.argv[2])\n"
    "while True:\n"
    "    for argv in commands:\n"
    "        subprocess.run(argv, stdout=subprocess.DEVNULL, check=False)\n"
    "    time.sleep(interval)\n"
)


def start_neighbour_keeper(layout: Layout, switch: ovs.Switch, hosts: int) -> None:
    """The entries age out after a while without traffic (OVS 3.1 has no
    static ones), and nothing would learn them again: a process of the
    cloud sets them anew every :data:`NEIGH_REFRESH` seconds."""
    name = "ovn-underlay"
    procs.stop(layout.pidfile(name))
    commands = neighbour_commands(layout, switch, hosts, _mac(layout, switch))
    argv = [sys.executable, "-c", KEEPER, json.dumps(commands), str(NEIGH_REFRESH)]
    procs.spawn(argv, layout.pidfile(name), layout.log(name))


def _mac(layout: Layout, switch: ovs.Switch) -> str:
    """The underlay bridge's MAC (its tap's)."""
    bridge = layout.bridge("underlay")
    return ovs.vsctl(switch, "get", "Interface", bridge, "mac_in_use").strip('"\n ')


def remove_underlay(layout: Layout, switch: ovs.Switch) -> None:
    """Delete the bridge while the switch runs: that removes its tap, and
    the addresses with it."""
    ovs.del_bridge(switch, layout.bridge("underlay"))


def underlay_present(layout: Layout) -> bool:
    return Path("/sys/class/net", layout.bridge("underlay")).exists()


def _ofctl(switch: ovs.Switch, *args: str) -> None:
    """``ovs-ofctl`` on a bridge of the shared switch (its ``.mgmt``)."""
    command, bridge, *rest = args
    target = f"unix:{switch.root / f'{bridge}.mgmt'}"
    result = subprocess.run(
        ["ovs-ofctl", command, target, *rest],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise ovs.SwitchError(f"ovs-ofctl {command}: {result.stderr.strip()}")


def _refuse_foreign(bridge: str, addresses: list[str]) -> None:
    """An encap IP already held by another device would take our tunnels
    elsewhere: refuse rather than share it."""
    from pyroute2 import IPRoute  # noqa: PLC0415 - only where it runs

    with IPRoute() as ipr:
        names = {
            link["index"]: link.get_attr("IFLA_IFNAME") for link in ipr.get_links()
        }
        for entry in ipr.get_addr(family=2):
            address = entry.get_attr("IFA_ADDRESS")
            owner = names.get(entry["index"], "?")
            if address in addresses and owner != bridge:
                raise host.HostError(
                    f"tunnel address {address} is already on {owner}; "
                    "free it, or use another --state-dir"
                )


def _set_addresses(bridge: str, addresses: list[str]) -> None:
    """The chassis' IPs as /32s on the bridge's tap, link up: each a tunnel
    endpoint the switch terminates on this bridge."""
    from pyroute2 import IPRoute  # noqa: PLC0415

    with IPRoute() as ipr:
        (index,) = ipr.link_lookup(ifname=bridge)
        present = {
            a.get_attr("IFA_ADDRESS") for a in ipr.get_addr(index=index, family=2)
        }
        for address in addresses:
            if address not in present:
                ipr.addr("add", index=index, address=address, prefixlen=32)
        ipr.link("set", index=index, state="up")
