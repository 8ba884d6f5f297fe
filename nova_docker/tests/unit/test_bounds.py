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

"""The maths that shares the host's tasks and open files among instances."""

import dataclasses

import os_resource_classes as orc
import pytest

from nova_docker import bounds
from nova_docker import host

#: This CI host: 2 vCPUs, 24 GiB, no systemd to raise the kernel's defaults.
SMALL_KERNEL = bounds.KernelLimits(
    pid_max=32768, threads_max=192730, file_max=2466177, nr_open=1048576
)
#: What systemd sets on a 64-bit host: file-max is LONG_MAX.
SYSTEMD_KERNEL = bounds.KernelLimits(
    pid_max=4194304, threads_max=192730, file_max=2**63 - 1, nr_open=1073741816
)
POLICY = bounds.Policy(
    reserved_tasks=4096, reserved_files=65536, pids_min=256, nofile_min=1024
)
#: 2 vCPUs x 4.0, 24000 MiB x 1.0.
CAPACITY = bounds.Capacity(instances=8, memory_mb=24000.0)


def shares(kernel=SMALL_KERNEL, policy=POLICY, capacity=CAPACITY) -> bounds.Shares:
    return bounds.Shares(kernel, policy, capacity)


def test_tasks_are_the_lesser_of_pid_max_and_threads_max():
    assert SMALL_KERNEL.tasks == 32768
    assert SYSTEMD_KERNEL.tasks == 192730


def test_task_budget_keeps_the_reserve_and_each_instances_shims_and_sandbox():
    assert shares().task_budget == 32768 - 4096 - 8 * (2 * 16 + 8)


@pytest.mark.parametrize("memory_mb", [64, 512, 2048, 8000])
def test_the_host_full_of_one_flavor_stays_within_its_task_budget(memory_mb):
    """However placement fills the host with one flavor (as many as memory
    and the VCPU inventory admit), the pids limits add up to the budget."""
    s = shares()
    count = min(int(CAPACITY.memory_mb // memory_mb), CAPACITY.instances)
    pids = s.for_instance(memory_mb, pids_cap=10**9, nofile_cap=10**9).pids
    assert count * pids <= s.task_budget


def test_a_mix_of_flavors_filling_memory_stays_within_the_budget():
    s = shares()
    flavors = [12000, 6000, 3000, 1500, 750, 375, 187, 64]
    assert sum(flavors) <= CAPACITY.memory_mb
    total = sum(s.for_instance(m, 10**9, 10**9).pids for m in flavors)
    assert total <= s.task_budget


def test_ten_default_containers_no_longer_exceed_pid_max():
    """The probe's case: 10 x 4096 = 40960 > pid_max 32768."""
    s = shares(capacity=bounds.Capacity(instances=10, memory_mb=24000.0))
    pids = s.for_instance(2400, pids_cap=4096, nofile_cap=65536).pids
    assert 10 * pids <= SMALL_KERNEL.pid_max - POLICY.reserved_tasks


def test_a_bigger_flavor_gets_more_tasks_and_a_tiny_one_the_floor():
    s = shares()
    tiny = s.for_instance(1, 10**9, 10**9).pids
    small = s.for_instance(1024, 10**9, 10**9).pids
    big = s.for_instance(8192, 10**9, 10**9).pids
    # 1 MiB of 24000: the floor and one task of the spare.
    assert tiny == POLICY.pids_min + 1
    assert tiny < small < big


def test_pids_cap_of_the_flavor_lowers_but_never_raises_the_share():
    s = shares()
    share = s.task_share(1024)
    assert s.for_instance(1024, pids_cap=77, nofile_cap=65536).pids == 77
    assert s.for_instance(1024, pids_cap=share * 10, nofile_cap=65536).pids == share


def test_fewer_tasks_than_the_share_leave_more_files_per_process():
    s = shares(kernel=dataclasses.replace(SMALL_KERNEL, file_max=10**9))
    full = s.for_instance(4096, pids_cap=10**9, nofile_cap=10**9)
    few = s.for_instance(4096, pids_cap=full.pids // 4, nofile_cap=10**9)
    assert few.nofile >= 4 * full.nofile - 4
    assert few.pids * few.nofile <= s.task_share(4096) * s.files_per_task


def test_open_files_of_all_instances_stay_within_the_file_budget():
    kernel = dataclasses.replace(SMALL_KERNEL, file_max=50_000_000)
    s = shares(kernel=kernel)
    assert s.shortfalls() == []
    flavors = [12000, 6000, 3000, 1500, 750, 375, 187, 64]
    held = 0
    for memory_mb in flavors:
        limits = s.for_instance(memory_mb, 10**9, 10**9)
        held += limits.pids * limits.nofile
    assert held <= s.file_budget


def test_nofile_never_exceeds_nr_open_nor_the_flavors_cap():
    s = shares(kernel=SYSTEMD_KERNEL)
    assert s.for_instance(4096, 4096, nofile_cap=2**40).nofile == 1073741816
    assert s.for_instance(4096, 4096, nofile_cap=65536).nofile == 65536
    assert s.for_instance(4096, 4096, nofile_cap=512).nofile == 512


def test_nofile_has_a_floor_when_the_host_has_few_files():
    limits = shares().for_instance(1024, 4096, 65536)
    assert shares().files_per_task < 1024
    assert limits.nofile == 1024


def test_a_systemd_host_guarantees_both_bounds():
    assert shares(kernel=SYSTEMD_KERNEL).shortfalls() == []


def test_too_few_files_for_the_floor_names_the_file_max_that_would_do():
    s = shares()
    [problem] = s.shortfalls()
    tasks = s.task_budget
    needed = tasks * 1024 + 65536 + 8 * (2 * 32 + 16)
    assert problem.startswith(f"open files: {tasks} tasks x nofile_limit_min 1024")
    assert "fs.file-max 2466177" in problem
    assert f"raise fs.file-max to {needed}" in problem


def test_the_file_max_a_warning_asks_for_is_enough():
    needed = shares().task_budget * 1024 + 65536 + 8 * (2 * 32 + 16)
    enough = dataclasses.replace(SMALL_KERNEL, file_max=needed)
    assert shares(kernel=enough).shortfalls() == []
    short = dataclasses.replace(SMALL_KERNEL, file_max=needed - 1)
    assert len(shares(kernel=short).shortfalls()) == 1


def test_floors_that_exceed_the_tasks_are_named_with_the_kernel_limits():
    s = shares(
        kernel=SYSTEMD_KERNEL,
        capacity=bounds.Capacity(instances=1000, memory_mb=24000.0),
    )
    [problem] = s.shortfalls()
    assert problem.startswith("tasks: 1000 instances x pids_limit_min 256 = 256000 >")
    assert "kernel.pid_max 4194304" in problem
    assert "kernel.threads-max 192730" in problem


def test_capacity_is_what_placement_computes_from_the_inventory():
    inventory = {
        orc.VCPU: {"total": 2, "reserved": 0, "allocation_ratio": 4.0},
        orc.MEMORY_MB: {"total": 24105, "reserved": 512, "allocation_ratio": 1.5},
    }
    assert host.capacity(inventory) == bounds.Capacity(
        instances=8, memory_mb=(24105 - 512) * 1.5
    )


def test_capacity_admits_at_least_one_instance():
    assert host.capacity({}).instances == 1
