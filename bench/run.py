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

"""One benchmark run: set up, run the chosen benchmarks, report, and remove
everything made, whatever happened."""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import signal
import sys
import tempfile
import traceback
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import boot
from bench import burst
from bench import chart
from bench import cold_migration
from bench import delete
from bench import density
from bench import events
from bench import image_import
from bench import images
from bench import layer_parse
from bench import log_flood
from bench import profile
from bench import report
from bench import snapshot
from bench.clouds import Clouds
from bench.context import Context
from bench.context import Options
from bench.engine import RawEngine
from bench.stats import Figure

#: In run order.  Burst leaves N servers on each cloud and delete removes
#: them, so both clouds hold the same number of instances when delete is
#: timed: Nova's own resource-tracker cost grows with that number.  Events
#: runs before them, on a host that holds only its own servers.
BENCHMARKS: dict[str, Callable[[Context], None]] = {
    "boot": boot.run,
    "import": image_import.run,
    "snapshot": snapshot.run,
    "events": events.run,
    "burst": burst.run,
    "delete": delete.run,
    "density": density.run,
    "log_flood": log_flood.run,
    "cold_migration": cold_migration.run,
    "layer_parse": layer_parse.run,
}
#: Benchmarks that need none of the shared clouds: ``layer_parse`` and
#: ``log_flood`` only the engine, ``cold_migration`` clouds of two hosts that
#: it brings up itself.  A run of these alone brings up no shared cloud,
#: which saves minutes and keeps their Nova processes off the CPU (the
#: engine calls of their periodic tasks would count as ``log_flood``'s).
NO_CLOUD = frozenset({"layer_parse", "log_flood", "cold_migration"})
#: Benchmarks with no fake-driver side: a run of these (and of NO_CLOUD ones)
#: alone brings up this driver's cloud only.
DOCKER_ONLY = frozenset({"events"})
#: The smoke: every benchmark once, tiny.
QUICK = Options(
    iterations=1,
    burst=2,
    density=3,
    import_layers=2,
    import_layer_mib=4,
    snapshot_mib=4,
    heavy_iterations=1,
    events=1,
)
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "latest.json"


def parse(argv: list[str] | None) -> argparse.Namespace:
    d = Options()
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--quick", action="store_true", help="1 iteration, tiny sizes")
    p.add_argument("--only", help=f"comma-separated subset of {','.join(BENCHMARKS)}")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results")
    p.add_argument(
        "--chart",
        type=Path,
        help="the PNG of the figures and samples (default: --out with .png)",
    )
    p.add_argument(
        "--keep-logs",
        type=Path,
        help="copy each cloud's logs here before its state dir is removed",
    )
    p.add_argument("--iterations", type=int, default=d.iterations)
    p.add_argument("--burst", type=int, default=d.burst)
    p.add_argument("--density", type=int, default=d.density)
    p.add_argument("--import-layers", type=int, default=d.import_layers)
    p.add_argument("--import-layer-mib", type=int, default=d.import_layer_mib)
    p.add_argument("--snapshot-mib", type=int, default=d.snapshot_mib)
    p.add_argument("--heavy-iterations", type=int, default=d.heavy_iterations)
    p.add_argument(
        "--events", type=int, default=d.events, help="containers killed (events)"
    )
    p.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="record the Nova process with py-spy during each import's first "
        "boot and each snapshot, into DIR (a speedscope file and a text "
        "summary each; the bench extra has py-spy)",
    )
    return p.parse_args(argv)


def _options(args: argparse.Namespace) -> Options:
    """The sizes of ``--quick`` or of the options; ``--profile`` with both."""
    if args.quick:
        return dataclasses.replace(QUICK, profile=args.profile)
    names = [f.name for f in dataclasses.fields(Options)]
    return Options(**{name: getattr(args, name) for name in names})


def _options_json(options: Options, chosen: list[str]) -> dict[str, Any]:
    as_dict = dataclasses.asdict(options)
    # A profiled run's times include py-spy's pauses: the JSON says so.
    as_dict["profile"] = str(options.profile) if options.profile else None
    return {**as_dict, "only": chosen}


