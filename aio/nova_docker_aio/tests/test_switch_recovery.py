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

"""A switch killed without cleanup (SIGKILL: an OOM kill, a CI runner ending
the job) leaves persistent kernel taps.  The next ``up`` must clear them and
start, not mistake them for another switch; a switch that does run stays
refused.

Each scenario runs in a network namespace of its own (``ip netns exec``
remounts /sys for it), with a switch dir of its own: the host's shared
switch, and any cloud on it, are never touched.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from nova_docker_aio.services import ovs

#: Runs inside the namespace: acquire, add a bridge, kill both daemons with
#: SIGKILL, then acquire again; prints what the kernel held at each point.
KILL_AND_RESTART = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from nova_docker_aio import procs
    from nova_docker_aio.services import ovs

    switch = ovs.Switch(Path(sys.argv[1]))
    ovs.acquire("first", ovs.pid_owner(), switch)
    ovs.add_bridge(switch, "ndrbr0")
    for daemon in ("ovs-vswitchd", "ovsdb-server"):
        procs.kill(switch.pidfile(daemon))
    links = sorted(os.listdir("/sys/class/net"))
    print("after-kill", " ".join(links))
    ovs.acquire("second", ovs.pid_owner(), switch)
    print("restarted", ovs.running(switch))
    print("bridges", ovs.vsctl(switch, "list-br").strip() or "-")
    links = sorted(os.listdir("/sys/class/net"))
    print("after-restart", " ".join(links))
    ovs.release("first", switch)
    print("stopped", ovs.release("second", switch))
    """
)

#: Runs inside the namespace with a foreign vswitchd already running there.
REFUSE_A_LIVE_SWITCH = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from nova_docker_aio.services import ovs

    try:
        ovs.acquire("mine", ovs.pid_owner(), ovs.Switch(Path(sys.argv[1])))
    except ovs.SwitchError as exc:
        print("refused", exc)
    else:
        print("acquired")
    """
)


def _require_root_and_ovs() -> None:
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    missing = ovs.missing_binaries()
    if missing:
        pytest.skip(f"Open vSwitch is not installed ({', '.join(missing)})")


@pytest.fixture
def netns() -> Iterator[str]:
    _require_root_and_ovs()
    name = f"ndr-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)


def _in_netns(netns: str, script: str, *args: str) -> dict[str, str]:
    aio_root = Path(ovs.__file__).resolve().parents[2]
    result = subprocess.run(
        ["ip", "netns", "exec", netns, sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(aio_root)},
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = (line.partition(" ") for line in result.stdout.splitlines())
    return {key: value for key, _, value in lines if key}


def test_taps_of_a_killed_switch_are_cleared_and_it_starts_again(
    netns: str, tmp_path: Path
) -> None:
    seen = _in_netns(netns, KILL_AND_RESTART, str(tmp_path / "switch"))

    # The premise: SIGKILL leaves the datapath's and the bridge's taps.
    assert {"ovs-netdev", "ndrbr0"} <= set(seen["after-kill"].split())
    assert seen["restarted"] == "True"
    # A fresh database: the dead switch's bridge is not resurrected, and
    # its tap is gone from the kernel.
    assert seen["bridges"] == "-"
    assert "ndrbr0" not in seen["after-restart"].split()
    assert seen["stopped"] == "True"


def test_a_running_foreign_switch_is_refused_by_name(
    netns: str, tmp_path: Path
) -> None:
    # Another switch on the userspace datapath: one netdev bridge is what
    # makes it own the datapath's tap.
    foreign = ovs.Switch(tmp_path / "foreign")
    _in_netns(
        netns,
        "import sys; from pathlib import Path; from nova_docker_aio.services "
        "import ovs; s = ovs.Switch(Path(sys.argv[1])); "
        "ovs.acquire('x', 'state /', s); ovs.add_bridge(s, 'ndrforeign')",
        str(foreign.root),
    )
    try:
        seen = _in_netns(netns, REFUSE_A_LIVE_SWITCH, str(tmp_path / "mine"))
        assert "another ovs-vswitchd" in seen["refused"]
    finally:
        # Both, so that a wrongly acquired switch does not outlive the test.
        for root in (foreign.root, tmp_path / "mine"):
            _in_netns(
                netns,
                "import sys; from pathlib import Path; from nova_docker_aio."
                "services import ovs; ovs._stop(ovs.Switch(Path(sys.argv[1])))",
                str(root),
            )
