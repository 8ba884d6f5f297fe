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

"""9. Lifecycle events: how soon Nova sees a container stopped behind its back.

``--events`` servers boot on this driver's cloud.  Then, one at a time,
each server's container is killed on the engine (``docker kill``: busybox
``sleep`` as PID 1 would ignore a ``docker stop``'s SIGTERM), and the API
is polled every :data:`POLL` seconds until the server is SHUTOFF.  The
sample is the seconds from the kill call to that answer.  The driver hears
the container's ``die`` on the engine's event stream and hands Nova a
lifecycle event, on which Nova syncs that one instance.  Without events
Nova notices at its next periodic power-state sync, every
``sync_power_state_interval`` seconds: the figure reports the interval the
Nova process runs with, since a short one would converge without events.

The floor is the engine's own: the same kill, timed until a ``docker
events`` subscription of ours receives that container's ``die``.  Nova's
fake driver has no engine and emits no events, so this figure has no
fake-driver side.  A sample that takes longer than :data:`CAP` seconds is
counted as a timeout, not as a number.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import statistics
import time
from concurrent.futures import Future
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from bench import servers
from bench.clouds import BenchCloud
from bench.context import Context
from bench.stats import Figure
from nova_docker.engine import naming
from nova_docker_aio import poll

#: Seconds between polls of the server: one small GET each.
POLL = 0.1
#: Seconds one sample may take before it counts as a timeout.
CAP = 120.0


@dataclasses.dataclass
class Sample:
    """One kill; None where the cap passed first."""

    nova_s: float | None
    die_s: float | None


def _wait_die(stream: Any) -> float:
    """Read ``stream`` until a ``die``; when it came (monotonic seconds)."""
    for event in stream:
        if event.get("Action") == "die":
            return time.monotonic()
    raise RuntimeError("the engine's event stream ended before the die")


def _open_die_stream(client: Any, container: str) -> Any:
    """A ``docker events`` subscription to ``container``'s ``die``.  It
    starts a second back, since the engine answers before it subscribes:
    the engine replays what came in between."""
    return client.events(
        since=int(time.time()) - 1,
        filters={"type": "container", "container": container, "event": "die"},
        decode=True,
    )


def _wait_shutoff(cloud: BenchCloud, server_id: str) -> None:
    servers.wait_status(cloud, server_id, "SHUTOFF", CAP, POLL)


def _die_after(watch: Future, killed: float) -> float | None:
    """Seconds from ``killed`` to the ``die``; None if it never came."""
    remaining = max(1.0, killed + CAP - time.monotonic())
    try:
        return watch.result(timeout=remaining) - killed
    except FutureTimeout:
        return None


def _kill_once(ctx: Context, pool: ThreadPoolExecutor, server_id: str) -> Sample:
    """Kill the server's container; until the engine tells its ``die`` (on
    a client of its own, in ``pool``) and until the API says SHUTOFF."""
    container = naming.container_name(server_id)
    with contextlib.closing(ctx.engine.client()) as client:
        stream = _open_die_stream(client, container)
        try:
            watch = pool.submit(_wait_die, stream)
            killed = time.monotonic()
            ctx.engine.api.kill(container)
            try:
                _wait_shutoff(ctx.docker, server_id)
                nova_s: float | None = time.monotonic() - killed
            except poll.Timeout:
                nova_s = None
            die_s = _die_after(watch, killed)
        finally:
            # Ends the read too, when no die came.
            stream.close()
    return Sample(nova_s, die_s)


def _median(values: list[float], timeouts: int) -> float:
    """The median with each timeout counted as longer than any number;
    NaN when the median is itself a timeout."""
    ranked = sorted(values) + [math.inf] * timeouts
    if not ranked:
        return math.nan
    middle = statistics.median(ranked)
    return middle if math.isfinite(middle) else math.nan


def _seconds(value: float | None) -> str:
    return f"{value:.2f}s" if value is not None else f"timeout (> {CAP:.0f}s)"


def _measure(ctx: Context, server_ids: list[str]) -> list[Sample]:
    found = []
    with ThreadPoolExecutor(max_workers=1) as pool:
        for i, server_id in enumerate(server_ids):
            sample = _kill_once(ctx, pool, server_id)
            found.append(sample)
            ctx.say(
                f"kill {i + 1}: SHUTOFF in the API after {_seconds(sample.nova_s)}"
                f", die from the engine after {_seconds(sample.die_s)}"
            )
    return found


def _figure(found: list[Sample], settings: dict[str, Any]) -> Figure:
    nova = [s.nova_s for s in found if s.nova_s is not None]
    die = [s.die_s for s in found if s.die_s is not None]
    timeouts = {"nova": len(found) - len(nova), "die": len(found) - len(die)}
    interval = settings["sync_power_state_interval"]
    medians = {
        "nova_s": _median(nova, timeouts["nova"]),
        "engine_die_s": _median(die, timeouts["die"]),
    }
    return Figure(
        name="events.convergence",
        formula="seconds from docker kill to SHUTOFF in the API (median)",
        ratio=medians["nova_s"],
        target="<= 2",
        medians={
            **medians,
            "nova_minus_die_s": medians["nova_s"] - medians["engine_die_s"],
            "timeouts": float(timeouts["nova"]),
            "sync_power_state_interval_s": float(interval),
        },
        samples={"nova_s": nova, "engine_die_s": die},
        note=(
            f"{len(found)} containers killed one at a time; timeouts "
            f"(> {CAP:.0f} s, not in the samples): {timeouts['nova']} to "
            f"SHUTOFF, {timeouts['die']} to die; the Nova process's "
            f"sync_power_state_interval {interval} s, [docker] "
            f"lifecycle_events {settings['lifecycle_events']}, [workarounds] "
            f"handle_virt_lifecycle_events "
            f"{settings['handle_virt_lifecycle_events']}; no fake-driver side"
        ),
    )


def _named(cloud: BenchCloud, prefix: str) -> list[str]:
    return [s.id for s in cloud.conn.compute.servers(name=f"^{prefix}")]


def run(ctx: Context) -> None:
    cloud = ctx.docker
    settings = cloud.probe("settings")
    ctx.say(f"Nova's settings: {settings}")
    prefix = ctx.name("events")
    try:
        server_ids, took = servers.boot_many(cloud, prefix, ctx.options.events)
        ctx.say(f"{len(server_ids)} servers ACTIVE in {took:.1f}s")
        found = _measure(ctx, server_ids)
    finally:
        # Also those of a boot that failed half-way.
        servers.remove(cloud, _named(cloud, prefix))
    ctx.figures.append(_figure(found, settings))
    ctx.extras["events.settings"] = settings
