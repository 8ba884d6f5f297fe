"""Start and stop a private cloud from Python, through the launcher's CLI.

Shared by the end-to-end tests and the benchmarks: each gets its own state
dir and a free port range, so neither disturbs the demo cloud.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from nova_docker.aio.layout import PORT_OFFSETS
from nova_docker.aio.procs import port_in_use


def free_port_base(first: int) -> int:
    """The first base from ``first`` (steps of 10) whose ports are all free."""
    for base in range(first, first + 1000, 10):
        if not any(port_in_use(base + off) for off in PORT_OFFSETS.values()):
            return base
    raise RuntimeError(f"no free port range from {first}")


def run_cli(state: Path, base: int, *args: str, timeout: float) -> str:
    """``nova-docker-aio --state-dir STATE --port-base BASE ARGS``; its
    output, or RuntimeError with all of it."""
    argv = [
        sys.executable,
        "-m",
        "nova_docker.aio.cli",
        "--state-dir",
        str(state),
        "--port-base",
        str(base),
        *args,
    ]
    result = subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"nova-docker-aio {' '.join(args)} failed:\n{result.stdout}\n"
            f"{result.stderr}"
        )
    return result.stdout
