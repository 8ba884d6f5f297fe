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

"""The versioned diagnostics, from an engine's inspect and stats (pure)."""

from __future__ import annotations

import datetime

from nova_docker import diagnostics

PROC_NET_DEV = """\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     140       2    0    0    0     0          0         0      140       2    0    0    0     0       0          0
  eth0:    1234      10    1    2    0     0          0         0     5678      20    3    4    0     0       0          0
"""  # noqa: E501
STARTED = "2026-11-30T10:00:00.5Z"
INSPECTED = {
    "State": {"Status": "running", "Running": True, "StartedAt": STARTED},
    "HostConfig": {"Memory": 64 * 1024 * 1024},
}
STATS = {
    "memory_stats": {"usage": 3 * 1024 * 1024, "limit": 1 << 40},
    "cpu_stats": {"cpu_usage": {"total_usage": 900, "percpu_usage": [400, 500]}},
}


def test_interfaces_but_loopback_with_their_macs() -> None:
    (nic,) = diagnostics.parse_nics(PROC_NET_DEV, {"eth0": "fa:16:3e:00:00:01"})
    assert nic.name == "eth0" and nic.mac == "fa:16:3e:00:00:01"
    assert (nic.rx_octets, nic.rx_packets, nic.rx_errors, nic.rx_drop) == (
        1234,
        10,
        1,
        2,
    )
    assert (nic.tx_octets, nic.tx_packets, nic.tx_errors, nic.tx_drop) == (
        5678,
        20,
        3,
        4,
    )


def test_a_running_container_reports_state_uptime_memory_cpus_and_nics() -> None:
    nics = diagnostics.parse_nics(PROC_NET_DEV, {"eth0": "fa:16:3e:00:00:01"})
    now = datetime.datetime(2026, 11, 30, 10, 1, 40, tzinfo=datetime.UTC)
    found = diagnostics.instance_diagnostics(INSPECTED, STATS, nics, True, now=now)

    assert (found.state, found.hypervisor, found.uptime) == ("running", "docker", 99)
    assert not found.obj_attr_is_set("driver")
    assert found.config_drive is True
    # The flavor's memory, not the engine's unlimited figure.
    assert (found.memory_details.maximum, found.memory_details.used) == (64, 3)
    assert [(c.id, c.time) for c in found.cpu_details] == [(0, 400), (1, 500)]
    assert found.num_cpus == 2 and found.num_nics == 1 and found.num_disks == 0
    assert found.nic_details[0].mac_address == "fa:16:3e:00:00:01"
    assert found.nic_details[0].tx_packets == 20


def test_a_stopped_container_has_no_uptime_and_cgroup_v2_one_cpu_entry() -> None:
    stopped = {"State": {"Status": "exited", "StartedAt": "2026-11-30T10:00:00Z"}}
    stats = {"cpu_stats": {"cpu_usage": {"total_usage": 900}}}
    found = diagnostics.instance_diagnostics(stopped, stats, [], False)
    assert (found.state, found.uptime) == ("shutdown", None)
    assert [(c.id, c.time) for c in found.cpu_details] == [(0, 900)]
