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

"""Rescue: a shell on the server's own filesystem instead of its command.

::

    rescue:   stop nova-<uuid> → commit (nova-rescue:<uuid>) → create
              nova-rescue-<uuid> from it, with the instance's own limits,
              confinement and sandbox, a shell on a terminal as its command
              → start it in the sandbox (same namespace, same addresses)
    unrescue: stop the rescue container → commit what it changed → make
              nova-<uuid> again from that, with its original settings
              → start the original command

A rescue image (``--image``, or an image with ``hw_rescue_*`` properties)
boots instead of the server's filesystem, in the same sandbox; the server's
filesystem is then not reachable from it (no host path is ever mounted),
and unrescue changes nothing in it.

The driver's static busybox comes in on a named volume at ``TOOLS_DIR``
(under ``/dev``, a tmpfs in every container, so that no commit keeps even
its mount point); the rescue shell is the image's ``/bin/sh`` when it has
one, else busybox's.  What unrescue keeps is tagged ``nova-migration:<uuid>``,
the tag whose image goes with the instance's container (``Migrations``).
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable
from collections.abc import Mapping
from typing import Any

from nova import exception as nova_exception
from nova.compute import power_state
from nova.i18n import _
from nova.virt import hardware
from oslo_log import log as logging

from nova_docker import container
from nova_docker import exception
from nova_docker.engine import client as engine_client
from nova_docker.engine import naming
from nova_docker.image import fetch

LOG = logging.getLogger(__name__)

#: Where the rescue container finds the driver's busybox.
TOOLS_DIR = "/dev/.nova-rescue"
BUSYBOX = f"{TOOLS_DIR}/busybox"
#: The image's own shell where it has one; busybox's where it has none.
SHELL_SCRIPT = f"[ -x /bin/sh ] && exec /bin/sh; exec {BUSYBOX} sh"
#: Root's, so that the rescue can repair what the server's user cannot.
RESCUE_USER = "0:0"
#: Settings a container joining a sandbox may not ask for: the sandbox has
#: them (and the engine refuses them next to ``container:`` networking).
SANDBOX_OWNED = ("Hostname", "Domainname", "ExposedPorts", "MacAddress")

StartFn = Callable[[Any], None]


# -- pure -------------------------------------------------------------------


def boots_rescue_image(image_meta: Any, instance: Any) -> bool:
    """Whether the rescue boots ``image_meta`` rather than the server's
    filesystem (pure).

    Nova always passes an image: the user's ``--image``, else the base image
    of a snapshot the server was built from, else the server's own.  Only
    the first is a request for another image; an image with ``hw_rescue_*``
    properties asks for itself, as libvirt's stable device rescue does.
    """
    if hardware.check_hw_rescue_props(image_meta):
        return True
    if not image_meta.obj_attr_is_set("id") or not image_meta.id:
        return False
    system_metadata = instance.system_metadata or {}
    own = {instance.image_ref, system_metadata.get("image_base_image_ref")}
    return image_meta.id not in own


def labels_over(
    image_labels: Mapping[str, str] | None, wanted: Mapping[str, str]
) -> dict[str, str]:
    """``wanted``, and every label of ours that the image would hand down
    blanked (pure): a container inherits its image's labels, and a commit
    makes a container's labels its image's."""
    prefix = f"{naming.LABEL_PREFIX}."
    blanks = {
        key: ""
        for key in image_labels or {}
        if key.startswith(prefix) and key not in wanted
    }
    return {**blanks, **wanted}


def tools_archive(busybox: bytes) -> bytes:
    """``busybox``, executable, as the one file of a tar archive (pure)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("busybox")
        info.size, info.mode = len(busybox), 0o755
        tar.addfile(info, io.BytesIO(busybox))
    return out.getvalue()


def _host_config(
    original: Mapping[str, Any], instance_uuid: str, binds: list[str]
) -> dict[str, Any]:
    """The original's limits, confinement, log, root disk and drive, in its
    sandbox by name (not by ID, as inspect shows it: a sandbox may be made
    again while the server is rescued)."""
    host_config = dict(original["HostConfig"])
    host_config["NetworkMode"] = f"container:{naming.sandbox_name(instance_uuid)}"
    host_config["Binds"] = [*(host_config.get("Binds") or ()), *binds]
    return host_config


