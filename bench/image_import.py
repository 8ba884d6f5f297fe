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

``docker load`` works in two phases (moby's ``image/tarexport/load.go``): it
untars the whole input into a temporary directory, and only then registers
the layers.  A load fed from Glance can overlap only the first phase with the
download.  So the same rounds time a second raw baseline, the Glance floor:
the Glance image streamed into the engine's load with no driver in between.
Both raw loads are split at the moment their last byte went in; what follows
is dockerd's second phase, which no streaming can hide.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from typing import Any

from bench import images
from bench import profile
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


def _glance_into_load(
    ctx: Context, glance_id: str, ref: str, verify: bool = False
) -> tuple[float, float]:
    """The Glance floor: the image downloaded from Glance and sent, chunk by
    chunk as it arrives, into the engine's ``POST /images/load``; no driver.
    Returns the seconds in all and the seconds from the last byte sent until
    the engine answered (dockerd's second phase); then ``ref`` goes.

    The chunks go to the engine's API as a chunked body, not into the stdin
    of the ``docker`` CLI: that is the driver's own way in (the same SDK
    call), and the CLI would add a process and a copy of every byte through
    a pipe that the driver does not pay.  The download is the SDK
    connection's, 1 MiB chunks (glanceclient's size), with no checksum: what
    is left is the least any import from Glance must cost.

    With ``verify``, each chunk is hashed as it passes, in the download's
    own thread, with the algorithm Glance names (``os_hash_algo``), and the
    digest is checked at the end, as glanceclient does for Nova
    (``serious_integrity_iter``): the least a verified import costs."""
    sent: list[float] = []
    hasher = None
    if verify:
        image = ctx.docker.conn.image.get_image(glance_id)
        hasher = hashlib.new(image.hash_algo)
    started = time.monotonic()
    response = ctx.docker.conn.image.download_image(glance_id, stream=True)
    messages = ctx.engine.api.load_image(_chunks(response, sent, hasher), quiet=True)
    _raise_on_error(messages)
    ended = time.monotonic()
    ctx.engine.remove_image(ref)
    if hasher is not None and hasher.hexdigest() != image.hash_value:
        raise RuntimeError(f"Glance image {glance_id}: its {image.hash_algo} differs")
    return ended - started, ended - sent[0]


def _chunks(response: Any, sent: list[float], hasher: Any = None) -> Iterator[bytes]:
    """The download's chunks (each hashed first when ``hasher`` is given);
    once the SDK has sent the last one and asks for more, the moment goes
    into ``sent``."""
    for chunk in response.iter_content(chunk_size=MIB):
        if hasher is not None:
            hasher.update(chunk)
        yield chunk
    sent.append(time.monotonic())


def _raise_on_error(messages: Iterator[dict[str, Any]]) -> None:
    """The engine reports a failed load inside its answer, not as a status."""
    for message in messages:
        if "error" in message:
            raise RuntimeError(f"docker load from Glance: {message['error']}")


def _first_boot(ctx: Context, glance_id: str, round_no: int) -> dict[str, float]:
    docker = ctx.docker
    nova_pid = docker.nova_pid()
    docker.probe("take")
    with (
        profile.recording(ctx.options.profile, f"import-{round_no}", nova_pid),
        PeakRss(nova_pid) as peak,
    ):
        server_id, first = servers.boot_timed(docker, ctx.name("import"), glance_id)
    events = docker.probe("take")["events"]
    load = sum(took for _, call, took in events if call == "POST /images/load")
    in_engine = sum(took for _, _, took in events)
    servers.remove(docker, [server_id])
    docker.probe("take")
    server_id, cached = servers.boot_timed(docker, ctx.name("import-cached"), glance_id)
    cached_in_engine = sum(took for _, _, took in docker.probe("take")["events"])
    servers.remove(docker, [server_id])
    ctx.engine.remove_image(naming.glance_image_ref(glance_id))
    return {
        "first_boot_s": first,
        "cached_boot_s": cached,
        "import_s": first - cached,
        "seam_load_s": load,
        # The engine's other calls, of the first boot beyond the cached
        # boot's: a container made on layers just loaded costs more.
        "seam_other_s": in_engine - load - cached_in_engine,
        "rss_growth_mib": peak.growth_mib,
    }


def _round(ctx: Context, ref: str, glance_id: str, round_no: int) -> dict[str, float]:
    """One of each load, from a clean engine each time."""
    tarball = ctx.workdir / "import.tar"
    sample: dict[str, float] = {}
    sample["docker_load_s"], sample["docker_load_tail_s"] = images.load_timed_split(
        ctx.engine, tarball, ref
    )
    sample["glance_download_s"] = _glance_download(ctx, glance_id)
    sample["glance_load_s"], sample["glance_load_tail_s"] = _glance_into_load(
        ctx, glance_id, ref
    )
    sample["verified_load_s"], sample["verified_load_tail_s"] = _glance_into_load(
        ctx, glance_id, ref, verify=True
    )
    sample.update(_first_boot(ctx, glance_id, round_no))
    ctx.say(
        f"import {round_no}: driver {sample['import_s']:.2f}s "
        f"(seam load {sample['seam_load_s']:.2f}s, other engine calls "
        f"+{sample['seam_other_s']:.2f}s) vs docker load "
        f"{sample['docker_load_s']:.2f}s (tail {sample['docker_load_tail_s']:.2f}s)"
        f", Glance into docker load {sample['glance_load_s']:.2f}s (tail "
        f"{sample['glance_load_tail_s']:.2f}s; verified "
        f"{sample['verified_load_s']:.2f}s), Glance download alone "
        f"{sample['glance_download_s']:.2f}s, RSS +"
        f"{sample['rss_growth_mib']:.1f} MiB"
    )
    return sample


#: The samples of ``import.throughput``, as before the Glance floor came.
THROUGHPUT_KEYS = (
    "docker_load_s",
    "glance_download_s",
    "first_boot_s",
    "cached_boot_s",
    "import_s",
    "seam_load_s",
    "seam_other_s",
    "rss_growth_mib",
)
#: The samples of ``import.glance_floor``.
FLOOR_KEYS = (
    "glance_load_s",
    "glance_load_tail_s",
    "verified_load_s",
    "verified_load_tail_s",
    "docker_load_s",
    "docker_load_tail_s",
    "import_s",
)


def run(ctx: Context) -> None:
    ref, size, glance_id = _prepare(ctx)
    samples: dict[str, list[float]] = {}
    try:
        for i in range(ctx.options.heavy_iterations):
            for key, value in _round(ctx, ref, glance_id, i + 1).items():
                samples.setdefault(key, []).append(value)
    finally:
        ctx.docker.conn.image.delete_image(glance_id, ignore_missing=True)
        ctx.engine.remove_image(naming.glance_image_ref(glance_id))
    ctx.figures += figures(samples, size / MIB)


def _subset(
    samples: dict[str, list[float]], keys: tuple[str, ...]
) -> dict[str, list[float]]:
    return {key: samples[key] for key in keys}


def figures(samples: dict[str, list[float]], mib: float) -> list[Figure]:
    """``import.throughput`` and ``import.rss_growth_mib`` as before, and the
    Glance floor beside them."""
    medians = {k: median(v) for k, v in _subset(samples, THROUGHPUT_KEYS).items()}
    medians["size_mib"] = mib
    medians["driver_mib_per_s"] = mib / medians["import_s"]
    medians["docker_load_mib_per_s"] = mib / medians["docker_load_s"]
    floor = {k: median(v) for k, v in _subset(samples, FLOOR_KEYS).items()}
    floor["size_mib"] = mib
    return [
        Figure(
            name="import.throughput",
            formula="docker load time / (first boot - cached boot)",
            ratio=medians["docker_load_s"] / medians["import_s"],
            target=">= 0.9",
            medians=medians,
            samples=_subset(samples, THROUGHPUT_KEYS),
        ),
        _floor_figure(
            "import.glance_floor",
            "glance_load_s",
            "(Glance download → docker load, no driver)",
            "the least an import from Glance costs; *_tail_s is dockerd's "
            "second phase, after the last byte went in",
            samples,
            floor,
        ),
        _floor_figure(
            "import.verified_floor",
            "verified_load_s",
            "(Glance download, hashed and checked as glanceclient does → "
            "docker load, no driver)",
            "the least a verified import from Glance costs",
            samples,
            floor,
        ),
        Figure(
            name="import.rss_growth_mib",
            formula="peak RSS growth of the Nova process, MiB (absolute)",
            ratio=max(samples["rss_growth_mib"]),
            target="< 64",
            medians={"median_mib": medians["rss_growth_mib"], "size_mib": mib},
            samples={"rss_growth_mib": samples["rss_growth_mib"]},
        ),
    ]


def _floor_figure(
    name: str,
    key: str,
    baseline: str,
    meaning: str,
    samples: dict[str, list[float]],
    floor: dict[str, float],
) -> Figure:
    """A Glance floor (the median of ``key``) against the driver's import;
    informational, without a target."""
    return Figure(
        name=name,
        formula=f"{baseline} / (first boot - cached boot)",
        ratio=floor[key] / floor["import_s"],
        medians=floor,
        samples=_subset(samples, FLOOR_KEYS),
        note=f"informational: {meaning}",
    )
