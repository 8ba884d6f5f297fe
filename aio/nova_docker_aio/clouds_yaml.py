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

"""The ``clouds.yaml`` that hands a cloud to its users, and the one way to
open a connection from it (the launcher, the benchmarks and the tests)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING
from typing import Any

import yaml

from nova_docker_aio.ini import REGION
from nova_docker_aio.layout import Layout

if TYPE_CHECKING:
    from openstack.connection import Connection

ADMIN_CLOUD = "aio-admin"
DEMO_CLOUD = "aio-demo"


def entries(layout: Layout, secrets: Mapping[str, str]) -> dict[str, Any]:
    """The file's content: one entry for admin, one for demo (pure)."""

    def entry(user: str, project: str) -> dict[str, Any]:
        return {
            "auth": {
                "auth_url": layout.url("keystone"),
                "username": user,
                "password": secrets[user],
                "project_name": project,
                "user_domain_name": "Default",
                "project_domain_name": "Default",
            },
            "region_name": REGION,
            "interface": "public",
            "identity_api_version": 3,
        }

    return {
        "clouds": {
            ADMIN_CLOUD: entry("admin", "admin"),
            DEMO_CLOUD: entry("demo", "demo"),
        }
    }


def write(layout: Layout, secrets: Mapping[str, str]) -> None:
    text = yaml.safe_dump(entries(layout, secrets), sort_keys=False)
    layout.root.mkdir(parents=True, exist_ok=True)
    fd = os.open(layout.clouds_yaml, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)


def settings(layout: Layout, cloud: str = DEMO_CLOUD) -> dict[str, Any]:
    """The entry of ``cloud`` in this cloud's clouds.yaml, as :func:`entries`
    wrote it: its ``auth`` holds the user's name, password and project."""
    return yaml.safe_load(layout.clouds_yaml.read_text())["clouds"][cloud]


def connect(layout: Layout, cloud: str = DEMO_CLOUD, **options: Any) -> Connection:
    """A connection to ``cloud`` of this cloud's clouds.yaml, whatever the
    ``OS_*`` variables say; ``options`` as openstacksdk takes them
    (``compute_api_version="2.56"``)."""
    import openstack  # noqa: PLC0415 - slow import, only when needed

    return openstack.connect(
        load_yaml_config=False,
        load_envvars=False,
        **settings(layout, cloud),
        **options,
    )
