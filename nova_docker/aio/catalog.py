"""Everything created over the APIs as the admin, each step idempotent:
service users, catalog entries, the demo project and user, flavors, and the
``clouds.yaml`` that hands the cloud to the ``openstack`` CLI."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING
from typing import Any

import yaml

from nova_docker.aio.configs import REGION
from nova_docker.aio.configs import SERVICE_PROJECT
from nova_docker.aio.layout import Layout

if TYPE_CHECKING:
    from openstack.connection import Connection

#: (name, type, path after the service's root URL)
SERVICES = (
    ("nova", "compute", "/v2.1"),
    ("glance", "image", ""),
    ("placement", "placement", ""),
)
#: Only in a cloud with Neutron; without it Nova uses the null network,
#: which users must not find in the catalog.
NETWORK_SERVICE = ("neutron", "network", "")
#: Flavors sized for containers: (name, MiB of memory, vCPUs, GB of disk).
FLAVORS = (
    ("c1.tiny", 64, 1, 1),
    ("c1.small", 128, 1, 1),
    ("c1.medium", 512, 1, 1),
)
ADMIN_CLOUD = "aio-admin"
DEMO_CLOUD = "aio-demo"


def cloud_entries(layout: Layout, secrets: Mapping[str, str]) -> dict[str, Any]:
    """The clouds.yaml content: one entry for admin, one for demo (pure)."""

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


def write_clouds_yaml(layout: Layout, secrets: Mapping[str, str]) -> None:
    text = yaml.safe_dump(cloud_entries(layout, secrets), sort_keys=False)
    fd = os.open(layout.clouds_yaml, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)


def connect(
    layout: Layout, secrets: Mapping[str, str], cloud: str = ADMIN_CLOUD
) -> Connection:
    """A connection from the same settings as clouds.yaml, ignoring OS_*."""
    import openstack  # noqa: PLC0415 - slow import, only when needed

    settings = cloud_entries(layout, secrets)["clouds"][cloud]
    return openstack.connect(load_yaml_config=False, load_envvars=False, **settings)


def _project(conn: Connection, name: str) -> Any:
    found = conn.identity.find_project(name, domain_id="default")
    return found or conn.identity.create_project(name=name, domain_id="default")


def _role(conn: Connection, name: str) -> Any:
    return conn.identity.find_role(name) or conn.identity.create_role(name=name)


def _user(conn: Connection, name: str, password: str, project: Any) -> Any:
    found = conn.identity.find_user(name, domain_id="default")
    if found:
        return found
    return conn.identity.create_user(
        name=name,
        password=password,
        domain_id="default",
        default_project_id=project.id,
    )


def _grant(conn: Connection, project: Any, user: Any, *roles: str) -> None:
    for role in roles:
        conn.identity.assign_project_role_to_user(project, user, _role(conn, role))


def _endpoint(conn: Connection, name: str, kind: str, url: str) -> None:
    service = conn.identity.find_service(name) or conn.identity.create_service(
        name=name, type=kind, is_enabled=True
    )
    existing = {e.interface for e in conn.identity.endpoints(service_id=service.id)}
    for interface in ("public", "internal", "admin"):
        if interface not in existing:
            conn.identity.create_endpoint(
                service_id=service.id,
                interface=interface,
                url=url,
                region_id=REGION,
            )


def bootstrap_identity(layout: Layout, secrets: Mapping[str, str]) -> None:
    """Service project/users with the admin and service roles, the catalog,
    and the demo project whose member is the demo user."""
    conn = connect(layout, secrets)
    service_project = _project(conn, SERVICE_PROJECT)
    for name, kind, path in SERVICES:
        user = _user(conn, name, secrets[name], service_project)
        _grant(conn, service_project, user, "admin", "service")
        _endpoint(conn, name, kind, layout.url(name, path))
    demo_project = _project(conn, "demo")
    demo = _user(conn, "demo", secrets["demo"], demo_project)
    _grant(conn, demo_project, demo, "member", "reader")


def bootstrap_network_service(layout: Layout, secrets: Mapping[str, str]) -> None:
    """The ``neutron`` service user and the ``network`` catalog entry; apart
    from :func:`bootstrap_identity` so that a cloud made before Neutron
    gains it too."""
    conn = connect(layout, secrets)
    name, kind, path = NETWORK_SERVICE
    user = _user(conn, name, secrets[name], _project(conn, SERVICE_PROJECT))
    _grant(conn, _project(conn, SERVICE_PROJECT), user, "admin", "service")
    _endpoint(conn, name, kind, layout.url(name, path))


def ensure_flavors(layout: Layout, secrets: Mapping[str, str]) -> None:
    conn = connect(layout, secrets)
    existing = {flavor.name for flavor in conn.compute.flavors()}
    for name, ram, vcpus, disk in FLAVORS:
        if name not in existing:
            conn.compute.create_flavor(name=name, ram=ram, vcpus=vcpus, disk=disk)


def glance_image_ids(layout: Layout, secrets: Mapping[str, str]) -> list[str]:
    """Every image of this cloud's Glance (as admin: all projects)."""
    conn = connect(layout, secrets)
    return [image.id for image in conn.image.images()]
