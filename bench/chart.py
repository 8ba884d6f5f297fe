"""An optional PNG of the ratios against their targets."""

from __future__ import annotations

from pathlib import Path

from bench.stats import Figure


def draw(figures: list[Figure], path: Path) -> str:
    """Draw what has a ratio target; returns a line saying what was done."""
    try:
        import matplotlib  # noqa: PLC0415 - optional

        matplotlib.use("Agg")
        from matplotlib import pyplot  # noqa: PLC0415
    except ImportError:
        return "no chart: matplotlib is not installed (pip install matplotlib)"
    shown = [f for f in figures if f.target and not f.name.endswith("_mib")]
    fig, ax = pyplot.subplots(figsize=(8, 0.5 + 0.5 * len(shown)))
    colors = ["tab:green" if f.met else "tab:red" for f in shown]
    ax.barh([f.name for f in shown], [f.ratio for f in shown], color=colors)
    for row, f in enumerate(shown):
        ax.text(f.ratio, row, f"  {f.ratio:.2f} (target {f.target})", va="center")
    ax.set_xlabel("ratio against the same-run baseline")
    ax.invert_yaxis()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return f"chart: {path}"
