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

"""Moving a server between hosts: its container's filesystem is its disk.

Cold migration and resize to another host (each host has its own engine)::

    source: stop → commit → docker save ─tarball.scrub─▶ transient Glance image
    dest:   Glance ─tarball.retag─▶ engine load → create (new flavor) → start

Every stage streams through bounded pipes, as snapshots and boots do, so no
temporary file is written and memory stays bounded.  The Glance image is
private, hidden from image lists, named after the instance and migration, and
has an ID derived from both, so every path (finish, revert, confirm, a
failure) can delete it without having been told it.  The source keeps its
container, only stopped, until the resize is confirmed, so a revert gives
back the very container the server had.

Resize on the same host copies nothing: ``docker update`` changes the
container's limits, and a revert changes them back.  A resize the container
cannot take (a root disk smaller than what it holds, a limit the engine
refuses) is refused with ``InstanceFaultRollback``, and the server is left as
it was.

A server that Nova evacuated away leaves its container on the failed host;
when that host returns, Nova destroys it there.  Only this host's container
is ever touched: on an engine several hosts share, a container of the same
name that another host created is that host's server.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Callable
from typing import Any

from nova import exception as nova_exception
from nova import objects
from nova.compute import power_state
from nova.compute import task_states
from nova.i18n import _
from oslo_log import log as logging
from oslo_utils import excutils
from oslo_utils import units

from nova_docker import container
from nova_docker import exception
from nova_docker.engine import client as engine_client
from nova_docker.engine import naming
from nova_docker.engine import spec as spec_mod
from nova_docker.image import fetch
from nova_docker.image import layers
from nova_docker.image import snapshot

LOG = logging.getLogger(__name__)

#: Namespace of the transient images' IDs (uuid5 of instance and migration).
TRANSIENT_IMAGE_NAMESPACE = uuid.UUID("5b0f3c1e-8d4a-4f5e-9a51-6e0c2d7b9f14")
#: Properties that name what a transient image carries, for operators.
INSTANCE_PROPERTY = "nova_docker_migration_instance"
MIGRATION_PROPERTY = "nova_docker_migration"
#: Version of the ``disk_info`` this module hands itself through Nova.
DISK_INFO_VERSION = 1
#: What ``docker update`` changes: the create options' names in the SDK, and
#: the same limits' names in the Engine API.
UPDATABLE_LIMITS = {
    "mem_limit": "Memory",
    "memswap_limit": "MemorySwap",
    "cpu_period": "CpuPeriod",
    "cpu_quota": "CpuQuota",
    "cpu_shares": "CpuShares",
    "pids_limit": "PidsLimit",
}
LIVE_MIGRATION_REFUSED = _(
    "a container's running processes cannot be moved to another Docker "
    "Engine; cold-migrate the server instead (openstack server migrate), "
    "which keeps its filesystem"
)

StartFn = Callable[[Any, Any], None]


@dataclasses.dataclass(frozen=True)
class DiskInfo:
    """What the source tells the destination, through Nova, as JSON."""

    #: The container stays where it is (a resize on the same host).
    in_place: bool
    #: The transient Glance image holding the container, when it moves.
    image_id: str | None = None

    def dumps(self) -> str:
        return json.dumps(
            {
                "nova_docker": DISK_INFO_VERSION,
                "in_place": self.in_place,
                "image_id": self.image_id,
            }
        )

    @classmethod
    def loads(cls, text: Any) -> DiskInfo:
        """Parse what :meth:`dumps` wrote; anything else is refused by name."""
        try:
            found = json.loads(text)
            if found.get("nova_docker") != DISK_INFO_VERSION:
                raise ValueError("not written by this driver")
            info = cls(bool(found["in_place"]), found.get("image_id"))
            if not info.in_place:
                uuid.UUID(str(info.image_id))
        except (TypeError, ValueError, KeyError, AttributeError) as e:
            raise nova_exception.MigrationError(
                reason=_(
                    "the disk information %(info)r did not come from "
                    "nova-docker's migrate_disk_and_power_off: %(error)s"
                )
                % {"info": str(text)[:200], "error": e}
            ) from e
        return info


def transient_image_id(instance_uuid: str, migration_uuid: str) -> str:
    """Derived, not stored: any step of the migration can find the image."""
    return str(
        uuid.uuid5(TRANSIENT_IMAGE_NAMESPACE, f"{instance_uuid}/{migration_uuid}")
    )


def transient_image_metadata(
    image_id: str, instance: Any, migration: Any
) -> dict[str, Any]:
    return {
        "id": image_id,
        "name": f"nova-docker migration of {instance.uuid}",
        "container_format": fetch.DOCKER_CONTAINER_FORMAT,
        "disk_format": "raw",
        "visibility": "private",
        # Out of image lists: nobody is meant to boot it.
        "os_hidden": True,
        "properties": {
            INSTANCE_PROPERTY: instance.uuid,
            MIGRATION_PROPERTY: migration.uuid,
        },
    }


def limits_for(flavor: Any, pids_limit: int) -> dict[str, int]:
    """The cgroup limits a container of ``flavor`` is created with, in the
    names ``docker update`` takes; the arithmetic stays the spec's own."""
    spec = spec_mod.ContainerSpec(
        name="",
        image="",
        hostname="",
        labels={},
        memory_bytes=flavor.memory_mb * units.Mi,
        swap_bytes=(flavor.swap or 0) * units.Mi,
        vcpus=flavor.vcpus,
        pids_limit=pids_limit,
    )
    config = spec.host_config_kwargs()
    return {api: config[sdk] for sdk, api in UPDATABLE_LIMITS.items()}


