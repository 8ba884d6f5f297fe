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

"""Engine stats → Nova's diagnostics (pure).

Both forms: the flat dict of the API before microversion 2.48, and the
versioned ``Diagnostics`` object after it.  The object's ``driver`` field is
an enum of Nova's in-tree drivers, so it stays unset (the API shows null);
``hypervisor`` says ``docker``.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterable
from collections.abc import Mapping
from typing import Any

from nova.compute import power_state
from nova.objects import diagnostics as diagnostics_obj
from oslo_utils import units

from nova_docker.engine import state as engine_state
from nova_docker.image import cache

HYPERVISOR = "docker"
HYPERVISOR_OS = "linux"


@dataclasses.dataclass(frozen=True)
class NicCounters:
    """One interface of the instance's namespace, as the kernel counts."""

    name: str
    mac: str | None
    rx_octets: int
    rx_packets: int
    rx_errors: int
    rx_drop: int
    tx_octets: int
    tx_packets: int
    tx_errors: int
    tx_drop: int


def parse_nics(proc_net_dev: str, addresses: Mapping[str, str]) -> list[NicCounters]:
    """The interfaces of ``/proc/net/dev`` but loopback, with their MACs
    from ``addresses`` (interface → MAC)."""
    nics = []
    for line in proc_net_dev.splitlines():
        name, colon, numbers = line.partition(":")
        name = name.strip()
        fields = numbers.split()
        if not colon or name == "lo" or len(fields) < 12 or not fields[0].isdigit():
            continue
        rx, tx = [int(f) for f in fields[:4]], [int(f) for f in fields[8:12]]
        nics.append(NicCounters(name, addresses.get(name), *rx, *tx))
    return sorted(nics, key=lambda nic: nic.name)


def instance_diagnostics(
    inspected: Mapping[str, Any],
    stats: Mapping[str, Any],
    nics: Iterable[NicCounters],
    config_drive: bool,
    now: datetime.datetime | None = None,
) -> diagnostics_obj.Diagnostics:
    """The versioned diagnostics of one instance's container."""
    container_state = inspected.get("State") or {}
    current = engine_state.power_state_of(container_state)
    found = diagnostics_obj.Diagnostics(
        state=power_state.STATE_MAP[current],
        hypervisor=HYPERVISOR,
        hypervisor_os=HYPERVISOR_OS,
        uptime=_uptime(container_state, current, now),
        config_drive=config_drive,
    )
    memory = stats.get("memory_stats") or {}
    limit = (inspected.get("HostConfig") or {}).get("Memory") or memory.get("limit", 0)
    found.memory_details = diagnostics_obj.MemoryDiagnostics(
        maximum=int(limit) // units.Mi, used=int(memory.get("usage", 0)) // units.Mi
    )
    cpu = (stats.get("cpu_stats") or {}).get("cpu_usage") or {}
    per_cpu = cpu.get("percpu_usage") or [cpu.get("total_usage", 0)]
    for index, nanoseconds in enumerate(per_cpu):
        found.add_cpu(id=index, time=int(nanoseconds))
    for nic in nics:
        found.add_nic(
            mac_address=nic.mac, rx_octets=nic.rx_octets, rx_packets=nic.rx_packets,
            rx_errors=nic.rx_errors, rx_drop=nic.rx_drop, tx_octets=nic.tx_octets,
            tx_packets=nic.tx_packets, tx_errors=nic.tx_errors, tx_drop=nic.tx_drop,
        )  # fmt: skip
    return found


def _uptime(
    container_state: Mapping[str, Any], current: int, now: datetime.datetime | None
) -> int | None:
    """Seconds since the container's process started; None when stopped."""
    if current not in (power_state.RUNNING, power_state.PAUSED):
        return None
    started = cache.parse_time(container_state.get("StartedAt"))
    if started is None:
        return None
    now = now or datetime.datetime.now(datetime.UTC)
    return max(int((now - started).total_seconds()), 0)


def legacy_diagnostics(stats: dict[str, Any]) -> dict[str, int]:
    """The flat dict of the pre-2.48 diagnostics API."""
    cpu = (stats.get("cpu_stats") or {}).get("cpu_usage") or {}
    memory = stats.get("memory_stats") or {}
    flat = {
        f"cpu{index}_time": nanoseconds
        for index, nanoseconds in enumerate(cpu.get("percpu_usage") or ())
    }
    flat["memory"] = memory.get("limit", 0)
    flat["memory-actual"] = memory.get("usage", 0)
    flat["pids"] = (stats.get("pids_stats") or {}).get("current", 0)
    return flat
