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

"""One Open vSwitch for the whole host, shared by every cloud and test run,
and each cloud's bridges on it.

Without the openvswitch kernel module OVS runs the userspace (``netdev``)
datapath, which owns a kernel tap named ``ovs-netdev``: only one
ovs-vswitchd per host can run it.  So the clouds do not each start a switch;
they *acquire* the host's switch, which lives in :data:`SWITCH_DIR`.  The
first user starts ovsdb-server and ovs-vswitchd, every user leaves a claim
file in ``users/``, and the last one to release it stops both daemons by
PID.  Each user adds and removes only its own bridges.  A claim names the
state dir or the PID of its owner, so a claim whose owner is gone (a deleted
state dir, a killed test run) does not keep the switch alive forever.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

from nova_docker_aio import external
from nova_docker_aio import host
from nova_docker_aio import procs
from nova_docker_aio.layout import Layout
from nova_docker_aio.services.base import Context
from nova_docker_aio.services.base import Service
from nova_docker_aio.steps import say
from nova_docker_aio.steps import step

#: Where the host's shared switch keeps its database, sockets, logs and
#: claims.  Under /run: the switch holds nothing worth keeping across a
#: reboot (every ``up`` re-creates its cloud's bridges).
SWITCH_DIR = Path("/run/nova-docker-aio/ovs")
SCHEMA = Path("/usr/share/openvswitch/vswitch.ovsschema")
#: Debian's package, installed on first use; no init script is run by hand.
PACKAGES = ("openvswitch-switch",)
BINARIES = ("ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovs-appctl")
#: The kernel tap of the userspace datapath: its presence means some
#: ovs-vswitchd runs ``netdev`` on this host.
NETDEV_TAP = Path("/sys/class/net/ovs-netdev")


class SwitchError(RuntimeError):
    """The shared switch cannot be started or used; the message says why."""


@dataclasses.dataclass(frozen=True)
class Switch:
    """Paths of the shared switch (pure)."""

    root: Path = SWITCH_DIR

    @property
    def db_sock(self) -> Path:
        return self.root / "db.sock"

    @property
    def connection(self) -> str:
        """The OVSDB connection string for os-vif, ovsdbapp and OVN."""
        return f"unix:{self.db_sock}"

    @property
    def users(self) -> Path:
        return self.root / "users"

    def pidfile(self, daemon: str) -> Path:
        return self.root / f"{daemon}.pid"

    def ctl(self, daemon: str) -> Path:
        return self.root / f"{daemon}.ctl"

    def log(self, daemon: str) -> Path:
        return self.root / f"{daemon}.log"

    @property
    def env(self) -> dict[str, str]:
        """Default paths of the OVS tools: ovs-vswitchd makes each bridge's
        OpenFlow socket ``<bridge>.mgmt`` in ``OVS_RUNDIR``, where the
        ovn-controllers look for it."""
        where = str(self.root)
        return {"OVS_RUNDIR": where, "OVS_LOGDIR": where, "OVS_DBDIR": where}


def missing_binaries() -> list[str]:
    return [name for name in BINARIES if shutil.which(name) is None]


def ensure_installed() -> None:
    if missing_binaries():
        with host.no_service_starts():
            host.apt_install(PACKAGES, why="Neutron's ML2/OVN back end")


def running(switch: Switch) -> bool:
    return all(
        procs.read_pid(switch.pidfile(d)) for d in ("ovsdb-server", "ovs-vswitchd")
    )


def vsctl(switch: Switch, *args: str) -> str:
    """``ovs-vsctl`` against the shared database; its output."""
    argv = ["ovs-vsctl", f"--db={switch.connection}", "--timeout=20", *args]
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SwitchError(f"ovs-vsctl {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


@contextlib.contextmanager
def locked(switch: Switch) -> Iterator[None]:
    """Serialise acquire/release, and a cloud's choice of address range,
    across processes (clouds, test runs); not reentrant."""
    switch.root.mkdir(parents=True, exist_ok=True)
    with open(switch.root / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _claim_alive(claim: Path) -> bool:
    """A claim holds ``state <dir>`` or ``pid <pid> <start time>``."""
    try:
        kind, *value = claim.read_text().split()
    except OSError:
        return False
    if kind == "state":
        return Path(value[0]).is_dir()
    if kind == "pid":
        return procs.is_running(int(value[0]), value[1])
    return False


def live_claims(switch: Switch) -> dict[str, str]:
    """The names and contents of the claims whose owner still exists."""
    if not switch.users.is_dir():
        return {}
    return {
        claim.name: claim.read_text().strip()
        for claim in switch.users.iterdir()
        if _claim_alive(claim)
    }


def vswitchd_pids() -> list[int]:
    """Every ovs-vswitchd in this network namespace, ours or not: the
    datapath's tap belongs to the one of its own namespace."""
    here = os.readlink("/proc/self/ns/net")
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() == "ovs-vswitchd" and (
                    os.readlink(entry / "ns" / "net") == here
                ):
                    found.append(int(entry.name))
    return found