def rescue_body(
    original: Mapping[str, Any],
    instance_uuid: str,
    image: str,
    image_labels: Mapping[str, str] | None,
    host: str,
    tools: str | None,
) -> dict[str, Any]:
    """The rescue container (pure): a shell as root on a terminal with its
    stdin open, so that it waits for a console, with the instance's host
    settings; ``tools`` is the volume holding busybox, if any."""
    binds = [f"{tools}:{TOOLS_DIR}"] if tools else []
    shell = [BUSYBOX, "sh", "-c", SHELL_SCRIPT] if tools else ["/bin/sh"]
    return {
        "Image": image,
        "Entrypoint": shell,
        "Cmd": [],
        "User": RESCUE_USER,
        "Tty": True,
        "OpenStdin": True,
        "Labels": labels_over(image_labels, naming.rescue_labels(instance_uuid, host)),
        "Healthcheck": {"Test": ["NONE"]},
        "HostConfig": _host_config(original, instance_uuid, binds),
    }


def unrescued_body(
    original: Mapping[str, Any],
    instance_uuid: str,
    image: str,
    image_labels: Mapping[str, str] | None,
) -> dict[str, Any]:
    """The instance's container again, from ``image``, with every setting
    the original had (pure).  An empty entrypoint or command is sent as
    ``[]``: null would take the rescue shell the image now declares."""
    config = dict(original["Config"])
    for key in SANDBOX_OWNED:
        config.pop(key, None)
    return {
        **config,
        "Image": image,
        "Entrypoint": config.get("Entrypoint") or [],
        "Cmd": config.get("Cmd") or [],
        "Labels": labels_over(image_labels, config.get("Labels") or {}),
        "HostConfig": _host_config(original, instance_uuid, []),
    }


def not_rescuable(
    instance: Any, error: Exception
) -> nova_exception.InstanceNotRescuable:
    """``error``'s words as the reason Nova records in the fault."""
    if isinstance(error, nova_exception.InstanceNotRescuable):
        return error
    return nova_exception.InstanceNotRescuable(
        instance_id=instance.uuid, reason=words(error)
    )


def words(error: Exception) -> str:
    """What ``error`` says, never empty (pure)."""
    if isinstance(error, nova_exception.NovaException):
        return error.format_message()
    return str(error) or type(error).__name__


# -- on the engine ----------------------------------------------------------


