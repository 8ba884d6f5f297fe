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

"""7. Log flood: the engine's CPU per GiB of a container's output.

A container that writes to stdout makes dockerd read, split into lines,
encode and write every line, on the host's CPU and outside the flavor's
quota.  A 1-vCPU container writes a known number of bytes (``yes | head
-c``), in 2-byte lines (the worst case: the cost is per line) and in 4 KiB
lines, once with each log configuration:

- ``before``: json-file, blocking (the driver's configuration until now);
- ``after``: local, blocking, rotated files not compressed (the driver's);
- ``nonblocking``: json-file with ``mode: non-blocking`` and a 64 KiB
  buffer, the alternative that drops lines instead of holding the
  container back.

dockerd's CPU is read from ``/proc/<pid>/stat`` around each flood, so
whatever else the engine does meanwhile counts too.  ``*_cores`` is
dockerd's CPU per second of flood: what share of a core the flood took.
The flood is 1/8 of ``--import-layer-mib`` in 2-byte lines and 4 times it in
4 KiB lines, repeated ``--heavy-iterations`` times.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from bench.context import Context
from bench.engine import RUN_LABEL
from bench.stats import Figure
from bench.stats import median

GIB = 1024**3
MIB = 1024**2
DOCKERD_PIDFILE = Path("/var/run/docker.pid")
ROTATION = {"max-size": "10m", "max-file": "2"}
CONFIGS: dict[str, dict[str, Any]] = {
    "before": {"Type": "json-file", "Config": {**ROTATION}},
    "after": {
        "Type": "local",
        "Config": {"mode": "blocking", "compress": "false", **ROTATION},
    },
    "nonblocking": {
        "Type": "json-file",
        "Config": {"mode": "non-blocking", "max-buffer-size": "64k", **ROTATION},
    },
}
SHAPES = {
    "2-byte lines": "/bin/busybox yes",
    "4 KiB lines": (
        '/bin/busybox yes "$(/bin/busybox printf %4095s | /bin/busybox tr " " a)"'
    ),
}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    """User plus system time of ``pid``, from the kernel's accounting."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def dockerd_pid() -> int:
    """The host engine's PID, from its default pid file."""
    pid = int(DOCKERD_PIDFILE.read_text())
    if Path(f"/proc/{pid}/comm").read_text().strip() != "dockerd":
        raise RuntimeError(f"{DOCKERD_PIDFILE} does not name a running dockerd")
    return pid


def _shim_of(container_id: str) -> int | None:
    """The containerd shim that serves ``container_id``, found by its
    command line; None if it is gone."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if b"containerd-shim" in argv and container_id.encode() in argv:
            return int(entry.name)
    return None


def _flood(ctx: Context, log_config: dict[str, Any], shell: str, size: int) -> dict:
    """One flood of ``size`` bytes; the engine's and the shim's CPU."""
    api, name = ctx.engine.api, ctx.name("log-flood")
    api.create_container(
        ctx.base_ref,
        command=["/bin/busybox", "sh", "-c", f"{shell} | /bin/busybox head -c {size}"],
        name=name,
        labels={RUN_LABEL: ctx.engine.run_id},
        host_config=api.create_host_config(
            network_mode="none",
            log_config=log_config,
            cpu_period=100_000,
            cpu_quota=100_000,
        ),
    )
    try:
        dockerd = dockerd_pid()
        engine_before, started = _cpu_seconds(dockerd), time.monotonic()
        api.start(name)
        shim = _shim_of(api.inspect_container(name)["Id"])
        shim_before = _cpu_seconds(shim) if shim else 0.0
        api.wait(name, timeout=3600)
        took = time.monotonic() - started
        engine = _cpu_seconds(dockerd) - engine_before
        shim_cpu = _cpu_seconds(shim) - shim_before if shim else float("nan")
    finally:
        ctx.engine.remove(name)
    return {"engine_s": engine, "shim_s": shim_cpu, "wall_s": took}


def _measure(ctx: Context, shell: str, size: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {}
    for _ in range(ctx.options.heavy_iterations):
        for label, log_config in CONFIGS.items():
            got = _flood(ctx, log_config, shell, size)
            per_gib = GIB / size
            samples.setdefault(f"{label}_cpu_s_per_gib", []).append(
                got["engine_s"] * per_gib
            )
            samples.setdefault(f"{label}_cores", []).append(
                got["engine_s"] / got["wall_s"]
            )
            samples.setdefault(f"{label}_shim_cpu_s_per_gib", []).append(
                got["shim_s"] * per_gib
            )
    return samples


def run(ctx: Context) -> None:
    mib = ctx.options.import_layer_mib
    sizes = {"2-byte lines": mib * MIB // 8, "4 KiB lines": mib * 4 * MIB}
    for shape, shell in SHAPES.items():
        samples = _measure(ctx, shell, sizes[shape])
        medians = {key: median(values) for key, values in samples.items()}
        ctx.say(f"log flood, {shape}, {sizes[shape] // 1024} KiB: {medians}")
        slug = "" if shape == "2-byte lines" else "_4k_lines"
        ctx.figures.append(
            Figure(
                name=f"log_flood.engine_cpu_per_gib{slug}",
                formula=(
                    f"dockerd CPU-s per GiB of stdout in {shape}: "
                    "local blocking / json-file blocking"
                ),
                ratio=medians["after_cpu_s_per_gib"] / medians["before_cpu_s_per_gib"],
                target="< 1",
                medians=medians,
                samples=samples,
                note=(
                    f"{sizes[shape]} bytes per flood from a 1-vCPU container; "
                    "*_cores: dockerd CPU-s per second of flood"
                ),
            )
        )
