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

"""Two compute hosts of one cloud are two OVN chassis on the shared switch,
and their ports on one network reach each other through a Geneve tunnel.

Real OVS and OVN, no Nova: the cloud's NB/SB databases and ovn-northd, the
underlay and two chassis through the launcher's services, and a logical
switch with one port per chassis, each an internal port moved into a
network namespace of its own.  The test claims the host's shared switch
like a cloud (a demo cloud may be using it) and adds only bridges named
after its own state dir.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from nova_docker_aio import external
from nova_docker_aio import poll
from nova_docker_aio import procs
from nova_docker_aio.layout import Layout
from nova_docker_aio.services import ovn
from nova_docker_aio.services import ovs
from nova_docker_aio.services.base import Context

HOSTS = 2
#: The tenant network of the test, inside the namespaces only.
SUBNET = "10.199.77"
#: UDP echo, in the namespace of the port spoken to: Python rather than
#: ping, which a host need not have.
ECHO_PORT = 7777
ECHO_SERVER = textwrap.dedent(
    """
    import socket, sys
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((sys.argv[1], int(sys.argv[2])))
    while True:
        data, peer = sock.recvfrom(64)
        sock.sendto(data, peer)
    """
)
ECHO_CLIENT = textwrap.dedent(
    """
    import socket, sys
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(1)
    sock.sendto(b"over geneve", (sys.argv[1], int(sys.argv[2])))
    sys.exit(0 if sock.recv(64) == b"over geneve" else 1)
    """
)
#: Pure names of a cloud of one host and of several (no state dir needed).
LAYOUT = Layout(Path("/state"), 30000)


def test_one_host_keeps_the_single_chassis_names_and_loopback() -> None:
    settings = ovn.chassis_settings(LAYOUT, 1, 1)
    assert settings == ovn.chassis_settings(LAYOUT)
    assert ovn.chassis_name(LAYOUT, 1) == LAYOUT.compute_host
    assert ovn.integration_bridge(LAYOUT, 1) == LAYOUT.bridge("int")
    assert ovn.controller_name(1) == "ovn-controller"
    suffix = f"-{LAYOUT.compute_host}"
    assert settings[f"ovn-encap-ip{suffix}"] == "127.0.0.1"
    assert settings[f"ovn-cms-options{suffix}"] == "enable-chassis-as-gw"
    assert f"ovn-set-local-ip{suffix}" not in settings
    assert "ovn-underlay" not in ovn.Controller().start_after


def test_further_hosts_are_their_own_chassis_and_only_host_1_a_gateway(
    tmp_path: Path,
) -> None:
    layout = Layout(tmp_path, 30000)
    layout.network_index.write_text("3\n")
    second = ovn.chassis_name(layout, 2)
    assert second == f"{layout.compute_host}-2"
    bridges = {ovn.integration_bridge(layout, i) for i in range(1, 100)}
    assert len(bridges) == 99
    assert all(len(name) <= 15 and name.startswith("nda") for name in bridges)
    first = ovn.chassis_settings(layout, 1, HOSTS)
    other = ovn.chassis_settings(layout, 2, HOSTS)
    assert first[f"ovn-encap-ip-{layout.compute_host}"] == "198.18.3.1"
    assert other[f"ovn-encap-ip-{second}"] == "198.18.3.2"
    assert other[f"ovn-set-local-ip-{second}"] == "true"
    assert other[f"ovn-bridge-{second}"] == ovn.integration_bridge(layout, 2)
    assert f"ovn-cms-options-{second}" not in other
    assert "ovn-underlay" in ovn.Controller(2, HOSTS).start_after


def _require_root_and_ovn() -> None:
    if os.geteuid() != 0:
        pytest.skip("bridges and network namespaces need root")
    missing = [*ovs.missing_binaries()]
    missing += [b for b in ("ovn-controller", "ovn-northd") if not shutil.which(b)]
    if missing:
        pytest.skip(f"OVS/OVN are not installed ({', '.join(missing)})")


@dataclass
class Cloud:
    ctx: Context
    switch: ovs.Switch
    controllers: list[ovn.Controller]
    namespaces: list[str]
    #: Processes the test started (echo servers), stopped by their PID.
    started: list[subprocess.Popen]

    @property
    def layout(self) -> Layout:
        return self.ctx.layout

    def nbctl(self, *args: str) -> str:
        db = f"--db=unix:{self.layout.ovn_socket('nb')}"
        return _run("ovn-nbctl", db, "--timeout=10", *args)

    def port(self, index: int) -> str:
        """Host ``index``'s internal port: a kernel tap named like the
        cloud's devices, so leftovers would be found."""
        return f"ndap{self.layout.tag}{index}"


