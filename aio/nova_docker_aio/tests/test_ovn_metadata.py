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

"""The metadata service's parts: the agent's settings, Nova's, the runner
that names the cloud's chassis, and the cleanup of the agent's proxies.

The service itself is proven end to end (``e2e/test_config_drive.py``
fetches 169.254.169.254 from inside a server)."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from nova_docker_aio import ovn_metadata_runner
from nova_docker_aio import services
from nova_docker_aio.layout import PORT_OFFSETS
from nova_docker_aio.layout import PORT_SPAN
from nova_docker_aio.layout import Layout
from nova_docker_aio.services import neutron
from nova_docker_aio.services import nova
from nova_docker_aio.services import ovn
from nova_docker_aio.services import ovn_metadata
from nova_docker_aio.services.ovn_metadata import MetadataAgent
from nova_docker_aio.tests.conf_support import LAYOUT
from nova_docker_aio.tests.conf_support import SECRETS
from nova_docker_aio.tests.conf_support import parse as _parse


def test_agent_and_nova_share_the_secret_and_the_metadata_port() -> None:
    agent = _parse(ovn_metadata.config(LAYOUT, SECRETS["metadata"], "unix:/ovs"))
    conf = _parse(nova.config(LAYOUT, SECRETS, "docker.DockerDriver", "unix:/ovs"))

    assert agent["DEFAULT"]["nova_metadata_port"] == str(LAYOUT.port("nova-metadata"))
    signed = agent["DEFAULT"]["metadata_proxy_shared_secret"]
    assert signed == conf["neutron"]["metadata_proxy_shared_secret"]
    assert signed == SECRETS["metadata"]
    assert conf["neutron"]["service_metadata_proxy"] == "true"


def test_agent_uses_the_clouds_switch_and_southbound_and_its_state_dir() -> None:
    agent = _parse(ovn_metadata.config(LAYOUT, "s", "unix:/ovs"))

    assert agent["ovs"]["ovsdb_connection"] == "unix:/ovs"
    assert agent["ovn"]["ovn_sb_connection"] == f"unix:{LAYOUT.ovn_socket('sb')}"
    assert agent["DEFAULT"]["state_path"].startswith("/state/")


def test_every_privsep_context_of_neutron_starts_without_sudo() -> None:
    from neutron import privileged  # noqa: PLC0415

    sections = {
        ctx.cfg_section
        for ctx in vars(privileged).values()
        if hasattr(ctx, "cfg_section")
    }
    agent = _parse(ovn_metadata.config(LAYOUT, "s", "unix:/ovs"))

    assert sections == set(ovn_metadata.PRIVSEP_SECTIONS)
    for section in sections:
        helper = agent[section]["helper_command"].split()
        assert helper[0].endswith("/privsep-helper"), section
        assert helper[1:] == ["--config-file", str(LAYOUT.ovn_metadata_conf)]


def test_neutron_makes_a_metadata_port_per_network() -> None:
    ml2 = _parse(neutron.ml2_config(LAYOUT))
    assert ml2["ovn"]["ovn_metadata_enabled"] == "true"


def test_the_metadata_port_fits_between_two_clouds() -> None:
    assert PORT_OFFSETS["nova-metadata"] < PORT_SPAN
    assert max(PORT_OFFSETS.values()) < PORT_SPAN


@pytest.mark.parametrize("hosts", [1, 3])
def test_one_agent_per_cloud_with_neutron(hosts: int) -> None:
    table = services.table(with_neutron=True, hosts=hosts)
    agents = [svc for svc in table if isinstance(svc, MetadataAgent)]
    assert len(agents) == 1
    assert not any(
        isinstance(svc, MetadataAgent)
        for svc in services.table(with_neutron=False, hosts=hosts)
    )


def test_nova_serves_the_metadata_api_only_with_neutron() -> None:
    class Ctx:
        with_neutron = True

    assert "nova-metadata" in nova.Nova().ports(Ctx())
    Ctx.with_neutron = False
    assert "nova-metadata" not in nova.Nova().ports(Ctx())


def test_the_runner_gives_the_agent_the_clouds_chassis_and_bridge() -> None:
    """The upstream agent's two lookups of the shared switch answer with
    the chassis and bridge given on the command line."""
    code = (
        "import sys\n"
        "from neutron.cmd.agents import ovn_metadata\n"
        "from neutron.agent.ovn.metadata import agent\n"
        "def report():\n"
        "    a = agent.MetadataAgent.__new__(agent.MetadataAgent)\n"
        "    print(a._get_own_chassis_name(), a._get_ovn_bridge(), sys.argv[1:])\n"
        "ovn_metadata.main = report\n"
        "from nova_docker_aio import ovn_metadata_runner\n"
        "ovn_metadata_runner.main(['--chassis', 'c-1', '--bridge', 'ndaiX',"
        " '--config-file', '/x.ini'])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.split(maxsplit=2) == ["c-1", "ndaiX", "['--config-file', '/x.ini']\n"]
    assert ovn_metadata_runner.__name__ == ovn_metadata.RUNNER


def test_the_agent_serves_host_1s_chassis() -> None:
    layout = Layout(Path("/state"), 30000)
    assert ovn.chassis_name(layout, 1) == layout.compute_host


def test_cleanup_stops_only_this_clouds_haproxy(tmp_path: Path) -> None:
    """A pid file naming a process that is not this cloud's haproxy (here a
    sleep of the test's) is removed, and that process lives on."""
    layout = Layout(tmp_path, 30000)
    pids = layout.ovn_metadata_pids
    pids.mkdir(parents=True)
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        # No real network's id: the cleanup also deletes its namespace.
        network = f"nda-test-{uuid.uuid4()}"
        (pids / f"{network}.pid.haproxy").write_text(f"{bystander.pid}\n")

        assert ovn_metadata.remove_proxies(layout) == [network]

        assert bystander.poll() is None, "a process not the cloud's was stopped"
        assert list(pids.iterdir()) == []
    finally:
        bystander.kill()
        bystander.wait()


