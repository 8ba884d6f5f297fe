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

"""Host facts → what Nova and Placement are told this host offers.

:func:`inventory`, :func:`available_resource`, :func:`reserved_disk_gb` and
:func:`capacity` are pure; :func:`read_facts` (with
:func:`read_kernel_limits`) is the only part that asks the engine and the
local filesystem.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import re
import resource
import shutil
import time
from typing import Any

import os_resource_classes as orc
from nova.objects import fields
from oslo_serialization import jsonutils

from nova_docker import bounds
from nova_docker.engine import client as engine_client

MIB = 1024 * 1024
GIB = 1024 * MIB
_LEADING_DIGITS = re.compile(r"\d+")
#: Where the kernel's host-wide ceilings are read.
PROC_SYS = "/proc/sys"


@dataclasses.dataclass(frozen=True)
class HostFacts:
    vcpus: int
    memory_mb: int
    memory_mb_used: int
    disk_gb: int
    disk_gb_used: int
    disk_gb_free: int
    engine_version: str
    architecture: str
    #: What the engine's images take on its storage (the image cache).
    images_bytes: int = 0
    kernel: bounds.KernelLimits | None = None


def read_facts(engine: engine_client.Engine, fallback_path: str) -> HostFacts:
    """Two engine calls (``/info`` and the image list), a ``statvfs`` of the
    engine's storage and the kernel's limits."""
    info = engine.info()
    storage = info.get("DockerRootDir") or ""
    # A remote engine's storage is not visible from here; the instances path
    # of this compute host is the best local stand-in.
    disk = shutil.disk_usage(storage if os.path.isdir(storage) else fallback_path)
    memory_mb = int(info.get("MemTotal", 0)) // MIB
    return HostFacts(
        vcpus=int(info.get("NCPU", 0)),
        memory_mb=memory_mb,
        memory_mb_used=max(memory_mb - _local_available_mb(memory_mb), 0),
        disk_gb=disk.total // GIB,
        disk_gb_used=(disk.total - disk.free) // GIB,
        disk_gb_free=disk.free // GIB,
        engine_version=str(info.get("ServerVersion", "0")),
        architecture=fields.Architecture.canonicalize(
            info.get("Architecture") or platform.machine()
        ),
        images_bytes=engine.images_size(),
        kernel=read_kernel_limits(),
    )


def read_kernel_limits(root: str = PROC_SYS) -> bounds.KernelLimits:
    """The host's ceilings on tasks and open files.

    These are this compute host's: for a remote engine they stand in for
    the engine host's, which the Engine API does not tell.
    """

    def read(name: str) -> int:
        with open(os.path.join(root, name)) as f:
            return int(f.read().split()[0])

    return bounds.KernelLimits(
        pid_max=read("kernel/pid_max"),
        threads_max=read("kernel/threads-max"),
        file_max=read("fs/file-max"),
        nr_open=min(read("fs/nr_open"), nofile_hard_limit()),
    )


def nofile_hard_limit() -> int:
    """This process's hard ``RLIMIT_NOFILE``, a stand-in for the engine's.

    Without ``CAP_SYS_RESOURCE`` (a container host, a sandbox) the engine
    cannot give a container more than its own hard limit: runc's setrlimit
    fails with EPERM and the container never starts.  Where the engine runs
    with a higher limit than nova-compute, this is merely conservative.
    """
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return hard if hard != resource.RLIM_INFINITY else 1 << 30


def reserved_disk_gb(reserved_host_disk_mb: int, facts: HostFacts) -> int:
    """DISK_GB kept from instances: the operator's reserve plus the image
    cache, which sits on the engine's storage outside any allocation."""
    reserved = reserved_host_disk_mb * MIB + facts.images_bytes
    return -(-reserved // GIB)


def _local_available_mb(default: int) -> int:
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return default


def version_as_int(version: str) -> int:
    """``20.10.24+dfsg1`` → 20010024, the integer form Nova stores."""
    numbers = [
        int(m.group()) if (m := _LEADING_DIGITS.match(part)) else 0
        for part in version.split(".")[:3]
    ]
    numbers += [0] * (3 - len(numbers))
    major, minor, patch = numbers
    return major * 1_000_000 + minor * 1_000 + patch


def available_resource(facts: HostFacts, nodename: str) -> dict[str, Any]:
    return {
        "vcpus": facts.vcpus,
        "memory_mb": facts.memory_mb,
        "local_gb": facts.disk_gb,
        "vcpus_used": 0,
        "memory_mb_used": facts.memory_mb_used,
        "local_gb_used": facts.disk_gb_used,
        "hypervisor_type": fields.HVType.DOCKER,
        "hypervisor_version": version_as_int(facts.engine_version),
        "hypervisor_hostname": nodename,
        "cpu_info": jsonutils.dumps({"arch": facts.architecture}),
        "disk_available_least": facts.disk_gb_free,
        "supported_instances": [
            (facts.architecture, fields.HVType.DOCKER, fields.VMMode.EXE)
        ],
        "numa_topology": None,
    }


def inventory(
    facts: HostFacts,
    reserved_cpus: int,
    reserved_memory_mb: int,
    reserved_disk_gb: int,
    ratios: dict[str, float],
) -> dict[str, dict[str, Any]]:
    """Placement inventory for VCPU, MEMORY_MB and DISK_GB."""
    totals = {
        orc.VCPU: (facts.vcpus, reserved_cpus),
        orc.MEMORY_MB: (facts.memory_mb, reserved_memory_mb),
        orc.DISK_GB: (facts.disk_gb, reserved_disk_gb),
    }
    result = {}
    for rc, (total, reserved) in totals.items():
        if total <= 0:
            continue
        result[rc] = {
            "total": total,
            "min_unit": 1,
            "max_unit": total,
            "step_size": 1,
            "allocation_ratio": ratios[rc],
            "reserved": min(reserved, total),
        }
    return result


def capacity(inventory: dict[str, dict[str, Any]]) -> bounds.Capacity:
    """What placement admits onto this host, from the inventory it is told."""
    vcpu = inventory.get(orc.VCPU, {})
    memory = inventory.get(orc.MEMORY_MB, {})
    return bounds.capacity(
        vcpus=vcpu.get("total", 0),
        reserved_vcpus=vcpu.get("reserved", 0),
        cpu_ratio=vcpu.get("allocation_ratio", 1.0),
        memory_mb=memory.get("total", 0),
        reserved_memory_mb=memory.get("reserved", 0),
        ram_ratio=memory.get("allocation_ratio", 1.0),
    )


def uptime_text(now: float | None = None) -> str:
    """An ``uptime``-style line, from /proc, without running a command."""
    with open("/proc/uptime") as f:
        seconds = int(float(f.read().split()[0]))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    clock = time.strftime("%H:%M:%S", time.localtime(now))
    loads = ", ".join(f"{load:.2f}" for load in os.getloadavg())
    return (
        f" {clock} up {days} days, {hours:2d}:{rest // 60:02d}, load average: {loads}"
    )


def cpu_stats(proc_stat: str, cpuinfo: str, clock_ticks: int) -> dict[str, int]:
    """Host CPU times in nanoseconds and frequency in MHz, as Nova's CPU
    monitor (``compute_monitors = cpu.virt_driver``) expects them.

    Pure: takes the text of ``/proc/stat`` and ``/proc/cpuinfo``.
    """
    fields = proc_stat.splitlines()[0].split()[1:]
    user, nice, system, idle, iowait = (int(v) for v in fields[:5])
    to_ns = 1_000_000_000 // clock_ticks
    mhz = [
        float(line.split(":")[1])
        for line in cpuinfo.splitlines()
        if line.startswith("cpu MHz")
    ]
    return {
        "kernel": system * to_ns,
        "idle": idle * to_ns,
        "user": (user + nice) * to_ns,
        "iowait": iowait * to_ns,
        "frequency": int(max(mhz)) if mhz else 0,
    }


def read_cpu_stats() -> dict[str, int]:
    with open("/proc/stat") as stat, open("/proc/cpuinfo") as cpuinfo:
        return cpu_stats(stat.read(), cpuinfo.read(), os.sysconf("SC_CLK_TCK"))
