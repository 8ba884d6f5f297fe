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

"""Configuration text as oslo.config reads it, and the sections every
service's configuration shares (pure)."""

from __future__ import annotations

from collections.abc import Mapping

from nova_docker_aio.layout import Layout

Sections = Mapping[str, Mapping[str, str]]

REGION = "RegionOne"
SERVICE_PROJECT = "service"


def render(sections: Sections) -> str:
    """INI text without interpolation, one section after another."""
    out = []
    for name, options in sections.items():
        out.append(f"[{name}]")
        out.extend(f"{key} = {value}" for key, value in options.items())
        out.append("")
    return "\n".join(out)


def authtoken(layout: Layout, user: str, password: str) -> dict[str, str]:
    """keystonemiddleware and service-client options for a service user."""
    return {
        "www_authenticate_uri": layout.url("keystone"),
        "auth_url": layout.url("keystone"),
        "auth_type": "password",
        "project_domain_name": "Default",
        "user_domain_name": "Default",
        "project_name": SERVICE_PROJECT,
        "username": user,
        "password": password,
        "region_name": REGION,
    }


def service_client(layout: Layout, user: str, password: str) -> dict[str, str]:
    """Options of a client of another service (Nova's ``[placement]``)."""
    opts = authtoken(layout, user, password)
    del opts["www_authenticate_uri"]
    return {**opts, "valid_interfaces": "public"}