def refusal(reason: str) -> nova_exception.InstanceFaultRollback:
    """Nova sets the server back to its state before the resize, keeps it
    where it was, and records ``reason`` as its fault."""
    return nova_exception.InstanceFaultRollback(
        inner_exception=nova_exception.ResizeError(reason=reason)
    )


def live_migration_refused() -> nova_exception.NoValidHost:
    """No host can take a live migration: said with the one pre-check error
    that ends Nova's search at once.  A ``MigrationPreCheckError`` would send
    the conductor on to the next host, and the user would only read "No
    valid host was found" without the reason; this way the API answers 400
    with the reason, and the server stays ACTIVE where it is."""
    return nova_exception.NoValidHost(reason=LIVE_MIGRATION_REFUSED)


def arriving(instance: Any) -> bool:
    """The source has handed the server to this host and Nova's finish of
    the move is still to come: its container is a transient Glance image,
    not yet on this engine.  Nova names this host the server's at that
    point, so a nova-compute restarting here then sees a server it cannot
    find."""
    return instance.task_state == task_states.RESIZE_MIGRATED


def same_host(migration: Any) -> bool:
    return migration.source_compute == migration.dest_compute


def _words(error: Exception) -> str:
    if isinstance(error, nova_exception.NovaException):
        return error.format_message()
    return str(error) or type(error).__name__


