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

"""Instance-level verbs over the engine: one Nova instance, one container
(which joins the instance's network sandbox, :mod:`nova_docker.sandbox`).

Each method is a short sequence of engine calls; Nova's expectations about
states (a soft reboot of a paused instance, a power-off of a stopped one) are
handled here so that the driver stays a plain map of Nova calls.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import threading
import time
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from typing import Any

from nova import exception as nova_exception
from nova.compute import power_state
from nova.i18n import _
from nova.virt import driver as virt_driver
from oslo_log import log as logging
from oslo_utils import units

from nova_docker import bounds
from nova_docker import configdrive
from nova_docker import exception
from nova_docker import host
from nova_docker import inject
from nova_docker.engine import client as engine_client
from nova_docker.engine import naming
from nova_docker.engine import spec as spec_mod
from nova_docker.engine import state

LOG = logging.getLogger(__name__)

#: How long one label-filtered listing answers cached state queries.  Nova
#: asks with ``use_cache=True`` only from its power-state sync, which walks
#: every instance of the host; one listing serves the whole walk.
STATE_CACHE_SECONDS = 30.0
#: Sets root's password from the variable below; 127 without chpasswd.
PASSWORD_VARIABLE = "NOVA_DOCKER_ROOT_PASSWORD"  # noqa: S105 (a name, not a secret)
SET_PASSWORD_SCRIPT = (
    "command -v chpasswd >/dev/null 2>&1 || exit 127; "
    f'printf "root:%s\\n" "${PASSWORD_VARIABLE}" | chpasswd'
)
#: How much of the output of a container that exited during its boot goes
#: into the instance's fault.
EXIT_REPORT_LINES = 10


class _StateCache:
    """Engine status by instance UUID, from one listing of this host's
    containers.

    Every listing of the host's containers refreshes it, and Nova's
    power-state sync starts with one (``get_num_instances``), so the states
    a sync compares are never older than the sync itself.  It is forgotten
    whenever this driver changes a container, so a cached answer is never
    older than our own last change either.
    """

    def __init__(self, list_containers: Callable[[], list[dict[str, Any]]]) -> None:
        self._list_containers = list_containers
        self._lock = threading.Lock()
        self._states: dict[str, str] | None = None
        self._taken_at = 0.0
        # Counts forget()s: a listing begun before one must not be kept.
        self._generation = 0

    def status(self, instance_uuid: str) -> str | None:
        with self._lock:
            if (
                self._states is None
                or time.monotonic() - self._taken_at > STATE_CACHE_SECONDS
            ):
                self._keep(self._list_containers())
            return self._states.get(instance_uuid)

    def listing(self) -> list[dict[str, Any]]:
        """A fresh listing of the host's containers, kept for ``status``."""
        with self._lock:
            generation = self._generation
        found = self._list_containers()
        with self._lock:
            if generation == self._generation:
                self._keep(found)
        return found

    def forget(self) -> None:
        with self._lock:
            self._states = None
            self._generation += 1

    def _keep(self, found: list[dict[str, Any]]) -> None:
        self._states = {
            (c.get("Labels") or {}).get(naming.UUID_LABEL, ""): c.get("State", "")
            for c in found
        }
        self._taken_at = time.monotonic()


def _build_abort(
    instance: Any, reason: str, error: exception.EngineError
) -> nova_exception.BuildAbortException:
    """``reason`` (with one ``%s`` for the engine's words) as a fault that
    Nova records on the instance without rescheduling the build."""
    return nova_exception.BuildAbortException(
        instance_uuid=instance.uuid, reason=reason % error.format_message()
    )


