"""Neutron 29 with ML2/OVN: schema migrations and the API as a WSGI app.

Neutron 29 ships no ``neutron-server``: its API is ``neutron.wsgi.api``,
served here under gunicorn like the other services.  ML2/OVN sizes its hash
ring by the number of API workers, which it learns from uWSGI, mod_wsgi or
the ``ASGI_WORKERS`` variable: gunicorn is none of them, so the variable
tells it (one worker).  The "first worker" election and the start time go to
files in the temp dir keyed by the parent PID, so each cloud gets its own
temp dir.  The OVN maintenance worker is not run: nothing here needs its
periodic repairs, and it would cost another Neutron process.
"""

from __future__ import annotations

from pathlib import Path

from nova_docker.aio import procs
from nova_docker.aio import tools
from nova_docker.aio import wsgi
from nova_docker.aio.layout import Layout


def config_files(layout: Layout) -> tuple[Path, Path]:
    conf = layout.etc / "neutron"
    return conf / "neutron.conf", conf / "ml2_conf.ini"


def _config_args(layout: Layout) -> list[str]:
    args: list[str] = []
    for path in config_files(layout):
        args += ["--config-file", str(path)]
    return args


def db_sync(layout: Layout) -> None:
    procs.run(
        [
            tools.bin_path("neutron-db-manage"),
            *_config_args(layout),
            "upgrade",
            "heads",
        ],
        layout.log("neutron-manage"),
    )


def start(layout: Layout) -> None:
    tmp = layout.root / "neutron" / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    # A new gunicorn master is a new key, but stale files would pile up.
    for stale in tmp.iterdir():
        stale.unlink()
    env = {
        "OS_NEUTRON_CONFIG_FILES": ";".join(str(p) for p in config_files(layout)),
        "ASGI_WORKERS": "1",
        "TMPDIR": str(tmp),
    }
    # Loading ML2/OVN takes a while on a busy two-core machine.
    wsgi.start(layout, "neutron", env, threads=8, timeout=180)


def paste_config() -> str:
    return str(tools.data_file("neutron/api-paste.ini"))
