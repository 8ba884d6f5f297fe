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

"""The ``tempest.conf`` that describes the two-host cloud to tempest (pure).

What the cloud is (its URLs, admin, images, flavors, networks) comes in as a
:class:`Cloud`; what the driver can do is spelled here once, from the
driver's capabilities and the README's lifecycle table, so a feature tempest
would test is switched on only where the driver implements it.
"""

from __future__ import annotations

import configparser
import dataclasses
import io
from collections.abc import Mapping
from collections.abc import Sequence
from pathlib import Path

from nova_docker.tests.e2e_hosts.conftest import SCHEDULER_FILTERS

#: [compute-feature-enabled]: what the driver does, and what it refuses.
COMPUTE_FEATURES = {
    "resize": True,
    "cold_migration": True,
    "shelve": True,
    # Unshelve spawns from the shelved snapshot on any host.
    "shelve_migrate": True,
    # Refused in Nova's pre-check: processes cannot move live.
    "live_migration": False,
    "live_migrate_back_and_forth": False,
    "block_migration_for_live_migration": False,
    "volume_backed_live_migration": False,
    # The container's stdout and stderr.
    "console_output": True,
    # A container has no screen.
    "vnc_console": False,
    "spice_console": False,
    # Serial consoles exist (an exec on a terminal, through
    # nova-serialproxy), but tempest's only test of them is in
    # admin.test_live_migration: it live-migrates, which is refused.
    "serial_console": False,
    "snapshot": True,
    # The driver runs the image's own chpasswd; tempest's busybox images
    # have none, so Nova answers 409 (SetAdminPasswdNotSupported) where
    # the test expects 202.
    "change_password": False,
    # A shell on the server's own filesystem (nova_docker/rescue.py).
    "rescue": True,
    # Stable device rescue attaches the server's disk to the rescue image
    # as a block device; a container has none.
    "stable_rescue": False,
    # Nova's API hands out an adminPass on create (its [api] default), which
    # the driver puts on a config drive, if any (root's password only with
    # [docker] inject_password); tempest checks the response shape by it.
    "enable_instance_password": True,
    "interface_attach": True,
    # Both freeze the container's cgroup.
    "pause": True,
    "suspend": True,
    # Injected files, copied into the container before it starts (< 2.57).
    "personality": True,
    # No volumes at all (no Cinder in the cloud).
    "attach_encrypted_volume": False,
    "swap_volume": False,
    "volume_multiattach": False,
    # The cloud has both: a config drive for a server that asks for one,
    # and the OVN metadata agent on host 1.  Tempest's only compute API
    # tests of them (device tagging) read them in the guest over SSH, which
    # run_validation false rules out, so none is selected.
    "config_drive": False,
    "metadata_service": False,
    # Only an attribute for Nova to keep; the container's root is no
    # partitioned disk, and nothing more is claimed.
    "disk_config": True,
    "scheduler_enabled_filters": ",".join(SCHEDULER_FILTERS),
}

#: [service_available]: Nova, Glance and Neutron; no Cinder, no Swift.
SERVICES = {
    "nova": True,
    "glance": True,
    "neutron": True,
    "cinder": False,
    "swift": False,
    "horizon": False,
}


@dataclasses.dataclass(frozen=True)
class Cloud:
    """What tempest needs to know about one cloud."""

    keystone_url: str
    region: str
    admin: Mapping[str, str]  # username, password, project_name
    images: Sequence[str]  # image_ref, image_ref_alt
    flavors: Sequence[str]  # flavor_ref (smaller), flavor_ref_alt
    public_network_id: str
    public_network_name: str
    microversions: tuple[str, str]  # the compute API's (min, max)
    compute_nodes: int


def render(cloud: Cloud, workspace: Path) -> str:
    """The whole file's text; logs and locks go under ``workspace``."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # tempest's option names are case-sensitive
    for section, options in _sections(cloud, workspace).items():
        parser[section] = {key: _value(value) for key, value in options.items()}
    out = io.StringIO()
    parser.write(out)
    return out.getvalue()


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _sections(cloud: Cloud, workspace: Path) -> dict[str, Mapping[str, object]]:
    return {
        "DEFAULT": {
            "log_dir": workspace / "logs",
            "log_file": "tempest.log",
            "debug": True,
        },
        "oslo_concurrency": {"lock_path": workspace / "locks"},
        "auth": _auth(cloud),
        "identity": {
            "uri_v3": f"{cloud.keystone_url}/v3",
            "auth_version": "v3",
            "region": cloud.region,
            "v3_endpoint_type": "public",
        },
        "identity-feature-enabled": {"api_v2": False, "api_v3": True},
        "compute": _compute(cloud),
        "compute-feature-enabled": COMPUTE_FEATURES,
        "image": {"region": cloud.region},
        "image-feature-enabled": {"api_v2": True, "api_v1": False},
        "network": {
            "region": cloud.region,
            "public_network_id": cloud.public_network_id,
            "floating_network_name": cloud.public_network_name,
        },
        "network-feature-enabled": {"ipv6": False},
        "service_available": SERVICES,
        # Nothing to SSH into: a container runs its image's command only.
        "validation": {"run_validation": False, "connect_method": "fixed"},
    }


def _auth(cloud: Cloud) -> dict[str, object]:
    """Admin credentials, from which tempest makes a project, user and
    network of its own for each test class."""
    return {
        "use_dynamic_credentials": True,
        "create_isolated_networks": True,
        "admin_username": cloud.admin["username"],
        "admin_password": cloud.admin["password"],
        "admin_project_name": cloud.admin["project_name"],
        "admin_domain_name": "Default",
        "admin_user_domain_name": "Default",
        "admin_project_domain_name": "Default",
        "default_credentials_domain_name": "Default",
    }


def _compute(cloud: Cloud) -> dict[str, object]:
    image, image_alt = cloud.images
    flavor, flavor_alt = cloud.flavors
    lowest, highest = cloud.microversions
    return {
        "region": cloud.region,
        "image_ref": image,
        "image_ref_alt": image_alt,
        "flavor_ref": flavor,
        "flavor_ref_alt": flavor_alt,
        "min_compute_nodes": cloud.compute_nodes,
        "min_microversion": lowest,
        "max_microversion": highest,
        # Nova offloads at once (shelved_offload_time 0 is its default too).
        "shelved_offload_time": 0,
        # Two busy cores: a move streams a container image through Glance.
        "build_timeout": 600,
        "ready_wait": 0,
    }
