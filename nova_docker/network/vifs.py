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

"""Plug Neutron VIFs into containers: the service the driver calls.

Each VIF becomes a veth pair.  The host end carries Nova's device name
(``tap…``) and is handed to os-vif: on the OVS bridge directly
(``VIFOpenVSwitch``) or on a per-VIF Linux bridge linked to OVS (``VIFBridge``,
hybrid plug).  The other end moves into the network namespace of the
container's init process as ``ethN`` and gets the port's MAC, MTU, fixed IPs
and routes (:mod:`nova_docker.network.plan` decides them).

That namespace is a :class:`~nova_docker.privsep.netns.NetnsTarget`, pinned
by the caller once per plug: the container's ID with its init PID.  Every
privileged call proves the PID is still that container's and refuses the
host's namespace, so a container that dies mid-plug fails the plug instead
of configuring whatever process took its PID.

A restarted container has a new namespace and its old veth pairs are gone;
plugging again rebuilds them.  Plugging what is plugged and unplugging what
is gone both succeed.  Every failure is a
:class:`~nova_docker.network.exception.VifPlugError`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any

import os_vif
from nova import exception as nova_exception
from nova.network import model
from nova.network import os_vif_util
from os_vif.objects import instance_info as osv_instance
from os_vif.objects import vif as osv_vif
from oslo_log import log as logging
from vif_plug_ovs import linux_net
from vif_plug_ovs.ovsdb import ovsdb_lib

import nova_docker.privsep.firewall
import nova_docker.privsep.netns
from nova_docker.network import exception
from nova_docker.network import plan
from nova_docker.network import record

if TYPE_CHECKING:
    from nova import objects

LOG = logging.getLogger(__name__)

_NETDEV = "netdev"
OsvifVif = osv_vif.VIFOpenVSwitch | osv_vif.VIFBridge


@contextlib.contextmanager
def _wrapped(action: str, vif_id: str) -> Iterator[None]:
    """Turn any failure inside the block into one :class:`VifPlugError`."""
    try:
        yield
    except exception.VifPlugError:
        raise
    except Exception as exc:
        reason = str(exc) or type(exc).__name__
        raise exception.VifPlugError(
            action=action, vif_id=vif_id, reason=reason
        ) from exc


def _ids(network_info: Iterable[Mapping[str, Any]]) -> str:
    return ", ".join(str(vif.get("id")) for vif in network_info)


def _hydrate(vif: Mapping[str, Any]) -> model.VIF:
    return vif if isinstance(vif, model.VIF) else model.VIF.hydrate(dict(vif))


def _link_addresses(target: nova_docker.privsep.netns.NetnsTarget) -> dict[str, str]:
    return nova_docker.privsep.netns.link_addresses(target.container_id, target.pid)


def _free_ifname(present: Iterable[str]) -> str:
    taken = set(present)
    index = 0
    while plan.ifname(index) in taken:
        index += 1
    return plan.ifname(index)


class VifPlugger:
    """Plugs and unplugs an instance's VIFs; holds options, does no I/O.

    :param datapath_type: OVS datapath used when Neutron's binding names
        none (``[docker] ovs_datapath_type``).
    :param ovsdb_config: returns os-vif's ``[os_vif_ovs]`` settings; called
        on first use, once ``os_vif.initialize()`` has registered them.
    :param metadata_route: give the container an on-link route to the
        metadata service (``[docker] metadata_route``).
    """

    def __init__(
        self,
        datapath_type: str = "system",
        ovsdb_config: Callable[[], Any] | None = None,
        metadata_route: bool = False,
    ) -> None:
        self._datapath_type = datapath_type
        self._ovsdb_config = ovsdb_config
        self._metadata_route = metadata_route
        self._switch: ovsdb_lib.BaseOVS | None = None

    def plug(
        self,
        instance: objects.Instance,
        network_info: Sequence[Mapping[str, Any]],
        target: nova_docker.privsep.netns.NetnsTarget,
    ) -> plan.NetworkPlan:
        """Plug every VIF into the container's netns as eth0, eth1, ….

        Returns the plan.
        """
        with _wrapped("plan", _ids(network_info)):
            vifs = [_hydrate(vif) for vif in network_info]
            net_plan = plan.build(vifs, self._metadata_route)
        for vif, link in zip(vifs, net_plan.links, strict=True):
            self._plug(instance, vif, link, target)
        return net_plan

    def plug_one(
        self,
        instance: objects.Instance,
        vif: Mapping[str, Any],
        target: nova_docker.privsep.netns.NetnsTarget,
        ifname: str | None = None,
    ) -> plan.LinkPlan:
        """Attach one VIF to a running container.

        Without ``ifname`` the VIF keeps the name it already has there, or
        takes the lowest free ``ethN``; it gets default routes only as eth0.
        """
        with _wrapped("plug", _ids([vif])):
            vif = _hydrate(vif)
            present = _link_addresses(target)
            mac = str(vif["address"]).lower()
            mine = [name for name, addr in present.items() if addr == mac]
            name = ifname or (mine[0] if mine else _free_ifname(present))
            first = name == plan.ifname(0)
            defaults = (4, 6) if first else ()
            metadata = (
                first
                and self._metadata_route
                and plan.serves_metadata(vif)
                and not plan.routes_metadata([vif])
            )
            link = plan.link_plan(vif, name, defaults, metadata)
        self._plug(instance, vif, link, target)
        return link

    def unplug(
        self, instance: objects.Instance, network_info: Sequence[Mapping[str, Any]]
    ) -> None:
        """Unplug every VIF; the container may be running, stopped or gone.

        Every VIF is tried; the first failure is raised afterwards.
        """
        errors: list[exception.VifPlugError] = []
        for vif in network_info:
            try:
                self.unplug_one(instance, vif)
            except exception.VifPlugError as exc:
                LOG.warning("%s", exc, instance=instance)
                errors.append(exc)
        if errors:
            raise errors[0]

    def unplug_one(self, instance: objects.Instance, vif: Mapping[str, Any]) -> None:
        """Remove every host device of one VIF, and with it ``ethN``.

        A VIF os-vif cannot describe (binding failed, unbound) still loses
        the devices named after its id, so destroy always cleans up.
        """
        with _wrapped("unplug", _ids([vif])):
            vif = _hydrate(vif)
            devices = plan.host_devices(vif["id"], vif.get("devname"))
            osvif = self._to_osvif(vif)
            if osvif is None or isinstance(osvif, osv_vif.VIFBridge):
                nova_docker.privsep.firewall.revoke_bridged(devices.bridge)
            nova_docker.privsep.netns.delete_link(devices.tap)
            if osvif is not None:
                info = os_vif_util.nova_to_osvif_instance(instance)
                os_vif.unplug(osvif, info)
        LOG.debug("Unplugged VIF %s", vif["id"], instance=instance)

    def unplug_leftovers(
        self, instance: objects.Instance, ports: Mapping[str, str]
    ) -> None:
        """Remove the host devices of ports Nova no longer lists.

        ``ports`` maps Neutron port IDs to the :mod:`.record` kind they were
        plugged as.  Only names are needed: the switch port and its device
        (a tap, or a hybrid plug's ``qvo``/``qvb`` pair) and a hybrid plug's
        bridge.  They are os-vif's devices, so os-vif's privileged helpers
        remove them; what is already gone is skipped.
        """
        for port_id, kind in ports.items():
            with _wrapped("unplug", port_id):
                devices = plan.host_devices(port_id)
                if kind == record.HYBRID:
                    self._ovs().delete_ovs_vif_port(None, devices.qvo)
                    nova_docker.privsep.firewall.revoke_bridged(devices.bridge)
                    linux_net.delete_bridge(devices.bridge, devices.qvb)
                else:
                    self._ovs().delete_ovs_vif_port(None, devices.tap, False)
                nova_docker.privsep.netns.delete_link(devices.tap)
            LOG.info(
                "Removed the host devices of port %s, which Nova no longer lists",
                port_id,
                instance=instance,
            )

    def _ovs(self) -> ovsdb_lib.BaseOVS:
        """The switch os-vif plugs into (``[os_vif_ovs]``), connected on
        first use."""
        if self._switch is None:
            if self._ovsdb_config is None:
                raise RuntimeError("VifPlugger was given no [os_vif_ovs] settings")
            os_vif.initialize()
            self._switch = ovsdb_lib.BaseOVS(self._ovsdb_config())
        return self._switch

    def _plug(
        self,
        instance: objects.Instance,
        vif: model.VIF,
        link: plan.LinkPlan,
        target: nova_docker.privsep.netns.NetnsTarget,
    ) -> None:
        with _wrapped("plug", link.vif_id):
            osvif = self._to_osvif(vif)
            if osvif is None:
                raise TypeError(f"VIF type {vif['type']} is not supported")
            info = os_vif_util.nova_to_osvif_instance(instance)
            present = _link_addresses(target)
            if present.get(link.ifname) != link.mac:
                self._create_link(osvif, info, link, target, present)
            nova_docker.privsep.netns.configure_link(
                target.container_id,
                target.pid,
                link.ifname,
                link.mac,
                link.mtu,
                [f"{a.ip}/{a.prefixlen}" for a in link.addresses],
                [(r.dst, r.gateway) for r in link.routes],
            )
            os_vif.plug(osvif, info)
            if isinstance(osvif, osv_vif.VIFBridge):
                nova_docker.privsep.netns.add_bridge_port(
                    osvif.bridge_name, link.host.tap
                )
                nova_docker.privsep.firewall.allow_bridged(osvif.bridge_name)
        LOG.debug("Plugged VIF %s as %s", vif["id"], link.ifname, instance=instance)

    def _create_link(
        self,
        osvif: OsvifVif,
        info: osv_instance.InstanceInfo,
        link: plan.LinkPlan,
        target: nova_docker.privsep.netns.NetnsTarget,
        present: Mapping[str, str],
    ) -> None:
        if link.ifname in present:
            raise ValueError(f"{link.ifname} in the container is another port's")
        if isinstance(osvif, osv_vif.VIFOpenVSwitch):
            # The old tap died with the old namespace; the userspace datapath
            # never reopens a device of the same name, so drop the port and
            # let os-vif add it again below.
            os_vif.unplug(osvif, info)
            # A switch port's name is unique on its switch, and os-vif's add
            # is a no-op when the name is on another bridge.  Where compute
            # hosts share one switch (a single-machine test bed), a host
            # that failed keeps its evacuated server's port on its own
            # bridge; Neutron has bound the port here, so that one goes.
            self._ovs().delete_ovs_vif_port(None, link.host.tap, False)
        nova_docker.privsep.netns.create_veth(
            link.host.tap,
            link.host.peer,
            link.mtu,
            osvif.port_profile.datapath_type != _NETDEV,
        )
        nova_docker.privsep.netns.move_to_netns(
            link.host.peer, target.container_id, target.pid, link.ifname
        )

    def _to_osvif(self, vif: model.VIF) -> OsvifVif | None:
        """The os-vif object for ``vif``; None when it is not an OVS one."""
        os_vif.initialize()
        try:
            osvif = os_vif_util.nova_to_osvif_vif(vif)
        except nova_exception.NovaException:
            # e.g. "Linux bridge VIF type is no longer supported"
            return None
        if not isinstance(osvif, osv_vif.VIFOpenVSwitch | osv_vif.VIFBridge):
            return None
        profile = osvif.port_profile
        if not profile.obj_attr_is_set("datapath_type") or not profile.datapath_type:
            profile.datapath_type = self._datapath_type
        if isinstance(osvif, osv_vif.VIFOpenVSwitch):
            # libvirt creates the OVS port of a VM; nothing does for us.
            profile.create_port = True
        return osvif