def _run(*argv: str) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"{argv}: {result.stderr}"
    return result.stdout


@pytest.fixture
def cloud() -> Iterator[Cloud]:
    _require_root_and_ovn()
    with running_cloud() as made:
        yield made


@contextlib.contextmanager
def running_cloud() -> Iterator[Cloud]:
    """The cloud's OVN, its underlay and two chassis; on exit everything
    stopped and removed, as ``down`` would."""
    # Short: unix socket paths under it must fit in 108 bytes.
    root = Path(tempfile.mkdtemp(prefix="ndaovn-", dir="/tmp"))
    layout = Layout(root, 30000)
    ctx = Context(layout, "fake", with_neutron=True)
    # Claimed under the cloud's own claim name, as its "ovs" service would,
    # so that the services' stop finds it; owned by this test process.
    switch = ovs.acquire(ovs.claim_name(layout), ovs.pid_owner())
    services = [ovn.Database("nb"), ovn.Database("sb"), ovn.Northd()]
    controllers = [ovn.Controller(i, HOSTS) for i in range(1, HOSTS + 1)]
    underlay = ovn.Underlay(HOSTS)
    made = Cloud(ctx, switch, controllers, [], [])
    try:
        with ovs.locked(switch):
            external.choose(layout, ovs.taken_elsewhere(layout, switch))
        # What the cloud's "ovs" service does: host 1's integration bridge.
        ovs.add_bridge(switch, layout.bridge("int"))
        for service in (*services, underlay):
            service.setup(ctx)
            service.start(ctx)
        for controller in controllers:
            controller.setup(ctx)
            controller.start(ctx)
        for controller in controllers:
            controller.bootstrap(ctx)
        yield made
    finally:
        _tear_down(made, [*services, underlay])


def _tear_down(cloud: Cloud, services: list) -> None:
    ctx, switch = cloud.ctx, cloud.switch
    for process in cloud.started:
        process.kill()
        process.wait()
    for index in range(1, HOSTS + 1):
        ovs.vsctl(switch, "--if-exists", "del-port", cloud.port(index))
    for namespace in cloud.namespaces:
        subprocess.run(["ip", "netns", "delete", namespace], check=False)
    for controller in reversed(cloud.controllers):
        controller.stop(ctx)
    for service in reversed(services):
        service.stop(ctx)
    ovs.del_bridge(switch, ctx.layout.bridge("int"))
    ovs.release(ovs.claim_name(ctx.layout), switch)
    shutil.rmtree(ctx.layout.root, ignore_errors=True)


def _plug(cloud: Cloud, index: int) -> str:
    """Logical port ``p<index>`` on host ``index``: an internal port of its
    integration bridge with the port's ``iface-id``, in a namespace of its
    own with the port's MAC and address.  Returns the namespace."""
    lsp, tap = f"p{index}", cloud.port(index)
    mac, address = f"02:00:00:00:77:{index:02x}", f"{SUBNET}.{index}"
    chassis = ovn.chassis_name(cloud.layout, index)
    cloud.nbctl("lsp-add", "net", lsp)
    cloud.nbctl("lsp-set-addresses", lsp, f"{mac} {address}")
    cloud.nbctl("lsp-set-options", lsp, f"requested-chassis={chassis}")
    bridge = ovn.integration_bridge(cloud.layout, index)
    ovs.vsctl(
        cloud.switch, "add-port", bridge, tap, "--", "set", "Interface", tap,
        "type=internal", f"external_ids:iface-id={lsp}",
    )  # fmt: skip
    namespace = f"ndaovn-{uuid.uuid4().hex[:8]}"
    _run("ip", "netns", "add", namespace)
    cloud.namespaces.append(namespace)
    _run("ip", "link", "set", tap, "netns", namespace)
    inside = ("ip", "netns", "exec", namespace, "ip")
    _run(*inside, "link", "set", tap, "address", mac)
    _run(*inside, "addr", "add", f"{address}/24", "dev", tap)
    _run(*inside, "link", "set", tap, "up")
    return namespace


def _echo_server(cloud: Cloud, namespace: str, address: str) -> None:
    argv = ["ip", "netns", "exec", namespace, sys.executable, "-c", ECHO_SERVER,
            address, str(ECHO_PORT)]  # fmt: skip
    cloud.started.append(subprocess.Popen(argv))


