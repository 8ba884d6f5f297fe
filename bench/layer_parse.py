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

"""7. Layer parsing: what the driver's stream pass costs on the import image.

Every Glance image is rebuilt as it streams (``tarball.retag``: the strict
tar reader, the rebuilt archive, and each layer's expanded size counted,
compressed layers inflated to count).  This isolates that pass, with no
cloud and no engine: the same kind of ~500 MiB, multi-layer ``docker save``
tarball as the import benchmark's goes through the driver's own
``fetch.load_streamed`` (download thread → pipe → re-tag thread → pipe), and
an engine stand-in that only drains what reaches it.  Against it, in the
same run:

* a plain read of the same file in the same 1 MiB chunks: the floor;
* ``docker load`` of the same file: the work the pass must not undo;
* ``tarball.retag`` alone in one thread, into nothing: the stage's own CPU,
  without the pipes and threads around it.

Wall and CPU seconds (the whole process, every thread) are kept, and the
peak RSS growth of the pipeline pass.  The same is measured on a variant
whose layers are gzip-compressed, since those are inflated to be counted.
Its layers hold hex text (2:1 compressible, inflated literal by literal) so
that the inflate does real work: random data would be stored, not deflated.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
import time
from collections.abc import Callable
from collections.abc import Iterable
from pathlib import Path

from bench import images
from bench.context import Context
from bench.rss import PeakRss
from bench.stats import Figure
from bench.stats import median
from nova_docker.image import fetch
from nova_docker.image import layers
from nova_docker.image import tarball

MIB = 1024 * 1024
#: glanceclient's CHUNKSIZE: the size of what Nova writes into the pipe.
CHUNK = MIB
#: No image here comes near it; the pass must count, never refuse.
BUDGET_BYTES = 1 << 40
#: The tag written into the rebuilt archives (they never reach an engine).
REBUILT_REF = "nova-glance:bench-layer-parse"


class _NullEngine:
    """Stands in for the engine at the end of ``load_streamed``: takes every
    chunk as fast as the pipe gives it and loads nothing."""

    def load_image(self, chunks: Iterable[bytes]) -> list[str]:
        for _ in chunks:
            pass
        return [REBUILT_REF]


class _NullWriter:
    """A file-like sink for ``tarball.retag`` run on its own."""

    def write(self, data: bytes) -> int:
        return len(data)


def _timed(work: Callable[[], None]) -> tuple[float, float]:
    """Wall and CPU seconds of ``work``; CPU counts every thread's."""
    wall, cpu = time.monotonic(), time.process_time()
    work()
    return time.monotonic() - wall, time.process_time() - cpu


def _chunks(path: Path) -> Iterable[bytes]:
    with open(path, "rb") as data:
        while chunk := data.read(CHUNK):
            yield chunk


def _plain_read(path: Path) -> None:
    for _ in _chunks(path):
        pass


def _budget() -> layers.Budget:
    return layers.Budget(BUDGET_BYTES, fetch.MAX_EXPANDED_REASON)


def _retag_alone(path: Path) -> int:
    budget = _budget()
    with open(path, "rb") as source:
        tarball.retag(source, _NullWriter(), REBUILT_REF, budget)
    return budget.used


def _pipeline(path: Path) -> int:
    """The driver's import pipeline, Glance and engine left out; returns
    the expanded bytes it counted."""

    def download(sink: object) -> None:
        # What Nova's glance download does with each chunk it receives.
        for chunk in _chunks(path):
            sink.write(chunk)  # type: ignore[attr-defined]

    budget = _budget()
    fetch.load_streamed(download, _NullEngine(), REBUILT_REF, budget)  # type: ignore[arg-type]
    return budget.used


def _plain_tarball(ctx: Context) -> tuple[Path, str]:
    """The import benchmark's image, saved; its layers dropped from the
    engine so that ``docker load`` finds none of them."""
    opts = ctx.options
    ref = images.layered_image(
        ctx.engine, ctx.base_ref, opts.import_layers, opts.import_layer_mib
    )
    path = ctx.workdir / "layer-parse.tar"
    images.save(ctx.engine, ref, path)
    for made in ctx.engine.images:
        if made.startswith("nova-docker-bench-big:"):
            ctx.engine.remove_image(made)
    return path, ref


