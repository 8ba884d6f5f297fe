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

"""2. Burst: N servers requested at once (one multi-create) until all are
ACTIVE, against N raw ``create+start`` in parallel.

The fake-driver cloud takes the same burst: that is Nova's own floor.  The
servers stay up for the density and delete benchmarks.
"""

from __future__ import annotations

from bench import servers
from bench.context import Context
from bench.stats import Figure


def _raw(ctx: Context, n: int) -> float:
    image = ctx.base_ref
    names = [ctx.name("raw-burst") for _ in range(n)]
    engine = ctx.engine
    took = engine.in_parallel(
        names, lambda name, c: engine.create_start(image, name, c)
    )
    engine.in_parallel(names, engine.remove)
    return took


def run(ctx: Context) -> None:
    n = ctx.options.burst
    medians = {"raw_s": _raw(ctx, n)}
    for cloud in (ctx.fake, ctx.docker):
        ids, took = servers.boot_many(cloud, ctx.name(f"burst-{cloud.driver}"), n)
        ctx.alive.setdefault(cloud.driver, []).extend(ids)
        medians[f"{cloud.driver}_s"] = took
        ctx.say(f"burst of {n} on {cloud.driver}: {took:.2f}s")
    ctx.say(f"burst of {n} raw: {medians['raw_s']:.2f}s")
    for key in ("raw_s", "fake_s", "docker_s"):
        medians[key.replace("_s", "_per_s")] = n / medians[key]
    ctx.figures.append(
        Figure(
            name="burst.throughput",
            formula=f"raw time / docker-cloud time, {n} at once",
            ratio=medians["raw_s"] / medians["docker_s"],
            target=">= 0.8",
            medians=medians,
            note="one burst per cloud (not a median); fake = Nova's own floor",
        )
    )
