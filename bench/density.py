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

"""5. Density: engine calls and wall time of one power-state sync and one
resource-tracker update, with few and with many instances on the host.

Both periodic tasks are run on demand inside the Nova process (see
:mod:`bench.probe`) and the engine requests they make are counted at the
SDK's ``send``.  Requests of background periodic tasks that overlap a run
are counted too and can only add, so the fewest calls over
``heavy_iterations`` runs is the task's own count (every sample is kept).
The fake-driver cloud is filled and measured the same way: its wall times
are Nova's own.
"""

from __future__ import annotations

from typing import Any

from bench import servers
from bench.clouds import BenchCloud
from bench.context import Context
from bench.stats import Figure
from bench.stats import median

TASKS = ("sync_power_states", "update_available_resource")
BATCH = 50


def _grow(ctx: Context, cloud: BenchCloud, target: int) -> None:
    alive = ctx.alive.setdefault(cloud.driver, [])
    while len(alive) < target:
        count = min(BATCH, target - len(alive))
        ids, took = servers.boot_many(cloud, ctx.name("density"), count)
        alive.extend(ids)
        ctx.say(
            f"density ({cloud.driver}): {len(alive)} instances "
            f"({count} more in {took:.1f}s)"
        )


def _measure(ctx: Context, cloud: BenchCloud) -> dict[str, list[dict[str, Any]]]:
    return {
        task: [cloud.probe(task) for _ in range(ctx.options.heavy_iterations)]
        for task in TASKS
    }


def _fake_floor(ctx: Context, points: list[int]) -> None:
    """Nova's own wall time for the same tasks at the same instance counts."""
    seconds: dict[str, dict[str, float]] = {}
    for point in points:
        _grow(ctx, ctx.fake, point)
        for task, runs in _measure(ctx, ctx.fake).items():
            seconds.setdefault(task, {})[str(point)] = median(
                [r["seconds"] for r in runs]
            )
    for figure in ctx.figures:
        for task, by_point in seconds.items():
            if figure.name == f"density.{task}.calls":
                figure.medians.update(
                    {f"fake_seconds_at_{p}": s for p, s in by_point.items()}
                )


def run(ctx: Context) -> None:
    n = ctx.options.density
    small = min(len(ctx.alive.get("docker", [])) or 10, n)
    points = sorted({small, n})
    results: dict[int, dict[str, list[dict[str, Any]]]] = {}
    for point in points:
        _grow(ctx, ctx.docker, point)
        results[point] = _measure(ctx, ctx.docker)
    _report(ctx, points, results)
    _fake_floor(ctx, points)


def _report(
    ctx: Context, points: list[int], results: dict[int, dict[str, list[dict[str, Any]]]]
) -> None:
    low, high = points[0], points[-1]
    for task in TASKS:
        calls = {p: [r["calls"]["total"] for r in results[p][task]] for p in points}
        secs = {p: [r["seconds"] for r in results[p][task]] for p in points}
        ctx.figures.append(
            Figure(
                name=f"density.{task}.calls",
                formula=f"fewest engine calls at {high} instances / at {low}",
                ratio=min(calls[high]) / max(1, min(calls[low])),
                target="<= 1.0",
                medians={
                    f"calls_at_{low}": float(min(calls[low])),
                    f"calls_at_{high}": float(min(calls[high])),
                    f"seconds_at_{low}": median(secs[low]),
                    f"seconds_at_{high}": median(secs[high]),
                },
                samples={
                    **{f"calls_at_{p}": [float(c) for c in calls[p]] for p in points},
                    **{f"seconds_at_{p}": secs[p] for p in points},
                },
                note="target: O(1), i.e. no growth with the number of instances",
            )
        )
        ctx.extras[f"density.{task}.by_call"] = {
            str(p): results[p][task][-1]["calls"]["by_call"] for p in points
        }
