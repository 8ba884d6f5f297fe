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

"""The host's side of a cloud's external network.

Each cloud's ``public`` network is a flat provider network on its external
bridge ``ndae<tag>``; the bridge's kernel tap carries the host's address in
that range, so the host reaches floating IPs directly.  The ranges are
DevStack's ``172.24.4.0/24`` for the first cloud and the next free /24 for
each further one (two clouds run at once: the demo and the end-to-end one),
with the tenant network ``10.0.<n>.0/24`` alongside.  A cloud keeps its
index in its state dir, so its addresses do not move between ``up``\\ s.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import shutil
import socket
import subprocess

from nova_docker_aio import host
from nova_docker_aio.host import HostError
from nova_docker_aio.layout import Layout

MAX_CLOUDS = 50


@dataclasses.dataclass(frozen=True)
class Ranges:
    """The address plan of one cloud (pure)."""

    index: int

    @property
    def public(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(f"172.24.{4 + self.index}.0/24")

    @property
    def host_address(self) -> str:
        """The host's address on the external bridge: the subnet gateway."""
        return str(self.public.network_address + 1)

    @property
    def private(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(f"10.0.{self.index}.0/24")

    @property
    def private6(self) -> ipaddress.IPv6Network:
        return ipaddress.IPv6Network(f"fdd0:{self.index:x}::/64")


def recorded(layout: Layout) -> int | None:
    """The index this cloud keeps, if it has one yet."""
    try:
        return int(layout.network_index.read_text())
    except (OSError, ValueError):
        return None


def ranges(layout: Layout) -> Ranges:
    """This cloud's ranges, once :func:`choose` has recorded them."""
    index = recorded(layout)
    if index is None:
        raise HostError(f"{layout.root} has no address ranges yet")
    return Ranges(index)


def _host_routes() -> list[tuple[ipaddress.IPv4Network, str]]:
    """(destination, device) of every IPv4 route in the main table."""
    from pyroute2 import IPRoute  # noqa: PLC0415 - only where it runs

    found = []
    with IPRoute() as ipr:
        names = {
            link["index"]: link.get_attr("IFLA_IFNAME") for link in ipr.get_links()
        }
        for route in ipr.get_routes(family=socket.AF_INET, table=254):
            dst = route.get_attr("RTA_DST")
            if dst is None:
                continue
            net = ipaddress.IPv4Network(f"{dst}/{route['dst_len']}", strict=False)
            found.append((net, names.get(route.get_attr("RTA_OIF"), "")))
    return found


def _collides(ranges: Ranges, layout: Layout) -> str | None:
    ours = layout.bridge("ext")
    for net, device in _host_routes():
        if device != ours and net.overlaps(ranges.public):
            return f"{net} on {device or '?'}"
    return None


def choose(layout: Layout, taken: set[int]) -> Ranges:
    """This cloud's ranges: the recorded ones, or the first free ones, given
    the indices ``taken`` by the other clouds on the shared switch."""
    index = recorded(layout)
    if index is not None:
        found = Ranges(index)
        clash = _collides(found, layout)
        if clash or index in taken:
            raise HostError(
                f"this cloud's external range {found.public} is now used by "
                f"{clash or 'another cloud'}; free it, or use another --state-dir"
            )
        return found
    for index in range(MAX_CLOUDS):
        found = Ranges(index)
        if index not in taken and not _collides(found, layout):
            layout.network_index.write_text(f"{index}\n")
            return found
    raise HostError("no free /24 for an external network in 172.24.0.0/16")


def configure_host_side(layout: Layout, ranges: Ranges) -> None:
    """The host's address on the external bridge's tap, link up."""
    from pyroute2 import IPRoute  # noqa: PLC0415

    name = layout.bridge("ext")
    with IPRoute() as ipr:
        (index,) = ipr.link_lookup(ifname=name)
        present = {
            a.get_attr("IFA_ADDRESS") for a in ipr.get_addr(index=index, family=2)
        }
        if ranges.host_address not in present:
            ipr.addr(
                "add",
                index=index,
                address=ranges.host_address,
                prefixlen=ranges.public.prefixlen,
            )
        ipr.link("set", index=index, state="up")


def ensure_installed() -> None:
    """The firewall tools :func:`guard_host` needs (Debian's docker.io
    brings them, a bare machine may not have them yet)."""
    if not all(shutil.which(tool) for tool in FIREWALLS):
        host.apt_install(("iptables",), why="the host's guard on the public network")


def guard_chain(layout: Layout) -> str:
    """The name of this cloud's input filter chain (pure)."""
    return f"NDA-IN-{layout.tag}"


#: Both address families: the external bridge has an IPv6 link-local
#: address even where the public network is IPv4 only.
FIREWALLS = ("iptables", "ip6tables")


def _table(tool: str, *args: str, check: bool = True) -> bool:
    result = subprocess.run(
        [tool, "-w", "10", *args], capture_output=True, text=True, check=False
    )
    if check and result.returncode != 0:
        raise HostError(f"{tool} {' '.join(args)}: {result.stderr.strip()}")
    return result.returncode == 0


def guard_host(layout: Layout) -> None:
    """Let nothing from the public network reach the host but replies.

    Tenant traffic leaves a router onto the public network, and the host
    has an address there (the subnet's gateway, so it can reach floating
    IPs).  Without this, a server reaches every host service bound to
    0.0.0.0, on that address and, routed by the host, on its others.  What
    the cloud needs from that network is only the replies to what the
    host starts (the floating-IP path), so new connections arriving on the
    external bridge are dropped, whatever their destination address.
    Idempotent: ``up`` twice leaves one jump and one chain.
    """
    chain, bridge = guard_chain(layout), layout.bridge("ext")
    for tool in FIREWALLS:
        if not _table(tool, "-n", "-L", chain, check=False):
            _table(tool, "-N", chain)
        _table(tool, "-F", chain)
        _table(
            tool, "-A", chain,
            "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT",
        )  # fmt: skip
        _table(tool, "-A", chain, "-j", "DROP")
        jump = ("INPUT", "-i", bridge, "-j", chain)
        if not _table(tool, "-C", *jump, check=False):
            _table(tool, "-I", *jump)


def unguard_host(layout: Layout) -> None:
    """Remove this cloud's chain and its jump (idempotent)."""
    chain, bridge = guard_chain(layout), layout.bridge("ext")
    for tool in FIREWALLS:
        while _table(tool, "-D", "INPUT", "-i", bridge, "-j", chain, check=False):
            pass
        _table(tool, "-F", chain, check=False)
        _table(tool, "-X", chain, check=False)
