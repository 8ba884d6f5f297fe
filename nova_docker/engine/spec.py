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

"""What a Nova instance becomes on the engine (pure: no I/O, no CONF).

The flavor's sizes become hard cgroup limits: memory is a cap with no swap on
top, vCPUs a CFS quota (a real ceiling, not just a weight).  Containers are
never privileged unless the operator allows it and the flavor asks for it,
and run the image's healthcheck only where the operator allows it.
"""

from __future__ import annotations

import dataclasses
import re
import shlex
from collections.abc import Iterable
from collections.abc import Mapping
from typing import Any

from nova import exception as nova_exception
from nova.i18n import _

from nova_docker import bounds

CPU_PERIOD_US = 100_000
CPU_SHARES_PER_VCPU = 1024
HOSTNAME_MAX = 63
# Always on: a setuid binary in an image must not gain privileges.
NO_NEW_PRIVILEGES = "no-new-privileges:true"
PRIVILEGED_EXTRA_SPEC = "docker:privileged"
PIDS_LIMIT_EXTRA_SPEC = "docker:pids_limit"
NOFILE_LIMIT_EXTRA_SPEC = "docker:nofile_limit"
#: The driver's own extra spec namespace: a key in it that the driver does
#: not know is a typo, refused rather than ignored.  Other namespaces are
#: other drivers' (a mixed cloud shares flavors) and stay ignored.
EXTRA_SPEC_NAMESPACE = "docker:"
KNOWN_EXTRA_SPECS = (
    PRIVILEGED_EXTRA_SPEC,
    PIDS_LIMIT_EXTRA_SPEC,
    NOFILE_LIMIT_EXTRA_SPEC,
)
#: The smallest memory limit the engine accepts (its own check, "Minimum
#: memory limit allowed is 6MB").
ENGINE_MIN_MEMORY_MB = 6
#: Log drivers the engine can read back for the console log.
LOG_DRIVERS = ("local", "json-file")
# Docker turns IPv6 off in containers without an engine network; Neutron
# ports may carry IPv6 addresses.
IPV6_SYSCTLS = {
    "net.ipv6.conf.all.disable_ipv6": "0",
    "net.ipv6.conf.default.disable_ipv6": "0",
}
#: The engine's own read-only paths (its default, which setting any list
#: replaces), and the files it bind-mounts from its data root into every
#: container: written there, they would grow outside the writable layer
#: that root-disk limits count, so the instance gets them read-only.  Its
#: hostname and resolvers are Neutron's anyway.
ENGINE_READONLY_PATHS = (
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
)
ENGINE_FILES = ("/etc/hosts", "/etc/hostname", "/etc/resolv.conf")
#: The healthcheck test that turns off the one the image declares.
HEALTHCHECK_OFF = "NONE"
NS_PER_SECOND = 1_000_000_000
#: What the engine uses for a healthcheck interval or timeout of 0.
HEALTHCHECK_ENGINE_DEFAULT_NS = 30 * NS_PER_SECOND
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TRUE = {"1", "true", "yes", "on"}


@dataclasses.dataclass(frozen=True)
class SpecOptions:
    """The ``[docker]`` options the spec depends on, passed in by the driver."""

    pids_limit: int = 4096
    nofile_limit: int = 65536
    log_driver: str = "local"
    allow_privileged: bool = False
    security_opt: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    metadata_as_env: bool = False
    log_max_size: str = "10m"
    log_max_files: int = 2
    allow_image_healthcheck: bool = False
    healthcheck_min_interval: int = 30
    #: The root disk, in GB, of a flavor that sets none (``root_gb`` = 0):
    #: ``[docker] max_image_expanded_gb``, the largest image it may boot.
    unsized_root_disk_gb: int = 10


def root_disk_gb_for(root_gb: int, unsized_root_disk_gb: int) -> int:
    """The root disk a container of a flavor gets, in GB.

    Nova's libvirt driver sizes a ``root_gb`` = 0 disk by its image; a
    container's writable layer has no such size, so it gets the largest
    image the host accepts, rather than the whole of the engine's storage.
    """
    return root_gb if root_gb > 0 else unsized_root_disk_gb


