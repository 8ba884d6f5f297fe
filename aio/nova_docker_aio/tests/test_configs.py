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

import configparser
from pathlib import Path

import pytest

from nova_docker_aio import procs
from nova_docker_aio.layout import Layout
from nova_docker_aio.services import glance
from nova_docker_aio.services import keystone
from nova_docker_aio.services import nova
from nova_docker_aio.services import placement
from nova_docker_aio.tests.conf_support import LAYOUT
from nova_docker_aio.tests.conf_support import SECRETS
from nova_docker_aio.tests.conf_support import parse as _parse


def _nova(driver: str, switch_db: str | None = None) -> configparser.RawConfigParser:
    return _parse(nova.config(LAYOUT, SECRETS, driver, switch_db, "unix:///s"))


def test_nova_runs_the_chosen_driver_on_its_own_host_over_fake_transport() -> None:
    conf = _nova("docker.DockerDriver")
    assert conf["DEFAULT"]["compute_driver"] == "docker.DockerDriver"
    assert conf["DEFAULT"]["host"] == LAYOUT.compute_host
    assert conf["DEFAULT"]["transport_url"] == "fake://"
    assert conf["docker"]["api_url"] == "unix:///s"


def test_nova_reaches_the_null_network_not_the_catalog() -> None:
    conf = _nova("fake.FakeDriver")
    assert conf["neutron"]["endpoint_override"] == LAYOUT.url("null-network")


def test_databases_are_reached_over_the_private_socket() -> None:
    conf = _parse(keystone.config(LAYOUT, SECRETS))
    url = conf["database"]["connection"]
    assert url.startswith("mysql+pymysql://keystone:pw-db_keystone@localhost/")
    assert f"unix_socket={LAYOUT.mysql_socket}" in url


def test_glance_accepts_docker_images_into_the_state_dir() -> None:
    conf = _parse(glance.config(LAYOUT, SECRETS, "/paste.ini"))
    assert "docker" in conf["image_format"]["container_formats"].split(",")
    assert conf["fs"]["filesystem_store_datadir"].startswith("/state/")


def test_every_file_path_stays_under_the_state_dir() -> None:
    texts = [
        keystone.config(LAYOUT, SECRETS),
        glance.config(LAYOUT, SECRETS, "/paste.ini"),
        placement.config(LAYOUT, SECRETS),
        nova.config(LAYOUT, SECRETS, "fake.FakeDriver"),
    ]
    for text in texts:
        for section in _parse(text).values():
            for key, value in section.items():
                if key.endswith(("_path", "_datadir", "key_repository")):
                    assert value.startswith("/state/"), (key, value)


def test_nova_brings_back_running_servers_after_a_host_reboot() -> None:
    conf = _nova("docker.DockerDriver")
    assert conf["DEFAULT"]["resume_guests_state_on_host_boot"] == "true"


def test_nova_reads_the_operators_local_conf_after_its_own(tmp_path: Path) -> None:
    layout = Layout(tmp_path, 30000)
    assert nova.config_files(layout) == "api-paste.ini;nova.conf"
    layout.nova_local_conf.parent.mkdir(parents=True)
    layout.nova_local_conf.write_text("[DEFAULT]\n")
    assert nova.config_files(layout) == "api-paste.ini;nova.conf;local.conf"


def test_a_stale_ready_file_does_not_make_a_new_nova_ready(tmp_path: Path) -> None:
    """A machine that went down leaves Nova's ready file: the next start
    waits for its own process, which here exits at once, and says so."""
    layout = Layout(tmp_path, 30000)
    layout.ready_file("nova").parent.mkdir(parents=True)
    layout.ready_file("nova").write_text("ready\n")

    with pytest.raises(procs.ProcessError, match="exited during start-up"):
        nova.start_process(
            layout, with_neutron=False, runner="nova_docker_aio.no_such_runner"
        )
    assert not layout.ready_file("nova").exists()
