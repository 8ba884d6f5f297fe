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

"""Glance: a file store in the state dir, the ``docker`` container format,
the API under gunicorn."""

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

APP = "glance.wsgi.api"
#: Glance's default container formats plus ours.
CONTAINER_FORMATS = "ami,ari,aki,bare,ovf,ova,docker,compressed"
#: Where Glance keeps image data, uploads being staged, and task data.
STORES = ("images", "staging", "tasks")


class Glance(Service):
    name = "glance"
    setup_after = ("mariadb",)
    databases = ("glance",)
    catalog = ("image", "")

    def ports(self, ctx: Context) -> tuple[str, ...]:
        return ("glance",)

    def configs(self, ctx: Context) -> dict[Path, str]:
        paste = str(tools.data_file("glance/glance-api-paste.ini"))
        return {ctx.layout.glance_conf: config(ctx.layout, ctx.secrets, paste)}

    def setup(self, ctx: Context) -> None:
        layout = ctx.layout
        for store in STORES:
            layout.glance_store(store).mkdir(parents=True, exist_ok=True)
        layout.lock_dir(self.name).mkdir(parents=True, exist_ok=True)
        manage = [
            tools.bin_path("glance-manage"),
            "--config-file",
            str(layout.glance_conf),
            "db_sync",
        ]
        log = layout.log("glance-manage")
        ctx.once(self.name, "db sync", lambda: procs.run(manage, log), log)

    def start(self, ctx: Context) -> None:
        env = {"OS_GLANCE_CONFIG_DIR": str(ctx.layout.config_dir(self.name))}
        wsgi.start(ctx.layout, self.name, APP, env)

    def healthy(self, ctx: Context) -> bool:
        return wsgi.answers(ctx.layout.url(self.name))


def config(layout: Layout, secrets: dict[str, str], paste: str) -> str:
    def store(kind: str) -> dict[str, str]:
        return {"filesystem_store_datadir": str(layout.glance_store(kind))}

    return ini.render(
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
            "fs": store("images"),
            "os_glance_staging_store": store("staging"),
            "os_glance_tasks_store": store("tasks"),
            "image_format": {"container_formats": CONTAINER_FORMATS},
            "keystone_authtoken": ini.authtoken(layout, "glance", secrets["glance"]),
            "paste_deploy": {"flavor": "keystone", "config_file": paste},
            "oslo_concurrency": {"lock_path": str(layout.lock_dir("glance"))},
        }
    )