@dataclasses.dataclass(frozen=True)
class ContainerSpec:
    name: str
    image: str
    hostname: str
    labels: Mapping[str, str]
    memory_bytes: int
    vcpus: int
    pids_limit: int
    command: tuple[str, ...] | None = None
    #: The flavor's swap: how much of the host's swap space the container
    #: may use on top of its memory (none when the host has none).
    swap_bytes: int = 0
    environment: Mapping[str, str] = dataclasses.field(default_factory=dict)
    privileged: bool = False
    security_opt: tuple[str, ...] = (NO_NEW_PRIVILEGES,)
    cap_drop: tuple[str, ...] = ()
    log_max_size: str = "10m"
    log_max_files: int = 2
    nameservers: tuple[str, ...] = ()
    #: In the SDK's form (``test``, ``interval``...; durations in ns).
    healthcheck: Mapping[str, Any] = dataclasses.field(
        default_factory=lambda: {"test": [HEALTHCHECK_OFF]}
    )
    #: The engine's quota on the writable layer, in GiB (the engine reads
    #: ``G`` as 2^30, as Nova does); 0 asks for none, for an engine that
    #: cannot enforce one (see :func:`root_disk_gb_for` for ``root_gb`` 0).
    root_disk_gb: int = 0
    #: ``RLIMIT_NOFILE`` (soft and hard) of every process; 0 leaves the
    #: engine's own.
    nofile: int = 0
    log_driver: str = "local"
    #: The network sandbox whose namespace, hostname and resolver the
    #: container joins; None for a container with a namespace of its own
    #: (instances made before sandboxes, and the root-disk probe).
    sandbox: str | None = None
    #: The named volume holding the config drive, mounted read-only at
    #: ``config_drive_path`` (left out of every commit); None for no drive.
    config_drive_volume: str | None = None
    config_drive_path: str = ""

    def create_kwargs(self) -> dict[str, Any]:
        return {
            "image": self.image,
            "name": self.name,
            # In a sandbox the hostname is the sandbox's (the engine
            # refuses one here).
            "hostname": None if self.sandbox else self.hostname,
            "labels": dict(self.labels),
            "command": list(self.command) if self.command is not None else None,
            "environment": dict(self.environment),
            "healthcheck": dict(self.healthcheck),
            "detach": True,
        }

    def host_config_extra(self) -> dict[str, Any]:
        """HostConfig fields the SDK has no argument for."""
        if self.privileged:
            # The engine refuses read-only paths for a privileged
            # container, which could remount them anyway.
            return {}
        return {"ReadonlyPaths": [*ENGINE_READONLY_PATHS, *ENGINE_FILES]}

    def host_config_kwargs(self) -> dict[str, Any]:
        return {
            "mem_limit": self.memory_bytes,
            # Memory plus the flavor's swap: no swap beyond what it gives.
            "memswap_limit": self.memory_bytes + self.swap_bytes,
            "cpu_period": CPU_PERIOD_US,
            "cpu_quota": self.vcpus * CPU_PERIOD_US,
            "cpu_shares": self.vcpus * CPU_SHARES_PER_VCPU,
            "pids_limit": self.pids_limit,
            "privileged": self.privileged,
            "security_opt": list(self.security_opt),
            "cap_drop": list(self.cap_drop) or None,
            # Neutron ports are plugged into the namespace by the driver; the
            # engine's own bridge networking is never used.
            **network_kwargs(self.sandbox, self.nameservers),
            # Nova owns the power state: the engine must not restart anything.
            "restart_policy": {"Name": "no"},
            "ulimits": (
                [{"name": "nofile", "soft": self.nofile, "hard": self.nofile}]
                if self.nofile > 0
                else None
            ),
            "log_config": log_config(
                self.log_driver, self.log_max_size, self.log_max_files
            ),
            # Read-only even to the container's root: nothing it writes can
            # land outside its writable layer, where the disk limits are.
            "binds": (
                [f"{self.config_drive_volume}:{self.config_drive_path}:ro"]
                if self.config_drive_volume
                else None
            ),
            # Only where the engine can enforce it: elsewhere it refuses
            # the create.
            "storage_opt": (
                {"size": f"{self.root_disk_gb}G"} if self.root_disk_gb > 0 else None
            ),
        }


def network_kwargs(sandbox: str | None, nameservers: tuple[str, ...]) -> dict[str, Any]:
    """The namespace settings: the sandbox's (which has them all), or a
    namespace of the container's own with the subnets' DNS servers."""
    if sandbox:
        return {"network_mode": f"container:{sandbox}"}
    return {
        "network_mode": "none",
        "sysctls": dict(IPV6_SYSCTLS),
        # The subnets' DNS servers; the engine writes /etc/resolv.conf.
        "dns": list(nameservers) or None,
    }


#: A sandbox holds a namespace with one idle shell: a few MiB and tasks at
#: most, which no tenant's flavor is charged for.
SANDBOX_MEMORY_BYTES = 16 * 1024 * 1024
SANDBOX_PIDS = bounds.SANDBOX_TASKS
#: A sandbox writes nothing worth keeping; its log is its own small file.
SANDBOX_LOG = ("local", "1m", 1)


