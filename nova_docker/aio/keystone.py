"""Keystone's one-time setup with ``keystone-manage``: schema, fernet and
credential keys, and the bootstrap of the admin user and identity endpoint."""

from __future__ import annotations

from pathlib import Path

from nova_docker.aio import procs
from nova_docker.aio import tools
from nova_docker.aio.configs import REGION
from nova_docker.aio.layout import Layout


def config_file(layout: Layout) -> Path:
    return layout.etc / "keystone" / "keystone.conf"


def _manage(layout: Layout, *args: str, env: dict[str, str] | None = None) -> None:
    conf = str(config_file(layout))
    procs.run(
        [tools.bin_path("keystone-manage"), "--config-file", conf, *args],
        layout.log("keystone-manage"),
        env=env,
    )


def db_sync(layout: Layout) -> None:
    _manage(layout, "db_sync")


def setup_keys(layout: Layout) -> None:
    """Create fernet and credential keys once (they sign every token)."""
    for kind in ("fernet", "credential"):
        repo = layout.root / "keystone" / f"{kind}-keys"
        if not (repo / "0").exists():
            # Keystone warns about (and should not have) readable keys.
            repo.mkdir(mode=0o700, parents=True, exist_ok=True)
            repo.chmod(0o700)
            _manage(
                layout,
                f"{kind}_setup",
                "--keystone-user",
                "root",
                "--keystone-group",
                "root",
            )


def bootstrap(layout: Layout, admin_password: str) -> None:
    """Admin project/user/roles and the identity endpoints (idempotent)."""
    url = layout.url("keystone")
    _manage(
        layout,
        "bootstrap",
        "--bootstrap-admin-url",
        url,
        "--bootstrap-internal-url",
        url,
        "--bootstrap-public-url",
        url,
        "--bootstrap-region-id",
        REGION,
        # Through the environment, so the password is not on `ps` output.
        env={"OS_BOOTSTRAP_PASSWORD": admin_password},
    )
