"""Locate the upstream command-line tools and data files of this venv."""

from __future__ import annotations

import sys
from pathlib import Path


def bin_path(name: str) -> str:
    """A console script installed next to this interpreter (same venv)."""
    return str(Path(sys.executable).parent / name)


def data_file(relative: str) -> Path:
    """A file a wheel installed under ``<prefix>/etc`` (paste configs)."""
    path = Path(sys.prefix) / "etc" / relative
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; reinstall the aio extra")
    return path
