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

"""1. Boot overhead: (this driver - Nova's fake driver) / raw create+start.

Each iteration boots one server on each cloud and runs one raw
``create+start`` of the same engine image, interleaved so that noise hits
all three alike.  A first boot on each cloud is a warm-up (and caches the
image on the engine), not a sample.

A second raw baseline makes the driver's own shape by hand: the instance's
container joining a network sandbox (``container:<sandbox>``), in the order
the driver must keep (container, then sandbox create and start, then the
container's start; see ``_raw_pod``).  Against it, ``boot.pod_overhead``
shows what the driver adds beyond the engine's work for that shape.  Each
boot's seconds inside engine calls, as the probe saw them, are kept too.
"""

from __future__ import annotations

import time
from typing import Any

from bench import servers
from bench.context import Context
from bench.engine import RawEngine
from bench.stats import Figure
from bench.stats import median
from nova_docker.engine import naming


def _boot_once(ctx: Context, driver: str) -> float:
    cloud = ctx.docker if driver == "docker" else ctx.fake
    server_id, took = servers.boot_timed(cloud, ctx.name(f"boot-{driver}"))
    servers.remove(cloud, [server_id])
    return took


def _raw_pod(engine: RawEngine, image: str, name: str) -> float:
    """The driver's shape through the API; the seconds.  The container is
    created before its sandbox exists, as the driver does: the engine then
    keeps ``container:<name>`` as written, where a sandbox already there
    would be pinned by ID, and a sandbox made again (after a host reboot)
    would no longer be found.  So the two starts cannot overlap."""
    sandbox = f"{name}-sandbox"
    started = time.monotonic()
    engine.create(image, name, network_mode=f"container:{sandbox}")
    engine.create(image, sandbox)
    engine.api.start(sandbox)
    engine.api.start(name)
    return time.monotonic() - started


def _engine_seconds(calls: dict[str, Any]) -> tuple[float, float]:
    """Seconds a boot spent inside engine calls: all, and starts alone."""
    seconds: dict[str, float] = calls.get("seconds") or {}
    starts = sum(took for call, took in seconds.items() if call.endswith("/start"))
    return sum(seconds.values()), starts


def run(ctx: Context) -> None:
    docker = ctx.docker
    for driver in ("docker", "fake"):
        _boot_once(ctx, driver)
    image = naming.glance_image_ref(docker.base_image_id)
    samples: dict[str, list[float]] = {
        "docker_s": [],
        "fake_s": [],
        "raw_s": [],
        "raw_pod_s": [],
        "engine_calls_s": [],
        "engine_starts_s": [],
    }
    calls: list[dict[str, Any]] = []
    for i in range(ctx.options.iterations):
        samples["fake_s"].append(_boot_once(ctx, "fake"))
        docker.probe("take")
        server_id, took = servers.boot_timed(docker, ctx.name("boot-docker"))
        calls.append(docker.probe("take")["calls"])
        samples["docker_s"].append(took)
        in_engine, in_starts = _engine_seconds(calls[-1])
        samples["engine_calls_s"].append(in_engine)
        samples["engine_starts_s"].append(in_starts)
        servers.remove(docker, [server_id])
        name = ctx.name("raw-boot")
        samples["raw_s"].append(ctx.engine.create_start(image, name))
        ctx.engine.remove(name)
        samples["raw_pod_s"].append(_raw_pod(ctx.engine, image, name))
        ctx.engine.remove(name)
        ctx.engine.remove(f"{name}-sandbox")
        ctx.say(
            f"boot {i + 1}: docker {took:.3f}s fake {samples['fake_s'][-1]:.3f}s "
            f"raw {samples['raw_s'][-1]:.3f}s raw pod "
            f"{samples['raw_pod_s'][-1]:.3f}s; in engine calls {in_engine:.3f}s "
            f"(starts {in_starts:.3f}s)"
        )
    medians = {k: median(v) for k, v in samples.items()}
    ours = medians["docker_s"] - medians["fake_s"]
    ctx.figures.append(
        Figure(
            name="boot.overhead",
            formula="(docker - fake) / raw create+start",
            ratio=ours / medians["raw_s"],
            target="<= 1.2",
            medians={**medians, "docker_minus_fake_s": ours},
            samples=samples,
        )
    )
    ctx.figures.append(
        Figure(
            name="boot.pod_overhead",
            formula="(docker - fake) / raw container + sandbox, created and started",
            ratio=ours / medians["raw_pod_s"],
            medians={**medians, "docker_minus_fake_s": ours},
            samples={k: samples[k] for k in ("raw_pod_s", "raw_s")},
        )
    )
    fewest = min(calls, key=lambda c: c["total"])
    ctx.extras["boot.engine_calls_per_boot"] = {
        "median_total": median([c["total"] for c in calls]),
        "fewest": fewest,
    }
