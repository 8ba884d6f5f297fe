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

"""The entrypoints through a real privsep daemon, started without sudo.

The other tests run entrypoints in-process as root; this one proves the
context's capabilities (and nothing more) suffice, the way nova-compute runs
them: ``helper_command`` starting ``privsep-helper`` directly.
"""

from __future__ import annotations

import errno
import pathlib
import subprocess
from collections.abc import Iterator

import pytest
from oslo_config import cfg

import nova_docker
import nova_docker.privsep
import nova_docker.privsep.firewall
import nova_docker.privsep.netns
from nova_docker.tests.functional.network import support

CONTEXT = nova_docker.privsep.nova_docker_privileged


@pytest.fixture
def daemon(monkeypatch: pytest.MonkeyPatch, root: None) -> Iterator[None]:
    # The helper must import this checkout, not an installed copy.
    repo = pathlib.Path(nova_docker.__file__).parent.parent
    monkeypatch.setenv("PYTHONPATH", str(repo))
    cfg.CONF.set_override(
        "helper_command", support.privsep_helper(), CONTEXT.cfg_section
    )
    previous = CONTEXT.client_mode
    CONTEXT.set_client_mode(True)
    try:
        yield
    finally:
        CONTEXT.stop()
        CONTEXT.set_client_mode(previous)
        cfg.CONF.clear_override("helper_command", CONTEXT.cfg_section)


def test_daemon_can_give_a_container_a_configured_interface(containers, daemon):
    container = containers()
    target = support.target_of(container)
    cid, pid = target.container_id, target.pid
    tap, peer = f"tap{support.VIF_ID_PREFIX}dmn", f"ns{support.VIF_ID_PREFIX}dmn"
    try:
        nova_docker.privsep.netns.create_veth(tap, peer, 1400, False)
        nova_docker.privsep.netns.move_to_netns(peer, cid, pid, "eth0")
        nova_docker.privsep.netns.configure_link(
            cid,
            pid,
            "eth0",
            "fa:16:3e:d7:01:01",
            1400,
            ["10.250.8.2/24", "fdd7:250:8::2/64"],
            [("0.0.0.0/0", "10.250.8.1")],
        )

        links = nova_docker.privsep.netns.link_addresses(cid, pid)
        _code, routes = container.exec_run(["ip", "route"])
    finally:
        nova_docker.privsep.netns.delete_link(tap)

    assert CONTEXT.channel is not None  # it really went through the daemon
    assert links["eth0"] == "fa:16:3e:d7:01:01"
    assert b"default via 10.250.8.1 dev eth0" in routes
    assert support.links_in(container) == {"lo"}


def test_daemon_can_add_and_remove_the_forward_rule(daemon):
    bridge = f"qbr{support.VIF_ID_PREFIX}dmn"
    try:
        nova_docker.privsep.firewall.allow_bridged(bridge)
        nova_docker.privsep.firewall.allow_bridged(bridge)
        rules = support.forward_rules()
    finally:
        nova_docker.privsep.firewall.revoke_bridged(bridge)

    assert rules.count(f"nova-docker {bridge}") == 2  # once per family
    assert f"nova-docker {bridge}" not in support.forward_rules()


def test_daemon_refuses_a_host_process_and_the_caller_sees_why(containers, daemon):
    container = containers()
    with subprocess.Popen(["sleep", "300"]) as sleeper:
        try:
            with pytest.raises(nova_docker.privsep.netns.NetnsRefused) as info:
                nova_docker.privsep.netns.link_addresses(container.id, sleeper.pid)
        finally:
            sleeper.kill()

    assert CONTEXT.channel is not None
    assert info.value.errno == errno.EPERM
    assert f"pid {sleeper.pid} for container {container.id}" in str(info.value)
    assert "not in the container's cgroup" in str(info.value)
