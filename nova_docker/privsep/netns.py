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

"""Privileged netlink work on veth pairs and container network namespaces.

The container side of a VIF: a veth pair whose host end (``tap…``) os-vif
attaches to OVS or to a hybrid-plug bridge, and whose other end moves into
the network namespace of the container's init process as ``ethN``.

Entrypoints take plain types (privsep serialises arguments) and delegate to
``_inner`` helpers so tests can run the bodies without a privsep daemon.
Nothing here writes a file.

A container's namespace is named by the container's full ID and its init
PID, as the engine reported them when the caller pinned the target.  A PID
alone proves nothing by the time we use it: the container may have died and
a host process taken the number, and the host's namespace must never receive
a veth, an address or a route.  So every entrypoint that enters a namespace
proves, here in the daemon, that the PID is a live process of that container
(its cgroup names the ID) while it holds a pidfd, opens the namespace, checks
the pidfd's process is still there (so the PID was not reused meanwhile), and
refuses a namespace that is the daemon's own or PID 1's.  Any doubt raises
:class:`NetnsRefused` before anything is changed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import ipaddress
import os
import re
import signal
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


class NetnsRefused(OSError):
    """A namespace target failed its checks; nothing was changed.

    ``errno`` is ESRCH when the process is gone, EPERM when the PID or its
    namespace is not the container's, EINVAL for a malformed container ID.
    Built from ``(errno, message)`` alone, so privsep can rebuild it on the
    caller's side.
    """


@dataclasses.dataclass(frozen=True)
class NetnsTarget:
    """A container's network namespace, pinned once per plug by the caller.

    The container is named by its full ID, not by an instance: later a
    per-instance sandbox container will own the namespace.  Entrypoints take
    the two fields as plain arguments and verify them on every call.
    """

    #: Docker's 64-hex container ID.
    container_id: str
    #: The container's init PID, as the engine reported it.
    pid: int


#: Where process facts are read; tests point it at a fake tree.
_PROC = "/proc"
_CONTAINER_ID = re.compile(r"[0-9a-f]{64}")


def _refusal(code: int, container_id: str, pid: int, why: str) -> NetnsRefused:
    return NetnsRefused(
        code,
        f"refused the network namespace of pid {pid} for container "
        f"{container_id}: {why}",
    )


def _gone(container_id: str, pid: int) -> NetnsRefused:
    return _refusal(
        errno.ESRCH,
        container_id,
        pid,
        "no such process (the container stopped or was removed)",
    )


def _check_target(container_id: str, pid: int) -> None:
    """Refuse what can never be a container's init, before touching it."""
    if not isinstance(container_id, str) or not _CONTAINER_ID.fullmatch(container_id):
        raise _refusal(errno.EINVAL, container_id, pid, "not a full container ID")
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 1:
        raise _refusal(
            errno.EPERM, container_id, pid, "pid 1 (the host's init) or no process"
        )
    if pid == os.getpid():
        raise _refusal(errno.EPERM, container_id, pid, "that is this privileged daemon")


def _names_container(cgroups: str, container_id: str) -> bool:
    """Whether a ``/proc/<pid>/cgroup`` text places the process in the container.

    Docker's cgroupfs driver makes ``…/docker/<id>`` and its systemd driver
    ``…/docker-<id>.scope``, on cgroup v1 (a line per hierarchy) and v2 (one
    ``0::`` line) alike, possibly nested (Docker in Docker, a container's own
    sub-cgroups).  A whole path component must match, so another ID sharing
    a prefix, or a name merely containing the ID, does not.
    """
    wanted = {container_id, f"docker-{container_id}.scope"}
    return any(
        wanted.intersection(line.split(":", 2)[-1].split("/"))
        for line in cgroups.splitlines()
    )


def _check_member(container_id: str, pid: int) -> None:
    try:
        with open(f"{_PROC}/{pid}/cgroup", encoding="utf-8") as f:
            cgroups = f.read()
    except (FileNotFoundError, ProcessLookupError) as exc:
        raise _gone(container_id, pid) from exc
    if not _names_container(cgroups, container_id):
        raise _refusal(
            errno.EPERM,
            container_id,
            pid,
            "the process is not in the container's cgroup (a reused PID, a "
            "host process or another container's)",
        )