@dataclasses.dataclass(frozen=True)
class SandboxSpec:
    """An instance's network sandbox: it owns the namespace the ports are
    plugged into, the hostname and ``/etc/resolv.conf``; the instance's
    container joins it."""

    name: str
    #: Pinned by image ID.
    image: str
    hostname: str
    labels: Mapping[str, str]
    #: None runs the image's own command (an operator's sandbox image).
    command: tuple[str, ...] | None
    nameservers: tuple[str, ...] = ()

    def create_kwargs(self) -> dict[str, Any]:
        return {
            "image": self.image,
            "name": self.name,
            "hostname": self.hostname,
            "labels": dict(self.labels),
            "command": list(self.command) if self.command is not None else None,
            "healthcheck": {"test": [HEALTHCHECK_OFF]},
            "detach": True,
        }

    def host_config_extra(self) -> dict[str, Any]:
        return {}

    def host_config_kwargs(self) -> dict[str, Any]:
        driver, max_size, max_files = SANDBOX_LOG
        return {
            "mem_limit": SANDBOX_MEMORY_BYTES,
            "memswap_limit": SANDBOX_MEMORY_BYTES,
            "pids_limit": SANDBOX_PIDS,
            "cap_drop": ["ALL"],
            "security_opt": [NO_NEW_PRIVILEGES],
            **network_kwargs(None, self.nameservers),
            # Nova owns the power state: the engine must not restart anything.
            "restart_policy": {"Name": "no"},
            "log_config": log_config(driver, max_size, max_files),
        }


@dataclasses.dataclass(frozen=True)
class VolumeLoaderSpec:
    """A container that is never started, made only to copy files onto a
    volume through the engine (the engine copies into containers, not into
    volumes)."""

    name: str
    image: str
    volume: str
    path: str
    labels: Mapping[str, str]

    def create_kwargs(self) -> dict[str, Any]:
        return {
            "image": self.image,
            "name": self.name,
            "labels": dict(self.labels),
            # Never run; an image without CMD must still make a container.
            "command": ["/nonexistent"],
            "detach": True,
        }

    def host_config_extra(self) -> dict[str, Any]:
        return {}

    def host_config_kwargs(self) -> dict[str, Any]:
        return {"binds": [f"{self.volume}:{self.path}:rw"], "network_mode": "none"}


def log_config(driver: str, max_size: str, max_files: int) -> dict[str, Any]:
    """Rotated logs the engine can read back, written in blocking mode.

    Blocking holds a flooding container to the pace at which the engine
    writes its log: the engine then works on one flood with one goroutine.
    In non-blocking mode the engine reads and drops as fast as the container
    writes, while another goroutine writes, which measured more engine CPU
    per second of flood, not less.  The mode is set even though it is the
    engine's default, since the engine's own ``log-opts`` would otherwise
    apply.  ``local`` costs the engine 30 to 40 % less CPU per line than
    ``json-file`` (``bench/log_flood.py``); compressing rotated files would
    add a third back.
    """
    config = {"mode": "blocking", "max-size": max_size, "max-file": str(max_files)}
    if driver == "local":
        config["compress"] = "false"
    return {"Type": driver, "Config": config}


def command_for(
    image_id: str, os_command_line: str | None, image_config: Mapping[str, Any]
) -> tuple[str, ...] | None:
    """The command to run, or None for the image's own CMD/ENTRYPOINT.

    ``os_command_line`` replaces the image's CMD; with an ENTRYPOINT it
    becomes its arguments, as with ``docker run IMAGE ARGS``.
    """
    if os_command_line:
        try:
            return tuple(shlex.split(os_command_line))
        except ValueError as e:
            raise nova_exception.ImageUnacceptable(
                image_id=image_id,
                reason=_("os_command_line cannot be parsed: %s") % e,
            ) from e
    if not image_config.get("Cmd") and not image_config.get("Entrypoint"):
        raise nova_exception.ImageUnacceptable(
            image_id=image_id,
            reason=_(
                "the image has neither CMD nor ENTRYPOINT; set the image "
                "property os_command_line to say what the container runs"
            ),
        )
    return None