def internal_ports(db: Path) -> list[str]:
    """The internal ports (each bridge's own among them) that a switch
    database names; read offline, so it works after the switch died."""
    if not db.exists():
        return []
    query = json.dumps(
        [
            "Open_vSwitch",
            {
                "op": "select",
                "table": "Interface",
                "where": [["type", "==", "internal"]],
                "columns": ["name"],
            },
        ]
    )
    result = subprocess.run(
        ["ovsdb-tool", "query", str(db), query],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        return []
    return [row["name"] for row in json.loads(result.stdout)[0].get("rows", [])]


def clear_dead_datapath(switch: Switch) -> list[str]:
    """Remove what a switch killed without cleanup left in the kernel.

    The userspace datapath's tap and every internal port's tap are
    persistent: a vswitchd that dies by SIGKILL (an OOM kill, a CI runner
    ending the job) leaves them behind, and the next start would take the
    datapath's tap for another switch's.  With no ovs-vswitchd alive on the
    host they are garbage, so the taps our own database names and the
    datapath's go.  While any ovs-vswitchd lives, the tap is its, and this
    refuses.  Returns the names removed.
    """
    if not NETDEV_TAP.exists():
        return []
    if vswitchd_pids():
        raise SwitchError(
            "another ovs-vswitchd (not started by nova-docker-aio) runs the "
            "userspace datapath on this host; stop it first"
        )
    removed = []
    for name in [*internal_ports(switch.root / "conf.db"), NETDEV_TAP.name]:
        if (NETDEV_TAP.parent / name).exists():
            subprocess.run(
                ["ip", "link", "delete", name], capture_output=True, check=False
            )
            removed.append(name)
    return removed


def _start(switch: Switch) -> None:
    """A fresh database and both daemons; stale state of a crash goes."""
    for daemon in ("ovsdb-server", "ovs-vswitchd"):
        procs.stop(switch.pidfile(daemon), timeout=10)
    removed = clear_dead_datapath(switch)
    if removed:
        say(f"  [ovs] removed what a killed switch left: {', '.join(removed)}")
    db = switch.root / "conf.db"
    db.unlink(missing_ok=True)
    # A killed daemon leaves its sockets; waiting for them would then not
    # wait for the new daemon at all.
    for stale in (
        switch.db_sock,
        switch.ctl("ovsdb-server"),
        switch.ctl("ovs-vswitchd"),
    ):
        stale.unlink(missing_ok=True)
    log = switch.log("ovsdb-server")
    procs.run(["ovsdb-tool", "create", str(db), str(SCHEMA)], log)
    pidfile = switch.pidfile("ovsdb-server")
    procs.spawn(
        [
            "ovsdb-server",
            str(db),
            f"--remote=punix:{switch.db_sock}",
            f"--unixctl={switch.ctl('ovsdb-server')}",
            "--no-chdir",
        ],
        pidfile,
        log,
        env=switch.env,
    )
    procs.wait_for(switch.db_sock.exists, pidfile, 30, "ovsdb-server")
    vsctl(switch, "--no-wait", "init")
    pidfile = switch.pidfile("ovs-vswitchd")
    procs.spawn(
        [
            "ovs-vswitchd",
            switch.connection,
            f"--unixctl={switch.ctl('ovs-vswitchd')}",
            "--no-chdir",
        ],
        pidfile,
        switch.log("ovs-vswitchd"),
        env=switch.env,
    )
    procs.wait_for(switch.ctl("ovs-vswitchd").exists, pidfile, 30, "ovs-vswitchd")


def _stop(switch: Switch) -> None:
    """Delete every bridge while ovs-vswitchd runs (netdev bridges are
    kernel taps it removes only then), then stop both daemons by PID."""
    if running(switch):
        with contextlib.suppress(SwitchError):
            for bridge in vsctl(switch, "list-br").split():
                vsctl(switch, "--if-exists", "del-br", bridge)
        subprocess.run(
            ["ovs-appctl", "-t", str(switch.ctl("ovs-vswitchd")), "exit", "--cleanup"],
            capture_output=True,
            timeout=20,
            check=False,
        )
    for daemon in ("ovs-vswitchd", "ovsdb-server"):
        procs.stop(switch.pidfile(daemon), timeout=10)


def acquire(name: str, owner: str, switch: Switch | None = None) -> Switch:
    """Claim the shared switch for ``name``, starting it if nobody runs it.

    ``owner`` is ``state <dir>`` or ``pid <pid> <start time>`` (see
    :func:`pid_owner`).
    """
    switch = switch or Switch()
    with locked(switch):
        if not running(switch):
            _start(switch)
        switch.users.mkdir(parents=True, exist_ok=True)
        (switch.users / name).write_text(owner + "\n")
    return switch


def release(name: str, switch: Switch | None = None) -> bool:
    """Drop ``name``'s claim; stop the switch when no live claim is left.

    Returns whether the switch was stopped.
    """
    switch = switch or Switch()
    with locked(switch):
        (switch.users / name).unlink(missing_ok=True)
        if live_claims(switch):
            return False
        _stop(switch)
        for claim in switch.users.glob("*") if switch.users.is_dir() else ():
            claim.unlink(missing_ok=True)
        return True


def pid_owner(pid: int | None = None) -> str:
    """A claim owner for a process rather than a state dir (test runs)."""
    pid = pid or os.getpid()
    return f"pid {pid} {procs.start_time(pid)}"


def add_bridge(switch: Switch, name: str) -> None:
    """A ``netdev`` bridge (idempotent); its kernel tap has the same name."""
    vsctl(
        switch, "--may-exist", "add-br", name,
        "--", "set", "Bridge", name, "datapath_type=netdev",
    )  # fmt: skip


def del_bridge(switch: Switch, name: str) -> None:
    vsctl(switch, "--if-exists", "del-br", name)


class OpenVSwitch(Service):
    """A cloud's share of the host's switch: its claim, its two bridges, the
    host's address on its external bridge and the guard that keeps tenant
    traffic arriving there away from the host's services."""

    name = "ovs"
    daemon = False

    def ensure_installed(self, ctx: Context) -> None:
        ensure_installed()
        external.ensure_installed()

    def start(self, ctx: Context) -> None:
        layout = ctx.layout
        switch = Switch()
        with step(self.name, "shared switch and bridges", switch.log("ovs-vswitchd")):
            acquire(claim_name(layout), f"state {layout.root}", switch)
            # Two clouds coming up at once must not pick the same range.
            with locked(switch):
                ranges = external.choose(layout, taken_elsewhere(layout, switch))
                add_bridge(switch, layout.bridge("int"))
                add_bridge(switch, layout.bridge("ext"))
                external.configure_host_side(layout, ranges)
                external.guard_host(layout)

    def stop(self, ctx: Context) -> None:
        """Remove this cloud's bridges and give back its claim; the last
        user stops the switch."""
        layout, switch = ctx.layout, Switch()
        if not claimed(layout):
            return
        bridges = [layout.bridge(role) for role in ("int", "ext")]
        with step(self.name, f"remove bridges {', '.join(bridges)}"):
            if running(switch):
                for bridge in bridges:
                    del_bridge(switch, bridge)
            stopped = release(claim_name(layout), switch)
            external.unguard_host(layout)
        if stopped:
            say("  [ovs] no cloud uses the shared switch any more: stopped it")


def claim_name(layout: Layout) -> str:
    """A cloud's claim on the shared switch."""
    return f"cloud-{layout.compute_host}"


def claimed(layout: Layout, switch: Switch | None = None) -> bool:
    return ((switch or Switch()).users / claim_name(layout)).exists()


def taken_elsewhere(layout: Layout, switch: Switch) -> set[int]:
    """Address range indices of the other clouds that claim the switch."""
    taken = set()
    for owner in live_claims(switch).values():
        kind, _, where = owner.partition(" ")
        if kind == "state" and Path(where) != layout.root:
            index = external.recorded(Layout(Path(where), layout.port_base))
            if index is not None:
                taken.add(index)
    return taken
