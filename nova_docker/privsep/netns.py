"""Privileged netlink work on veth pairs and container network namespaces.

The container side of a VIF: a veth pair whose host end (``tap…``) os-vif
attaches to OVS or to a hybrid-plug bridge, and whose other end moves into
the network namespace of the container's init process as ``ethN``.

Entrypoints take plain types (privsep serialises arguments) and delegate to
``_inner`` helpers so tests can run the bodies without a privsep daemon.
Namespaces are addressed by PID through ``/proc/<pid>/ns/net``; nothing here
writes a file.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import os
import socket
from collections.abc import Iterator
from collections.abc import Sequence

from pyroute2 import IPRoute
from pyroute2.ethtool.ioctl import IoctlEthtool
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.rtnl.ifaddrmsg import IFA_F_NODAD

import nova_docker.privsep

#: (destination CIDR, nexthop or None), as the plan's routes travel.
RouteSpec = Sequence[str | None]
#: Host-side names these entrypoints may create, move or delete: Nova's tap
#: devices, our peers before they move, and os-vif's hybrid bridges.  Even a
#: subverted caller cannot take down the host's own interfaces through us.
_TAP, _PEER, _BRIDGE = ("tap",), ("ns",), ("qbr",)


def _require(name: str, prefixes: tuple[str, ...]) -> None:
    if not name.startswith(prefixes):
        raise ValueError(f"{name} is not a container VIF device ({prefixes})")


@contextlib.contextmanager
def _netns_fd(pid: int) -> Iterator[int]:
    """Hold the network namespace of ``pid`` open for the block."""
    fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        yield fd
    finally:
        os.close(fd)


@contextlib.contextmanager
def _ipr_in(pid: int) -> Iterator[IPRoute]:
    """An rtnetlink socket inside the network namespace of ``pid``."""
    with _netns_fd(pid) as fd, IPRoute(netns=fd, flags=0) as ipr:
        yield ipr


def _index(ipr: IPRoute, name: str) -> int | None:
    found = ipr.link_lookup(ifname=name)
    return found[0] if found else None


def _delete_if_exists(ipr: IPRoute, name: str) -> None:
    index = _index(ipr, name)
    if index is None:
        return
    try:
        ipr.link("del", index=index)
    except NetlinkError as exc:
        # The peer of a pair we just deleted vanishes with it.
        if exc.code != errno.ENODEV:
            raise


# --- host namespace ---------------------------------------------------------


def _create_veth_inner(
    host_dev: str, peer_dev: str, mtu: int | None, tx_checksum: bool
) -> None:
    _require(host_dev, _TAP)
    _require(peer_dev, _PEER)
    with IPRoute() as ipr:
        for stale in (host_dev, peer_dev):
            _delete_if_exists(ipr, stale)
        ipr.link("add", ifname=host_dev, kind="veth", peer=peer_dev)
        if mtu:
            for name in (host_dev, peer_dev):
                ipr.link("set", index=_index(ipr, name), mtu=mtu)
        ipr.link("set", index=_index(ipr, host_dev), state="up")
    if not tx_checksum:
        # Offload settings travel with the device into the container, so
        # set them while the peer is still reachable from here.
        ethtool = IoctlEthtool(peer_dev)
        try:
            ethtool.set_offload_flag("tx-checksumming", 0)
        finally:
            ethtool.close()


@nova_docker.privsep.nova_docker_privileged.entrypoint
def create_veth(
    host_dev: str, peer_dev: str, mtu: int | None, tx_checksum: bool
) -> None:
    """Create a veth pair, replacing any leftover devices of those names.

    ``tx_checksum=False`` turns off TX checksum offload on ``peer_dev``: the
    userspace (netdev) OVS datapath forwards frames with partial checksums
    unchanged, so TCP between containers fails without it.
    """
    _create_veth_inner(host_dev, peer_dev, mtu, tx_checksum)


def _delete_link_inner(dev: str) -> None:
    _require(dev, _TAP + _PEER)
    with IPRoute() as ipr:
        _delete_if_exists(ipr, dev)


@nova_docker.privsep.nova_docker_privileged.entrypoint
def delete_link(dev: str) -> None:
    """Delete a host link if it exists; a veth takes its peer with it."""
    _delete_link_inner(dev)


def _add_bridge_port_inner(bridge: str, dev: str) -> None:
    _require(bridge, _BRIDGE)
    _require(dev, _TAP)
    with IPRoute() as ipr:
        master, index = _index(ipr, bridge), _index(ipr, dev)
        if master is None or index is None:
            raise OSError(errno.ENODEV, f"no bridge {bridge} or link {dev}")
        ipr.link("set", index=index, master=master, state="up")


@nova_docker.privsep.nova_docker_privileged.entrypoint
def add_bridge_port(bridge: str, dev: str) -> None:
    """Enslave ``dev`` to the Linux bridge ``bridge`` (hybrid plug)."""
    _add_bridge_port_inner(bridge, dev)


def _move_to_netns_inner(dev: str, pid: int, ifname: str) -> None:
    _require(dev, _PEER)
    with _netns_fd(pid) as fd, IPRoute() as ipr:
        index = _index(ipr, dev)
        if index is None:
            raise OSError(errno.ENODEV, f"no link {dev}")
        # One message moves and renames, so ``ifname`` never exists in the
        # host namespace, where it may well be taken.
        ipr.link("set", index=index, net_ns_fd=fd, ifname=ifname)


@nova_docker.privsep.nova_docker_privileged.entrypoint
def move_to_netns(dev: str, pid: int, ifname: str) -> None:
    """Move host link ``dev`` into the netns of ``pid`` as ``ifname``."""
    _move_to_netns_inner(dev, pid, ifname)


# --- container namespace ----------------------------------------------------


def _link_addresses_inner(pid: int) -> dict[str, str]:
    with _ipr_in(pid) as ipr:
        return {
            link.get("ifname"): link.get("address") or "" for link in ipr.get_links()
        }


@nova_docker.privsep.nova_docker_privileged.entrypoint
def link_addresses(pid: int) -> dict[str, str]:
    """Map interface name → MAC address inside the netns of ``pid``."""
    return _link_addresses_inner(pid)


def _add_address(ipr: IPRoute, index: int, cidr: str) -> None:
    iface = ipaddress.ip_interface(cidr)
    # Neutron already made the address unique; skipping DAD makes IPv6
    # usable at once instead of after a second of "tentative".
    flags = IFA_F_NODAD if iface.version == 6 else 0
    try:
        ipr.addr(
            "add",
            index=index,
            address=str(iface.ip),
            prefixlen=iface.network.prefixlen,
            flags=flags,
        )
    except NetlinkError as exc:
        if exc.code == errno.EACCES and iface.version == 6:
            # What the kernel says when the device's disable_ipv6 is set,
            # as Docker does for containers it gives no network.
            raise OSError(
                errno.EACCES,
                "IPv6 is disabled in the container; create it with the "
                "sysctls net.ipv6.conf.{all,default}.disable_ipv6=0",
            ) from exc
        if exc.code != errno.EEXIST:
            raise


def _add_route(ipr: IPRoute, index: int, route: RouteSpec) -> None:
    dst, gateway = route
    net = ipaddress.ip_network(str(dst))
    family = socket.AF_INET6 if net.version == 6 else socket.AF_INET
    spec: dict[str, object] = {"oif": index, "family": family}
    if net.prefixlen:
        spec["dst"] = str(net)
    if gateway:
        spec["gateway"] = gateway
    ipr.route("replace", **spec)


def _configure_link_inner(
    pid: int,
    ifname: str,
    mac: str,
    mtu: int | None,
    addresses: Sequence[str],
    routes: Sequence[RouteSpec],
) -> None:
    with _ipr_in(pid) as ipr:
        lo = _index(ipr, "lo")
        if lo is not None:
            ipr.link("set", index=lo, state="up")
        index = _index(ipr, ifname)
        if index is None:
            raise OSError(errno.ENODEV, f"no link {ifname} in netns of {pid}")
        settings: dict[str, object] = {"address": mac}
        if mtu:
            settings["mtu"] = mtu
        ipr.link("set", index=index, **settings)
        ipr.link("set", index=index, state="up")
        for cidr in addresses:
            _add_address(ipr, index, cidr)
        for route in routes:
            _add_route(ipr, index, route)


@nova_docker.privsep.nova_docker_privileged.entrypoint
def configure_link(
    pid: int,
    ifname: str,
    mac: str,
    mtu: int | None,
    addresses: Sequence[str],
    routes: Sequence[RouteSpec],
) -> None:
    """Give ``ifname`` in the netns of ``pid`` its MAC, MTU, IPs and routes.

    ``addresses`` are ``ip/prefixlen`` strings, ``routes`` pairs of
    destination CIDR and nexthop (or None).  Idempotent: present addresses
    are kept and routes replaced.
    """
    _configure_link_inner(pid, ifname, mac, mtu, addresses, routes)
