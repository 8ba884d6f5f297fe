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

"""Nova ``network_info`` → a plain, typed plan of the container's links.

Pure: no I/O, no CONF.  Everything the privileged helpers need arrives here
as strings and ints, so the privsep boundary only ever sees plain types and
the rules (one default route per family, names, MTU, DNS) are unit-testable
without a kernel.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

from nova.network import model

#: Linux's limit is 15; Nova cuts host device names at 14 (``NIC_NAME_LEN``).
_NAME_LEN = model.NIC_NAME_LEN
#: How many of the VIF id's characters Nova's device names keep.
_ID_CHARS = 11
_DEFAULT_DST = {4: "0.0.0.0/0", 6: "::/0"}
#: The metadata service's address, as guests (cloud-init) ask for it.
METADATA_DST = "169.254.169.254/32"
_METADATA_IP = ipaddress.ip_address("169.254.169.254")

VifLike = Mapping[str, Any]


@dataclasses.dataclass(frozen=True)
class Address:
    """One fixed IP of a port, as the container interface carries it."""

    #: The address itself, e.g. ``10.0.0.5`` or ``fd00::5``.
    ip: str
    #: The subnet's prefix length.
    prefixlen: int
    #: 4 or 6.
    version: int


@dataclasses.dataclass(frozen=True)
class Route:
    """A route in the container: a destination CIDR and an optional nexthop."""

    #: Destination in CIDR form; ``0.0.0.0/0`` or ``::/0`` for the default.
    dst: str
    #: Nexthop address; None for an on-link route.
    gateway: str | None
    #: 4 or 6.
    version: int

    @property
    def is_default(self) -> bool:
        return self.dst == _DEFAULT_DST[self.version]


@dataclasses.dataclass(frozen=True)
class HostDevices:
    """Host-side device names of one VIF, following Nova's conventions."""

    #: Host end of the container's veth pair (Nova's ``devname``, ``tap…``).
    tap: str
    #: Temporary name of the container end before it is renamed to ``ethN``.
    peer: str
    #: Hybrid plug: the per-VIF Linux bridge (``qbr…``).
    bridge: str
    #: Hybrid plug: the veth pair linking ``qbr`` to the OVS bridge.
    qvb: str
    qvo: str


@dataclasses.dataclass(frozen=True)
class LinkPlan:
    """Everything needed to give one port to a container as ``ethN``."""

    #: Neutron port id (the VIF id).
    vif_id: str
    #: Interface name inside the container (``eth0``, ``eth1``, …).
    ifname: str
    #: The port's MAC address, lower case.
    mac: str
    #: The network's MTU; None leaves the kernel default.
    mtu: int | None
    addresses: tuple[Address, ...]
    routes: tuple[Route, ...]
    host: HostDevices


@dataclasses.dataclass(frozen=True)
class NetworkPlan:
    """The links of a container plus the DNS servers its subnets name."""

    links: tuple[LinkPlan, ...]
    nameservers: tuple[str, ...]


def host_devices(vif_id: str, devname: str | None = None) -> HostDevices:
    """Name the host devices of a VIF as Nova and os-vif do.

    ``tap`` is Nova's ``devname`` when Neutron gave one (it is ``tap`` plus
    the first 11 characters of the port id); ``qbr``/``qvb``/``qvo`` are
    os-vif's hybrid-plug names.  ``peer`` keeps the 2016 driver's ``ns``
    prefix so leftovers from an interrupted plug are recognisable.
    """
    short = vif_id[:_ID_CHARS]
    return HostDevices(
        tap=devname or ("tap" + short)[:_NAME_LEN],
        peer=("ns" + short)[:_NAME_LEN],
        bridge=("qbr" + vif_id)[:_NAME_LEN],
        qvb=("qvb" + vif_id)[:_NAME_LEN],
        qvo=("qvo" + vif_id)[:_NAME_LEN],
    )


def ifname(index: int) -> str:
    """The container interface name of the VIF at ``index``."""
    return f"eth{index}"


def _addresses(subnet: VifLike) -> list[Address]:
    net = ipaddress.ip_network(subnet["cidr"], strict=False)
    return [
        Address(ip=ip["address"], prefixlen=net.prefixlen, version=net.version)
        for ip in subnet.get("ips") or ()
    ]


def _gateway(subnet: VifLike) -> str | None:
    gateway = subnet.get("gateway") or {}
    return gateway.get("address") or None


