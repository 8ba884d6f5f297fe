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

import socket
import subprocess
from pathlib import Path

import pytest

from nova_docker_aio import host
from nova_docker_aio.layout import Layout


def test_not_being_root_is_refused_with_the_reason(monkeypatch) -> None:
    monkeypatch.setattr(host.os, "geteuid", lambda: 1000)
    with pytest.raises(host.HostError, match="starting dockerd needs root"):
        host.require_root("starting dockerd")


def test_a_taken_port_is_named_with_its_service() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        layout = Layout(Path("/x"), port - 2)  # glance is base + 2
        with pytest.raises(host.HostError, match=f"glance \\({port}\\)"):
            host.check_ports_free(layout, ["glance"])


def test_installing_without_apt_get_says_what_to_install(monkeypatch) -> None:
    monkeypatch.setattr(host.shutil, "which", lambda name: None)
    with pytest.raises(host.HostError, match=r"needs docker\.io; install it"):
        host.apt_install(["docker.io"], why="the Docker engine")


def test_package_installs_start_no_system_daemons(tmp_path: Path, monkeypatch) -> None:
    policy = tmp_path / "policy-rc.d"
    monkeypatch.setattr(host, "POLICY_RC_D", policy)
    with host.no_service_starts():
        assert subprocess.run([str(policy)], check=False).returncode == 101
    assert not policy.exists()


def test_an_existing_service_policy_is_left_alone(tmp_path: Path, monkeypatch) -> None:
    policy = tmp_path / "policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 0\n")
    monkeypatch.setattr(host, "POLICY_RC_D", policy)
    with host.no_service_starts():
        pass
    assert policy.read_text() == "#!/bin/sh\nexit 0\n"
