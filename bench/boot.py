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
"""

from __future__ import annotations

from typing import Any

from bench import servers
from bench.context import Context
from bench.stats import Figure
from bench.stats import median
from nova_docker.engine import naming


def _boot_once(ctx: Context, driver: str) -> float:
    cloud = ctx.docker if driver == "docker" else ctx.fake
    server_id, took = servers.boot_timed(cloud, ctx.name(f"boot-{driver}"))
    servers.remove(cloud, [server_id])
    return took


def run(ctx: Context) -> None:
    docker = ctx.docker
    for driver in ("docker", "fake"):
        _boot_once(ctx, driver)
    image = naming.glance_image_ref(docker.base_image_id)
    samples: dict[str, list[float]] = {"docker_s": [], "fake_s": [], "raw_s": []}
    calls: list[dict[str, Any]] = []
    for i in range(ctx.options.iterations):
        samples["fake_s"].append(_boot_once(ctx, "fake"))
        docker.probe("take")
        server_id, took = servers.boot_timed(docker, ctx.name("boot-docker"))
        calls.append(docker.probe("take")["calls"])
        samples["docker_s"].append(took)
        servers.remove(docker, [server_id])
        name = ctx.name("raw-boot")
        samples["raw_s"].append(ctx.engine.create_start(image, name))
        ctx.engine.remove(name)
        ctx.say(
            f"boot {i + 1}: docker {took:.3f}s fake {samples['fake_s'][-1]:.3f}s "
            f"raw {samples['raw_s'][-1]:.3f}s"
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
    fewest = min(calls, key=lambda c: c["total"])
    ctx.extras["boot.engine_calls_per_boot"] = {
        "median_total": median([c["total"] for c in calls]),
        "fewest": fewest,
    }
