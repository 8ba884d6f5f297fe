"""The ``_inner`` bodies of the netns entrypoints, with netlink mocked.

The functional tests run them against a real kernel; these pin the error
handling that is hard to provoke there.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterator
from unittest import mock

import pytest
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.rtnl.ifaddrmsg import IFA_F_NODAD

from nova_docker.privsep import netns


@pytest.fixture
def ipr() -> Iterator[mock.MagicMock]:
    fake = mock.MagicMock(name="IPRoute")
    fake.__enter__.return_value = fake
    fake.link_lookup.side_effect = lambda ifname: {
        "lo": [1],
        "eth0": [5],
        "tapx": [6],
    }.get(ifname, [])
    with (
        mock.patch.object(netns, "IPRoute", return_value=fake),
        mock.patch.object(netns.os, "open", return_value=99),
        mock.patch.object(netns.os, "close"),
    ):
        yield fake


def test_configure_link_sets_up_addresses_and_routes(ipr):
    netns._configure_link_inner(
        42,
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
        42, "eth0", "fa:16:3e:00:00:01", None, ["10.0.0.5/24"], []
    )


def test_ipv6_refused_by_a_container_without_ipv6_says_so(ipr):
    ipr.addr.side_effect = NetlinkError(errno.EACCES)

    with pytest.raises(OSError, match="disable_ipv6=0"):
        netns._configure_link_inner(
            42, "eth0", "aa:bb:cc:dd:ee:ff", None, ["fd00::5/64"], []
        )


def test_configure_link_raises_other_netlink_errors(ipr):
    ipr.addr.side_effect = NetlinkError(errno.ENOBUFS)

    with pytest.raises(NetlinkError):
        netns._configure_link_inner(
            42, "eth0", "aa:bb:cc:dd:ee:ff", None, ["fd00::5/64"], []
        )


def test_configure_link_of_a_missing_interface_raises_enodev(ipr):
    with pytest.raises(OSError, match="eth7"):
        netns._configure_link_inner(42, "eth7", "aa:bb:cc:dd:ee:ff", None, [], [])


def test_netns_is_opened_by_pid(ipr):
    netns._link_addresses_inner(42)

    netns.os.open.assert_called_once_with(
        "/proc/42/ns/net", netns.os.O_RDONLY | netns.os.O_CLOEXEC
    )
    netns.IPRoute.assert_called_once_with(netns=99, flags=0)


def test_move_renames_in_the_same_message(ipr):
    ipr.link_lookup.side_effect = lambda ifname: [9]

    netns._move_to_netns_inner("nsabc", 42, "eth1")

    ipr.link.assert_called_once_with("set", index=9, net_ns_fd=99, ifname="eth1")


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
        (netns._move_to_netns_inner, ("eth0", 42, "eth0")),
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
