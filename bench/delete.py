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

"""6. Delete: N servers deleted (N requests, 10 at a time, as a user's
script would) until their containers are gone, against N raw ``rm -f`` in
parallel.  On the fake cloud, until Nova lists none of them: Nova's floor.
"""

from __future__ import annotations

import time

from bench import servers
from bench.clouds import BenchCloud
from bench.context import Context
from bench.stats import Figure
from nova_docker.engine import naming
from nova_docker_aio import poll

POLL = 0.1


def _containers_gone(ctx: Context, cloud: BenchCloud, ids: list[str]) -> None:
    wanted = set(ids)

    def gone() -> bool:
        # A delete is done when the servers' containers and sandboxes are.
        found = [
            c
            for selector in (naming.host_selector, naming.sandbox_selector)
            for c in ctx.engine.api.containers(
                all=True,
                filters={"label": naming.label_filters(selector(cloud.host))},
            )
        ]
        owners = {
            c["Labels"].get(naming.UUID_LABEL)
            or c["Labels"].get(naming.SANDBOX_OF_LABEL)
            for c in found
        }
        return not owners & wanted

    poll.until(
        gone, f"containers of {cloud.driver} servers gone", servers.TIMEOUT, POLL
    )


def _ensure(ctx: Context, cloud: BenchCloud, n: int) -> list[str]:
    alive = ctx.alive.setdefault(cloud.driver, [])
    if len(alive) < n:
        ids, _ = servers.boot_many(cloud, ctx.name("delete"), n - len(alive))
        alive.extend(ids)
    chosen, ctx.alive[cloud.driver] = alive[:n], alive[n:]
    return chosen


def _ours(ctx: Context, cloud: BenchCloud, n: int) -> dict[str, float]:
    """Seconds until the containers are gone (docker only) and until Nova
    lists none of the servers."""
    ids = _ensure(ctx, cloud, n)
    took = {}
    started = time.monotonic()
    servers.delete_all(cloud, ids)
    if cloud.driver == "docker":
        _containers_gone(ctx, cloud, ids)
        took["docker_s"] = time.monotonic() - started
    servers.wait_deleted(cloud, ids)
    took[f"{cloud.driver}_nova_s"] = time.monotonic() - started
    return took


def _raw(ctx: Context, n: int) -> float:
    image = ctx.base_ref
    names = [ctx.name("raw-delete") for _ in range(n)]
    engine = ctx.engine
    engine.in_parallel(names, lambda name, c: engine.create_start(image, name, c))
    return engine.in_parallel(names, engine.remove)


def run(ctx: Context) -> None:
    n = ctx.options.burst
    medians = {"raw_s": _raw(ctx, n)}
    for cloud in (ctx.fake, ctx.docker):
        took = _ours(ctx, cloud, n)
        medians.update(took)
        ctx.say(f"delete {n} on {cloud.driver}: {took}")
    ctx.say(f"delete {n} raw: {medians['raw_s']:.2f}s")
    ctx.figures.append(
        Figure(
            name="delete.throughput",
            formula=f"raw rm -f time / docker-cloud time, {n} servers",
            ratio=medians["raw_s"] / medians["docker_s"],
            medians=medians,
            note="one round per cloud; other instances stay on the host meanwhile; "
            "*_nova_s: until Nova lists none of them",
        )
    )
