"""Nova's one-time database setup with ``nova-manage``: the API database,
cell0 and cell1 (whose transport is the in-process ``fake://`` bus)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from nova_docker.aio import mariadb
from nova_docker.aio import procs
from nova_docker.aio import tools
from nova_docker.aio.layout import Layout


def config_file(layout: Layout) -> Path:
    return layout.etc / "nova" / "nova.conf"


def _manage(layout: Layout, *args: str, ok: tuple[int, ...] = (0,)) -> None:
    conf = str(config_file(layout))
    procs.run(
        [tools.bin_path("nova-manage"), "--config-file", conf, *args],
        layout.log("nova-manage"),
        env={"OS_NOVA_DISABLE_EVENTLET_PATCHING": "true"},
        ok=ok,
    )


def sync_databases(layout: Layout, secrets: Mapping[str, str]) -> None:
    cell0 = mariadb.url(layout, "nova_cell0", secrets["db_nova_cell0"])
    _manage(layout, "api_db", "sync")
    _manage(layout, "cell_v2", "map_cell0", "--database_connection", cell0)
    # Exit status 2: that cell exists already (a re-run after a failure).
    _manage(layout, "cell_v2", "create_cell", "--name", "cell1", ok=(0, 2))
    # Migrates cell0 and cell1 alike.
    _manage(layout, "db", "sync")
