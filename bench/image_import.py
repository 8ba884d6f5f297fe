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

"""3. Image import: a first boot's import against ``docker load < file``.

One multi-layer image of random data is built locally and saved once; the
same tarball goes to Glance and to ``docker load``.  Before each load, of
either kind, the image's layers are gone from the engine, so neither finds
work already done.  The driver's import time is a first boot minus a cached
boot of the same image, which leaves Nova's own boot cost out; the duration
of the engine's ``POST /images/load`` request, seen at the seam, is kept too,
and so is a plain download of the image from Glance: Glance's own floor.
"""

from __future__ import annotations

import time

from bench import images
from bench import servers
from bench.context import Context
from bench.rss import PeakRss
from bench.stats import Figure
from bench.stats import median
from nova_docker.engine import naming

MIB = 1024 * 1024


def _prepare(ctx: Context) -> tuple[str, int, str]:
    """Build, save and upload the big image; drop its layers from the
    engine.  Returns the tarball's ref, its size and the Glance ID."""
    opts = ctx.options
    ref = images.layered_image(
        ctx.engine, ctx.base_ref, opts.import_layers, opts.import_layer_mib
    )
    tarball = ctx.workdir / "import.tar"
    size = images.save(ctx.engine, ref, tarball)
    for made in ctx.engine.images:
        if made.startswith("nova-docker-bench-big:"):
            ctx.engine.remove_image(made)
    glance_id = images.upload(ctx.docker.conn, ctx.name("import"), tarball)
    ctx.say(f"import image: {size / MIB:.0f} MiB, Glance {glance_id}")
    return ref, size, glance_id


def _glance_download(ctx: Context, glance_id: str) -> float:
    """Glance's own floor: the same bytes downloaded and thrown away."""
    started = time.monotonic()
    response = ctx.docker.conn.image.download_image(glance_id, stream=True)
    for _ in response.iter_content(chunk_size=1024 * 1024):
        pass
    return time.monotonic() - started


def _first_boot(ctx: Context, glance_id: str) -> dict[str, float]:
    docker = ctx.docker
    docker.probe("take")
    with PeakRss(docker.nova_pid()) as peak:
        server_id, first = servers.boot_timed(docker, ctx.name("import"), glance_id)
    events = docker.probe("take")["events"]
    load = sum(took for _, call, took in events if call == "POST /images/load")
    servers.remove(docker, [server_id])
    server_id, cached = servers.boot_timed(docker, ctx.name("import-cached"), glance_id)
    servers.remove(docker, [server_id])
    ctx.engine.remove_image(naming.glance_image_ref(glance_id))
    return {
        "first_boot_s": first,
        "cached_boot_s": cached,
        "import_s": first - cached,
        "seam_load_s": load,
        "rss_growth_mib": peak.growth_mib,
    }


def run(ctx: Context) -> None:
    ref, size, glance_id = _prepare(ctx)
    samples: dict[str, list[float]] = {"docker_load_s": []}
    try:
        for i in range(ctx.options.heavy_iterations):
            samples["docker_load_s"].append(
                images.load_timed(ctx.engine, ctx.workdir / "import.tar", ref)
            )
            samples.setdefault("glance_download_s", []).append(
                _glance_download(ctx, glance_id)
            )
            for key, value in _first_boot(ctx, glance_id).items():
                samples.setdefault(key, []).append(value)
            ctx.say(
                f"import {i + 1}: driver {samples['import_s'][-1]:.2f}s "
                f"(seam load {samples['seam_load_s'][-1]:.2f}s) vs docker load "
                f"{samples['docker_load_s'][-1]:.2f}s, Glance download alone "
                f"{samples['glance_download_s'][-1]:.2f}s, RSS +"
                f"{samples['rss_growth_mib'][-1]:.1f} MiB"
            )
    finally:
        ctx.docker.conn.image.delete_image(glance_id, ignore_missing=True)
        ctx.engine.remove_image(naming.glance_image_ref(glance_id))
    medians = {k: median(v) for k, v in samples.items()}
    mib = size / MIB
    medians["size_mib"] = mib
    medians["driver_mib_per_s"] = mib / medians["import_s"]
    medians["docker_load_mib_per_s"] = mib / medians["docker_load_s"]
    ctx.figures.append(
        Figure(
            name="import.throughput",
            formula="docker load time / (first boot - cached boot)",
            ratio=medians["docker_load_s"] / medians["import_s"],
            target=">= 0.9",
            medians=medians,
            samples=samples,
        )
    )
    ctx.figures.append(
        Figure(
            name="import.rss_growth_mib",
            formula="peak RSS growth of the Nova process, MiB (absolute)",
            ratio=max(samples["rss_growth_mib"]),
            target="< 64",
            medians={"median_mib": medians["rss_growth_mib"], "size_mib": mib},
            samples={"rss_growth_mib": samples["rss_growth_mib"]},
        )
    )
