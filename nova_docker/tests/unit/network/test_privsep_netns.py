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

"""The ``_inner`` bodies of the netns entrypoints, with netlink mocked.

The functional tests run them against a real kernel; these pin the error
handling that is hard to provoke there, and the checks that a namespace
target is the container's, on a fake ``/proc``.
"""

from __future__ import annotations

import errno
import os
import pathlib
import socket
from collections.abc import Iterator
from unittest import mock

import pytest
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.rtnl.ifaddrmsg import IFA_F_NODAD

from nova_docker.privsep import netns

CID = "613d0c0c186339f6339b8283823f52ee769f6d6051e2f2911409ecdad5fd434e"
OTHER = "9f1e" + CID[4:]
PID = 42
#: /proc/<pid>/cgroup of a container under cgroup v1 and the cgroupfs driver.
CGROUP_V1 = "".join(
    f"{n}:{c}:/docker/{CID}\n"
    for n, c in enumerate(["cpu", "cpuacct", "cpuset", "memory", "pids"], 1)
)


class FakeProc:
    """A ``/proc`` tree of regular files: namespaces are told apart by inode,
    as the real ones are, and pidfds are /dev/null descriptors."""

    def __init__(self, root: pathlib.Path) -> None:
        self.root = root
        self.signal = mock.Mock(name="pidfd_send_signal", return_value=None)
        for who in ("self", "1"):
            self.namespace(who).parent.mkdir(parents=True)
            self.namespace(who).write_text(who)

    def namespace(self, who: object) -> pathlib.Path:
        return self.root / str(who) / "ns" / "net"

    def process(self, pid: int, cgroup: str = CGROUP_V1, netns: str = "") -> None:
        """A process in ``cgroup``; in the namespace of ``netns`` if named."""
        self.namespace(pid).parent.mkdir(parents=True)
        (self.root / str(pid) / "cgroup").write_text(cgroup)
        if netns:
            os.link(self.namespace(netns), self.namespace(pid))
        else:
            self.namespace(pid).write_text(str(pid))

    def pidfd_open(self, pid: int) -> int:
        if not (self.root / str(pid)).exists():
            raise ProcessLookupError(errno.ESRCH, "No such process")
        return os.open(os.devnull, os.O_RDONLY)


@pytest.fixture
def proc(tmp_path: pathlib.Path) -> Iterator[FakeProc]:
    fake = FakeProc(tmp_path / "proc")
    with (
        mock.patch.object(netns, "_PROC", str(fake.root)),
        mock.patch.object(netns.os, "pidfd_open", side_effect=fake.pidfd_open),
        mock.patch.object(netns.signal, "pidfd_send_signal", fake.signal),
    ):
        yield fake


@pytest.fixture
def ipr(proc: FakeProc) -> Iterator[mock.MagicMock]:
    proc.process(PID)
    fake = mock.MagicMock(name="IPRoute")
    fake.__enter__.return_value = fake
    fake.link_lookup.side_effect = lambda ifname: {
        "lo": [1],
        "eth0": [5],
        "tapx": [6],
    }.get(ifname, [])
    with mock.patch.object(netns, "IPRoute", return_value=fake):
        yield fake


def test_configure_link_sets_up_addresses_and_routes(ipr):
    netns._configure_link_inner(
        CID,
        PID,
        "eth0",
        "fa:16:3e:00:00:01",
        1450,
        ["10.0.0.5/24", "fd00::5/64"],
        [("0.0.0.0/0", "10.0.0.1"), ("192.168.0.0/16", "10.0.0.254")],
    )

    ipr.link.assert_any_call("set", index=1, state="up")
    ipr.link.assert_any_call("set", index=5, address="fa:16:3e:00:00:01", mtu=1450)
    ipr.addr.assert_any_call("add", index=5, address="10.0.0.5", prefixlen=24, flags=0)
    ipr.addr.assert_any_call(
        "add", index=5, address="fd00::5", prefixlen=64, flags=IFA_F_NODAD
    )
    ipr.route.assert_any_call(
        "replace", oif=5, family=socket.AF_INET, gateway="10.0.0.1"
    )
    ipr.route.assert_any_call(
        "replace",
        oif=5,
        family=socket.AF_INET,
        dst="192.168.0.0/16",
        gateway="10.0.0.254",
    )