class Rescues:
    """Rescue and unrescue of this host's instances.

    :param busybox: the driver's static busybox (raises SandboxUnavailable).
    :param bring_up: runs ``start(instance)`` once the instance's sandbox
        runs with its ports plugged (the driver's ``_bring_up``).
    :param power_on: powers the instance's own container on again, after
        its sandbox and ports.
    """

    def __init__(
        self,
        engine: engine_client.Engine,
        containers: container.Containers,
        fetcher: fetch.ImageFetcher,
        host: str,
        stop_timeout: int,
        busybox: Callable[[], bytes],
        bring_up: Callable[[Any, Any, StartFn], None],
        power_on: Callable[[Any, Any], None],
    ) -> None:
        self._engine = engine
        self._containers = containers
        self._fetcher = fetcher
        self._host = host
        self._stop_timeout = stop_timeout
        self._busybox = busybox
        self._bring_up = bring_up
        self._power_on = power_on

    def console_target(self, instance: Any) -> tuple[str, bool] | None:
        """The rescue container a console reaches, and whether it runs;
        None when the instance has none."""
        name = naming.rescue_name(instance.uuid)
        found = self._find(name)
        if found is None:
            return None
        return name, bool((found.get("State") or {}).get("Running"))

    # -- rescue -----------------------------------------------------------

    def rescue(
        self,
        context: Any,
        instance: Any,
        network_info: Any,
        image_meta: Any,
        password: str | None,
    ) -> None:
        """Stop the server and run a rescue shell in its sandbox; on any
        failure, InstanceNotRescuable with why, and the server as it was."""
        original = self._original(instance)
        earlier = self._find(naming.rescue_name(instance.uuid)) is not None
        was_running = self._containers.power_state(instance) == power_state.RUNNING
        try:
            self._containers.power_off(instance, self._stop_timeout)
            if earlier:
                # Left by an unrescue that failed (the server is in ERROR,
                # which Nova may rescue, never unrescue): it holds what was
                # changed in it, so this rescue carries on in it.
                LOG.warning("Rescuing again in the rescue container still here",
                            instance=instance)  # fmt: skip
            else:
                self._create(context, instance, original, image_meta)
            self._bring_up(instance, network_info, self._start)
        except Exception as e:
            self._undo(instance, network_info, was_running, remove=not earlier)
            raise not_rescuable(instance, e) from e
        self._set_password(instance, password)
        LOG.info("Rescue shell running in %s", naming.rescue_name(instance.uuid),
                 instance=instance)  # fmt: skip

    def _original(self, instance: Any) -> dict[str, Any]:
        try:
            original = self._containers.inspect(instance)
        except nova_exception.InstanceNotFound as e:
            raise not_rescuable(instance, e) from e
        if not self._containers.in_sandbox(instance):
            raise nova_exception.InstanceNotRescuable(
                instance_id=instance.uuid,
                reason=_(
                    "its container has a network namespace of its own (it was "
                    "made before network sandboxes), which a rescue container "
                    "cannot join"
                ),
            )
        return original

    def _create(
        self, context: Any, instance: Any, original: dict[str, Any], image_meta: Any
    ) -> None:
        if boots_rescue_image(image_meta, instance):
            LOG.info("Rescuing with image %s; the server's filesystem is not "
                     "reachable from it", image_meta.id, instance=instance)  # fmt: skip
            image = self._fetcher.ensure(context, image_meta, instance)
        else:
            image = naming.rescue_image_ref(instance.uuid)
            self._engine.commit(
                naming.container_name(instance.uuid), *image.rsplit(":", 1)
            )
        labels = (self._engine.inspect_image(image).get("Config") or {}).get("Labels")
        busybox = self._read_busybox(instance)
        tools = naming.rescue_tools_volume(instance.uuid) if busybox else None
        if tools:
            self._engine.create_volume(tools, self._tools_labels(instance))
        name = naming.rescue_name(instance.uuid)
        self._engine.create_like(
            name, rescue_body(original, instance.uuid, image, labels, self._host, tools)
        )
        if busybox:
            # Through the created container, as the config drive is loaded:
            # the engine copies into containers, not into volumes.
            self._engine.put_archive(name, TOOLS_DIR, tools_archive(busybox))

    def _read_busybox(self, instance: Any) -> bytes | None:
        """The driver's busybox; None, said in a warning, when this host has
        none: then only an image with its own ``/bin/sh`` can be rescued."""
        try:
            return self._busybox()
        except exception.SandboxUnavailable as e:
            LOG.warning("The rescue brings no busybox; an image without /bin/sh "
                        "cannot be rescued here: %s", e.format_message(),
                        instance=instance)  # fmt: skip
            return None

    def _tools_labels(self, instance: Any) -> dict[str, str]:
        return {naming.RESCUE_OF_LABEL: instance.uuid, naming.HOST_LABEL: self._host}

    def _start(self, instance: Any) -> None:
        """Start the rescue shell; one that exits at once fails the rescue
        with its own last words."""
        name = naming.rescue_name(instance.uuid)
        self._engine.start(name)
        found = self._engine.inspect_container(name)["State"]
        if found.get("Running"):
            return
        output = b"".join(self._engine.logs(name, tail=container.EXIT_REPORT_LINES))
        raise nova_exception.InstanceNotRescuable(
            instance_id=instance.uuid,
            reason=_("the rescue shell exited at once with status %(code)s: %(out)s")
            % {
                "code": found.get("ExitCode"),
                "out": output.decode("utf-8", "replace").strip() or _("(no output)"),
            },
        )

    def _set_password(self, instance: Any, password: str | None) -> None:
        """Root's password in the rescue, with the image's own ``chpasswd``
        (as ``set_admin_password``); a rescue without it still runs, and the
        log says the password was not applied."""
        if not password:
            return
        try:
            code, output = self._engine.exec_run(
                naming.rescue_name(instance.uuid),
                ["/bin/sh", "-c", container.SET_PASSWORD_SCRIPT],
                {container.PASSWORD_VARIABLE: password},
            )
        except exception.EngineError as e:
            code, output = -1, e.format_message().encode()
        if code in (126, 127):
            LOG.warning("The rescue password was not applied: the image has no "
                        "chpasswd (or no /bin/sh)", instance=instance)  # fmt: skip
        elif code != 0:
            LOG.warning("The rescue password was not applied: %s",
                        output.decode("utf-8", "replace").strip() or f"status {code}",
                        instance=instance)  # fmt: skip

    def _undo(
        self, instance: Any, network_info: Any, was_running: bool, remove: bool
    ) -> None:
        """After a failed rescue: nothing of it left (unless ``remove`` is
        False), the server as it was.  Logged, not raised: the rescue's own
        error is the one to report."""
        try:
            if remove:
                self._remove_rescue(instance)
            else:
                self._engine.stop(naming.rescue_name(instance.uuid), 0)
            if was_running:
                self._power_on(instance, network_info)
        except Exception:
            LOG.exception("Could not restore the server after its rescue failed",
                          instance=instance)  # fmt: skip

    # -- unrescue ---------------------------------------------------------

    def unrescue(self, instance: Any) -> None:
        """Give the server back its own command, keeping what the rescue
        changed in its filesystem (not when a rescue image ran)."""
        rescue = self._find(naming.rescue_name(instance.uuid))
        if rescue is None:
            LOG.warning("No rescue container; starting the server", instance=instance)
        elif rescue["Config"]["Image"] == naming.rescue_image_ref(instance.uuid):
            self._stop_rescue(instance)
            self._keep_changes(instance)
        self._remove_rescue(instance)
        self._power_on(instance, _network_info(instance))

    def _stop_rescue(self, instance: Any) -> None:
        # The shell is PID 1 and ignores SIGTERM: what else runs gets the
        # grace time to finish its writes.
        self._engine.stop(naming.rescue_name(instance.uuid), self._stop_timeout)

    def _keep_changes(self, instance: Any) -> None:
        """Commit the rescue container and make the instance's container
        again from it; on failure the original is back, untouched."""
        uuid = instance.uuid
        kept = naming.unrescue_image_ref(uuid)
        try:
            self._engine.commit(naming.rescue_name(uuid), *kept.rsplit(":", 1))
            original = self._containers.inspect(instance)
            self._replace(instance, original, kept)
        except Exception as e:
            self._forget_image(instance, kept)
            raise nova_exception.InstanceUnRescueFailure(
                reason=_("what the rescue changed was not kept: %s") % words(e)
            ) from e
        # The container's image now, removed with it (Migrations.remove_here);
        # an image tagged there before is its parent, and goes with it.
        self._engine.tag_image(kept, naming.migration_image_ref(uuid))
        self._engine.remove_image(kept)

    def _replace(self, instance: Any, original: dict[str, Any], image: str) -> None:
        """Make the instance's container anew from ``image``; the original
        waits aside until its successor exists."""
        uuid = instance.uuid
        name, aside = naming.container_name(uuid), naming.rescued_name(uuid)
        labels = (self._engine.inspect_image(image).get("Config") or {}).get("Labels")
        self._engine.rename(name, aside)
        try:
            self._engine.create_like(
                name, unrescued_body(original, uuid, image, labels)
            )
        except Exception:
            self._engine.remove_container(name)
            self._engine.rename(aside, name)
            raise
        finally:
            self._containers.forget_states()
        self._engine.remove_container(aside)

    # -- removal ----------------------------------------------------------

    def remove(self, instance: Any) -> None:
        """With the instance: its rescue container, tools volume and
        transient images; another host's rescue container stays."""
        found = self._find(naming.rescue_name(instance.uuid))
        labels = ((found or {}).get("Config") or {}).get("Labels") or {}
        if found is not None and labels.get(naming.RESCUE_HOST_LABEL) != self._host:
            return
        # Left by an unrescue cut short (nova-compute killed) mid-way.
        self._engine.remove_container(naming.rescued_name(instance.uuid))
        self._remove_rescue(instance)

    def _remove_rescue(self, instance: Any) -> None:
        uuid = instance.uuid
        self._engine.remove_container(naming.rescue_name(uuid))
        self._engine.remove_volume(naming.rescue_tools_volume(uuid))
        for ref in naming.rescue_image_refs(uuid):
            self._forget_image(instance, ref)

    def _forget_image(self, instance: Any, ref: str) -> None:
        try:
            self._engine.remove_image(ref)
        except exception.EngineError as e:
            LOG.warning("Could not remove %s: %s", ref, e.format_message(),
                        instance=instance)  # fmt: skip

    def _find(self, name: str) -> dict[str, Any] | None:
        try:
            return self._engine.inspect_container(name)
        except exception.ContainerNotFound:
            return None


def _network_info(instance: Any) -> Any:
    """Nova passes unrescue no network_info; the cache has the ports."""
    info_cache = instance.info_cache if "info_cache" in instance else None
    return info_cache.network_info if info_cache else []
