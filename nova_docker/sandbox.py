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

"""Each instance's network sandbox: a small container that owns the
instance's network namespace, hostname and resolver, as a pod sandbox does.

Its ports are plugged into the sandbox before the instance's container
starts, and the instance's container joins it (``container:<sandbox>``), so
the first instruction of every start sees the configured network, and a
reboot or stop/start of the instance keeps its ports plugged.  The sandbox
only goes with the instance (destroy, a move away), or when the host or
the engine stops it; the next start of the instance makes it anew.
"""

from __future__ import annotations

from typing import Any

from oslo_log import log as logging

from nova_docker import diagnostics
from nova_docker import exception
from nova_docker.engine import client as engine_client
from nova_docker.engine import naming
from nova_docker.engine import spec as spec_mod
from nova_docker.image import sandbox as sandbox_image

LOG = logging.getLogger(__name__)


class Sandboxes:
    def __init__(
        self,
        engine: engine_client.Engine,
        host: str,
        image: sandbox_image.SandboxImage,
    ) -> None:
        self._engine = engine
        self._host = host
        self._image = image

    def prepare(self) -> None:
        """Find or build the image at start; say in one line if there is
        none (builds then fail with the same reason, and this host's
        running instances keep running)."""
        try:
            image_id = self._image.ensure()
        except exception.SandboxUnavailable as e:
            LOG.error("%s; no instance can be built here", e.format_message())
            return
        LOG.info("Network sandboxes run image %s", image_id)

    def ensure_running(
        self, instance: Any, nameservers: tuple[str, ...], fresh: bool = False
    ) -> bool:
        """Make sure the sandbox runs; True when its namespace is new (just
        made, or started again), so that the ports must be plugged into it.
        For a ``fresh`` instance, one never built here, it is made without
        looking first (a leftover of an interrupted build is then found).

        Raises SandboxUnavailable when there is no image to make it from.
        """
        name = naming.sandbox_name(instance.uuid)
        if fresh:
            try:
                self._create(instance, nameservers)
            except exception.ContainerNameInUse:
                pass
            else:
                self._engine.start(name)
                return True
        try:
            found = self._engine.inspect_container(name)
        except exception.ContainerNotFound:
            self._create(instance, nameservers)
        else:
            if (found.get("State") or {}).get("Running"):
                return False
            LOG.info("Starting the stopped network sandbox", instance=instance)
        self._engine.start(name)
        return True

    def _create(self, instance: Any, nameservers: tuple[str, ...]) -> None:
        try:
            self._engine.create_container(self.spec_for(instance, nameservers))
        except exception.ImageNotCached:
            # Removed behind our back since it was found: once more.
            self._image.forget()
            self._engine.create_container(self.spec_for(instance, nameservers))

    def spec_for(
        self, instance: Any, nameservers: tuple[str, ...]
    ) -> spec_mod.SandboxSpec:
        name = naming.sandbox_name(instance.uuid)
        command = (
            sandbox_image.sandbox_command(nameservers) if self._image.own else None
        )
        return spec_mod.SandboxSpec(
            name=name,
            image=self._image.ensure(),
            hostname=spec_mod.hostname_for(
                instance.hostname, naming.container_name(instance.uuid)
            ),
            labels=naming.sandbox_labels(instance.uuid, self._host),
            command=command,
            nameservers=nameservers,
        )

    def target(self, instance: Any) -> tuple[str, int] | None:
        """The sandbox's full ID and init PID when it runs; None when it is
        stopped or there is none."""
        try:
            found = self._engine.inspect_container(naming.sandbox_name(instance.uuid))
        except exception.ContainerNotFound:
            return None
        state = found.get("State") or {}
        pid = int(state.get("Pid") or 0) if state.get("Running") else 0
        return (str(found["Id"]), pid) if pid else None

    def nic_counters(self, instance: Any) -> list[diagnostics.NicCounters]:
        """The counters of the instance's interfaces, read in its sandbox
        (so on a remote engine too); none when the sandbox is not running
        or is an operator's image, whose tools are unknown."""
        if not self._image.own:
            return []
        name = naming.sandbox_name(instance.uuid)
        try:
            code, output = self._engine.exec_run(name, [*sandbox_image.NIC_READER])
        except (exception.ContainerNotFound, exception.EngineError) as e:
            LOG.debug(
                "No interface counters: %s", e.format_message(), instance=instance
            )
            return []
        if code != 0:
            return []
        dev, _, addresses = output.decode("utf-8", "replace").partition(
            sandbox_image.NIC_READER_SPLIT
        )
        macs = dict(
            line.split(None, 1) for line in addresses.splitlines() if " " in line
        )
        return diagnostics.parse_nics(dev, macs)

    def remove(self, instance: Any) -> bool:
        """Remove the sandbox; False if there was none (not an error)."""
        return self._engine.remove_container(naming.sandbox_name(instance.uuid))
