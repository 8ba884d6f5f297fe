"""Run an upstream WSGI application under gunicorn on a loopback port.

Keystone, Glance and Placement ship ``<pkg>.wsgi.api:application`` modules
meant for any WSGI server; gunicorn decodes chunked uploads (which Glance
needs for ``docker save | openstack image create``) and is pure Python.
gunicorn is embedded (``python -m nova_docker.aio.wsgi SERVICE PORT``)
rather than run as a command because Keystone parses ``sys.argv`` as its own
options: the application must see an argv without gunicorn's.
"""

from __future__ import annotations

import importlib
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from nova_docker.aio import procs
from nova_docker.aio.layout import Layout

APPS = {
    "keystone": "keystone.wsgi.api",
    "glance": "glance.wsgi.api",
    "placement": "placement.wsgi.api",
    "neutron": "neutron.wsgi.api",
}


def answers(url: str) -> bool:
    """True once anything HTTP answers at ``url`` (even 3xx/4xx)."""
    try:
        with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - loopback
            return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError):
        return False


def start(
    layout: Layout,
    service: str,
    env: Mapping[str, str],
    threads: int = 8,
    timeout: float = 60,
) -> None:
    port = str(layout.port(service))
    argv = [sys.executable, "-m", "nova_docker.aio.wsgi", service, port, str(threads)]
    pidfile = layout.pidfile(service)
    procs.spawn(argv, pidfile, layout.log(service), env=env)
    procs.wait_for(lambda: answers(layout.url(service)), pidfile, timeout, service)


def serve(service: str, port: int, threads: int) -> None:
    from gunicorn.app.base import BaseApplication  # noqa: PLC0415

    class _App(BaseApplication):
        def load_config(self) -> None:
            options = {
                "bind": f"127.0.0.1:{port}",
                "workers": 1,
                "threads": threads,
                "worker_class": "gthread",
                "timeout": 600,
                "graceful_timeout": 5,
                # No keep-alive: with it, a client that reuses an idle
                # connection just as gunicorn closes it (after 2 s) gets
                # "Remote end closed connection without response", and
                # Nova's scheduler turns that into NoValidHost.
                "keepalive": 0,
                "proc_name": f"aio-{service}",
                # Its default path is per user, so clouds would share it.
                "control_socket_disable": True,
            }
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            return importlib.import_module(APPS[service]).application

    sys.argv = sys.argv[:1]
    _App().run()


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
