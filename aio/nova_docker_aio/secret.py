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

"""Random passwords for one cloud, created once and kept in the state dir."""

from __future__ import annotations

import json
import os
import secrets

from nova_docker_aio.layout import Layout

#: Keystone users, shared secrets, then one database user per database.
NAMES = (
    "admin",
    "demo",
    "nova",
    "glance",
    "placement",
    "neutron",
    "rabbitmq",
    # Signs the metadata agent's requests to Nova's metadata API.
    "metadata",
    # Signs the dashboard's session cookies (Django's SECRET_KEY).
    "dashboard",
    "db_keystone",
    "db_glance",
    "db_placement",
    "db_nova_api",
    "db_nova_cell0",
    "db_nova_cell1",
    "db_neutron",
)


def load_or_create(layout: Layout) -> dict[str, str]:
    """Read the secrets file, adding any missing password (0600, root)."""
    path = layout.secrets
    found: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    missing = [name for name in NAMES if name not in found]
    if missing:
        found.update({name: secrets.token_hex(12) for name in missing})
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(found, out, indent=1)
    return found
