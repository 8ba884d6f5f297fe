"""A private MariaDB: own datadir, socket and loopback port under the state
dir, started by hand; the system instance (if any) is never touched."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from nova_docker.aio import hostcheck
from nova_docker.aio import procs
from nova_docker.aio.layout import Layout

#: Debian packages with the server and client binaries, and no init scripts
#: that would start the machine-wide instance on install.
PACKAGES = ("mariadb-server-core", "mariadb-client-core")


def ensure_installed() -> None:
    if shutil.which("mariadbd") and shutil.which("mariadb-install-db"):
        return
    hostcheck.apt_install(PACKAGES, why="the private database server")


def _datadir(layout: Layout) -> Path:
    return layout.mysql / "data"


def initialize(layout: Layout) -> bool:
    """Create the datadir once; return False when it already existed."""
    datadir = _datadir(layout)
    if (datadir / "mysql").is_dir():
        return False
    datadir.mkdir(parents=True, exist_ok=True)
    procs.run(
        [
            "mariadb-install-db",
            "--no-defaults",
            f"--datadir={datadir}",
            "--user=root",
            "--auth-root-authentication-method=socket",
            "--skip-test-db",
        ],
        layout.log("mariadb"),
    )
    return True


def _tmpdir(layout: Layout) -> Path:
    return layout.mysql / "tmp"


def start(layout: Layout) -> None:
    """Start mariadbd tuned for a throwaway developer cloud, not durability."""
    layout.run.mkdir(parents=True, exist_ok=True)
    _tmpdir(layout).mkdir(parents=True, exist_ok=True)
    argv = [
        shutil.which("mariadbd") or "mariadbd",
        "--no-defaults",
        f"--datadir={_datadir(layout)}",
        f"--socket={layout.mysql_socket}",
        f"--port={layout.port('mariadb')}",
        "--bind-address=127.0.0.1",
        f"--pid-file={layout.run / 'mariadbd.internal.pid'}",
        # Its own temp dir: not the /tmp that every other cloud's server and
        # test run shares.
        f"--tmpdir={_tmpdir(layout)}",
        "--user=root",
        "--skip-name-resolve",
        "--skip-log-bin",
        "--max-connections=1000",
        "--innodb-buffer-pool-size=128M",
        "--innodb-flush-log-at-trx-commit=0",
        "--innodb-doublewrite=0",
        "--character-set-server=utf8mb4",
    ]
    pidfile = layout.pidfile("mariadb")
    procs.spawn(argv, pidfile, layout.log("mariadb"))
    procs.wait_for(lambda: _answers(layout), pidfile, 60, "mariadbd")


def _answers(layout: Layout) -> bool:
    if not layout.mysql_socket.exists():
        return False
    result = subprocess.run(
        [*_client(layout), "-e", "SELECT 1"],
        capture_output=True,
        check=False,
    )
    return result.returncode == 0


def _client(layout: Layout) -> list[str]:
    return ["mariadb", "--no-defaults", f"--socket={layout.mysql_socket}", "-uroot"]


def ensure_database(layout: Layout, name: str, password: str) -> None:
    """Create database ``name`` and a same-named user owning it (idempotent)."""
    sql = (
        f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4;"
        f"CREATE USER IF NOT EXISTS '{name}'@'localhost' IDENTIFIED BY '{password}';"
        f"GRANT ALL PRIVILEGES ON `{name}`.* TO '{name}'@'localhost';"
    )
    procs.run([*_client(layout), "-e", sql], layout.log("mariadb"))


def url(layout: Layout, name: str, password: str) -> str:
    """SQLAlchemy URL over the private unix socket."""
    return (
        f"mysql+pymysql://{name}:{password}@localhost/{name}"
        f"?unix_socket={layout.mysql_socket}&charset=utf8mb4"
    )
