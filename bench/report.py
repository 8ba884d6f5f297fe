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

"""The results table, the JSON file, and the machine they came from."""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.stats import Figure


def machine() -> dict[str, Any]:
    """What a reader needs to weigh the figures."""
    mem_kib = 0
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    model = ""
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    engine = subprocess.run(
        [
            "docker",
            "version",
            "--format",
            "{{.Server.Version}} (API {{.Server.APIVersion}})",
        ],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return {
        "commit": _commit(),
        "nproc": os.cpu_count(),
        "cpu": model,
        "memory_mib": mem_kib // 1024,
        "engine": engine,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "nova": metadata.version("nova"),
        "loadavg_at_start": os.getloadavg(),
    }


def _commit() -> str:
    """The checkout's commit, ``+dirty`` if the package code has changes."""
    root = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(root), *args],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD")
    if not commit:
        return "unknown"
    dirty = git("status", "--porcelain", "--", "nova_docker", "nova", "pyproject.toml")
    return f"{commit}+dirty" if dirty else commit


def _fmt(value: float) -> str:
    if math.isnan(value):
        return "-"
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"


def table(figures: list[Figure]) -> str:
    rows = [("figure", "ratio", "target", "met", "formula", "medians")]
    for f in figures:
        medians = ", ".join(f"{k}={_fmt(v)}" for k, v in f.medians.items())
        met = {True: "yes", False: "NO", None: ""}[f.met]
        rows.append((f.name, _fmt(f.ratio), f.target, met, f.formula, medians))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = []
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  ".join([*cells, row[5]]).rstrip())
    lines.insert(1, "-" * min(160, len(lines[0]) + 20))
    return "\n".join(lines)


def write_json(
    path: Path,
    figures: list[Figure],
    extras: dict[str, Any],
    options: dict[str, Any],
    errors: dict[str, str],
    host: dict[str, Any],
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": host,
        "options": options,
        "figures": [f.as_json() for f in figures],
        "extras": extras,
        "errors": errors,
    }
    path.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n")
