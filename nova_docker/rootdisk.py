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

"""Root disks that are a real limit: the engine's quota, or else an audit.

The flavor's root disk (``root_gb``) is what Placement hands out as
DISK_GB, so an instance must not write more.  Some engines can hold a
container's writable layer to a size (overlay2 on XFS mounted with
``pquota``, btrfs); nothing shows that in ``/info`` (``pquota`` is a mount
option), so at start a probe asks the engine for exactly that on a
throwaway container.  Where it refuses (overlay2 on ext4), a thread
measures every instance's writable layer in one listing, every
``[docker] root_disk_audit_interval`` seconds, and logs or stops those past
the limit their container was created with (its root-disk label).  A flavor
without a root disk (``root_gb`` = 0) gets ``[docker] max_image_expanded_gb``
as its limit, by quota or audit alike (:func:`spec.root_disk_gb_for`).

A resize on the same host keeps the limit the container was created with:
``docker update`` changes neither a container's quota nor its labels.
"""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from typing import Any

from nova import context as nova_context
from nova import exception as nova_exception
from nova import objects
from nova.compute import utils as compute_utils
from oslo_log import log as logging
from oslo_utils import units

from nova_docker import container
from nova_docker import exception
from nova_docker.engine import client as engine_client
from nova_docker.engine import naming
from nova_docker.engine import spec as spec_mod

LOG = logging.getLogger(__name__)

ACTION_LOG = "log"
ACTION_STOP = "stop"
#: Engine states in which a container's processes can still write.
WRITING_STATES = frozenset({"running", "paused"})
#: A tar archive of nothing (its end marker): the probe's image.
EMPTY_TAR = bytes(1024)
PROBE_ROOT_DISK_GB = 1
PROBE_MEMORY_BYTES = 64 * units.Mi
#: How long ``stop`` waits for a round in progress to finish.
STOP_WAIT_SECONDS = 30.0


@dataclasses.dataclass(frozen=True)
class Options:
    """The ``[docker]`` options of root disks, passed in by the driver."""

    audit_interval: int = 60
    overuse_action: str = ACTION_STOP
    stop_timeout: int = 10


@dataclasses.dataclass(frozen=True)
class Mode:
    """Whether the engine enforces root disks, and what it stores them on."""

    enforced: bool
    #: ``overlay2 on xfs``, ``btrfs``: the engine's storage driver and,
    #: where it says, the file system under it.
    storage: str
    #: The engine's words for refusing a quota; empty when enforced.
    refusal: str = ""

    def summary(self, options: Options) -> str:
        if self.enforced:
            return f"enforced by the engine's quota ({self.storage})"
        head = (
            f"the engine cannot enforce root disks ({self.storage} without "
            f"project quotas; the engine says: {self.refusal})"
        )
        if options.audit_interval <= 0:
            return f"{head}; not audited, since root_disk_audit_interval is 0"
        return (
            f"{head}; auditing every {options.audit_interval} s, "
            f"action={options.overuse_action}"
        )


@dataclasses.dataclass(frozen=True)
class Overuse:
    """An instance whose writable layer outgrew its root disk."""

    instance_uuid: str
    used_bytes: int
    limit_bytes: int


# -- pure parts -----------------------------------------------------------


def storage_of(info: Mapping[str, Any]) -> str:
    """``overlay2 on extfs`` from the engine's ``/info``."""
    driver = str(info.get("Driver") or "unknown")
    status = {pair[0]: pair[1] for pair in info.get("DriverStatus") or () if pair}
    backing = status.get("Backing Filesystem")
    return f"{driver} on {backing}" if backing else driver


def limit_of(labels: Mapping[str, str]) -> int | None:
    """The root disk a container was created with; None when it records
    none (made by a driver older than the audit)."""
    try:
        limit = int(labels.get(naming.ROOT_DISK_BYTES_LABEL, ""))
    except ValueError:
        return None
    return limit if limit > 0 else None


def overuses(listing: Iterable[Mapping[str, Any]], host: str) -> list[Overuse]:
    """The running or paused instances of ``host`` in ``listing`` (the
    engine's sized container list) whose writable layer is past its limit.

    Containers of other hosts, or without our labels, are never named, even
    if a listing held them.
    """
    found = []
    for entry in listing:
        labels = entry.get("Labels") or {}
        limit = limit_of(labels)
        ours = labels.get(naming.HOST_LABEL) == host and naming.UUID_LABEL in labels
        if not ours or limit is None or entry.get("State") not in WRITING_STATES:
            continue
        used = int(entry.get("SizeRw") or 0)
        if used > limit:
            found.append(Overuse(labels[naming.UUID_LABEL], used, limit))
    return found


# -- the probe ------------------------------------------------------------


def probe(engine: engine_client.Engine, host: str) -> Mode:
    """Ask the engine for a quota on a throwaway container and see.

    The container is made from an empty image of its own, and both are
    removed at once; any left by a start cut short are removed first.
    """
    storage = storage_of(engine.info())
    _sweep_probes(engine, host)
    token = uuid.uuid4().hex[:12]
    name = naming.root_disk_probe_name(token)
    ref = naming.root_disk_probe_ref(token)
    labels = naming.root_disk_probe_selector(host)
    try:
        engine.import_image(EMPTY_TAR, ref, labels)
        engine.create_container(_probe_spec(name, ref, labels))
    except exception.EngineError as e:
        return Mode(False, storage, str(e.kwargs.get("reason") or e))
    finally:
        _remove_probe(engine, [name], [ref])
    return Mode(True, storage)


