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

"""The benchmark cloud's Nova process: ``python -m bench.probe``.

It is the launcher's own Nova runner (API, conductor, scheduler and compute
in one process) with three additions a benchmark needs and a user does not:

* every HTTP request the Docker SDK sends is counted at the engine seam
  (``docker.APIClient.send``), by method and path, with its duration;
* a control socket runs one power-state sync or one resource-tracker update
  on demand, so they are measured deterministically, not over a period, and
  tells the settings that decide how soon Nova sees a power change;
* ``cpu_allocation_ratio`` and ``disk_allocation_ratio`` are raised so that
  a 2-core host takes hundreds of 1-vCPU, 1-GB containers (the driver
  reports the engine's real core count and disk size).

The driver itself is untouched.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socketserver
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nova_docker_aio import nova_runner
from nova_docker_aio import poll

#: IDs and names in engine paths, folded so that calls group by kind.
_ID_SEGMENT = re.compile(r"/(containers|images|exec)/(?!json$|create$|load$)[^/]+")
_VERSION_PREFIX = re.compile(r"^/v\d+\.\d+")


def normalize(method: str, path_url: str) -> str:
    """``GET /v1.41/containers/nova-<uuid>/json?x=1`` → ``GET /containers/{}/json``."""
    path = _VERSION_PREFIX.sub("", path_url.split("?", 1)[0])
    folded = _ID_SEGMENT.sub(r"/\1/{}", path)
    return f"{method} {folded}"


class RequestLog:
    """Engine requests since the last :meth:`take`; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: list[tuple[float, str, float]] = []

    def record(self, call: str, started: float, seconds: float) -> None:
        with self._lock:
            self._events.append((started, call, seconds))

    def take(self) -> list[tuple[float, str, float]]:
        with self._lock:
            events, self._events = self._events, []
        return events


def count_engine_requests(log: RequestLog) -> None:
    """Wrap the SDK's ``send``: every engine request of this process passes
    there (``APIClient`` is a ``requests.Session``)."""
    import docker  # noqa: PLC0415 - only once the process is configured

    original = docker.APIClient.send

    def send(self: Any, request: Any, **kwargs: Any) -> Any:
        started = time.monotonic()
        try:
            return original(self, request, **kwargs)
        finally:
            call = normalize(request.method, request.path_url)
            log.record(call, started, time.monotonic() - started)

    docker.APIClient.send = send


def summarize(events: list[tuple[float, str, float]]) -> dict[str, Any]:
    by_call: dict[str, int] = {}
    seconds: dict[str, float] = {}
    for _, call, took in events:
        by_call[call] = by_call.get(call, 0) + 1
        seconds[call] = seconds.get(call, 0.0) + took
    return {"total": len(events), "by_call": by_call, "seconds": seconds}


def nova_settings() -> dict[str, Any]:
    """How soon Nova can see a container stopped behind its back: the
    periodic sync's interval, and whether lifecycle events reach it
    (``lifecycle_events`` is None where the driver has no such option)."""
    import nova.conf  # noqa: PLC0415
    from oslo_config import cfg  # noqa: PLC0415

    conf = nova.conf.CONF
    try:
        lifecycle_events = conf.docker.lifecycle_events
    except (cfg.NoSuchOptError, cfg.NoSuchGroupError):
        lifecycle_events = None
    return {
        "sync_power_state_interval": conf.sync_power_state_interval,
        "handle_virt_lifecycle_events": (conf.workarounds.handle_virt_lifecycle_events),
        "lifecycle_events": lifecycle_events,
    }


class Probe:
    """What the control socket can do inside the running Nova."""

    def __init__(self, compute: Any, log: RequestLog) -> None:
        self._manager = compute.manager
        self._log = log
        self._lock = threading.Lock()

    def _timed(self, work: Callable[[], None]) -> dict[str, Any]:
        with self._lock:
            self._log.take()
            started = time.monotonic()
            work()
            seconds = time.monotonic() - started
            return {"seconds": seconds, "calls": summarize(self._log.take())}

    def _sync_power_states(self) -> None:
        """Nova fans the per-instance syncs out to a pool and returns; the
        task is over when none is left in progress."""
        from nova import context  # noqa: PLC0415

        self._manager._sync_power_states(context.get_admin_context())

        def finished() -> bool:
            with self._manager.syncs_in_progress() as syncs:
                return not syncs

        poll.until(finished, "the power-state syncs finish", 600, interval=0.005)

    def _update_available_resource(self) -> None:
        from nova import context  # noqa: PLC0415

        self._manager.update_available_resource(context.get_admin_context())

    def handle(self, op: str) -> dict[str, Any]:
        if op == "take":
            events = self._log.take()
            return {
                "calls": summarize(events),
                "events": [[round(s, 6), c, round(t, 6)] for s, c, t in events],
            }
        if op == "sync_power_states":
            return self._timed(self._sync_power_states)
        if op == "update_available_resource":
            return self._timed(self._update_available_resource)
        if op == "settings":
            return nova_settings()
        return {"error": f"unknown op {op!r}"}


def _control_server(path: Path, probe: Probe) -> socketserver.UnixStreamServer:
    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            op = json.loads(self.rfile.readline())["op"]
            try:
                answer = probe.handle(op)
            except Exception as exc:  # reported to the benchmark, not fatal
                answer = {"error": f"{type(exc).__name__}: {exc}"}
            self.wfile.write(json.dumps(answer).encode() + b"\n")

    class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
        daemon_threads = True

    path.unlink(missing_ok=True)
    server = Server(str(path), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = nova_runner.arguments("python -m bench.probe")
    parser.add_argument("--control-socket", required=True, type=Path)
    parser.add_argument("--cpu-allocation-ratio", type=float, default=1000.0)
    return parser.parse_args(argv)


def _run(args: argparse.Namespace) -> None:
    os.environ["OS_NOVA_DISABLE_EVENTLET_PATCHING"] = "true"
    args.ready_file.unlink(missing_ok=True)
    log = RequestLog()
    count_engine_requests(log)
    app = nova_runner._load_api(args.config_dir)
    import nova.conf  # noqa: PLC0415

    conf = nova.conf.CONF
    conf.set_override("cpu_allocation_ratio", args.cpu_allocation_ratio)
    # One GB per 1-disk flavor would cap a host at its disk size in GB.
    conf.set_override("disk_allocation_ratio", 10.0)
    nova_runner.serve_until_stopped(
        args,
        app,
        lambda services: (
            _control_server(args.control_socket, Probe(services[-1], log)).shutdown
        ),
    )


def main(argv: list[str] | None = None) -> None:
    try:
        _run(_parse(argv))
    except BaseException:
        import traceback  # noqa: PLC0415

        traceback.print_exc()
        os._exit(1)


if __name__ == "__main__":
    main()