def _host_routes(subnet: VifLike) -> list[Route]:
    routes = []
    for route in subnet.get("routes") or ():
        dst = ipaddress.ip_network(route["cidr"], strict=False)
        nexthop = (route.get("gateway") or {}).get("address") or None
        routes.append(Route(dst=str(dst), gateway=nexthop, version=dst.version))
    return routes


def _subnets(vif: VifLike) -> list[VifLike]:
    network = vif.get("network") or {}
    return [s for s in network.get("subnets") or () if s.get("cidr")]


def _mtu(vif: VifLike) -> int | None:
    meta = (vif.get("network") or {}).get("meta") or {}
    mtu = meta.get("mtu")
    return int(mtu) if mtu else None


def serves_metadata(vif: VifLike) -> bool:
    """Whether Neutron's DHCP would route the metadata address over this
    VIF: it has an IPv4 subnet with DHCP enabled.  ML2/OVN's DHCP gives
    such a subnet's guests a route to 169.254.169.254 via the network's
    metadata port, whose namespace on every chassis holds that address."""
    return any(
        ipaddress.ip_network(s["cidr"], strict=False).version == 4
        and (s.get("meta") or {}).get("enable_dhcp")
        for s in _subnets(vif)
    )


def routes_metadata(vifs: Iterable[VifLike]) -> bool:
    """Whether a subnet's own host routes already lead to the metadata
    address (an operator's route wins over the one the driver adds)."""
    return any(
        not route.is_default
        and route.version == 4
        and _METADATA_IP in ipaddress.ip_network(route.dst)
        for vif in vifs
        for subnet in _subnets(vif)
        for route in _host_routes(subnet)
    )


def link_plan(
    vif: VifLike, name: str, default_families: Iterable[int], metadata: bool = False
) -> LinkPlan:
    """Plan one VIF as interface ``name``.

    ``default_families`` says for which IP versions this link carries the
    default route (its subnet's gateway); any other default, including a
    ``0.0.0.0/0`` host route, is dropped so the container has one per family.
    ``metadata`` adds an on-link route to the metadata address.
    """
    families = set(default_families)
    addresses: list[Address] = []
    routes: list[Route] = []
    for subnet in _subnets(vif):
        addresses.extend(_addresses(subnet))
        gateway = _gateway(subnet)
        version = ipaddress.ip_network(subnet["cidr"], strict=False).version
        if gateway and version in families:
            routes.append(Route(_DEFAULT_DST[version], gateway, version))
            families.discard(version)
        routes.extend(r for r in _host_routes(subnet) if not r.is_default)
    if metadata:
        routes.append(Route(METADATA_DST, None, 4))
    return LinkPlan(
        vif_id=vif["id"],
        ifname=name,
        mac=str(vif["address"]).lower(),
        mtu=_mtu(vif),
        addresses=tuple(addresses),
        routes=tuple(routes),
        host=host_devices(vif["id"], vif.get("devname")),
    )


def _gateway_families(vif: VifLike) -> set[int]:
    return {
        ipaddress.ip_network(s["cidr"], strict=False).version
        for s in _subnets(vif)
        if _gateway(s)
    }


def _nameservers(network_info: Sequence[VifLike]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for vif in network_info:
        for subnet in _subnets(vif):
            for dns in subnet.get("dns") or ():
                seen.setdefault(dns["address"], None)
    return tuple(seen)


def build(network_info: Sequence[VifLike], metadata_route: bool = False) -> NetworkPlan:
    """Plan every VIF of an instance, in ``network_info`` order.

    The VIF at position N becomes ``ethN``.  For each IP version, the first
    VIF whose subnet has a gateway gets the only default route of that
    family; every subnet's host routes are kept.  With ``metadata_route``,
    the first VIF that :func:`serves_metadata` also gets an on-link route
    to it, unless a host route already leads there.  Nameservers are all
    subnets' DNS servers, first seen first.
    """
    unclaimed = {4, 6}
    wants_metadata = metadata_route and not routes_metadata(network_info)
    links = []
    for index, vif in enumerate(network_info):
        claims = unclaimed & _gateway_families(vif)
        unclaimed -= claims
        metadata = wants_metadata and serves_metadata(vif)
        wants_metadata = wants_metadata and not metadata
        links.append(link_plan(vif, ifname(index), claims, metadata))
    return NetworkPlan(
        links=tuple(links),
        nameservers=_nameservers(network_info),
    )
