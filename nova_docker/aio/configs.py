"""Render each service's configuration from the layout and secrets (pure).

Every value a service needs is spelled out here, so that a reader can see
the whole cloud in one place.
"""

from __future__ import annotations

from collections.abc import Mapping

from nova_docker.aio import mariadb
from nova_docker.aio.layout import Layout

Sections = Mapping[str, Mapping[str, str]]

REGION = "RegionOne"
SERVICE_PROJECT = "service"
#: Glance's default container formats plus ours.
CONTAINER_FORMATS = "ami,ari,aki,bare,ovf,ova,docker,compressed"


def render(sections: Sections) -> str:
    """Write INI text the way oslo.config reads it (no interpolation)."""
    out = []
    for name, options in sections.items():
        out.append(f"[{name}]")
        out.extend(f"{key} = {value}" for key, value in options.items())
        out.append("")
    return "\n".join(out)


def _authtoken(layout: Layout, user: str, password: str) -> dict[str, str]:
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


def _service_client(layout: Layout, user: str, password: str) -> dict[str, str]:
    opts = _authtoken(layout, user, password)
    del opts["www_authenticate_uri"]
    return {**opts, "valid_interfaces": "public"}


def keystone(layout: Layout, secrets: Mapping[str, str]) -> str:
    state = layout.root / "keystone"
    return render(
        {
            "DEFAULT": {"use_stderr": "true"},
            "database": {
                "connection": mariadb.url(layout, "keystone", secrets["db_keystone"])
            },
            "token": {"provider": "fernet"},
            "fernet_tokens": {"key_repository": str(state / "fernet-keys")},
            "fernet_receipts": {"key_repository": str(state / "fernet-keys")},
            "credential": {"key_repository": str(state / "credential-keys")},
            # The minimum bcrypt cost: passwords here guard a loopback dev
            # cloud, and every CLI call hashes one.
            "identity": {"password_hash_rounds": "4"},
        }
    )


def glance(layout: Layout, secrets: Mapping[str, str], paste: str) -> str:
    state = layout.root / "glance"
    return render(
        {
            "DEFAULT": {
                "use_stderr": "true",
                "enabled_backends": "fs:file",
                "worker_self_reference_url": layout.url("glance"),
            },
            "database": {
                "connection": mariadb.url(layout, "glance", secrets["db_glance"])
            },
            "glance_store": {"default_backend": "fs"},
            "fs": {"filesystem_store_datadir": str(state / "images")},
            "os_glance_staging_store": {
                "filesystem_store_datadir": str(state / "staging")
            },
            "os_glance_tasks_store": {"filesystem_store_datadir": str(state / "tasks")},
            "image_format": {"container_formats": CONTAINER_FORMATS},
            "keystone_authtoken": _authtoken(layout, "glance", secrets["glance"]),
            "paste_deploy": {"flavor": "keystone", "config_file": paste},
            "oslo_concurrency": {"lock_path": str(state / "lock")},
        }
    )


def placement(layout: Layout, secrets: Mapping[str, str]) -> str:
    return render(
        {
            "DEFAULT": {"use_stderr": "true"},
            "placement_database": {
                "connection": mariadb.url(layout, "placement", secrets["db_placement"])
            },
            "api": {"auth_strategy": "keystone"},
            "keystone_authtoken": _authtoken(layout, "placement", secrets["placement"]),
        }
    )


def nova(
    layout: Layout, secrets: Mapping[str, str], driver: str, docker_url: str
) -> str:
    state = layout.root / "nova"
    client = _service_client(layout, "nova", secrets["nova"])
    return render(
        {
            "DEFAULT": {
                "host": layout.compute_host,
                "compute_driver": driver,
                "transport_url": "fake://",
                "state_path": str(state),
                "instances_path": str(state / "instances"),
                "my_ip": "127.0.0.1",
                "use_stderr": "true",
                # A container's memory is not a VM's: do not reserve the
                # host's 512 MiB default away from a small machine.
                "reserved_host_memory_mb": "0",
            },
            "api": {"auth_strategy": "keystone"},
            "api_database": {
                "connection": mariadb.url(layout, "nova_api", secrets["db_nova_api"])
            },
            "database": {
                "connection": mariadb.url(
                    layout, "nova_cell1", secrets["db_nova_cell1"]
                )
            },
            "keystone_authtoken": _authtoken(layout, "nova", secrets["nova"]),
            "placement": client,
            "glance": {"region_name": REGION, "valid_interfaces": "public"},
            # TEMPORARY: no Neutron yet; see null_network.py.
            "neutron": {**client, "endpoint_override": layout.url("null-network")},
            "service_user": {**client, "send_service_user_token": "false"},
            "scheduler": {"discover_hosts_in_cells_interval": "-1"},
            "oslo_concurrency": {"lock_path": str(state / "lock")},
            "oslo_messaging_notifications": {"driver": "noop"},
            "vnc": {"enabled": "false"},
            "docker": {"api_url": docker_url},
        }
    )
