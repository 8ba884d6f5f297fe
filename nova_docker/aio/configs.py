"""Render each service's configuration from the layout and secrets (pure).

Every value a service needs is spelled out here, so that a reader can see
the whole cloud in one place.
"""

from __future__ import annotations

from collections.abc import Mapping

from nova_docker.aio import mariadb
from nova_docker.aio import tools
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


def neutron(layout: Layout, secrets: Mapping[str, str], paste: str) -> str:
    """Neutron with ML2/OVN: no message bus, no agents; Nova hears of
    plugged ports through its external-events API (the ``[nova]`` user)."""
    state = layout.root / "neutron"
    return render(
        {
            "DEFAULT": {
                "use_stderr": "true",
                "host": layout.compute_host,
                "core_plugin": "ml2",
                "service_plugins": "ovn-router",
                "auth_strategy": "keystone",
                "api_paste_config": paste,
                "state_path": str(state),
                "transport_url": "fake://",
                "notify_nova_on_port_status_changes": "true",
                "notify_nova_on_port_data_changes": "true",
                "allow_overlapping_ips": "true",
            },
            "database": {
                "connection": mariadb.url(layout, "neutron", secrets["db_neutron"])
            },
            "keystone_authtoken": _authtoken(layout, "neutron", secrets["neutron"]),
            "nova": _service_client(layout, "neutron", secrets["neutron"]),
            "oslo_concurrency": {"lock_path": str(state / "lock")},
            "oslo_messaging_notifications": {"driver": "noop"},
        }
    )


def ml2(layout: Layout) -> str:
    """Tenant networks are Geneve (OVN's overlay); ``public`` is a flat
    provider network on the cloud's external bridge."""
    return render(
        {
            "ml2": {
                "type_drivers": "flat,geneve",
                "tenant_network_types": "geneve",
                "mechanism_drivers": "ovn",
                "extension_drivers": "port_security",
                "overlay_ip_version": "4",
            },
            "ml2_type_flat": {"flat_networks": "public"},
            "ml2_type_geneve": {"vni_ranges": "1:65536", "max_header_size": "38"},
            "securitygroup": {"enable_security_group": "true"},
            "ovn": {
                "ovn_nb_connection": f"unix:{layout.ovn_socket('nb')}",
                "ovn_sb_connection": f"unix:{layout.ovn_socket('sb')}",
                "ovn_l3_scheduler": "leastloaded",
                "ovn_metadata_enabled": "false",
                "enable_distributed_floating_ip": "false",
            },
        }
    )


def _nova_network(
    layout: Layout, client: Mapping[str, str], switch_db: str | None
) -> dict[str, dict[str, str]]:
    """Nova's ``[neutron]`` and the driver's plugging options; without
    Neutron, the TEMPORARY null network (see null_network.py)."""
    if switch_db is None:
        return {"neutron": {**client, "endpoint_override": layout.url("null-network")}}
    helper = f"{tools.bin_path('privsep-helper')} --config-file " + str(
        layout.etc / "nova" / "nova.conf"
    )
    return {
        "neutron": {
            **client,
            "ovs_bridge": layout.bridge("int"),
            "default_floating_pool": "public",
        },
        "os_vif_ovs": {"ovsdb_connection": switch_db},
        "nova_docker_privileged": {"helper_command": helper},
        "vif_plug_ovs_privileged": {"helper_command": helper},
    }


def nova(
    layout: Layout,
    secrets: Mapping[str, str],
    driver: str,
    docker_url: str,
    switch_db: str | None = None,
) -> str:
    """``switch_db`` is the shared switch's OVSDB when Neutron runs."""
    state = layout.root / "nova"
    client = _service_client(layout, "nova", secrets["nova"])
    docker = {"api_url": docker_url}
    if switch_db:
        docker["ovs_datapath_type"] = "netdev"
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
                # Containers share the host's cores; a laptop's two or four
                # should hold dozens of small ones, not Nova's 4 per core.
                "cpu_allocation_ratio": "16.0",
                # After the machine reboots, `up` brings back the servers
                # that were running (the engine left them stopped).
                "resume_guests_state_on_host_boot": "true",
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
            **_nova_network(layout, client, switch_db),
            # Neutron lets only a service (a request carrying a service
            # token) delete or rebind a compute port.
            "service_user": {
                **client,
                "send_service_user_token": "true" if switch_db else "false",
            },
            "scheduler": {"discover_hosts_in_cells_interval": "-1"},
            "oslo_concurrency": {"lock_path": str(state / "lock")},
            "oslo_messaging_notifications": {"driver": "noop"},
            "vnc": {"enabled": "false"},
            "docker": docker,
        }
    )
