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

from pathlib import Path

from nova_docker_aio import layout


def test_state_dir_and_port_base_come_from_flags_before_environment(
    monkeypatch,
) -> None:
    monkeypatch.setenv(layout.STATE_ENV, "/srv/from-env")
    monkeypatch.setenv(layout.PORT_BASE_ENV, "31000")
    assert layout.resolve("/srv/flag", 32000) == layout.Layout(Path("/srv/flag"), 32000)
    assert layout.resolve(None, None) == layout.Layout(Path("/srv/from-env"), 31000)


def test_defaults_without_flags_or_environment(monkeypatch) -> None:
    monkeypatch.delenv(layout.STATE_ENV, raising=False)
    monkeypatch.delenv(layout.PORT_BASE_ENV, raising=False)
    found = layout.resolve(None, None)
    assert found.root == Path(layout.DEFAULT_STATE_DIR)
    assert found.port_base == layout.DEFAULT_PORT_BASE


def test_each_service_gets_its_own_port() -> None:
    cloud = layout.Layout(Path("/x"), 40000)
    ports = [cloud.port(name) for name in layout.PORT_OFFSETS]
    assert len(set(ports)) == len(ports)
    assert cloud.url("nova", "/v2.1") == f"http://127.0.0.1:{cloud.port('nova')}/v2.1"


def test_compute_host_differs_per_state_dir_and_is_a_valid_hostname() -> None:
    first = layout.Layout(Path("/tmp/e2e/Cloud_One"), 1).compute_host
    second = layout.Layout(Path("/var/Cloud_One"), 1).compute_host
    assert first != second
    assert first.startswith("cloud-one-")
    assert all(c.isalnum() or c == "-" for c in first)


def test_paths_that_existing_clouds_rely_on_keep_their_names() -> None:
    # Renaming one would orphan what a cloud made before the rename, or
    # lose track of what Neutron's agent names itself under its state_path.
    cloud = layout.Layout(Path("/s"), 1)
    run = cloud.engine_exec_root(2)
    assert cloud.engine_config(2) == Path("/s/etc/dockerd-2/daemon.json")
    assert cloud.engine_pidfile(2) == run / "dockerd.pid"
    assert cloud.nova_compute_conf(3) == Path("/s/etc/nova/compute-3.conf")
    assert cloud.rabbitmq_cookie == Path("/s/rabbitmq/home/.erlang.cookie")
    metadata = Path("/s/ovn-metadata")
    assert cloud.ovn_metadata_socket == metadata / "metadata_proxy"
    assert cloud.ovn_metadata_pids == metadata / "external/pids"
    assert cloud.ovn_metadata_proxy_configs == metadata / "ovn-metadata-proxy"
