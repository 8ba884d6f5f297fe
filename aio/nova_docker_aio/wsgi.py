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

"""Run an upstream WSGI application under gunicorn on a loopback port.

Keystone, Glance, Placement and Neutron ship ``<pkg>.wsgi.api:application``
modules meant for any WSGI server; gunicorn decodes chunked uploads (which
Glance needs for ``docker save | openstack image create``) and is pure
Python.  gunicorn is embedded (``python -m nova_docker_aio.wsgi SERVICE
MODULE PORT THREADS``) rather than run as a command because Keystone parses
``sys.argv`` as its own options: the application must see an argv without
gunicorn's.
"""

from __future__ import annotations

import importlib
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from collections.abc import Mapping
from typing import Any

from nova_docker_aio import procs
from nova_docker_aio.layout import Layout


def status(url: str, timeout: float = 2) -> int | None:
    """The HTTP status of a GET of ``url``; None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:  # noqa: S310
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code
    except (urllib.error.URLError, OSError):
        return None


def answers(url: str) -> bool:
    """True once anything HTTP answers at ``url`` (even 3xx/4xx)."""
    return status(url) is not None


def start(
    layout: Layout,
    service: str,
    app: str,
    env: Mapping[str, str],
    threads: int = 8,
    timeout: float = 60,
    ready: Callable[[], bool] | None = None,
) -> None:
    """Serve module ``app``'s ``application`` as ``service`` on its port;
    return once it answers (or once ``ready`` says so)."""
    port = str(layout.port(service))
    argv = [
        sys.executable,
        "-m",
        "nova_docker_aio.wsgi",
        service,
        app,
        port,
        str(threads),
    ]
    pidfile = layout.pidfile(service)
    procs.spawn(argv, pidfile, layout.log(service), env=env)
    ready = ready or (lambda: answers(layout.url(service)))
    procs.wait_for(ready, pidfile, timeout, service)


def serve(service: str, app: str, port: int, threads: int) -> None:
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
            return importlib.import_module(app).application

    sys.argv = sys.argv[:1]
    _App().run()


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
