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

"""Nova API, conductor, scheduler and compute in ONE process.

Run as ``python -m nova_docker_aio.nova_runner``.  Like Nova's functional
tests, the services talk over oslo.messaging's in-process ``fake://``
transport (its exchanges are process-global, so every transport Nova
creates, including the cell mapping's, reaches the same bus) and Nova runs
in its native threading mode.  All of it is upstream code used through its
public entry points; nothing is patched.

With ``--api-only`` it serves the API and nothing else: nova-api of a
cloud of several hosts, whose conductor, scheduler and computes are Nova's
own console scripts talking over RabbitMQ.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIServer
from wsgiref.simple_server import make_server

STOP_TIMEOUT = 15.0


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


def arguments(prog: str) -> argparse.ArgumentParser:
    """What the launcher passes to every Nova process it starts."""
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--config-dir", required=True, type=Path)
    parser.add_argument("--api-port", required=True, type=int)
    # Only in a cloud without Neutron (see services/null_network.py).
    parser.add_argument("--null-network-port", type=int)
    # Only in a cloud with Neutron: Nova's metadata API, for its agent.
    parser.add_argument("--metadata-port", type=int)
    parser.add_argument("--ready-file", required=True, type=Path)
    parser.add_argument(
        "--api-only",
        action="store_true",
        help="serve the API; the services run in processes of their own",
    )
    return parser


def _parse(argv: list[str] | None) -> argparse.Namespace:
    return arguments("nova-docker-aio-nova").parse_args(argv)


def _load_api(config_dir: Path):
    """Load osapi_compute exactly as a WSGI server would; this also parses
    nova.conf, sets up logging and initialises RPC for the whole process."""
    os.environ["OS_NOVA_CONFIG_DIR"] = str(config_dir)
    from nova import monkey_patch  # noqa: PLC0415 - must run before nova code

    monkey_patch.patch(backend="threading")
    sys.argv = sys.argv[:1]
    from nova.api.openstack import wsgi_app  # noqa: PLC0415

    return wsgi_app.init_application("osapi_compute", "nova-api-os-compute")


def _load_metadata_api():
    """Nova's metadata API, as ``nova.wsgi.metadata`` loads it (after
    :func:`_load_api`, which set up the process)."""
    from nova.api.openstack import wsgi_app  # noqa: PLC0415

    return wsgi_app.init_application("metadata", "nova-api-metadata")


def _start_services() -> list:
    from nova import context  # noqa: PLC0415
    from nova import objects  # noqa: PLC0415
    from nova import service  # noqa: PLC0415
    from nova.compute import rpcapi as compute_rpcapi  # noqa: PLC0415
    from nova.conductor import rpcapi as conductor_rpcapi  # noqa: PLC0415
    from nova.scheduler import rpcapi as scheduler_rpcapi  # noqa: PLC0415

    services = [
        service.Service.create(
            binary="nova-conductor", topic=conductor_rpcapi.RPC_TOPIC
        ),
        service.Service.create(
            binary="nova-scheduler", topic=scheduler_rpcapi.RPC_TOPIC
        ),
        service.Service.create(
            binary="nova-compute",
            topic=compute_rpcapi.RPC_TOPIC,
            topic_alt=compute_rpcapi.RPC_TOPIC_ALT,
        ),
    ]
    for svc in services:
        svc.start()
    # What `nova-manage cell_v2 discover_hosts` does: map the new compute.
    objects.host_mapping.discover_hosts(context.get_admin_context())
    return services


def _serve(app, port: int) -> WSGIServer:
    server = make_server("127.0.0.1", port, app, server_class=_ThreadingWSGIServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _stop(services: list, servers: list[WSGIServer]) -> None:
    for server in servers:
        server.shutdown()
    stopper = threading.Thread(
        target=lambda: [svc.stop() for svc in reversed(services)], daemon=True
    )
    stopper.start()
    stopper.join(STOP_TIMEOUT)


def main(argv: list[str] | None = None) -> None:
    try:
        _run(_parse(argv))
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        # Nova's service threads are not daemons: only this really exits.
        os._exit(1)


def _run(args: argparse.Namespace) -> None:
    os.environ["OS_NOVA_DISABLE_EVENTLET_PATCHING"] = "true"
    args.ready_file.unlink(missing_ok=True)
    serve_until_stopped(args, _load_api(args.config_dir))


def serve_until_stopped(
    args: argparse.Namespace,
    app,
    with_services: Callable[[list], Callable[[], None]] | None = None,
) -> None:
    """Serve the API, start the services, signal ready, wait for SIGTERM.

    ``with_services`` (the benchmarks' probe) is given the started services
    and returns what to undo before they stop.
    """
    servers = []
    if args.null_network_port:
        from nova_docker_aio.services import null_network  # noqa: PLC0415

        servers.append(_serve(null_network.application, args.null_network_port))
    servers.append(_serve(app, args.api_port))
    if args.metadata_port:
        servers.append(_serve(_load_metadata_api(), args.metadata_port))
    services = [] if args.api_only else _start_services()
    undo = with_services(services) if with_services else None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    args.ready_file.write_text("ready\n")
    stop.wait()
    args.ready_file.unlink(missing_ok=True)
    if undo is not None:
        undo()
    _stop(services, servers)
    # Non-daemon executor threads must not keep a stopped cloud alive.
    os._exit(0)


if __name__ == "__main__":
    main()
