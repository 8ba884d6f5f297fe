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

"""The pure parts of moves: what passes through Nova, and the limits."""

import types
import uuid

import pytest
from nova import exception as nova_exception

from nova_docker import migration
from nova_docker.engine import spec as spec_mod

IMAGE_ID = "9d1c0e5a-2b7f-4f3e-8a6d-0c5b4e3a2f10"


@pytest.mark.parametrize(
    "info",
    [migration.DiskInfo(in_place=True), migration.DiskInfo(False, IMAGE_ID)],
)
def test_disk_info_survives_the_trip_through_nova(info):
    assert migration.DiskInfo.loads(info.dumps()) == info


@pytest.mark.parametrize(
    "text",
    [
        None,
        "",
        "not json",
        "[]",
        '[{"path": "/var/lib/nova/instances/x/disk", "type": "qcow2"}]',
        '{"in_place": true}',
        '{"nova_docker": 1}',
        '{"nova_docker": 1, "in_place": false, "image_id": "../etc/passwd"}',
        '{"nova_docker": 1, "in_place": false}',
    ],
)
def test_disk_info_from_anywhere_else_is_refused_by_name(text):
    with pytest.raises(nova_exception.MigrationError) as raised:
        migration.DiskInfo.loads(text)
    assert "did not come from nova-docker" in raised.value.format_message()


def test_the_transient_image_is_found_again_from_instance_and_migration():
    instance, one, other = (str(uuid.uuid4()) for _ in range(3))
    found = migration.transient_image_id(instance, one)
    assert found == migration.transient_image_id(instance, one)
    assert found != migration.transient_image_id(instance, other)
    assert uuid.UUID(found).version == 5


def flavor(**fields) -> types.SimpleNamespace:
    defaults = {"memory_mb": 512, "vcpus": 2, "swap": 0, "extra_specs": {}}
    return types.SimpleNamespace(**{**defaults, **fields})


def test_limits_are_those_a_container_of_the_flavor_is_created_with():
    limits = migration.limits_for(flavor(swap=256), pids_limit=100)
    created = spec_mod.ContainerSpec(
        name="n",
        image="i",
        hostname="h",
        labels={},
        memory_bytes=512 * 1024 * 1024,
        swap_bytes=256 * 1024 * 1024,
        vcpus=2,
        pids_limit=100,
    ).host_config_kwargs()
    assert created["memswap_limit"] == (512 + 256) * 1024 * 1024
    assert limits == {
        "Memory": created["mem_limit"],
        "MemorySwap": created["memswap_limit"],
        "CpuPeriod": created["cpu_period"],
        "CpuQuota": created["cpu_quota"],
        "CpuShares": created["cpu_shares"],
        "PidsLimit": 100,
    }


def test_a_refusal_rolls_the_server_back_with_a_resize_error():
    refused = migration.refusal("too big")
    assert isinstance(refused, nova_exception.InstanceFaultRollback)
    assert isinstance(refused.inner_exception, nova_exception.ResizeError)
    assert "too big" in refused.inner_exception.format_message()
