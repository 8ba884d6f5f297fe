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

"""The run's PNG, written beside its JSON: each figure that has a target
against that target, then every figure's samples.

matplotlib comes with the ``bench`` extra.  A run checks for it with
:func:`require` before it measures anything, so a run without it is an error,
never a results file with no chart.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from bench.stats import Figure
from bench.stats import median

INSTALL = "pip install '.[bench]'"
WIDTH_IN = 9.0
#: Inches per target row, per sample series, and per samples axis on top.
TARGET_ROW_IN = 0.75
SERIES_IN = 0.3
AXIS_IN = 0.75


class ChartUnavailable(RuntimeError):
    """matplotlib cannot be imported, so the run's chart cannot be drawn."""


def _pyplot() -> Any:
    try:
        import matplotlib  # noqa: PLC0415 - the bench extra, not the driver's

        matplotlib.use("Agg")
        from matplotlib import pyplot  # noqa: PLC0415
    except ImportError as exc:
        raise ChartUnavailable(
            f"the benchmark chart needs matplotlib ({exc}); install the bench "
            f"extra into this venv: {INSTALL} (make bench does)"
        ) from exc
    return pyplot


def require() -> None:
    """Raise :class:`ChartUnavailable` now, rather than after a long run."""
    _pyplot()


def sample_unit(key: str) -> str:
    """The unit of a sample series, from the naming the benchmarks use."""
    parts = key.split("_")
    if key.endswith("_s_per_gib"):
        return "CPU s/GiB"
    if key.endswith("_mib"):
        return "MiB"
    if key.endswith("_s") or "seconds" in parts:
        return "s"
    if "calls" in parts:
        return "engine calls"
    if "cores" in parts:
        return "cores"
    return "count"


def value_unit(figure: Figure) -> str:
    """What ``figure.ratio`` holds: mostly a ratio, sometimes an absolute."""
    if figure.name.endswith("_mib"):
        return "MiB"
    if figure.name.endswith("_left"):
        return "count"
    if figure.formula.startswith("seconds"):
        return "s"
    return "ratio"


def _by_unit(samples: dict[str, list[float]]) -> dict[str, dict[str, list[float]]]:
    groups: dict[str, dict[str, list[float]]] = {}
    for key, values in samples.items():
        if values:
            groups.setdefault(sample_unit(key), {})[key] = values
    return groups


def _span(*values: float) -> tuple[float, float]:
    """x limits that show 0, every value, and room for a label."""
    finite = [v for v in values if math.isfinite(v)] or [1.0]
    low, high = min(0.0, *finite), max(0.0, *finite)
    if low == high:
        high = 1.0
    return low - 0.05 * (high - low), high + 0.6 * (high - low)


def _target_row(ax: Any, figure: Figure) -> None:
    """One bar: green when the target is met, red when not; the target a
    dashed line."""
    limit = float(figure.target.partition(" ")[2])
    ax.barh([0], [figure.ratio], height=0.6, color=_color(figure.met))
    ax.axvline(limit, color="black", linestyle="--", linewidth=1.2)
    ax.set_yticks([0], [f"{figure.name}\n({value_unit(figure)})"], fontsize=8)
    ax.set_ylim(-0.6, 0.6)
    ax.set_xlim(*_span(figure.ratio, limit))
    verdict = "met" if figure.met else "NOT met"
    ax.annotate(
        f"{figure.ratio:.3g}, target {figure.target}: {verdict}",
        xy=(1, 0.5),
        xycoords="axes fraction",
        xytext=(-4, 0),
        textcoords="offset points",
        ha="right",
        va="center",
        fontsize=8,
    )


def _color(met: bool | None) -> str:
    return "tab:green" if met else "tab:red"


def _samples_axis(
    ax: Any, name: str, unit: str, series: dict[str, list[float]]
) -> None:
    """A strip plot: each sample a dot, each series' median a bar."""
    for row, values in enumerate(series.values()):
        n = len(values)
        jitter = [0.25 * (i / (n - 1) - 0.5) if n > 1 else 0.0 for i in range(n)]
        ax.scatter(values, [row + j for j in jitter], s=14, alpha=0.7)
        ax.plot([median(values)], [row], marker="|", markersize=16, color="black")
    ax.set_yticks(range(len(series)), list(series), fontsize=8)
    ax.set_ylim(len(series) - 0.5, -0.5)
    ax.set_xlim(*_span(*(v for vs in series.values() for v in vs)))
    ax.set_xlabel(unit, fontsize=8)
    ax.set_title(f"{name}: samples ({unit})", loc="left", fontsize=9)


def _empty(subfig: Any, text: str) -> None:
    ax = subfig.subplots()
    ax.axis("off")
    ax.text(0.5, 0.5, text, ha="center", va="center")


def draw(figures: list[Figure], path: Path) -> Path:
    """Write the PNG to ``path``, even with no figures (a failed run), so
    that it never stays behind from an earlier run.  Returns ``path``."""
    pyplot = _pyplot()
    targeted = [f for f in figures if f.target]
    axes = [
        (f.name, unit, series)
        for f in figures
        for unit, series in _by_unit(f.samples).items()
    ]
    top = TARGET_ROW_IN * max(1, len(targeted)) + 0.5
    bottom = sum(AXIS_IN + SERIES_IN * len(s) for _, _, s in axes) or 1.0
    fig = pyplot.figure(figsize=(WIDTH_IN, top + bottom + 0.5), layout="constrained")
    upper, lower = fig.subfigures(2, 1, height_ratios=[top, bottom])
    upper.suptitle("Figures against their targets (dashed)", fontsize=11)
    lower.suptitle("Samples (dot: one sample, bar: median)", fontsize=11)
    if targeted:
        for ax, figure in zip(
            upper.subplots(len(targeted), 1, squeeze=False)[:, 0], targeted, strict=True
        ):
            _target_row(ax, figure)
    else:
        _empty(upper, "no figure with a target")
    if axes:
        heights = [AXIS_IN + SERIES_IN * len(s) for _, _, s in axes]
        grid = lower.add_gridspec(len(axes), 1, height_ratios=heights)
        for row, (name, unit, series) in enumerate(axes):
            _samples_axis(lower.add_subplot(grid[row]), name, unit, series)
    else:
        _empty(lower, "no samples")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    pyplot.close(fig)
    return path
