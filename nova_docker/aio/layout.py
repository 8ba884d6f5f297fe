"""Where a cloud keeps its state and which ports it listens on (pure)."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
from pathlib import Path

DEFAULT_STATE_DIR = "/var/lib/nova-docker-aio"
DEFAULT_PORT_BASE = 25000
STATE_ENV = "NOVA_DOCKER_AIO_STATE"
PORT_BASE_ENV = "NOVA_DOCKER_AIO_PORT_BASE"

#: Offsets from the port base, one per listening service.
PORT_OFFSETS = {
    "mariadb": 0,
    "keystone": 1,
    "glance": 2,
    "placement": 3,
    "nova": 4,
    "null-network": 5,
    "neutron": 6,
}
#: Every host device a cloud creates starts with this (its OVS bridges, whose
#: netdev taps carry the same names), so cleanup can find them.
DEVICE_PREFIX = "nda"


@dataclasses.dataclass(frozen=True)
class Layout:
    """Paths and ports of one cloud, all derived from its state dir."""

    root: Path
    port_base: int

    def port(self, service: str) -> int:
        return self.port_base + PORT_OFFSETS[service]

    def url(self, service: str, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port(service)}{path}"

    @property
    def compute_host(self) -> str:
        """The nova-compute host name, unique per state dir.

        The driver only lists containers labelled with its own host name, so
        two clouds on one engine must never share it.
        """
        base = re.sub(r"[^a-z0-9-]+", "-", self.root.name.lower()).strip("-")
        return f"{base or 'aio'}-{self.tag}"

    @property
    def tag(self) -> str:
        """Six hex digits unique per state dir, for host-wide names."""
        return hashlib.sha256(str(self.root).encode()).hexdigest()[:6]

    def bridge(self, role: str) -> str:
        """``ndai<tag>`` (integration) or ``ndae<tag>`` (external): short
        enough for a kernel device name, unique per cloud on the shared
        switch."""
        return f"{DEVICE_PREFIX}{role[0]}{self.tag}"

    def ovn_socket(self, db: str) -> Path:
        """The unix socket of this cloud's OVN ``nb`` or ``sb`` database."""
        return self.run / f"ovn{db}_db.sock"

    @property
    def etc(self) -> Path:
        return self.root / "etc"

    @property
    def logs(self) -> Path:
        return self.root / "log"

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def mysql(self) -> Path:
        return self.root / "mysql"

    @property
    def mysql_socket(self) -> Path:
        return self.run / "mysqld.sock"

    @property
    def secrets(self) -> Path:
        return self.etc / "secrets.json"

    @property
    def clouds_yaml(self) -> Path:
        return self.root / "clouds.yaml"

    def log(self, service: str) -> Path:
        return self.logs / f"{service}.log"

    def pidfile(self, service: str) -> Path:
        return self.run / f"{service}.pid"

    def marker(self, step: str) -> Path:
        """A file whose presence says a one-time step has completed."""
        return self.root / "done" / step


def resolve(state_dir: str | None, port_base: int | None) -> Layout:
    """Apply the precedence flag > environment > default."""
    root = state_dir or os.environ.get(STATE_ENV) or DEFAULT_STATE_DIR
    base = port_base or int(os.environ.get(PORT_BASE_ENV) or DEFAULT_PORT_BASE)
    return Layout(root=Path(root).resolve(), port_base=base)
