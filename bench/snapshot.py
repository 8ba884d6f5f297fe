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

"""4. Snapshot: ``server image create`` until the Glance image is active,
against ``docker commit`` + ``docker save > file``.

Both start from a running container of the base image into which
``snapshot_mib`` MiB of random data were written.  Uploading the raw
baseline's file to Glance is timed too: Glance's own floor.
"""

from __future__ import annotations

import time
from pathlib import Path

from bench import images
from bench import servers
from bench.context import Context
from bench.stats import Figure
from bench.stats import median
from nova_docker_aio import poll

POLL = 0.1


def _raw(ctx: Context) -> tuple[float, float]:
    """``docker commit`` + ``docker save > file``; then, as Glance's own
    floor, the upload of that file to Glance.  Both in seconds."""
    engine = ctx.engine
    name = ctx.name("raw-snap")
    ref = f"nova-docker-bench-snap:{name}"
    tarball = ctx.workdir / "snapshot.tar"
    engine.create_start(ctx.base_ref, name)
    try:
        engine.write_random(name, "/changes", ctx.options.snapshot_mib)
        engine.track_image(ref)
        with open(tarball, "wb") as out:
            started = time.monotonic()
            engine.cli("commit", name, ref)
            engine.cli("save", ref, stdout=out)
            took = time.monotonic() - started
        return took, _glance_upload(ctx, tarball)
    finally:
        engine.remove(name)
        engine.remove_image(ref)
        tarball.unlink(missing_ok=True)


def _glance_upload(ctx: Context, tarball: Path) -> float:
    conn = ctx.docker.conn
    image_id, took = images.upload_timed(conn, ctx.name("snap-floor"), tarball)
    conn.image.delete_image(image_id, ignore_missing=True)
    return took


def _wait_image_active(ctx: Context, image_id: str) -> None:
    def active() -> bool:
        status = ctx.docker.conn.image.get_image(image_id).status
        if status in ("killed", "deleted"):
            raise RuntimeError(f"snapshot {image_id} ended {status}")
        return status == "active"

    poll.until(active, f"snapshot {image_id} is active", servers.TIMEOUT, POLL)


def _ours(ctx: Context) -> float:
    docker = ctx.docker
    server_id, _ = servers.boot_timed(docker, ctx.name("snap"))
    image_id = ""
    try:
        ctx.engine.write_random(
            f"nova-{server_id}", "/changes", ctx.options.snapshot_mib
        )
        started = time.monotonic()
        image = docker.conn.compute.create_server_image(server_id, ctx.name("snap"))
        image_id = image.id
        _wait_image_active(ctx, image_id)
        return time.monotonic() - started
    finally:
        if image_id:
            docker.conn.image.delete_image(image_id, ignore_missing=True)
        servers.remove(docker, [server_id])


def run(ctx: Context) -> None:
    samples: dict[str, list[float]] = {
        "driver_s": [],
        "raw_s": [],
        "glance_upload_s": [],
    }
    for i in range(ctx.options.heavy_iterations):
        raw, upload = _raw(ctx)
        samples["raw_s"].append(raw)
        samples["glance_upload_s"].append(upload)
        samples["driver_s"].append(_ours(ctx))
        ctx.say(
            f"snapshot {i + 1}: driver {samples['driver_s'][-1]:.2f}s vs commit+save "
            f"{raw:.2f}s; Glance upload of the saved file alone {upload:.2f}s"
        )
    medians = {k: median(v) for k, v in samples.items()}
    medians["changes_mib"] = float(ctx.options.snapshot_mib)
    ctx.figures.append(
        Figure(
            name="snapshot.throughput",
            formula="(docker commit + docker save > file) / (image create → active)",
            ratio=medians["raw_s"] / medians["driver_s"],
            target=">= 0.9",
            medians=medians,
            samples=samples,
        )
    )