def _require_tools(options: Options) -> None:
    """matplotlib always, py-spy with ``--profile``: missing, the run stops
    now, before any cloud comes up."""
    try:
        chart.require()
        if options.profile is not None:
            profile.require()
    except (chart.ChartUnavailable, profile.ProfilerUnavailable) as exc:
        raise SystemExit(f"python -m bench: {exc}") from exc


def _selected(args: argparse.Namespace) -> list[str]:
    if not args.only:
        return list(BENCHMARKS)
    wanted = args.only.split(",")
    unknown = set(wanted) - set(BENCHMARKS)
    if unknown:
        raise SystemExit(f"unknown benchmarks: {', '.join(sorted(unknown))}")
    return [name for name in BENCHMARKS if name in wanted]


def _terminate(*_: Any) -> None:
    """SIGTERM unwinds like ^C, so every ``finally`` cleans up."""
    raise KeyboardInterrupt


def _run_all(ctx: Context, chosen: list[str], errors: dict[str, str]) -> None:
    for name in chosen:
        print(f"== {name}", flush=True)
        try:
            BENCHMARKS[name](ctx)
        except Exception as exc:
            traceback.print_exc()
            errors[name] = f"{type(exc).__name__}: {exc}"


def _drivers(chosen: list[str]) -> list[str]:
    """The shared clouds the chosen benchmarks need."""
    if NO_CLOUD.issuperset(chosen):
        return []
    if (NO_CLOUD | DOCKER_ONLY).issuperset(chosen):
        return ["docker"]
    return ["docker", "fake"]


def _with_clouds(
    options: Options,
    engine: RawEngine,
    workdir: Path,
    keep_logs: Path | None,
    chosen: list[str],
    errors: dict[str, str],
) -> Context:
    """Base image, both clouds, the chosen benchmarks; clouds come down at
    the end whatever happens.  Returns what was measured."""
    base_ref = images.base_image(engine)
    base_tar = workdir / "base.tar"
    images.save(engine, base_ref, base_tar)
    drivers = _drivers(chosen)
    print(f"== clouds: {' and '.join(drivers) or 'none'}, up at once", flush=True)
    with Clouds(drivers, keep_logs) as clouds:
        ctx = Context(options, engine, clouds, workdir, base_ref)
        for cloud in clouds.by_driver.values():
            cloud.base_image_id = images.upload(
                cloud.conn, f"bench-base-{engine.run_id}", base_tar
            )
        _run_all(ctx, chosen, errors)
        print("== clouds: down (removes their containers)", flush=True)
    return ctx


def chart_path(args: argparse.Namespace) -> Path:
    """The PNG is written beside the JSON unless ``--chart`` says where."""
    return args.chart or args.out.with_suffix(".png")


def _draw(figures: list[Figure], path: Path, errors: dict[str, str]) -> None:
    try:
        print(f"chart: {chart.draw(figures, path)}")
    except Exception as exc:
        traceback.print_exc()
        errors["chart"] = f"{type(exc).__name__}: {exc}"


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    options, chosen = _options(args), _selected(args)
    _require_tools(options)
    signal.signal(signal.SIGTERM, _terminate)
    host = report.machine()
    engine = RawEngine(uuid.uuid4().hex[:8])
    workdir = Path(tempfile.mkdtemp(prefix="nova-docker-bench-"))
    errors: dict[str, str] = {}
    ctx: Context | None = None
    try:
        ctx = _with_clouds(options, engine, workdir, args.keep_logs, chosen, errors)
    except Exception as exc:
        traceback.print_exc()
        errors["setup"] = f"{type(exc).__name__}: {exc}"
    finally:
        left = engine.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)
        if left:
            errors["cleanup"] = "; ".join(left)
    figures = ctx.figures if ctx else []
    print(report.table(figures))
    report.write_json(
        args.out,
        figures,
        ctx.extras if ctx else {},
        _options_json(options, chosen),
        errors,
        host,
    )
    print(f"results: {args.out}")
    _draw(figures, chart_path(args), errors)
    for name, error in errors.items():
        print(f"FAILED {name}: {error}", file=sys.stderr)
    return 1 if errors else 0
