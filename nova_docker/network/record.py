"""Which ports this host plugged for each instance, kept on disk.

While an instance lives, Nova's ``network_info`` names its ports.  A server
deleted while its compute service was down (Nova's "local delete") reaches
``destroy`` with none: the API already deleted its ports in Neutron, and
the host devices we made for them would stay on the switch for ever.  The
record is how ``destroy`` still finds them.  It is written before a port is
plugged, so a plug cut short by a crash is found too.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

#: ``VIFOpenVSwitch``: a tap on the integration bridge.
OVS = "ovs"
#: ``VIFBridge``: a per-port Linux bridge linked to OVS (hybrid plug).
HYBRID = "hybrid"

_FILE = "docker-ports.json"


class PortRecord:
    """``<instances_path>/<instance uuid>/docker-ports.json``: port ID → kind."""

    def __init__(self, instances_path: str) -> None:
        self._root = Path(instances_path)

    def ports(self, instance_uuid: str) -> dict[str, str]:
        try:
            return dict(json.loads(self._file(instance_uuid).read_text()))
        except FileNotFoundError:
            return {}

    def add(self, instance_uuid: str, port_id: str, kind: str) -> None:
        ports = self.ports(instance_uuid)
        if ports.get(port_id) != kind:
            self._write(instance_uuid, {**ports, port_id: kind})

    def remove(self, instance_uuid: str, port_id: str) -> None:
        ports = self.ports(instance_uuid)
        if ports.pop(port_id, None) is not None:
            self._write(instance_uuid, ports)

    def forget(self, instance_uuid: str) -> None:
        self._file(instance_uuid).unlink(missing_ok=True)
        try:
            self._file(instance_uuid).parent.rmdir()
        except OSError:
            pass  # absent, or holds someone else's files

    def _file(self, instance_uuid: str) -> Path:
        return self._root / instance_uuid / _FILE

    def _write(self, instance_uuid: str, ports: dict[str, str]) -> None:
        path = self._file(instance_uuid)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename, so a crash never leaves half a record.
        partial = path.with_suffix(".tmp")
        partial.write_text(json.dumps(ports, sort_keys=True))
        os.replace(partial, path)
