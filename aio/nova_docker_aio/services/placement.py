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

"""Placement: its schema and the API under gunicorn."""

from __future__ import annotations

from pathlib import Path

from nova_docker_aio import ini
from nova_docker_aio import procs
from nova_docker_aio import tools
from nova_docker_aio import wsgi
from nova_docker_aio.layout import Layout
from nova_docker_aio.services import mariadb
from nova_docker_aio.services.base import Context
from nova_docker_aio.services.base import Service

APP = "placement.wsgi.api"


class Placement(Service):
    name = "placement"
    setup_after = ("mariadb",)
    databases = ("placement",)
    catalog = ("placement", "")

    def ports(self, ctx: Context) -> tuple[str, ...]:
        return ("placement",)

    def configs(self, ctx: Context) -> dict[Path, str]:
        return {ctx.layout.placement_conf: config(ctx.layout, ctx.secrets)}

    def setup(self, ctx: Context) -> None:
        manage = [
            tools.bin_path("placement-manage"),
            "--config-file",
            str(ctx.layout.placement_conf),
            "db",
            "sync",
        ]
        log = ctx.layout.log("placement-manage")
        ctx.once(self.name, "db sync", lambda: procs.run(manage, log), log)

    def start(self, ctx: Context) -> None:
        env = {"OS_PLACEMENT_CONFIG_DIR": str(ctx.layout.config_dir(self.name))}
        wsgi.start(ctx.layout, self.name, APP, env, threads=4)

    def healthy(self, ctx: Context) -> bool:
        return wsgi.answers(ctx.layout.url(self.name))


def config(layout: Layout, secrets: dict[str, str]) -> str:
    return ini.render(
        {
            "DEFAULT": {"use_stderr": "true"},
            "placement_database": {
                "connection": mariadb.url(layout, "placement", secrets["db_placement"])
            },
            "api": {"auth_strategy": "keystone"},
            "keystone_authtoken": ini.authtoken(
                layout, "placement", secrets["placement"]
            ),
        }
    )