def _reaches(namespace: str, address: str, attempts: int = 1) -> bool:
    """Whether a datagram from ``namespace`` to ``address`` is echoed back
    ``attempts`` times in a row (one second each)."""
    argv = ["ip", "netns", "exec", namespace, sys.executable, "-c", ECHO_CLIENT,
            address, str(ECHO_PORT)]  # fmt: skip
    return all(
        subprocess.run(argv, capture_output=True, check=False).returncode == 0
        for _ in range(attempts)
    )


def _bound_chassis(cloud: Cloud, lsp: str) -> str:
    """The name of the chassis the SB binds ``lsp`` to ('' if none)."""
    uid = ovn.sbctl(
        cloud.layout, "--bare", "--columns=chassis", "find", "Port_Binding",
        f"logical_port={lsp}",
    ).strip()  # fmt: skip
    if not uid:
        return ""
    return ovn.sbctl(cloud.layout, "get", "Chassis", uid, "name").strip().strip('"')


def _loopback_flow(cloud: Cloud, present: bool) -> None:
    bridge = cloud.layout.bridge("underlay")
    if present:
        ovn._ofctl(cloud.switch, "add-flow", bridge, ovn.LOOPBACK_FLOW)
    else:
        match = ovn.LOOPBACK_FLOW.partition(",actions=")[0]
        ovn._ofctl(cloud.switch, "del-flows", bridge, "--strict", match)


def _leftovers(layout: Layout, switch: ovs.Switch) -> list[str]:
    # Our release may have been the last claim: then the switch is gone.
    bridges = ovs.vsctl(switch, "list-br").split() if ovs.running(switch) else []
    links = os.listdir("/sys/class/net")
    return [name for name in (*bridges, *links) if layout.tag in name]


def test_ports_on_two_chassis_reach_each_other_through_a_tunnel(
    cloud: Cloud,
) -> None:
    layout, switch = cloud.layout, cloud.switch
    cloud.nbctl("ls-add", "net")
    first, second = _plug(cloud, 1), _plug(cloud, 2)
    _echo_server(cloud, second, f"{SUBNET}.2")
    poll.until(
        lambda: _bound_chassis(cloud, "p2"), "p2 bound", timeout=30, interval=0.5
    )
    bound = {_bound_chassis(cloud, f"p{i}") for i in (1, 2)}
    assert bound == {ovn.chassis_name(layout, 1), ovn.chassis_name(layout, 2)}

    # The first packets may race the flows being installed (and the server).
    there = f"{SUBNET}.2"
    poll.until(lambda: _reaches(first, there), "echo over Geneve", 30, interval=1)
    assert _reaches(first, there, attempts=3)
    # It did cross a tunnel: each chassis has one, from its own address.
    tunnels = ovs.vsctl(
        switch, "--bare", "--columns=options", "find", "Interface", "type=geneve"
    )
    for index in (1, 2):
        assert f"local_ip={ovn.encap_ip(layout, index, HOSTS)}" in tunnels

    # Negative control: without the loopback flow the tunnel's packets end
    # in the kernel tap and nothing crosses.
    _loopback_flow(cloud, present=False)
    assert not _reaches(first, there, attempts=3)
    _loopback_flow(cloud, present=True)
    poll.until(lambda: _reaches(first, there), "echo again", 10, interval=1)


def test_down_leaves_nothing_of_the_cloud_on_the_switch() -> None:
    _require_root_and_ovn()
    with running_cloud() as made:
        made.nbctl("ls-add", "net")
        _plug(made, 1)
        _plug(made, 2)
        layout, switch, namespaces = made.layout, made.switch, list(made.namespaces)
        daemons = []
        for name in ("ovn-underlay", *(c.name for c in made.controllers)):
            pid = procs.read_pid(layout.pidfile(name))
            assert pid
            daemons.append((pid, procs.start_time(pid)))
        assert _leftovers(layout, switch)

    assert _leftovers(layout, switch) == []
    assert not set(namespaces) & set(_run("ip", "netns", "list").split())
    assert not any(procs.is_running(pid, started) for pid, started in daemons)
    assert not (switch.users / ovs.claim_name(layout)).exists()
    if ovs.running(switch):
        for column in ("external_ids", "other_config"):
            keys = ovn.row_keys(switch, column)
            assert not [key for key in keys if layout.compute_host in key]