def test_cleanup_stops_the_clouds_haproxy(tmp_path: Path) -> None:
    """A process whose command names a config under the agent's state dir
    (as the agent's haproxies do) is stopped."""
    layout = Layout(tmp_path, 30000)
    pids = layout.ovn_metadata_pids
    pids.mkdir(parents=True)
    config = layout.ovn_metadata_proxy_configs / "n.conf"
    # A stand-in named haproxy (exec -a sets its argv[0]) that takes the
    # config path as an argument, as haproxy -f does.
    script = (
        f"exec -a haproxy {sys.executable} -c 'import time; time.sleep(60)' {config}"
    )
    proxy = subprocess.Popen(["bash", "-c", script])
    try:
        _wait_for_argv0(proxy.pid, b"haproxy")
        (pids / f"nda-test-{uuid.uuid4()}.pid.haproxy").write_text(f"{proxy.pid}\n")

        ovn_metadata.remove_proxies(layout)

        assert proxy.wait(timeout=30) != 0
    finally:
        proxy.kill()
        proxy.wait()


def _wait_for_argv0(pid: int, name: bytes) -> None:
    from nova_docker_aio import poll  # noqa: PLC0415

    def renamed() -> bool:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        return cmdline.split(b"\0")[0] == name

    poll.until(renamed, f"process {pid} named {name!r}", 10)


def test_a_namespace_of_the_clouds_networks_still_there_is_named(
    tmp_path: Path,
) -> None:
    """What the e2e cloud's check after ``down`` reports: only the
    namespaces of networks this cloud's agent served, and only while they
    exist."""
    layout = Layout(tmp_path, 30000)
    configs = layout.ovn_metadata_proxy_configs
    configs.mkdir(parents=True)
    mine = "ndatest-" + layout.tag
    (configs / f"{mine}.conf").write_text("")
    (configs / "gone.conf").write_text("")
    name = ovn_metadata.NAMESPACE_PREFIX + mine
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        assert ovn_metadata.namespaces_left(layout) == [name]
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=True)
    assert ovn_metadata.namespaces_left(layout) == []
