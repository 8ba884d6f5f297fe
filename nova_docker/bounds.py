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

"""Each instance's share of the host's tasks and open files (pure).

The kernel has host-wide ceilings that no cgroup counts against a flavor:
tasks (``kernel.pid_max`` and ``kernel.threads-max``: processes and threads
alike) and open files (``fs.file-max``).  Per-container limits that ignore
them let ten instances hold more PIDs than the host has.

So the host's tasks, less what the host keeps for itself, are shared out in
proportion to the flavor's memory: placement never admits more memory than
the host's schedulable memory, so the shares of every instance it admits add
up to at most the whole.  Each instance is also given a floor, reserved once
for each instance the VCPU inventory admits (every instance holds at least
one VCPU), so that a tiny flavor still gets a usable number.

``RLIMIT_NOFILE`` is per process, so what an instance can hold open is its
pids limit times its nofile limit.  Open files are shared in proportion to
tasks: every task the host hands out carries the same number of files, and
an instance that is given fewer tasks than its share (a flavor's
``docker:pids_limit``) may hold more files per process instead.
"""

from __future__ import annotations

import dataclasses

#: Host tasks each container costs outside its own pids cgroup: its
#: containerd shim (11 to 12 threads measured on Docker 20.10).
SHIM_TASKS = 16
#: Host open files each container costs outside its own processes: its
#: shim's (26 measured) and dockerd's (about 4).
SHIM_FILES = 32
#: What an instance's network sandbox itself may hold: its pids limit
#: (``engine.spec.SANDBOX_PIDS``), and files for an idle shell.
SANDBOX_TASKS = 8
SANDBOX_FILES = 16
#: Each instance is two containers (its own and its sandbox), so two shims,
#: and the sandbox's own tasks and files: none of it in the flavor's share.
INSTANCE_TASKS = 2 * SHIM_TASKS + SANDBOX_TASKS
INSTANCE_FILES = 2 * SHIM_FILES + SANDBOX_FILES


@dataclasses.dataclass(frozen=True)
class KernelLimits:
    """The host's own ceilings, as ``/proc/sys`` gives them."""

    pid_max: int
    threads_max: int
    file_max: int
    #: The highest ``RLIMIT_NOFILE`` a process may have (``fs.nr_open``).
    nr_open: int

    @property
    def tasks(self) -> int:
        """Every process and thread takes a PID and counts as a thread."""
        return min(self.pid_max, self.threads_max)


@dataclasses.dataclass(frozen=True)
class Policy:
    """The ``[docker]`` options that say how the host is shared."""

    reserved_tasks: int = 4096
    reserved_files: int = 65536
    pids_min: int = 256
    nofile_min: int = 1024


@dataclasses.dataclass(frozen=True)
class Capacity:
    """What placement can put on this host."""

    #: The most instances: the VCPU inventory's capacity.
    instances: int
    #: The MEMORY_MB inventory's capacity: (total - reserved) x ratio.
    memory_mb: float


@dataclasses.dataclass(frozen=True)
class Limits:
    """One instance's limits: its pids cgroup and its processes' nofile."""

    pids: int
    nofile: int


def capacity(
    vcpus: int,
    reserved_vcpus: int,
    cpu_ratio: float,
    memory_mb: int,
    reserved_memory_mb: int,
    ram_ratio: float,
) -> Capacity:
    """Placement's capacity, as it computes it from the inventory."""
    return Capacity(
        instances=max(int((vcpus - reserved_vcpus) * cpu_ratio), 1),
        memory_mb=max((memory_mb - reserved_memory_mb) * ram_ratio, 1.0),
    )


@dataclasses.dataclass(frozen=True)
class Shares:
    kernel: KernelLimits
    policy: Policy
    capacity: Capacity

    @property
    def task_budget(self) -> int:
        """Tasks for instances: the host's, less its reserve and shims."""
        overhead = self.capacity.instances * INSTANCE_TASKS
        return self.kernel.tasks - self.policy.reserved_tasks - overhead

    @property
    def file_budget(self) -> int:
        overhead = self.capacity.instances * INSTANCE_FILES
        return self.kernel.file_max - self.policy.reserved_files - overhead

    @property
    def files_per_task(self) -> int:
        return max(self.file_budget, 0) // max(self.task_budget, 1)

    def task_share(self, memory_mb: int) -> int:
        """The floor plus the flavor's part, by memory, of what the floors
        of every admissible instance leave."""
        floors = self.capacity.instances * self.policy.pids_min
        spare = max(self.task_budget - floors, 0)
        part = min(max(memory_mb, 0) / self.capacity.memory_mb, 1.0)
        return self.policy.pids_min + int(spare * part)

    def for_instance(self, memory_mb: int, pids_cap: int, nofile_cap: int) -> Limits:
        """Limits for a flavor of ``memory_mb``; the caps are what the
        flavor or ``[docker]`` allows at most, and only ever lower them."""
        share = self.task_share(memory_mb)
        pids = min(share, pids_cap)
        files = share * self.files_per_task
        ceiling = min(nofile_cap, self.kernel.nr_open)
        nofile = min(max(files // pids, self.policy.nofile_min), ceiling)
        return Limits(pids=pids, nofile=nofile)

    def summary(self) -> str:
        return (
            f"{self.task_budget} tasks and {max(self.file_budget, 0)} open files "
            f"for up to {self.capacity.instances} instances, shared by flavor "
            f"memory; at least {self.policy.pids_min} tasks each, "
            f"{self.files_per_task} open files per task"
        )

    def shortfalls(self) -> list[str]:
        """Why instances admitted by placement could together exceed a
        kernel limit; empty when the bounds hold."""
        found = [self._task_shortfall(), self._file_shortfall()]
        return [text for text in found if text]

    def _task_shortfall(self) -> str:
        floors = self.capacity.instances * self.policy.pids_min
        if floors <= self.task_budget:
            return ""
        k, n = self.kernel, self.capacity.instances
        return (
            f"tasks: {n} instances x pids_limit_min {self.policy.pids_min} = "
            f"{floors} > {self.task_budget} = min(kernel.pid_max {k.pid_max}, "
            f"kernel.threads-max {k.threads_max}) - reserved_host_pids "
            f"{self.policy.reserved_tasks} - {n} x {INSTANCE_TASKS} for "
            "containerd shims and sandboxes; lower [docker] pids_limit_min or "
            "cpu_allocation_ratio, or raise kernel.pid_max"
        )

    def _file_shortfall(self) -> str:
        nofile = min(self.policy.nofile_min, self.kernel.nr_open)
        if self.files_per_task >= nofile:
            return ""
        tasks = max(self.task_budget, self.capacity.instances * self.policy.pids_min)
        worst = tasks * nofile
        needed = worst + self.policy.reserved_files
        needed += self.capacity.instances * INSTANCE_FILES
        return (
            f"open files: {tasks} tasks x nofile_limit_min {nofile} = {worst} > "
            f"{max(self.file_budget, 0)} = fs.file-max {self.kernel.file_max} - "
            f"reserved_host_files {self.policy.reserved_files} - "
            f"{self.capacity.instances} x {INSTANCE_FILES} for containerd shims "
            "and sandboxes; "
            f"raise fs.file-max to {needed} or lower [docker] nofile_limit_min"
        )