@contextlib.contextmanager
def _pidfd(container_id: str, pid: int) -> Iterator[int]:
    """Pin the process now called ``pid``: its number is not reused while it
    has not been reaped, and the pidfd tells whether it has."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError as exc:
        raise _gone(container_id, pid) from exc
    try:
        yield pidfd
    finally:
        os.close(pidfd)


def _check_alive(pidfd: int, container_id: str, pid: int) -> None:
    """Prove the pinned process still holds ``pid``, so everything read
    through ``/proc/<pid>`` since the pidfd was opened was its."""
    try:
        signal.pidfd_send_signal(pidfd, 0)
    except ProcessLookupError as exc:
        raise _gone(container_id, pid) from exc
    except PermissionError:
        # Only a live process refuses a signal: one of another user (a
        # USER image, userns-remap), as we hold no CAP_KILL.
        pass


def _open_netns(container_id: str, pid: int) -> int:
    try:
        return os.open(f"{_PROC}/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    except (FileNotFoundError, ProcessLookupError) as exc:
        raise _gone(container_id, pid) from exc


def _host_namespaces() -> set[tuple[int, int]]:
    """This daemon's network namespace and, when readable, PID 1's."""
    own = os.stat(f"{_PROC}/self/ns/net")
    found = {(own.st_dev, own.st_ino)}
    try:
        init = os.stat(f"{_PROC}/1/ns/net")
    except PermissionError:
        # PID 1 may be undumpable even to root (a VM's own init); ours is
        # always readable, so the host's namespace is still compared.
        return found
    found.add((init.st_dev, init.st_ino))
    return found


def _check_not_host(fd: int, container_id: str, pid: int) -> None:
    info = os.fstat(fd)
    if (info.st_dev, info.st_ino) in _host_namespaces():
        raise _refusal(
            errno.EPERM,
            container_id,
            pid,
            "its network namespace is the host's (this daemon's or PID 1's)",
        )


@contextlib.contextmanager
def _netns_fd(container_id: str, pid: int) -> Iterator[int]:
    """Hold open the network namespace of the container's init ``pid``.

    Before: the PID is plausible and, while pinned by a pidfd, in the
    container's cgroup.  After opening: the pinned process is still alive
    (so the fd is provably its namespace) and that namespace is not the
    host's.
    """
    _check_target(container_id, pid)
    with _pidfd(container_id, pid) as pidfd:
        _check_member(container_id, pid)
        fd = _open_netns(container_id, pid)
        try:
            _check_alive(pidfd, container_id, pid)
            _check_not_host(fd, container_id, pid)
            yield fd
        finally:
            os.close(fd)


@contextlib.contextmanager
def _ipr_in(container_id: str, pid: int) -> Iterator[IPRoute]:
    """An rtnetlink socket inside the container's network namespace."""
    with _netns_fd(container_id, pid) as fd, IPRoute(netns=fd, flags=0) as ipr:
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


def _move_to_netns_inner(dev: str, container_id: str, pid: int, ifname: str) -> None:
    _require(dev, _PEER)
    with _netns_fd(container_id, pid) as fd, IPRoute() as ipr:
        index = _index(ipr, dev)
        if index is None:
            raise OSError(errno.ENODEV, f"no link {dev}")
        # One message moves and renames, so ``ifname`` never exists in the
        # host namespace, where it may well be taken.
        ipr.link("set", index=index, net_ns_fd=fd, ifname=ifname)


@nova_docker.privsep.nova_docker_privileged.entrypoint
def move_to_netns(dev: str, container_id: str, pid: int, ifname: str) -> None:
    """Move host link ``dev`` into the netns of the container's init ``pid``
    as ``ifname``; :class:`NetnsRefused` unless it is that container's."""
    _move_to_netns_inner(dev, container_id, pid, ifname)


# --- container namespace ----------------------------------------------------


def _link_addresses_inner(container_id: str, pid: int) -> dict[str, str]:
    with _ipr_in(container_id, pid) as ipr:
        return {
            link.get("ifname"): link.get("address") or "" for link in ipr.get_links()
        }


@nova_docker.privsep.nova_docker_privileged.entrypoint
def link_addresses(container_id: str, pid: int) -> dict[str, str]:
    """Map interface name → MAC address inside the container's netns."""
    return _link_addresses_inner(container_id, pid)


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
    container_id: str,
    pid: int,
    ifname: str,
    mac: str,
    mtu: int | None,
    addresses: Sequence[str],
    routes: Sequence[RouteSpec],
) -> None:
    with _ipr_in(container_id, pid) as ipr:
        lo = _index(ipr, "lo")
        if lo is not None:
            ipr.link("set", index=lo, state="up")
        index = _index(ipr, ifname)
        if index is None:
            raise OSError(
                errno.ENODEV,
                f"no link {ifname} in the netns of pid {pid} "
                f"of container {container_id}",
            )
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
    container_id: str,
    pid: int,
    ifname: str,
    mac: str,
    mtu: int | None,
    addresses: Sequence[str],
    routes: Sequence[RouteSpec],
) -> None:
    """Give ``ifname`` in the netns of the container's init ``pid`` its MAC,
    MTU, IPs and routes.

    ``addresses`` are ``ip/prefixlen`` strings, ``routes`` pairs of
    destination CIDR and nexthop (or None).  Idempotent: present addresses
    are kept and routes replaced.
    """
    _configure_link_inner(container_id, pid, ifname, mac, mtu, addresses, routes)