def _hex_text(mib: int) -> Iterable[bytes]:
    for _ in range(mib):
        yield os.urandom(MIB // 2).hex().encode()


def _gzip_layer(path: Path, mib: int, index: int) -> str:
    """Write a gzip layer of one ``mib`` MiB file of hex text; returns the
    uncompressed tar's digest, which the config names as its diff ID."""
    info = tarfile.TarInfo(f"hex{index}.txt")
    info.size = mib * MIB
    info.mtime = int(time.time())
    digest = hashlib.sha256()
    with gzip.open(path, "wb", compresslevel=1) as out:
        for data in (info.tobuf(format=tarfile.USTAR_FORMAT), *_hex_text(mib)):
            digest.update(data)
            out.write(data)
        end = bytes(2 * tarfile.BLOCKSIZE)
        digest.update(end)
        out.write(end)
    return "sha256:" + digest.hexdigest()


def _add_file(archive: tarfile.TarFile, name: str, path: Path) -> None:
    with open(path, "rb") as data:
        archive.addfile(archive.gettarinfo(str(path), arcname=name), data)


def _add_bytes(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    archive.addfile(info, io.BytesIO(data))


def _gzip_tarball(ctx: Context) -> tuple[Path, str]:
    """A ``docker save`` archive of as many gzip layers, expanding to as
    many MiB, as the import image; the engine loads it as it is."""
    engine, options = ctx.engine, ctx.options
    ref = engine.track_image(f"nova-docker-bench-gz:{engine.run_id}")
    path = ctx.workdir / "layer-parse-gzip.tar"
    engine.files.append(path)
    layer_file = ctx.workdir / "layer-parse-gzip-layer.tar.gz"
    engine.files.append(layer_file)
    diff_ids, names = [], []
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as archive:
        for i in range(options.import_layers):
            diff_ids.append(_gzip_layer(layer_file, options.import_layer_mib, i))
            names.append(f"layer{i}/layer.tar")
            _add_file(archive, names[-1], layer_file)
        config = _dump(_gzip_config(ctx, diff_ids))
        config_name = hashlib.sha256(config).hexdigest() + ".json"
        _add_bytes(archive, config_name, config)
        manifest = [{"Config": config_name, "RepoTags": [ref], "Layers": names}]
        _add_bytes(archive, tarball.MANIFEST, _dump(manifest))
    layer_file.unlink()
    return path, ref


def _gzip_config(ctx: Context, diff_ids: list[str]) -> dict[str, object]:
    base = ctx.engine.api.inspect_image(ctx.base_ref)
    return {
        "architecture": base["Architecture"],
        "os": base["Os"],
        "config": {"Cmd": images.SLEEP_CMD},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }


def _dump(document: object) -> bytes:
    return json.dumps(document).encode()


def _one_round(ctx: Context, path: Path, ref: str) -> dict[str, float]:
    """Every pass over ``path`` once; the floor first, so that each pass
    finds the file equally cached."""
    sample: dict[str, float] = {}
    sample["read_s"], sample["read_cpu_s"] = _timed(lambda: _plain_read(path))
    sample["stage_s"], sample["stage_cpu_s"] = _timed(lambda: _retag_alone(path))
    counted: list[int] = []
    with PeakRss(os.getpid()) as peak:
        sample["pass_s"], sample["pass_cpu_s"] = _timed(
            lambda: counted.append(_pipeline(path))
        )
    sample["rss_growth_mib"] = peak.growth_mib
    sample["expanded_mib"] = counted[0] / MIB
    sample["docker_load_s"] = images.load_timed(ctx.engine, path, ref)
    return sample


def _measure(ctx: Context, variant: str, path: Path, ref: str) -> dict[str, list]:
    samples: dict[str, list[float]] = {}
    for i in range(ctx.options.heavy_iterations):
        for key, value in _one_round(ctx, path, ref).items():
            samples.setdefault(key, []).append(value)
        ctx.say(
            f"{variant} {i + 1}: pass {samples['pass_s'][-1]:.2f}s "
            f"(CPU {samples['pass_cpu_s'][-1]:.2f}s), retag alone "
            f"{samples['stage_s'][-1]:.2f}s, plain read "
            f"{samples['read_s'][-1]:.2f}s, docker load "
            f"{samples['docker_load_s'][-1]:.2f}s, RSS +"
            f"{samples['rss_growth_mib'][-1]:.1f} MiB"
        )
    return samples


def _figure(name: str, what: str, path: Path, samples: dict[str, list]) -> Figure:
    medians = {k: median(v) for k, v in samples.items()}
    mib = path.stat().st_size / MIB
    medians["size_mib"] = mib
    for key in ("read", "stage", "pass", "docker_load"):
        medians[f"{key}_mib_per_s"] = mib / medians[f"{key}_s"]
    # On 2 cores the pass and the engine compete for CPU: this is the share
    # of a load's time the pass would take from it if it could not overlap.
    medians["cpu_share"] = medians["pass_cpu_s"] / medians["docker_load_s"]
    return Figure(
        name=name,
        formula=f"driver stream pass (no engine) / docker load, {what}",
        ratio=medians["pass_s"] / medians["docker_load_s"],
        medians=medians,
        samples=samples,
    )


def _rss_figure(by_variant: dict[str, dict[str, list]]) -> Figure:
    growth = {f"{v}_mib": max(s["rss_growth_mib"]) for v, s in by_variant.items()}
    return Figure(
        name="layer_parse.rss_growth_mib",
        formula="peak RSS growth of the pass, MiB (absolute, worst variant)",
        ratio=max(growth.values()),
        target="< 64",
        medians=growth,
    )


def run(ctx: Context) -> None:
    plain, plain_ref = _plain_tarball(ctx)
    ctx.say(f"plain tarball: {plain.stat().st_size / MIB:.0f} MiB")
    by_variant = {"plain": _measure(ctx, "plain", plain, plain_ref)}
    ctx.figures.append(
        _figure("layer_parse.share", "tar layers", plain, by_variant["plain"])
    )
    plain.unlink()
    gz, gz_ref = _gzip_tarball(ctx)
    ctx.say(f"gzip tarball: {gz.stat().st_size / MIB:.0f} MiB")
    by_variant["gzip"] = _measure(ctx, "gzip", gz, gz_ref)
    ctx.figures.append(
        _figure("layer_parse.gzip_share", "gzip layers", gz, by_variant["gzip"])
    )
    gz.unlink()
    ctx.figures.append(_rss_figure(by_variant))
