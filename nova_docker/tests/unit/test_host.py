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

import os_resource_classes as orc
import pytest

from nova_docker import host

FACTS = host.HostFacts(
    vcpus=4,
    memory_mb=8192,
    memory_mb_used=1000,
    disk_gb=100,
    disk_gb_used=40,
    disk_gb_free=60,
    engine_version="20.10.24+dfsg1",
    architecture="x86_64",
)
RATIOS = {orc.VCPU: 16.0, orc.MEMORY_MB: 1.5, orc.DISK_GB: 1.0}


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("20.10.24+dfsg1", 20_010_024),
        ("28.2.2", 28_002_002),
        ("27.0", 27_000_000),
        ("dev", 0),
    ],
)
def test_engine_version_as_nova_integer(version, expected):
    assert host.version_as_int(version) == expected


def test_inventory_applies_reserved_and_ratios():
    inventory = host.inventory(FACTS, 1, 512, 5, RATIOS)
    assert inventory[orc.VCPU] == {
        "total": 4,
        "min_unit": 1,
        "max_unit": 4,
        "step_size": 1,
        "allocation_ratio": 16.0,
        "reserved": 1,
    }
    assert inventory[orc.MEMORY_MB]["reserved"] == 512
    assert inventory[orc.DISK_GB]["total"] == 100


def test_reserved_never_exceeds_total():
    assert host.inventory(FACTS, 10, 0, 0, RATIOS)[orc.VCPU]["reserved"] == 4


def test_available_resource_says_docker_and_exe():
    resources = host.available_resource(FACTS, "node-1")
    assert resources["hypervisor_type"] == "docker"
    assert resources["hypervisor_version"] == 20_010_024
    assert resources["supported_instances"] == [("x86_64", "docker", "exe")]
    assert resources["disk_available_least"] == 60


def test_cpu_stats_convert_ticks_to_nanoseconds():
    stat = "cpu  100 20 30 400 5 0 0 0 0 0\ncpu0 1 2 3 4 5 0 0 0 0 0\n"
    cpuinfo = "processor: 0\ncpu MHz\t\t: 2399.998\nprocessor: 1\ncpu MHz: 2500.5\n"
    assert host.cpu_stats(stat, cpuinfo, 100) == {
        "kernel": 300_000_000,
        "idle": 4_000_000_000,
        "user": 1_200_000_000,
        "iowait": 50_000_000,
        "frequency": 2500,
    }
