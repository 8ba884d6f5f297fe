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

"""Keystone: fernet tokens, its schema and keys, the API under gunicorn, and
the identities of the cloud.

Its bootstrap makes the admin (``keystone-manage bootstrap``), then over
the API, each step finding before it creates: a user and catalog entry for
every service of the table that declares one, and the demo project whose
member is the demo user.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from nova_docker_aio import clouds_yaml
from nova_docker_aio import ini
from nova_docker_aio import procs
from nova_docker_aio import tools
from nova_docker_aio import wsgi
from nova_docker_aio.layout import Layout
from nova_docker_aio.services import mariadb
from nova_docker_aio.services.base import Context
from nova_docker_aio.services.base import Service
from nova_docker_aio.steps import step

if TYPE_CHECKING:
    from openstack.connection import Connection

APP = "keystone.wsgi.api"


class Keystone(Service):
    name = "keystone"
    setup_after = ("mariadb",)
    databases = ("keystone",)

    def ports(self, ctx: Context) -> tuple[str, ...]:
        return ("keystone",)

    def configs(self, ctx: Context) -> dict[Path, str]:
        return {ctx.layout.keystone_conf: config(ctx.layout, ctx.secrets)}

    def setup(self, ctx: Context) -> None:
        log = ctx.layout.log("keystone-manage")
        ctx.once(self.name, "db sync", lambda: _manage(ctx.layout, "db_sync"), log)
        with step(self.name, "fernet and credential keys", log):
            setup_keys(ctx.layout)

    def start(self, ctx: Context) -> None:
        env = {"OS_KEYSTONE_CONFIG_FILES": str(ctx.layout.keystone_conf)}
        wsgi.start(ctx.layout, self.name, APP, env)

    def healthy(self, ctx: Context) -> bool:
        return wsgi.answers(ctx.layout.url(self.name))

    def bootstrap(self, ctx: Context) -> None:
        layout = ctx.layout
        admin = ctx.secrets["admin"]
        manage_log, log = layout.log("keystone-manage"), layout.log(self.name)
        ctx.once(
            self.name, "bootstrap", lambda: bootstrap_admin(layout, admin), manage_log
        )
        for service in ctx.services:
            if service.catalog is not None:
                ctx.once(
                    self.name,
                    f"{service.account} user and catalog",
                    lambda s=service: register(ctx, s.account, *s.catalog),
                    log,
                )
        ctx.once(self.name, "demo project", lambda: demo_project(ctx), log)


def config(layout: Layout, secrets: dict[str, str]) -> str:
    fernet = str(layout.keystone_keys("fernet"))
    return ini.render(
        {
            "DEFAULT": {"use_stderr": "true"},
            "database": {
                "connection": mariadb.url(layout, "keystone", secrets["db_keystone"])
            },
            "token": {"provider": "fernet"},
            "fernet_tokens": {"key_repository": fernet},
            "fernet_receipts": {"key_repository": fernet},
            "credential": {"key_repository": str(layout.keystone_keys("credential"))},
            # The minimum bcrypt cost: passwords here guard a loopback dev
            # cloud, and every CLI call hashes one.
            "identity": {"password_hash_rounds": "4"},
        }
    )


def _manage(layout: Layout, *args: str, env: dict[str, str] | None = None) -> None:
    conf = str(layout.keystone_conf)
    procs.run(
        [tools.bin_path("keystone-manage"), "--config-file", conf, *args],
        layout.log("keystone-manage"),
        env=env,
    )


def setup_keys(layout: Layout) -> None:
    """Create fernet and credential keys once (they sign every token)."""
    for kind in ("fernet", "credential"):
        repo = layout.keystone_keys(kind)
        if not (repo / "0").exists():
            # Keystone warns about (and should not have) readable keys.
            repo.mkdir(mode=0o700, parents=True, exist_ok=True)
            repo.chmod(0o700)
            _manage(
                layout,
                f"{kind}_setup",
                "--keystone-user",
                "root",
                "--keystone-group",
                "root",
            )


def bootstrap_admin(layout: Layout, admin_password: str) -> None:
    """Admin project/user/roles and the identity endpoints (idempotent)."""
    url = layout.url("keystone")
    _manage(
        layout,
        "bootstrap",
        "--bootstrap-admin-url",
        url,
        "--bootstrap-internal-url",
        url,
        "--bootstrap-public-url",
        url,
        "--bootstrap-region-id",
        ini.REGION,
        # Through the environment, so the password is not on `ps` output.
        env={"OS_BOOTSTRAP_PASSWORD": admin_password},
    )


def register(ctx: Context, name: str, kind: str, path: str) -> None:
    """Service user ``name`` with the admin and service roles in the service
    project, and its catalog entry."""
    conn = clouds_yaml.connect(ctx.layout, clouds_yaml.ADMIN_CLOUD)
    project = _project(conn, ini.SERVICE_PROJECT)
    user = _user(conn, name, ctx.secrets[name], project)
    _grant(conn, project, user, "admin", "service")
    _endpoint(conn, name, kind, ctx.layout.url(name, path))


def demo_project(ctx: Context) -> None:
    """The demo project, whose member is the demo user."""
    conn = clouds_yaml.connect(ctx.layout, clouds_yaml.ADMIN_CLOUD)
    project = _project(conn, "demo")
    demo = _user(conn, "demo", ctx.secrets["demo"], project)
    _grant(conn, project, demo, "member", "reader")


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
                region_id=ini.REGION,
            )
