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

"""The OpenStack dashboard (Horizon) under gunicorn, on
``127.0.0.1:<base + 12>``.

Horizon reads its site settings from a module ``local.local_settings``
that it expects inside its own package.  Writing into the venv would give
every cloud of the machine one dashboard's settings, so each cloud's
process puts ``etc/dashboard`` first on ``sys.path``, where Horizon's
``from local.local_settings import *`` finds this cloud's file instead.

Its Console tab is the servers' serial console: the browser opens the
websocket URL that Nova hands out, on the cloud's ``nova-serialproxy``.
Static files are collected and compressed once per Horizon version into
the state dir and served by WhiteNoise inside the same process (see
:mod:`nova_docker_aio.dashboard_wsgi`), so a second ``up`` costs only the
start.
"""

from __future__ import annotations

import hashlib
import shutil
import sys
from importlib import metadata
from pathlib import Path

from nova_docker_aio import procs
from nova_docker_aio import wsgi
from nova_docker_aio.layout import Layout
from nova_docker_aio.services.base import Context
from nova_docker_aio.services.base import Service

APP = "nova_docker_aio.dashboard_wsgi"
#: Its port's name in :data:`~nova_docker_aio.layout.PORT_OFFSETS`.
PORT = "dashboard"
#: Where the login form is: the page that proves Django, Horizon's
#: settings and its static files all work.
LOGIN_PATH = "/auth/login/"
#: Seconds it has to serve the login page after it starts.
START_TIMEOUT = 90


class Dashboard(Service):
    name = "dashboard"
    # Logging in asks Keystone; the rest of the cloud may come up meanwhile.
    start_after = ("keystone",)

    def ports(self, ctx: Context) -> tuple[str, ...]:
        return (PORT,)

    def ensure_installed(self, ctx: Context) -> None:
        version()

    def configs(self, ctx: Context) -> dict[Path, str]:
        layout = ctx.layout
        return {
            layout.dashboard_settings.parent / "__init__.py": "",
            layout.dashboard_settings: settings(
                layout, ctx.secrets["dashboard"], version()
            ),
        }

    def setup(self, ctx: Context) -> None:
        layout = ctx.layout
        current = version()
        log = layout.log("dashboard-static")
        # What the compressor writes depends on the settings too: settings
        # that differ (a newer launcher) collect and compress again.
        rendered = layout.dashboard_settings.read_bytes()
        digest = hashlib.sha256(rendered).hexdigest()[:12]
        ctx.once(
            self.name,
            f"static files {current} {digest}",
            lambda: collect_static(layout, current, log),
            log,
        )

    def start(self, ctx: Context) -> None:
        wsgi.start(
            ctx.layout,
            self.name,
            APP,
            environment(ctx.layout),
            threads=8,
            timeout=START_TIMEOUT,
            ready=lambda: serves_login(ctx.layout),
        )

    def healthy(self, ctx: Context) -> bool:
        return self.running(ctx) and serves_login(ctx.layout)

    def where(self, ctx: Context) -> str:
        return url(ctx.layout)


def version() -> str:
    """The installed Horizon's version; its absence is a clear error."""
    try:
        return metadata.version("horizon")
    except metadata.PackageNotFoundError as exc:
        raise procs.ProcessError(
            "Horizon is not installed in this venv: pip install "
            "'nova-docker-aio' (or 'horizon>=27,<28'), or run up with "
            "--no-dashboard"
        ) from exc


def url(layout: Layout) -> str:
    return layout.url(PORT, "/")


def environment(layout: Layout) -> dict[str, str]:
    """What the dashboard's processes need: this cloud's settings first on
    ``sys.path``, and Horizon's own settings module on top of them."""
    return {
        "PYTHONPATH": str(layout.dashboard_pythonpath),
        "DJANGO_SETTINGS_MODULE": "openstack_dashboard.settings",
    }


def settings(layout: Layout, secret_key: str, horizon_version: str) -> str:
    """This cloud's ``local_settings.py`` (pure): Python assignments that
    Horizon's settings module star-imports."""
    keystone = layout.url("keystone", "/v3")
    values: dict[str, object] = {
        "DEBUG": False,
        "SECRET_KEY": secret_key,
        # The dashboard listens on loopback only, under either name.
        "ALLOWED_HOSTS": ["127.0.0.1", "localhost"],
        "OPENSTACK_HOST": "127.0.0.1",
        "OPENSTACK_KEYSTONE_URL": keystone,
        "OPENSTACK_KEYSTONE_DEFAULT_DOMAIN": "Default",
        "OPENSTACK_KEYSTONE_DEFAULT_ROLE": "member",
        "TIME_ZONE": "UTC",
        # A session survives a restart of the dashboard: no cache holds it.
        "SESSION_ENGINE": "django.contrib.sessions.backends.signed_cookies",
        # Horizon's default is a memcached this cloud does not run; its one
        # process may keep what it caches in its own memory.
        "CACHES": {
            "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
        },
        "STATIC_ROOT": str(layout.dashboard_static(horizon_version)),
        # Compressed once by `up`, never on a user's first page view.
        "COMPRESS_OFFLINE": True,
        # A container's console is its serial console: a shell through
        # Nova's nova-serialproxy, the driver's only console type.
        "CONSOLE_TYPE": "SERIAL",
        # The Console tab shows the console page in a frame of the
        # dashboard's own: Django's default (DENY) would blank it.
        "X_FRAME_OPTIONS": "SAMEORIGIN",
        # No Cinder in this cloud: a server boots from its image.
        "LAUNCH_INSTANCE_DEFAULTS": {
            "create_volume": False,
            "disable_volume": True,
            "disable_volume_snapshot": True,
        },
        # The driver sets no password and needs no key pair.
        "OPENSTACK_HYPERVISOR_FEATURES": {
            "can_set_mount_point": False,
            "can_set_password": False,
            "requires_keypair": False,
        },
        "OPENSTACK_NEUTRON_NETWORK": {
            "enable_router": True,
            "enable_quotas": True,
            "enable_distributed_router": False,
            "enable_ha_router": False,
            "enable_fip_topology_check": True,
        },
        "LOGGING": _logging(),
    }
    lines = [
        "# Written by nova-docker-aio up for the cloud in "
        f"{layout.root}; rewritten by every up.",
        *(f"{name} = {value!r}" for name, value in values.items()),
    ]
    return "\n".join(lines) + "\n"


def _logging() -> dict[str, object]:
    """Everything at INFO and above to stderr: the service's log."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {"stderr": {"class": "logging.StreamHandler"}},
        "root": {"handlers": ["stderr"], "level": "INFO"},
    }


def collect_static(layout: Layout, current: str, log: Path) -> None:
    """Collect Horizon's static files and compress its CSS and JavaScript
    into the state dir, dropping those of other Horizon versions."""
    target = layout.dashboard_static(current)
    for old in target.parent.glob("static-*"):
        if old != target:
            shutil.rmtree(old)
    shutil.rmtree(target, ignore_errors=True)
    env = environment(layout)
    django = [sys.executable, "-m", "django"]
    procs.run([*django, "collectstatic", "--noinput", "--verbosity", "0"], log, env)
    procs.run([*django, "compress", "--force"], log, env)


def serves_login(layout: Layout) -> bool:
    """True once the login page renders (a 200, not just any answer)."""
    return wsgi.status(layout.url(PORT, LOGIN_PATH), timeout=5) == 200