class Migrations:
    """The move operations of one compute host.

    :param start_new: starts a container that has just been created here,
        after its sandbox and ports, waiting for Neutron as spawn does.
    :param power_on: powers an instance's container on again, after its
        sandbox and ports.
    :param release_ports: unplugs every port of an instance leaving this host
        (and removes its sandbox).
    :param config_drive: the files of an instance's config drive, made anew
        where it lands (a commit leaves the drive behind); None for none.
    """

    def __init__(
        self,
        engine: engine_client.Engine,
        containers: container.Containers,
        fetcher: fetch.ImageFetcher,
        snapshotter: snapshot.Snapshotter,
        image_api: Any,
        host: str,
        max_expanded_bytes: int,
        start_new: StartFn,
        power_on: StartFn,
        release_ports: StartFn,
        config_drive: Callable[[Any, Any], bytes | None],
    ) -> None:
        self._engine = engine
        self._containers = containers
        self._fetcher = fetcher
        self._snapshotter = snapshotter
        self._image_api = image_api
        self._host = host
        self._max_expanded_bytes = max_expanded_bytes
        self._start_new = start_new
        self._power_on = power_on
        self._config_drive = config_drive
        self._release_ports = release_ports

    # -- source: migrate_disk_and_power_off -------------------------------

    def migrate(
        self,
        context: Any,
        instance: Any,
        flavor: Any,
        network_info: Any,
        timeout: int,
    ) -> str:
        """Stop the server and make it ready to move; the disk info for
        ``finish``.  A refusal restores the server as it was."""
        migration = self._migration_of(context, instance)
        new_limits = self._check_resize(instance, flavor)
        was_running = self._containers.power_state(instance) == power_state.RUNNING
        try:
            self._containers.power_off(instance, timeout)
            if same_host(migration):
                self._update_limits(instance, new_limits, flavor)
                return DiskInfo(in_place=True).dumps()
            image_id = self._export(context, instance, migration, flavor)
        except Exception as e:
            if not self._restore(instance, network_info, was_running):
                raise
            raise refusal(_words(e)) from e
        LOG.info("Container saved to transient image %s", image_id, instance=instance)
        # The ports go with the server, as libvirt unplugs them here: the
        # destination plugs devices of the same names, which must then
        # belong to it alone (hosts may share one kernel, as in the
        # all-in-one cloud).  Revert plugs them here again.
        self._release_ports(instance, network_info)
        return DiskInfo(in_place=False, image_id=image_id).dumps()

    def _migration_of(self, context: Any, instance: Any) -> Any:
        """Nova's record of this move: it alone says where the server goes."""
        migration_context = instance.migration_context
        if migration_context is None:
            raise refusal(_("the instance has no migration record"))
        return objects.Migration.get_by_id(context, migration_context.migration_id)

    def _check_resize(self, instance: Any, flavor: Any) -> dict[str, int]:
        """Refuse, before anything changes, what the new flavor cannot hold."""
        problems = spec_mod.flavor_problems(flavor.memory_mb, flavor.extra_specs or {})
        if problems:
            raise refusal("; ".join(problems))
        try:
            new_limits = self._limits(flavor)
        except nova_exception.InvalidInput as e:
            raise refusal(e.format_message()) from e
        root_disk = _root_disk_bytes(flavor)
        name = naming.container_name(instance.uuid)
        try:
            held = self._engine.container_size(name)
        except exception.ContainerNotFound as e:
            raise nova_exception.InstanceNotFound(instance_id=instance.uuid) from e
        if root_disk and held > root_disk:
            raise refusal(
                _(
                    "the container holds %(held)d bytes, more than the new "
                    "flavor's root disk of %(root)d bytes"
                )
                % {"held": held, "root": root_disk}
            )
        return new_limits

    def _limits(self, flavor: Any) -> dict[str, int]:
        """What a container of ``flavor`` made here now would get."""
        return limits_for(flavor, self._containers.task_limits(flavor).pids)

    def _update_limits(
        self, instance: Any, limits: dict[str, int], flavor: Any
    ) -> None:
        name = naming.container_name(instance.uuid)
        try:
            warnings = self._engine.update_resources(name, limits)
        except exception.EngineError:
            with excutils.save_and_reraise_exception():
                # A refused update may have changed some cgroups already.
                self._engine.update_resources(name, self._limits(instance.flavor))
        for warning in warnings:
            LOG.warning("Resizing to %s: %s", flavor.name, warning, instance=instance)

    def _export(self, context: Any, instance: Any, migration: Any, flavor: Any) -> str:
        image_id = transient_image_id(instance.uuid, migration.uuid)
        metadata = transient_image_metadata(image_id, instance, migration)
        self._image_api.create(context, metadata)
        try:
            self._snapshotter.export(
                context,
                naming.container_name(instance.uuid),
                image_id,
                {k: v for k, v in metadata.items() if k != "id"},
                budget=self._budget(flavor),
            )
        except Exception:
            with excutils.save_and_reraise_exception():
                self.forget_image(context, image_id, instance)
        return image_id

    def _budget(self, flavor: Any) -> layers.Budget:
        """The destination loads it held to the new root disk; counting the
        same layers the same way here refuses early what it would refuse."""
        root_disk = _root_disk_bytes(flavor)
        if root_disk and root_disk < self._max_expanded_bytes:
            return layers.Budget(root_disk, _("the new flavor's root disk"))
        return layers.Budget(self._max_expanded_bytes, fetch.MAX_EXPANDED_REASON)

    def _restore(self, instance: Any, network_info: Any, was_running: bool) -> bool:
        """Power the server back on as it was; False if that failed too."""
        try:
            if was_running:
                self._power_on(instance, network_info)
        except Exception:
            LOG.exception(
                "Could not restart the server after its resize failed",
                instance=instance,
            )
            return False
        return True

    # -- destination: finish_migration -----------------------------------

    def finish(
        self,
        context: Any,
        migration: Any,
        instance: Any,
        disk_info: Any,
        network_info: Any,
        image_meta: Any,
        power_on: bool,
    ) -> None:
        """Make the server's container here with the new flavor's limits."""
        info = DiskInfo.loads(disk_info)
        if info.in_place:
            if power_on:
                self._start_new(instance, network_info)
            return
        try:
            self._land(context, instance, info.image_id, network_info, image_meta)
            if power_on:
                self._start_new(instance, network_info)
        except Exception:
            with excutils.save_and_reraise_exception():
                LOG.error(
                    "The server did not arrive; nothing of it is left on this "
                    "host. Its original container is still on host %s, stopped, "
                    "with its filesystem",
                    migration.source_compute,
                    instance=instance,
                )
                self._discard(context, instance, info.image_id, network_info)
        self.forget_image(context, info.image_id, instance)
        LOG.info(
            "Container arrived from transient image %s",
            info.image_id,
            instance=instance,
        )

    def _land(
        self,
        context: Any,
        instance: Any,
        image_id: str,
        network_info: Any,
        image_meta: Any,
    ) -> None:
        self._refuse_shared_engine(instance)
        self._containers.destroy(instance)
        glance_ref = self._fetcher.ensure(
            context,
            objects.ImageMeta.from_dict(self._image_api.get(context, image_id)),
            instance,
        )
        ref = naming.migration_image_ref(instance.uuid)
        self._engine.tag_image(glance_ref, ref)
        self._engine.remove_image(glance_ref)
        drive = self._config_drive(instance, network_info)
        if drive is not None:
            self._containers.load_config_drive(instance, ref, drive)
        spec = self._containers.spec_for(
            instance, ref, _boot_image_meta(image_meta, instance), drive is not None
        )
        # Not Containers.create: the filesystem already holds what spawn
        # injected, and the user may have changed it since.
        self._engine.create_container(spec)

    def _refuse_shared_engine(self, instance: Any) -> None:
        owner = self.foreign_owner(instance)
        if owner is not None:
            raise nova_exception.MigrationError(
                reason=_(
                    "this host's Docker Engine already holds the container of "
                    "this server for host %s: source and destination share one "
                    "engine, and each compute host needs its own for a move"
                )
                % owner
            )

    def _discard(
        self, context: Any, instance: Any, image_id: str, network_info: Any
    ) -> None:
        """Undo a landing that failed, keeping the error that stopped it."""
        try:
            self.remove_here(instance)
            self._engine.remove_image(naming.glance_image_ref(image_id))
        except Exception:
            LOG.exception(
                "Could not remove what the failed move left here", instance=instance
            )
        self._release_ports(instance, network_info)
        self.forget_image(context, image_id, instance)

    # -- source: confirm and revert ---------------------------------------

    def confirm(
        self, context: Any, migration: Any, instance: Any, network_info: Any
    ) -> None:
        """The server lives on at the destination: remove it here."""
        if same_host(migration):
            return
        try:
            # Its ports were released when it left (``migrate``): the
            # devices of those names are now the destination's, if any.
            self.remove_here(instance)
        finally:
            self.forget_image(
                context, transient_image_id(instance.uuid, migration.uuid), instance
            )

    def revert(
        self,
        context: Any,
        migration: Any,
        instance: Any,
        network_info: Any,
        power_on: bool,
    ) -> None:
        """Give back the original container; Nova has already restored the
        old flavor on ``instance``."""
        try:
            if same_host(migration):
                self._engine.update_resources(
                    naming.container_name(instance.uuid), self._limits(instance.flavor)
                )
            if power_on:
                self._power_on(instance, network_info)
        finally:
            if not same_host(migration):
                self.forget_image(
                    context, transient_image_id(instance.uuid, migration.uuid), instance
                )

    def forget_image(self, context: Any, image_id: str, instance: Any) -> None:
        """Delete the transient Glance image; gone already is fine."""
        try:
            self._image_api.delete(context, image_id)
        except nova_exception.ImageNotFound:
            return
        except Exception as e:
            LOG.error(
                "Could not delete Glance image %(image)s, which carried this "
                "server's filesystem during its migration (%(error)s); delete "
                "it with: openstack image delete %(image)s",
                {"image": image_id, "error": _words(e)},
                instance=instance,
            )
            return
        LOG.debug("Deleted transient image %s", image_id, instance=instance)

    # -- this host's container only ---------------------------------------

    def foreign_owner(self, instance: Any) -> str | None:
        """The other compute host whose container of ``instance`` this engine
        holds, if any (an engine several hosts share); None otherwise."""
        try:
            found = self._engine.inspect_container(naming.container_name(instance.uuid))
        except exception.ContainerNotFound:
            return None
        labels = (found.get("Config") or {}).get("Labels") or {}
        owner = labels.get(naming.HOST_LABEL)
        return owner if owner and owner != self._host else None

    def remove_here(self, instance: Any) -> bool:
        """Remove this host's container of ``instance`` and the image a move
        brought it.  False, touching nothing, when the container here is
        another host's."""
        if self._elsewhere(instance):
            return False
        if not self._containers.destroy(instance):
            LOG.info("No container to remove", instance=instance)
        ref = naming.migration_image_ref(instance.uuid)
        try:
            self._engine.remove_image(ref)
        except exception.EngineError as e:
            LOG.warning(
                "Could not remove %s: %s", ref, e.format_message(), instance=instance
            )
        return True

    def keep_stopped(self, instance: Any) -> bool:
        """Nova keeps the disks: the container is the disk, so it stays,
        stopped at once as a destroyed guest would be.  False, touching
        nothing, when the container here is another host's."""
        if self._elsewhere(instance):
            return False
        try:
            self._containers.power_off(instance, 0)
        except nova_exception.InstanceNotFound:
            LOG.info("No container to stop", instance=instance)
        return True

    def _elsewhere(self, instance: Any) -> bool:
        owner = self.foreign_owner(instance)
        if owner is not None:
            LOG.info(
                "The container of this server here belongs to host %s; "
                "leaving it and its ports alone",
                owner,
                instance=instance,
            )
        return owner is not None

    # -- shared storage ---------------------------------------------------

    def engine_identity(self) -> str:
        """Which engine this is: its ID alone is not enough, since engines
        of one machine may share the key it comes from."""
        info = self._engine.info()
        return "/".join(str(info.get(k, "")) for k in ("ID", "Name", "DockerRootDir"))

    def shares_engine(self, data: Any) -> bool:
        theirs = (data or {}).get("docker_engine")
        return bool(theirs) and theirs == self.engine_identity()


def _root_disk_bytes(flavor: Any) -> int:
    return int(flavor.root_gb or 0) * units.Gi


def _boot_image_meta(image_meta: Any, instance: Any) -> Any:
    """Nova passes the image meta it keeps in the instance's system metadata,
    which has no ``id``; faults about the image name it by its ID."""
    if image_meta.obj_attr_is_set("id") or not instance.image_ref:
        return image_meta
    meta = image_meta.obj_clone()
    meta.id = instance.image_ref
    return meta