def test_configure_link_keeps_addresses_that_exist(ipr):
    ipr.addr.side_effect = NetlinkError(errno.EEXIST)

    netns._configure_link_inner(
        CID, PID, "eth0", "fa:16:3e:00:00:01", None, ["10.0.0.5/24"], []
    )


def test_ipv6_refused_by_a_container_without_ipv6_says_so(ipr):
    ipr.addr.side_effect = NetlinkError(errno.EACCES)

    with pytest.raises(OSError, match="disable_ipv6=0"):
        netns._configure_link_inner(
            CID, PID, "eth0", "aa:bb:cc:dd:ee:ff", None, ["fd00::5/64"], []
        )


def test_configure_link_raises_other_netlink_errors(ipr):
    ipr.addr.side_effect = NetlinkError(errno.ENOBUFS)

    with pytest.raises(NetlinkError):
        netns._configure_link_inner(
            CID, PID, "eth0", "aa:bb:cc:dd:ee:ff", None, ["fd00::5/64"], []
        )


def test_configure_link_of_a_missing_interface_raises_enodev(ipr):
    with pytest.raises(OSError, match="eth7"):
        netns._configure_link_inner(CID, PID, "eth7", "aa:bb:cc:dd:ee:ff", None, [], [])


def test_the_netns_opened_is_the_pinned_processes(proc, ipr):
    opened = []
    netns.IPRoute.side_effect = lambda netns, flags: (
        opened.append(os.fstat(netns).st_ino) or ipr
    )

    netns._link_addresses_inner(CID, PID)

    assert opened == [proc.namespace(PID).stat().st_ino]
    proc.signal.assert_called_once_with(mock.ANY, 0)


def test_move_renames_in_the_same_message(ipr):
    ipr.link_lookup.side_effect = lambda ifname: [9]

    netns._move_to_netns_inner("nsabc", CID, PID, "eth1")

    ipr.link.assert_called_once_with("set", index=9, net_ns_fd=mock.ANY, ifname="eth1")


def test_delete_of_a_missing_link_is_a_no_op(ipr):
    netns._delete_link_inner("tapgone")

    ipr.link.assert_not_called()


def test_delete_tolerates_a_link_vanishing_meanwhile(ipr):
    ipr.link.side_effect = NetlinkError(errno.ENODEV)

    netns._delete_link_inner("tapx")


def test_bridge_port_needs_the_bridge(ipr):
    with pytest.raises(OSError, match="qbrmissing"):
        netns._add_bridge_port_inner("qbrmissing", "tapx")


@pytest.mark.parametrize(
    ("call", "args"),
    [
        (netns._delete_link_inner, ("eth0",)),
        (netns._create_veth_inner, ("eth0", "nsx", None, True)),
        (netns._create_veth_inner, ("tapx", "docker0", None, True)),
        (netns._move_to_netns_inner, ("eth0", CID, PID, "eth0")),
        (netns._add_bridge_port_inner, ("docker0", "tapx")),
    ],
)
def test_host_devices_that_are_not_ours_are_refused(ipr, call, args):
    with pytest.raises(ValueError, match="not a container VIF device"):
        call(*args)
    ipr.link.assert_not_called()