def test_chassis_of_clouds_that_are_gone_are_pruned_and_live_ones_kept() -> None:
    """A cloud killed without ``down`` leaves its chassis' settings and its
    controller index (one of 36) on the shared switch; the next chassis set
    up removes them, and nothing of a cloud that still holds its claim."""
    _require_root_and_ovn()
    with running_cloud() as made:
        switch, live = made.switch, made.layout.compute_host
        dead = f"ndtdead-{uuid.uuid4().hex[:6]}"
        planted = {
            "external_ids": [f"ovn-bridge-{dead}", f"hostname-{dead}-2"],
            "other_config": [f"ovn-chassis-idx-{dead}", f"ovn-chassis-idx-{dead}-2"],
        }
        for column, keys in planted.items():
            ovs.vsctl(
                switch, "set", "Open_vSwitch", ".",
                *(f'{column}:"{key}"="x"' for key in keys),
            )  # fmt: skip
        ours_before = _keys_of(switch, live)

        with ovs.locked(switch):
            removed = ovn.prune_dead_chassis(switch, ovn.live_hosts(switch))

        assert set(planted["external_ids"] + planted["other_config"]) <= set(removed)
        assert not [key for key in removed if live in key]
        assert _keys_of(switch, live) == ours_before
        assert f"ovn-chassis-idx-{live}-2" in ours_before


def _keys_of(switch: ovs.Switch, compute_host: str) -> set[str]:
    return {
        key
        for column in ("external_ids", "other_config")
        for key in ovn.row_keys(switch, column)
        if compute_host in key
    }


def test_free_controller_index_follows_ovn_controllers_own_order() -> None:
    assert ovn.free_chassis_index([]) == ""
    assert ovn.free_chassis_index(["", "0", "2"]) == "1"
    assert ovn.free_chassis_index(["", *"0123456789"]) == "a"
    with pytest.raises(ovs.SwitchError, match="indices of the shared switch"):
        ovn.free_chassis_index(ovn.CHASSIS_INDICES)


def test_each_chassis_has_its_own_index_before_its_controller_starts() -> None:
    """ovn-controller picks its index without a lock: two started at once
    took the same one, and their tunnel ports to each other then shared a
    name, so neither tunnel existed.  The launcher reserves them first, past
    those other chassis on the switch hold."""
    _require_root_and_ovn()
    root = Path(tempfile.mkdtemp(prefix="ndaovn-", dir="/tmp"))
    layout = Layout(root, 30000)
    ctx = Context(layout, "fake", with_neutron=True)
    switch = ovs.acquire(ovs.claim_name(layout), ovs.pid_owner())
    # Indices of chassis that stay alive (they name this live cloud).
    held = {
        f"ovn-chassis-idx-{layout.compute_host}-{i}": v for i, v in ((8, ""), (9, "0"))
    }
    controllers = [ovn.Controller(i, HOSTS) for i in range(1, HOSTS + 1)]
    try:
        with ovs.locked(switch):
            external.choose(layout, ovs.taken_elsewhere(layout, switch))
        ovs.vsctl(
            switch, "set", "Open_vSwitch", ".",
            *(f'other_config:"{key}"="{value}"' for key, value in held.items()),
        )  # fmt: skip
        for controller in controllers:
            controller.setup(ctx)

        indices = ovn.row_map(switch, "other_config")
        keys = [f"ovn-chassis-idx-{ovn.chassis_name(layout, i)}"
                for i in range(1, HOSTS + 1)]  # fmt: skip
        ours = [indices.get(key) for key in keys]
        # Other clouds on this switch (a demo) hold indices too: ours are
        # the first free ones past theirs and the two planted.
        others = {
            value
            for key, value in indices.items()
            if key.startswith(ovn.CHASSIS_INDEX) and key not in keys
        }
        assert {"", "0"} <= others
        free = [index for index in ovn.CHASSIS_INDICES if index not in others]
        assert ours == free[:HOSTS]
        assert not any(procs.read_pid(layout.pidfile(c.name)) for c in controllers)
    finally:
        for controller in reversed(controllers):
            controller.stop(ctx)
        for key in held:
            ovs.vsctl(switch, "remove", "Open_vSwitch", ".", "other_config", key)
        ovs.release(ovs.claim_name(layout), switch)
        shutil.rmtree(root, ignore_errors=True)

    if ovs.running(switch):
        assert not [
            k for k in ovn.row_keys(switch, "other_config") if layout.compute_host in k
        ]


def test_the_last_chassis_up_waits_for_every_tunnel_and_names_a_missing_one(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    layout, switch = cloud.layout, cloud.switch
    assert ovn.missing_tunnels(layout, switch, HOSTS) == []
    # A third host that never came: both existing ones lack a tunnel to it.
    missing = ovn.missing_tunnels(layout, switch, HOSTS + 1)
    assert (1, 3) in missing and (2, 3) in missing
    monkeypatch.setattr(ovn, "TUNNEL_TIMEOUT", 1)
    with pytest.raises(ovs.SwitchError, match="from host 1 to host 3"):
        ovn.wait_for_tunnels(layout, switch, HOSTS + 1)