def _probe_spec(
    name: str, ref: str, labels: Mapping[str, str]
) -> spec_mod.ContainerSpec:
    # Never started: the command need not exist, only be there.
    return spec_mod.ContainerSpec(
        name=name,
        image=ref,
        hostname="probe",
        labels=labels,
        memory_bytes=PROBE_MEMORY_BYTES,
        vcpus=1,
        pids_limit=1,
        command=("/probe",),
        root_disk_gb=PROBE_ROOT_DISK_GB,
    )


def _sweep_probes(engine: engine_client.Engine, host: str) -> None:
    """Remove this host's probes that an earlier start left behind."""
    selector = naming.root_disk_probe_selector(host)
    containers = [found["Id"] for found in engine.list_containers(selector)]
    images = engine.image_tags(naming.ROOT_DISK_PROBE_REPOSITORY, selector)
    _remove_probe(engine, containers, images)


def _remove_probe(
    engine: engine_client.Engine, containers: Iterable[str], images: Iterable[str]
) -> None:
    """Best effort, never failing the start: a probe left behind is swept
    at the next one."""
    try:
        for name in containers:
            engine.remove_container(name)
        for ref in images:
            engine.remove_image(ref)
    except (exception.EngineError, exception.EngineUnavailable) as e:
        LOG.warning(
            "A root-disk probe is left on the engine until the next start: %s",
            e.format_message(),
        )


# -- faults ---------------------------------------------------------------


def record_fault(instance_uuid: str, fault: Exception) -> None:
    """Record ``fault`` on the instance, as Nova records a failed action.

    Inside nova-compute Nova's objects reach the database through the
    conductor, so this needs no database of its own.  A fault needs only
    the instance's UUID, so the instance is not read first.
    """
    ctxt = nova_context.get_admin_context()
    instance = objects.Instance(uuid=instance_uuid)
    compute_utils.add_instance_fault_from_exc(ctxt, instance, fault)


# -- the service ----------------------------------------------------------


class RootDisks:
    """Finds the mode at start, then audits in a thread where needed."""

    def __init__(
        self,
        engine: engine_client.Engine,
        containers: container.Containers,
        host: str,
        options: Options,
        fault_recorder: Callable[[str, Exception], None] = record_fault,
    ) -> None:
        self._engine = engine
        self._containers = containers
        self._host = host
        self._options = options
        self._record_fault = fault_recorder
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Mode:
        """Probe the engine, say which mode holds, audit if it must."""
        mode = probe(self._engine, self._host)
        self._containers.use_root_disk_quota(mode.enforced)
        summary = mode.summary(self._options)
        if not mode.enforced and self._options.audit_interval <= 0:
            LOG.warning("Root disks on this host: %s", summary)
        else:
            LOG.info("Root disks on this host: %s", summary)
        if not mode.enforced and self._options.audit_interval > 0:
            self._start_thread()
        return mode

    def stop(self) -> None:
        """End the audit thread; a round in progress finishes first."""
        self._stopping.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(STOP_WAIT_SECONDS)

    def _start_thread(self) -> None:
        self.stop()
        self._stopping.clear()
        self._thread = threading.Thread(
            target=self._audit_forever, name="nova-docker-root-disk-audit", daemon=True
        )
        self._thread.start()

    def _audit_forever(self) -> None:
        while not self._stopping.wait(self._options.audit_interval):
            self._audit_round()

    def _audit_round(self) -> None:
        """One round that never ends the thread: an engine that is down,
        or anything else, is logged and the next round tries again."""
        try:
            self.audit()
        except exception.EngineUnavailable as e:
            LOG.warning("Root-disk audit skipped: %s", e.format_message())
        except Exception:
            LOG.exception("Root-disk audit failed; trying again next round")

    def audit(self) -> list[Overuse]:
        """Measure this host's instances once and act on each overuse."""
        listing = self._engine.list_containers(
            naming.host_selector(self._host), sizes=True
        )
        found = overuses(listing, self._host)
        for overuse in found:
            if self._options.overuse_action == ACTION_STOP:
                self._stop(overuse)
            else:
                self._warn(overuse, "")
        return found

    def _warn(self, overuse: Overuse, then: str) -> None:
        # The audit runs outside any request: the message names the
        # instance itself.
        LOG.warning(
            "Root disk exceeded by instance %(uuid)s: its writable layer holds "
            "%(used)d bytes, over its root disk of %(limit)d bytes%(then)s",
            {
                "uuid": overuse.instance_uuid,
                "used": overuse.used_bytes,
                "limit": overuse.limit_bytes,
                "then": then,
            },
        )

    def _stop(self, overuse: Overuse) -> None:
        """Stop the container, then tell the instance's owner why."""
        self._warn(overuse, "; stopping it")
        instance = objects.Instance(uuid=overuse.instance_uuid)
        try:
            self._containers.power_off(instance, self._options.stop_timeout)
        except nova_exception.InstanceNotFound:
            return
        except exception.EngineError as e:
            LOG.error(
                "Could not stop instance %s: %s",
                overuse.instance_uuid,
                e.format_message(),
            )
            return
        fault = exception.RootDiskExceeded(
            used=overuse.used_bytes, limit=overuse.limit_bytes
        )
        try:
            self._record_fault(overuse.instance_uuid, fault)
        except nova_exception.InstanceNotFound:
            pass  # deleted meanwhile: no one to tell
        except Exception:
            # The conductor may be away; the stop stands and was logged.
            LOG.exception(
                "Could not record the fault of instance %s", overuse.instance_uuid
            )
