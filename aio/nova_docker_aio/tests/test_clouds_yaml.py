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

from __future__ import annotations

from pathlib import Path
from unittest import mock

from nova_docker_aio import clouds_yaml
from nova_docker_aio.layout import Layout

SECRETS = {"admin": "admin-secret", "demo": "demo-secret"}


def _written(tmp_path: Path) -> Layout:
    layout = Layout(tmp_path / "cloud", 30000)
    clouds_yaml.write(layout, SECRETS)
    return layout


def test_settings_read_back_each_users_entry(tmp_path) -> None:
    layout = _written(tmp_path)
    admin = clouds_yaml.settings(layout, clouds_yaml.ADMIN_CLOUD)["auth"]
    demo = clouds_yaml.settings(layout)["auth"]
    assert (admin["username"], admin["password"]) == ("admin", "admin-secret")
    assert (demo["project_name"], demo["password"]) == ("demo", "demo-secret")
    assert admin["auth_url"] == layout.url("keystone")


def test_the_file_is_for_its_owner_only(tmp_path) -> None:
    layout = _written(tmp_path)
    assert layout.clouds_yaml.stat().st_mode & 0o777 == 0o600


def test_connect_ignores_the_environment_and_passes_the_entry(tmp_path) -> None:
    layout = _written(tmp_path)
    with mock.patch("openstack.connect") as connect:
        clouds_yaml.connect(layout, compute_api_version="2.56")
    connect.assert_called_once_with(
        load_yaml_config=False,
        load_envvars=False,
        compute_api_version="2.56",
        **clouds_yaml.settings(layout),
    )