def test_create_veth_replaces_leftovers_and_can_turn_off_tx_checksum(ipr):
    ipr.link_lookup.side_effect = lambda ifname: {"tapx": [3], "nsx": [4]}[ifname]
    with mock.patch.object(netns, "IoctlEthtool") as ethtool:
        netns._create_veth_inner("tapx", "nsx", 1450, tx_checksum=False)

    assert ipr.link.call_args_list[:3] == [
        mock.call("del", index=3),
        mock.call("del", index=4),
        mock.call("add", ifname="tapx", kind="veth", peer="nsx"),
    ]
    ipr.link.assert_any_call("set", index=4, mtu=1450)
    ipr.link.assert_any_call("set", index=3, state="up")
    ethtool.assert_called_once_with("nsx")
    ethtool.return_value.set_offload_flag.assert_called_once_with("tx-checksumming", 0)


def test_create_veth_keeps_offload_for_the_kernel_datapath(ipr):
    ipr.link_lookup.side_effect = lambda ifname: [3]
    with mock.patch.object(netns, "IoctlEthtool") as ethtool:
        netns._create_veth_inner("tapx", "nsx", None, tx_checksum=True)

    ethtool.assert_not_called()
    assert not any("mtu" in c.kwargs for c in ipr.link.call_args_list)


# --- the namespace target ---------------------------------------------------


@pytest.mark.parametrize(
    "cgroup",
    [
        CGROUP_V1,
        f"0::/docker/{CID}\n",
        f"0::/system.slice/docker-{CID}.scope\n",
        f"1:name=systemd:/system.slice/docker-{CID}.scope\n4:memory:/\n",
        f"0::/docker/{OTHER}/docker/{CID}\n",
        f"0::/docker/{CID}/init.scope\n",
        f"0::/../docker/{CID}\n",
    ],
    ids=[
        "v1-cgroupfs",
        "v2-cgroupfs",
        "v2-systemd",
        "v1-systemd-one-hierarchy",
        "docker-in-docker",
        "container-sub-cgroup",
        "other-cgroup-namespace",
    ],
)
def test_cgroups_docker_makes_name_the_container(cgroup):
    assert netns._names_container(cgroup, CID)


@pytest.mark.parametrize(
    "cgroup",
    [
        "0::/user.slice/user-0.slice/session-1.scope\n",
        "0::/\n",
        f"0::/docker/{OTHER}\n",
        f"0::/docker/{CID[:12]}\n",
        f"0::/docker/{CID}x\n",
        f"0::/system.slice/docker-{CID}.scope.d\n",
        f"0::/system.slice/not-docker-{CID}.scope\n",
        f"4:memory:/ndt-{CID}\n",
    ],
    ids=[
        "host-session",
        "root",
        "another-container",
        "short-id",
        "id-with-suffix",
        "scope-lookalike",
        "prefixed-scope",
        "name-containing-id",
    ],
)
def test_other_cgroups_do_not(cgroup):
    assert not netns._names_container(cgroup, CID)


def refusal(call, *args) -> netns.NetnsRefused:
    with pytest.raises(netns.NetnsRefused) as info:
        call(*args)
    return info.value


@pytest.mark.parametrize("pid", [1, 0, -3])
def test_pid_1_and_below_are_refused_untouched(proc, pid):
    error = refusal(netns._link_addresses_inner, CID, pid)

    assert error.errno == errno.EPERM
    assert f"pid {pid} for container {CID}" in str(error)
    netns.os.pidfd_open.assert_not_called()


def test_the_daemons_own_pid_is_refused(proc):
    proc.process(os.getpid())

    error = refusal(netns._link_addresses_inner, CID, os.getpid())

    assert "privileged daemon" in str(error)
    netns.os.pidfd_open.assert_not_called()


@pytest.mark.parametrize("bad", [CID[:12], CID.upper(), f"../{CID}", "", None])
def test_only_a_full_container_id_is_accepted(proc, bad):
    proc.process(PID, cgroup=f"0::/docker/{bad}\n")

    error = refusal(netns._link_addresses_inner, bad, PID)

    assert error.errno == errno.EINVAL
    assert "not a full container ID" in str(error)