def healthcheck_for(
    image_healthcheck: Mapping[str, Any] | None, allowed: bool, min_interval: int
) -> dict[str, Any]:
    """The healthcheck to create the container with, from the image's.

    The engine checks a healthcheck's durations only when they arrive in the
    create request, never when they come with the image, so an image may ask
    for a check every nanosecond: each check is an exec through dockerd,
    containerd and runc, whose CPU is the host's, not the container's quota.
    Unless the operator allows image checks they are off.  When allowed, the
    interval and timeout (0 means the engine's 30 s) and a start period the
    image sets are raised to ``min_interval`` seconds; retries stay the
    image's.  A start interval (API 1.44) cannot be sent through the SDK,
    and one left out is taken from the image, so an image check that sets
    one is turned off too.
    """
    check = image_healthcheck or {}
    test = list(check.get("Test") or ())
    if not allowed or not test or test[0] == HEALTHCHECK_OFF:
        return {"test": [HEALTHCHECK_OFF]}
    if check.get("StartInterval"):
        return {"test": [HEALTHCHECK_OFF]}
    floor = min_interval * NS_PER_SECOND
    wanted = {
        "test": test,
        "interval": max(check.get("Interval") or HEALTHCHECK_ENGINE_DEFAULT_NS, floor),
        "timeout": max(check.get("Timeout") or HEALTHCHECK_ENGINE_DEFAULT_NS, floor),
    }
    if check.get("StartPeriod"):
        wanted["start_period"] = max(check["StartPeriod"], floor)
    return wanted


def environment_from_metadata(
    metadata: Mapping[str, str],
) -> tuple[dict[str, str], list[str]]:
    """Split instance metadata into valid variables and skipped keys."""
    env, skipped = {}, []
    for key, value in sorted(metadata.items()):
        if _ENV_NAME.match(key):
            env[key] = str(value)
        else:
            skipped.append(key)
    return env, skipped


def flavor_problems(memory_mb: int, extra_specs: Mapping[str, str]) -> list[str]:
    """Why no container of this flavor can run on any host (pure): a memory
    below the engine's minimum, or ``docker:`` extra specs the driver does
    not know."""
    problems = []
    if memory_mb < ENGINE_MIN_MEMORY_MB:
        problems.append(
            _(
                "its memory of %(mb)d MB is below the Docker Engine's minimum "
                "of %(min)d MB"
            )
            % {"mb": memory_mb, "min": ENGINE_MIN_MEMORY_MB}
        )
    unknown = sorted(
        key
        for key in extra_specs
        if key.startswith(EXTRA_SPEC_NAMESPACE) and key not in KNOWN_EXTRA_SPECS
    )
    if unknown:
        problems.append(
            _("extra specs %(unknown)s are not nova-docker's (it knows %(known)s)")
            % {"unknown": ", ".join(unknown), "known": ", ".join(KNOWN_EXTRA_SPECS)}
        )
    return problems


def block_device_problems(volumes: int, ephemeral_gb: Iterable[int]) -> list[str]:
    """Why the block devices Nova asks for cannot be given (pure): a
    container has only its filesystem, so Cinder volumes (a boot from
    volume, ``--block-device``) and ephemeral disks have nowhere to go.  An
    ephemeral of 0 GB is none.  (A flavor's swap is no device here: it is
    the container's swap limit.)"""
    problems = []
    if volumes:
        problems.append(
            _("%d volume(s) requested: nova-docker attaches no volumes") % volumes
        )
    sizes = [size for size in ephemeral_gb if size]
    if sizes:
        problems.append(
            _("ephemeral disks of %s GB requested: a container has no disks")
            % ", ".join(str(size) for size in sizes)
        )
    return problems


def accelerator_problems(accelerators: int) -> list[str]:
    """Why Cyborg's accelerators (a flavor's ``accel:device_profile``)
    cannot be given (pure): the driver passes no device into a container."""
    if not accelerators:
        return []
    return [
        _("%d accelerator(s) requested: nova-docker attaches no devices") % accelerators
    ]


def privileged_requested(extra_specs: Mapping[str, str], allowed: bool) -> bool:
    requested = str(extra_specs.get(PRIVILEGED_EXTRA_SPEC, "")).lower() in _TRUE
    if requested and not allowed:
        raise nova_exception.InvalidInput(
            reason=_(
                "The flavor asks for a privileged container (%s) but "
                "[docker] allow_privileged is false on this host"
            )
            % PRIVILEGED_EXTRA_SPEC
        )
    return requested


def pids_limit_for(extra_specs: Mapping[str, str], default: int) -> int:
    return _positive_int(extra_specs, PIDS_LIMIT_EXTRA_SPEC, default)


def nofile_limit_for(extra_specs: Mapping[str, str], default: int) -> int:
    return _positive_int(extra_specs, NOFILE_LIMIT_EXTRA_SPEC, default)


def _positive_int(extra_specs: Mapping[str, str], key: str, default: int) -> int:
    raw = extra_specs.get(key)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise nova_exception.InvalidInput(
            reason=_("%(key)s must be a positive integer, not %(value)r")
            % {"key": key, "value": raw}
        )
    return value


def hostname_for(hostname: str | None, fallback: str) -> str:
    return (hostname or fallback)[:HOSTNAME_MAX].rstrip("-.") or fallback[:12]
