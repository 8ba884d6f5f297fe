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
baseline's file to Glance is timed too: Glance's own floor.  The Glance
floor figure sets the driver against commit + save + that upload one after
the other, the same bytes going the whole way with nothing of ours.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import BinaryIO

from bench import images
from bench import profile
from bench import servers
from bench.context import Context
from bench.stats import Figure
from bench.stats import median
from nova_docker_aio import poll

POLL = 0.1
#: How often the saved file is looked at for its first byte.
FIRST_BYTE_POLL = 0.005


def _raw(ctx: Context) -> dict[str, float]:
    """``docker commit`` + ``docker save > file`` (``raw_s``, with the
    commit's share and the save's wait for its first byte); then, as
    Glance's own floor, the upload of that file to Glance.  In seconds."""
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
            committed = time.monotonic()
            first_byte = _save_into(ref, out)
            took = time.monotonic() - started
        return {
            "raw_s": took,
            "raw_commit_s": committed - started,
            "raw_save_first_byte_s": first_byte - committed,
            "glance_upload_s": _glance_upload(ctx, tarball),
        }
    finally:
        engine.remove(name)
        engine.remove_image(ref)
        tarball.unlink(missing_ok=True)


def _save_into(ref: str, out: BinaryIO) -> float:
    """``docker save ref > out``; returns the moment its first byte was in
    the file.  ``docker save`` (moby's ``image/tarexport/save.go``) copies
    every layer into a temporary directory before it sends anything, so
    no reader of the stream, Glance's upload included, can start before."""
    cli = subprocess.Popen(["docker", "save", ref], stdout=out, stderr=subprocess.PIPE)
    first_byte = None
    while cli.poll() is None and first_byte is None:
        if os.fstat(out.fileno()).st_size > 0:
            first_byte = time.monotonic()
        else:
            time.sleep(FIRST_BYTE_POLL)
    _, errors = cli.communicate()
    if cli.returncode != 0:
        raise subprocess.CalledProcessError(cli.returncode, cli.args, stderr=errors)
    return first_byte if first_byte is not None else time.monotonic()


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


def _ours(ctx: Context, round_no: int) -> dict[str, float]:
    """The driver's snapshot until Glance says active (``driver_s``), with
    what the engine took for the commit and for the save's first byte, as
    the probe saw them at the SDK (a streamed answer's request returns with
    its first bytes)."""
    docker = ctx.docker
    server_id, _ = servers.boot_timed(docker, ctx.name("snap"))
    image_id = ""
    try:
        ctx.engine.write_random(
            f"nova-{server_id}", "/changes", ctx.options.snapshot_mib
        )
        docker.probe("take")
        with profile.recording(
            ctx.options.profile, f"snapshot-{round_no}", docker.nova_pid()
        ):
            started = time.monotonic()
            image = docker.conn.compute.create_server_image(server_id, ctx.name("snap"))
            image_id = image.id
            _wait_image_active(ctx, image_id)
            took = time.monotonic() - started
        seconds = docker.probe("take")["calls"]["seconds"]
        return {
            "driver_s": took,
            "seam_commit_s": seconds.get("POST /commit", 0.0),
            "seam_save_first_byte_s": seconds.get("GET /images/{}/get", 0.0),
        }
    finally:
        if image_id:
            docker.conn.image.delete_image(image_id, ignore_missing=True)
        servers.remove(docker, [server_id])


def run(ctx: Context) -> None:
    samples: dict[str, list[float]] = {}
    for i in range(ctx.options.heavy_iterations):
        sample = {**_raw(ctx), **_ours(ctx, i + 1)}
        for key, value in sample.items():
            samples.setdefault(key, []).append(value)
        ctx.say(
            f"snapshot {i + 1}: driver {sample['driver_s']:.2f}s (commit "
            f"{sample['seam_commit_s']:.2f}s, save's first byte after "
            f"{sample['seam_save_first_byte_s']:.2f}s) vs commit+save "
            f"{sample['raw_s']:.2f}s (commit {sample['raw_commit_s']:.2f}s, save's "
            f"first byte after {sample['raw_save_first_byte_s']:.2f}s); Glance "
            f"upload of the saved file alone {sample['glance_upload_s']:.2f}s"
        )
    ctx.figures += figures(samples, float(ctx.options.snapshot_mib))


def figures(samples: dict[str, list[float]], changes_mib: float) -> list[Figure]:
    """``snapshot.throughput`` as before, and the Glance floor beside it."""
    medians = {k: median(v) for k, v in samples.items()}
    medians["changes_mib"] = changes_mib
    # Summed round by round, so the median is of whole rounds.
    raw_s, upload_s = samples["raw_s"], samples["glance_upload_s"]
    floor_s = [raw + upload for raw, upload in zip(raw_s, upload_s, strict=True)]
    floor = {"floor_s": median(floor_s), **medians}
    return [
        Figure(
            name="snapshot.throughput",
            formula="(docker commit + docker save > file) / (image create → active)",
            ratio=medians["raw_s"] / medians["driver_s"],
            target=">= 0.9",
            medians=medians,
            samples=samples,
        ),
        Figure(
            name="snapshot.glance_floor",
            formula="(docker commit + docker save > file + Glance upload of "
            "the file) / (image create → active)",
            ratio=floor["floor_s"] / floor["driver_s"],
            medians=floor,
            samples={"floor_s": floor_s, **samples},
            note="informational: the same bytes through Glance with nothing "
            "of ours, one step after the other",
        ),
    ]