def test_a_pid_outside_the_container_is_refused_before_its_netns_opens(proc, ipr):
    proc.process(4343, cgroup="0::/user.slice/user-0.slice/session-1.scope\n")

    error = refusal(netns._link_addresses_inner, CID, 4343)

    assert error.errno == errno.EPERM
    assert f"pid 4343 for container {CID}" in str(error)
    assert "not in the container's cgroup" in str(error)
    netns.IPRoute.assert_not_called()
    proc.signal.assert_not_called()


def test_a_pid_of_another_container_is_refused(proc, ipr):
    proc.process(4343, cgroup=f"0::/docker/{OTHER}\n")

    assert refusal(netns._link_addresses_inner, CID, 4343).errno == errno.EPERM


def test_a_vanished_process_is_refused_as_gone(proc, ipr):
    error = refusal(netns._link_addresses_inner, CID, 4343)

    assert error.errno == errno.ESRCH
    assert "no such process" in str(error) and "pid 4343" in str(error)


def test_a_process_that_exits_while_its_netns_opens_is_refused(proc, ipr):
    # Its PID may already be another process's: what was opened is unproven.
    proc.signal.side_effect = ProcessLookupError(errno.ESRCH, "No such process")

    error = refusal(netns._link_addresses_inner, CID, PID)

    assert error.errno == errno.ESRCH
    netns.IPRoute.assert_not_called()


def test_a_live_process_of_another_user_is_accepted(proc, ipr):
    proc.signal.side_effect = PermissionError(errno.EPERM, "Operation not permitted")

    netns._link_addresses_inner(CID, PID)

    netns.IPRoute.assert_called_once()


@pytest.mark.parametrize("host", ["self", "1"], ids=["daemon", "pid-1"])
def test_a_container_in_the_hosts_netns_is_refused(proc, host):
    proc.process(4343, netns=host)

    error = refusal(netns._link_addresses_inner, CID, 4343)

    assert error.errno == errno.EPERM
    assert f"pid 4343 for container {CID}" in str(error)
    assert "network namespace is the host's" in str(error)


def test_an_unreadable_pid_1_netns_still_leaves_the_daemons_compared(proc, ipr):
    stat = os.stat

    def stat_but_pid_1(path, *args, **kwargs):
        if path == str(proc.namespace(1)):
            raise PermissionError(errno.EACCES, "Permission denied", path)
        return stat(path, *args, **kwargs)

    proc.process(4343, netns="self")
    with mock.patch.object(netns.os, "stat", side_effect=stat_but_pid_1):
        netns._link_addresses_inner(CID, PID)
        error = refusal(netns._link_addresses_inner, CID, 4343)

    assert "host's" in str(error)


ENTERING = {
    "link_addresses": lambda pid: netns._link_addresses_inner(CID, pid),
    "move_to_netns": lambda pid: netns._move_to_netns_inner("nsx", CID, pid, "eth0"),
    "configure_link": lambda pid: netns._configure_link_inner(
        CID, pid, "eth0", "fa:16:3e:00:00:01", None, ["10.0.0.5/24"], []
    ),
}


@pytest.mark.parametrize("name", ENTERING)
def test_every_body_that_enters_a_netns_checks_its_target_first(proc, ipr, name):
    proc.process(4343, cgroup="0::/init.scope\n")

    refusal(ENTERING[name], 4343)

    netns.IPRoute.assert_not_called()
    ipr.link.assert_not_called()


def test_refusals_leave_no_descriptor_open(proc, ipr):
    proc.process(4343, netns="self")
    before = set(os.listdir("/proc/self/fd"))

    refusal(netns._link_addresses_inner, CID, 4343)

    assert set(os.listdir("/proc/self/fd")) == before


def test_a_refusal_survives_privsep_as_the_same_error():
    error = netns._refusal(errno.EPERM, CID, 4343, "why")

    # What the daemon sends: the class by name and its args.
    rebuilt = type(error)(*error.args)

    assert isinstance(rebuilt, netns.NetnsRefused)
    assert (rebuilt.errno, str(rebuilt)) == (error.errno, str(error))
