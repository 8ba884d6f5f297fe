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

"""An instance's Neutron ports, as the driver sees them.

Joins the VIF plugger to the container's lifecycle: every start of a
container makes a new network namespace, so every start is followed by a
plug; ``network-vif-plugged`` events are what Nova waits for on spawn.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

from nova.network import model
from oslo_log import log as logging

import nova_docker.privsep.netns
from nova_docker.network import plan
from nova_docker.network import record
from nova_docker.network import vifs

LOG = logging.getLogger(__name__)

VifLike = Mapping[str, Any]


class InstanceNetworks:
    """Plugs an instance's ports into whatever namespace its container has.

    :param target_of: the container's full ID and init PID for an instance,
        None when the container is not running (then there is no namespace
        to plug).  Asked once per plug: the privileged side checks on every
        call that the PID still belongs to that container.
    :param ports: where the ports plugged on this host are recorded.
    """

    def __init__(
        self,
        plugger: vifs.VifPlugger,
        target_of: Callable[[Any], tuple[str, int] | None],
        ports: record.PortRecord,
    ) -> None:
        self._plugger = plugger
        self._target_of = target_of
        self._ports = ports

    def plug(
        self,
        instance: Any,
        network_info: Sequence[VifLike] | None,
        known: tuple[str, int] | None = None,
    ) -> None:
        """Plug the ports into the namespace ``known`` (container ID and
        init PID) when the caller has it (a sandbox it just started), else
        into the one found."""
        if not network_info:
            return
        target = self._target(instance, known)
        if target is None:
            LOG.debug(
                "Container not running; ports are plugged when it starts",
                instance=instance,
            )
            return
        for vif in network_info:
            self._remember(instance, vif)
        self._plugger.plug(instance, network_info, target)

    def unplug(self, instance: Any, network_info: Sequence[VifLike] | None) -> None:
        if network_info:
            self._plugger.unplug(instance, network_info)
            for vif in network_info:
                self._ports.remove(instance.uuid, vif["id"])

    def release(self, instance: Any, network_info: Sequence[VifLike] | None) -> None:
        """Unplug every port of an instance that is going away, including
        ports this host plugged that Nova no longer lists."""
        try:
            self.unplug(instance, network_info)
        finally:
            listed = {vif["id"] for vif in network_info or ()}
            recorded = self._ports.ports(instance.uuid)
            left = {k: v for k, v in recorded.items() if k not in listed}
            self._plugger.unplug_leftovers(instance, left)
            self._ports.forget(instance.uuid)

    def attach(self, instance: Any, vif: VifLike) -> None:
        target = self._target(instance)
        if target is not None:
            self._remember(instance, vif)
            self._plugger.plug_one(instance, vif, target)

    def detach(self, instance: Any, vif: VifLike) -> None:
        self._plugger.unplug_one(instance, vif)
        self._ports.remove(instance.uuid, vif["id"])

    def _target(
        self, instance: Any, known: tuple[str, int] | None = None
    ) -> nova_docker.privsep.netns.NetnsTarget | None:
        """Pin the namespace to plug into, once: container ID and init PID."""
        found = known or self._target_of(instance)
        if not found:
            return None
        container_id, pid = found
        return nova_docker.privsep.netns.NetnsTarget(container_id, pid)

    def _remember(self, instance: Any, vif: VifLike) -> None:
        hybrid = bool((vif.get("details") or {}).get(model.VIF_DETAILS_OVS_HYBRID_PLUG))
        kind = record.HYBRID if hybrid else record.OVS
        self._ports.add(instance.uuid, vif["id"], kind)


def plug_events(network_info: Sequence[VifLike] | None) -> list[tuple[str, str]]:
    """The ``network-vif-plugged`` events to wait for: ports still down."""
    return [
        ("network-vif-plugged", vif["id"])
        for vif in network_info or ()
        if vif.get("active", True) is False
    ]


def nameservers(network_info: Sequence[VifLike] | None) -> tuple[str, ...]:
    return plan.build(network_info).nameservers if network_info else ()