def _changes_state(method: Callable) -> Callable:
    @functools.wraps(method)
    def wrapper(self: Containers, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        finally:
            self._state_cache.forget()

    return wrapper


@dataclasses.dataclass(frozen=True)
class ContainerOptions:
    spec: spec_mod.SpecOptions = dataclasses.field(default_factory=spec_mod.SpecOptions)
    stop_timeout: int = 10
    console_max_bytes: int = 100 * 1024
    inject_key: bool = False


def _block_device_problems(block_device_info: Any) -> list[str]:
    """What of Nova's block device info no container can have."""
    if not block_device_info:
        return []
    return spec_mod.block_device_problems(
        volumes=len(virt_driver.block_device_info_get_mapping(block_device_info)),
        ephemeral_gb=[
            e.get("size") or 0
            for e in virt_driver.block_device_info_get_ephemerals(block_device_info)
        ],
    )


class Containers:
    def __init__(
        self, engine: engine_client.Engine, host: str, options: ContainerOptions
    ) -> None:
        self._engine = engine
        self._host = host
        self._options = options
        self._state_cache = _StateCache(
            lambda: self._engine.list_containers(naming.host_selector(self._host))
        )
        self._root_disk_quota = False
        self._shares: bounds.Shares | None = None

    def use_root_disk_quota(self, enabled: bool) -> None:
        """Whether new containers get the engine's quota on their writable
        layer: only where the engine can enforce one (found at start)."""
        self._root_disk_quota = enabled

    def use_host_shares(self, shares: bounds.Shares) -> None:
        """Size new containers' pids and nofile limits by their share of
        the host (known once the driver has read the host's facts)."""
        self._shares = shares

    def task_limits(self, flavor: Any) -> bounds.Limits:
        """The pids and nofile limits of a container of ``flavor``.

        The flavor's ``docker:pids_limit`` and ``docker:nofile_limit`` (or
        ``[docker]`` defaults) are ceilings; the host's share for the
        flavor's memory is the other one.
        """
        opts = self._options.spec
        extra_specs = flavor.extra_specs or {}
        pids_cap = spec_mod.pids_limit_for(extra_specs, opts.pids_limit)
        nofile_cap = spec_mod.nofile_limit_for(extra_specs, opts.nofile_limit)
        if self._shares is None:
            # No host facts yet: still never more than the engine can grant.
            nofile = min(nofile_cap, host.nofile_hard_limit())
            return bounds.Limits(pids=pids_cap, nofile=nofile)
        return self._shares.for_instance(flavor.memory_mb, pids_cap, nofile_cap)

    # -- creation ---------------------------------------------------------

    def refuse_unfit_flavor(
        self, instance: Any, block_device_info: Any = None, accel_info: Any = None
    ) -> None:
        """Fail the build at once, and on no other host either, when no
        container of the instance's flavor, or with the block devices or
        accelerators Nova got for it, can run anywhere."""
        flavor = instance.flavor
        problems = spec_mod.flavor_problems(flavor.memory_mb, flavor.extra_specs or {})
        what = _("the flavor cannot run as a container: %s")
        devices = _block_device_problems(block_device_info)
        devices += spec_mod.accelerator_problems(len(accel_info or ()))
        if devices and not problems:
            what = _("the server cannot run as a container: %s")
        problems += devices
        if problems:
            raise nova_exception.BuildAbortException(
                instance_uuid=instance.uuid,
                reason=what % "; ".join(problems),
            )

    @_changes_state
    def create(
        self,
        instance: Any,
        image_ref: str,
        image_meta: Any,
        injected_files: Iterable[tuple[str, bytes | str]],
        config_drive: bytes | None = None,
        image: Mapping[str, Any] | None = None,
    ) -> str:
        """Create (not start) the instance's container; returns its name.
        ``image`` is the engine's inspect of ``image_ref`` when the caller
        has it (else it is asked for).

        What the engine refuses here is the image's doing (its config, or
        what it holds where the injected files go), and another host would
        refuse it the same way: BuildAbortException puts the engine's words
        in the instance fault instead of rescheduling for nothing.  A fault
        of this host's engine (a full disk) aborts too, with its own words.
        """
        if config_drive is not None:
            self.load_config_drive(instance, image_ref, config_drive)
        spec = self.spec_for(
            instance, image_ref, image_meta, config_drive is not None, image
        )
        # Refuses unsafe paths before the engine does any work.
        ssh_key = instance.key_data if self._options.inject_key else None
        archive = inject.files_archive(injected_files or [], ssh_key)
        try:
            self._create_container(instance, spec)
        except exception.ContainerNameInUse:
            # Only a leftover of an earlier, interrupted spawn of this same
            # instance has its name.  Asked only now: a boot rarely finds one.
            self._engine.remove_container(spec.name)
            LOG.warning("Removed a leftover container %s", spec.name, instance=instance)
            self._create_container(instance, spec)
        if archive is not None:
            self._copy_in(instance, spec.name, archive)
        return spec.name

    def load_config_drive(self, instance: Any, image_ref: str, seed: bytes) -> None:
        """Make the instance's config drive volume anew and copy ``seed``
        onto it, through a container of the instance's own image that is
        never started (so that an image with no room for the drive fails
        here); a build fails saying why it could not."""
        volume = naming.config_drive_volume(instance.uuid)
        loader = spec_mod.VolumeLoaderSpec(
            name=naming.config_drive_loader(instance.uuid),
            image=image_ref,
            volume=volume,
            path=configdrive.SEED_DIR,
            labels=naming.config_drive_labels(instance.uuid, self._host),
        )
        # Leftovers of an interrupted build of this instance.
        self._engine.remove_container(loader.name)
        self._engine.remove_volume(volume)
        try:
            self._engine.create_volume(volume, loader.labels)
            self._engine.create_container(loader)
            self._engine.put_archive(loader.name, loader.path, seed)
        except exception.EngineError as e:
            self._engine.remove_container(loader.name)
            self._engine.remove_volume(volume)
            raise _build_abort(
                instance,
                _("the config drive was not written to %s: %%s") % configdrive.SEED_DIR,
                e,
            ) from e
        self._engine.remove_container(loader.name)

    def _create_container(self, instance: Any, spec: spec_mod.ContainerSpec) -> None:
        try:
            self._engine.create_container(spec)
        except exception.ContainerNameInUse:
            raise
        except exception.EngineError as e:
            # A failed create leaves no container behind; one by this name
            # means the name was taken meanwhile: no fault of the image.
            if self._name_taken(spec.name):
                raise
            what = _("the container was not created: %s")
            if spec.config_drive_volume:
                what = _(
                    "the container, with its config drive at %(drive)s, was not "
                    "created: %%s"
                ) % {"drive": configdrive.SEED_DIR}
            raise _build_abort(instance, what, e) from e

    def _copy_in(self, instance: Any, name: str, archive: bytes) -> None:
        try:
            self._engine.put_archive(name, "/", archive)
        except exception.EngineError as e:
            raise _build_abort(
                instance, _("the injected files were not copied in: %s"), e
            ) from e

    def _name_taken(self, name: str) -> bool:
        try:
            self._engine.inspect_container(name)
        except exception.ContainerNotFound:
            return False
        return True

    def spec_for(
        self,
        instance: Any,
        image_ref: str,
        image_meta: Any,
        config_drive: bool = False,
        image: Mapping[str, Any] | None = None,
    ) -> spec_mod.ContainerSpec:
        """The instance's container, in its network sandbox (which has the
        hostname and the subnets' DNS servers), with a volume for its config
        drive if it has one."""
        opts = self._options.spec
        flavor = instance.flavor
        extra_specs = flavor.extra_specs or {}
        if image is None:
            image = self._engine.inspect_image(image_ref)
        image_config = image.get("Config") or {}
        command = spec_mod.command_for(
            image_meta.id, image_meta.properties.get("os_command_line"), image_config
        )
        environment = {}
        if opts.metadata_as_env:
            environment, skipped = spec_mod.environment_from_metadata(
                instance.metadata or {}
            )
            if skipped:
                LOG.warning(
                    "Metadata keys %s are not valid variable names; "
                    "not passed to the container",
                    skipped,
                    instance=instance,
                )
        name = naming.container_name(instance.uuid)
        limits = self.task_limits(flavor)
        root_gb = spec_mod.root_disk_gb_for(flavor.root_gb, opts.unsized_root_disk_gb)
        return spec_mod.ContainerSpec(
            name=name,
            image=image_ref,
            hostname=spec_mod.hostname_for(instance.hostname, name),
            labels={
                **naming.container_labels(
                    instance.uuid, instance.name, instance.project_id, self._host
                ),
                **naming.root_disk_labels(root_gb * units.Gi),
            },
            memory_bytes=flavor.memory_mb * 1024 * 1024,
            swap_bytes=(flavor.swap or 0) * 1024 * 1024,
            vcpus=flavor.vcpus,
            pids_limit=limits.pids,
            nofile=limits.nofile,
            command=command,
            environment=environment,
            privileged=spec_mod.privileged_requested(
                extra_specs, opts.allow_privileged
            ),
            security_opt=(spec_mod.NO_NEW_PRIVILEGES, *opts.security_opt),
            cap_drop=opts.cap_drop,
            log_max_size=opts.log_max_size,
            log_max_files=opts.log_max_files,
            log_driver=opts.log_driver,
            sandbox=naming.sandbox_name(instance.uuid),
            config_drive_volume=(
                naming.config_drive_volume(instance.uuid) if config_drive else None
            ),
            config_drive_path=configdrive.SEED_DIR,
            healthcheck=spec_mod.healthcheck_for(
                image_config.get("Healthcheck"),
                opts.allow_image_healthcheck,
                opts.healthcheck_min_interval,
            ),
            root_disk_gb=root_gb if self._root_disk_quota else 0,
        )

    # -- power ------------------------------------------------------------

    def power_state(self, instance: Any, use_cache: bool = False) -> int:
        """Nova's power state; ``use_cache`` may answer from one listing of
        all of this host's containers instead of an inspect per instance."""
        if use_cache:
            status = self._state_cache.status(instance.uuid)
            if status is not None:
                return state.power_state_of({"Status": status})
        return state.power_state_of(self.inspect(instance)["State"])

    def inspect(self, instance: Any) -> dict[str, Any]:
        """The container's inspect data; InstanceNotFound if it is gone."""
        try:
            return self._engine.inspect_container(naming.container_name(instance.uuid))
        except exception.ContainerNotFound as e:
            raise nova_exception.InstanceNotFound(instance_id=instance.uuid) from e

    def pid(self, instance: Any) -> int:
        """The container's init PID; 0 when it is not running or is gone
        (then there is no namespace to plug, and nova-compute's start-up
        plug_vifs must not fail for a container removed outside Nova)."""
        try:
            container_state = self.inspect(instance)["State"]
        except nova_exception.InstanceNotFound:
            return 0
        if state.power_state_of(container_state) != power_state.RUNNING:
            return 0
        return int(container_state.get("Pid") or 0)

    def netns_target(self, instance: Any) -> tuple[str, int] | None:
        """The container's full ID and init PID, from one inspect; None when
        it is not running or is gone.

        The pair pins the network namespace to plug: the privileged side
        refuses the PID unless it still belongs to this container ID.
        """
        try:
            found = self.inspect(instance)
        except nova_exception.InstanceNotFound:
            return None
        running = state.power_state_of(found["State"]) == power_state.RUNNING
        pid = int(found["State"].get("Pid") or 0) if running else 0
        return (str(found["Id"]), pid) if pid else None

    @_changes_state
    def start(self, instance: Any) -> None:
        self._engine.start(naming.container_name(instance.uuid))

    @_changes_state
    def power_on(self, instance: Any) -> None:
        current = self.power_state(instance)
        name = naming.container_name(instance.uuid)
        if current == power_state.PAUSED:
            self._engine.unpause(name)
        elif current != power_state.RUNNING:
            self._engine.start(name)

    @_changes_state
    def power_off(self, instance: Any, timeout: int) -> None:
        """Stop, giving the process ``timeout`` seconds after SIGTERM."""
        current = self.power_state(instance)
        name = naming.container_name(instance.uuid)
        if current == power_state.PAUSED:
            self._engine.unpause(name)
        elif current != power_state.RUNNING:
            return
        self._engine.stop(name, timeout=timeout)

    @_changes_state
    def pause(self, instance: Any) -> None:
        """Freeze the processes; a no-op when already paused."""
        if self.power_state(instance) != power_state.PAUSED:
            self._engine.pause(naming.container_name(instance.uuid))

    @_changes_state
    def unpause(self, instance: Any) -> None:
        """Thaw the processes; a no-op when not paused."""
        if self.power_state(instance) == power_state.PAUSED:
            self._engine.unpause(naming.container_name(instance.uuid))

    @_changes_state
    def destroy(self, instance: Any) -> bool:
        """Remove the container, then its network sandbox and config drive;
        False if there was no container (not an error)."""
        removed = self._engine.remove_container(naming.container_name(instance.uuid))
        self._engine.remove_container(naming.sandbox_name(instance.uuid))
        # A build killed while it loaded the drive left its loader, which
        # holds the volume.
        self._engine.remove_container(naming.config_drive_loader(instance.uuid))
        self._engine.remove_volume(naming.config_drive_volume(instance.uuid))
        return removed

    def in_sandbox(self, instance: Any) -> bool:
        """Whether the container joins a network sandbox; False for one made
        before sandboxes, with a namespace of its own."""
        host_config = self.inspect(instance).get("HostConfig") or {}
        return str(host_config.get("NetworkMode") or "").startswith("container:")

    def exited(
        self, instance: Any, lines: int = EXIT_REPORT_LINES
    ) -> tuple[int, str] | None:
        """The exit status and last ``lines`` of output of a container that
        is no longer running; None while it runs."""
        found = self.inspect(instance)["State"]
        if state.power_state_of(found) == power_state.RUNNING:
            return None
        name = naming.container_name(instance.uuid)
        try:
            output = b"".join(self._engine.logs(name, tail=lines))
        except exception.EngineError as e:
            output = e.format_message().encode()
        text = output.decode("utf-8", "replace").strip() or _("(no output)")
        return int(found.get("ExitCode") or 0), text

    def set_root_password(self, instance: Any, password: str) -> None:
        """Set root's password with the image's own ``chpasswd``.

        Raises SetAdminPasswdNotSupported (logged with why) when the image
        has no ``chpasswd`` or no shell to run it, or the container is not
        running; InstancePasswordSetFailed with its words when it fails.
        """
        if self.power_state(instance) != power_state.RUNNING:
            LOG.warning("Cannot set the password: the container is not running",
                        instance=instance)  # fmt: skip
            raise nova_exception.SetAdminPasswdNotSupported()
        name = naming.container_name(instance.uuid)
        # The password goes in the environment of this one exec, never on a
        # command line that ``ps`` in the container would show.
        code, output = self._engine.exec_run(
            name, ["/bin/sh", "-c", SET_PASSWORD_SCRIPT], {PASSWORD_VARIABLE: password}
        )
        if code in (126, 127):
            LOG.warning(
                "Cannot set the password: the image has no chpasswd (or no "
                "/bin/sh) to set it with",
                instance=instance,
            )
            raise nova_exception.SetAdminPasswdNotSupported()
        if code != 0:
            raise nova_exception.InstancePasswordSetFailed(
                instance=instance.uuid,
                reason=output.decode("utf-8", "replace").strip() or f"status {code}",
            )

    # -- inventory --------------------------------------------------------

    def forget_states(self) -> None:
        """A container changed outside this driver (an engine event)."""
        self._state_cache.forget()

    def listing(self) -> list[dict[str, Any]]:
        """Every container of this host, with its labels and state, in one
        engine call (and kept for cached state queries)."""
        return self._state_cache.listing()

    def list_labels(self) -> list[dict[str, str]]:
        """Labels of every container of this host, in one engine call."""
        return [c.get("Labels") or {} for c in self.listing()]

    def list_uuids(self) -> list[str]:
        return [
            labels[naming.UUID_LABEL]
            for labels in self.list_labels()
            if naming.UUID_LABEL in labels
        ]

    def list_names(self) -> list[str]:
        return [
            labels[naming.NAME_LABEL]
            for labels in self.list_labels()
            if naming.NAME_LABEL in labels
        ]

    def stats(self, instance: Any) -> dict[str, Any]:
        try:
            return self._engine.stats(naming.container_name(instance.uuid))
        except exception.ContainerNotFound as e:
            raise nova_exception.InstanceNotFound(instance_id=instance.uuid) from e

    # -- console ----------------------------------------------------------

    def console_output(self, instance: Any) -> str:
        """The newest ``console_max_bytes`` of the container's output."""
        limit = self._options.console_max_bytes
        name = naming.container_name(instance.uuid)
        # Every line holds at least its newline, so the newest ``limit`` lines
        # always cover the newest ``limit`` bytes.
        tail: collections.deque[bytes] = collections.deque()
        kept = 0
        for chunk in self._engine.logs(name, tail=limit):
            tail.append(chunk)
            kept += len(chunk)
            while kept - len(tail[0]) >= limit:
                kept -= len(tail.popleft())
        data = b"".join(tail)[-limit:]
        # Nova cuts ``--lines N`` at newlines: a log that ends with one
        # would give N-1 lines (and nothing for one).  Lines come in the
        # engine's order, the time its copiers read each stream: a line on
        # stderr written microseconds after one on stdout may come first.
        return data.decode("utf-8", "replace").removesuffix("\n")
