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
from collections.abc import Mapping
from typing import Any

from nova import exception as nova_exception
from nova.i18n import _

CPU_PERIOD_US = 100_000
CPU_SHARES_PER_VCPU = 1024
HOSTNAME_MAX = 63
# Always on: a setuid binary in an image must not gain privileges.
NO_NEW_PRIVILEGES = "no-new-privileges:true"
PRIVILEGED_EXTRA_SPEC = "docker:privileged"
PIDS_LIMIT_EXTRA_SPEC = "docker:pids_limit"
NOFILE_LIMIT_EXTRA_SPEC = "docker:nofile_limit"
#: Log drivers the engine can read back for the console log.
LOG_DRIVERS = ("local", "json-file")
# Docker turns IPv6 off in containers without an engine network; Neutron
# ports may carry IPv6 addresses.
IPV6_SYSCTLS = {
    "net.ipv6.conf.all.disable_ipv6": "0",
    "net.ipv6.conf.default.disable_ipv6": "0",
}
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
    #: ``G`` as 2^30, as Nova does); 0 asks for none, for a flavor without a
    #: root disk or an engine that cannot enforce one.
    root_disk_gb: int = 0
    #: ``RLIMIT_NOFILE`` (soft and hard) of every process; 0 leaves the
    #: engine's own.
    nofile: int = 0
    log_driver: str = "local"

    def create_kwargs(self) -> dict[str, Any]:
        return {
            "image": self.image,
            "name": self.name,
            "hostname": self.hostname,
            "labels": dict(self.labels),
            "command": list(self.command) if self.command is not None else None,
            "environment": dict(self.environment),
            "healthcheck": dict(self.healthcheck),
            "detach": True,
        }

    def host_config_kwargs(self) -> dict[str, Any]:
        return {
            "mem_limit": self.memory_bytes,
            # Equal to mem_limit: no swap beyond the flavor's RAM.
            "memswap_limit": self.memory_bytes,
            "cpu_period": CPU_PERIOD_US,
            "cpu_quota": self.vcpus * CPU_PERIOD_US,
            "cpu_shares": self.vcpus * CPU_SHARES_PER_VCPU,
            "pids_limit": self.pids_limit,
            "privileged": self.privileged,
            "security_opt": list(self.security_opt),
            "cap_drop": list(self.cap_drop) or None,
            # Neutron ports are plugged into the namespace by the driver; the
            # engine's own bridge networking is never used.
            "network_mode": "none",
            "sysctls": dict(IPV6_SYSCTLS),
            # The subnets' DNS servers; the engine writes /etc/resolv.conf.
            "dns": list(self.nameservers) or None,
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
            # Only where the engine can enforce it: elsewhere it refuses
            # the create.
            "storage_opt": (
                {"size": f"{self.root_disk_gb}G"} if self.root_disk_gb > 0 else None
            ),
        }


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
