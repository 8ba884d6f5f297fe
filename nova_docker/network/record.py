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

from oslo_log import log as logging

LOG = logging.getLogger(__name__)

#: ``VIFOpenVSwitch``: a tap on the integration bridge.
OVS = "ovs"
#: ``VIFBridge``: a per-port Linux bridge linked to OVS (hybrid plug).
HYBRID = "hybrid"

_FILE = "docker-ports.json"


class PortRecord:
    """``<instances_path>/<instance uuid>/docker-ports.json``: port ID → kind.

    Best effort: the record only helps a later local delete, so a record
    that cannot be read or written is logged and never fails a plug or a
    delete.
    """

    def __init__(self, instances_path: str) -> None:
        self._root = Path(instances_path)

    def ports(self, instance_uuid: str) -> dict[str, str]:
        path = self._file(instance_uuid)
        try:
            return dict(json.loads(path.read_text()))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, TypeError) as exc:
            LOG.warning("Ignoring unreadable port record %s: %s", path, exc)
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
        try:
            self._file(instance_uuid).unlink(missing_ok=True)
            self._file(instance_uuid).parent.rmdir()
        except OSError:
            pass  # absent, or holds someone else's files

    def _file(self, instance_uuid: str) -> Path:
        return self._root / instance_uuid / _FILE

    def _write(self, instance_uuid: str, ports: dict[str, str]) -> None:
        path = self._file(instance_uuid)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Write then rename, so a crash never leaves half a record.
            partial = path.with_suffix(".tmp")
            partial.write_text(json.dumps(ports, sort_keys=True))
            os.replace(partial, path)
        except OSError as exc:
            LOG.warning(
                "Cannot record ports %s in %s (%s); if Nova deletes this "
                "server while nova-compute is down, their host devices stay",
                ", ".join(ports) or "(none)",
                path,
                exc,
            )
