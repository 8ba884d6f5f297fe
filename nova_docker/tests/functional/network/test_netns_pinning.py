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

"""A plug reaches only the namespace of the container it names, on a real
kernel: a PID that is a host process, PID 1, this process, another
container's init, a dead container's (gone or reused) or a container sharing
the host's namespace is refused before the host is touched.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import os
import subprocess
from collections.abc import Iterator

import pytest
from pyroute2 import IPRoute

import nova_docker.privsep.netns
from nova_docker.network import exception
from nova_docker.network import vifs
from nova_docker.tests.functional.network import support
from nova_docker.tests.functional.network.test_plug import SUBNET4
from nova_docker.tests.functional.network.test_plug import SUBNET6
from nova_docker.tests.functional.network.test_plug import host_links
from nova_docker.tests.functional.network.test_plug import leftovers
from nova_docker.tests.functional.network.test_plug import make_instance
from nova_docker.tests.functional.network.test_plug import make_vif

NetnsRefused = nova_docker.privsep.netns.NetnsRefused
# Every test here calls privileged entrypoints, some without a plug (and so
# without the ``osvif`` fixture): in this root process, never via sudo.
pytestmark = pytest.mark.usefixtures("in_process_privsep")
TEST_NETS = (ipaddress.ip_network(SUBNET4), ipaddress.ip_network(SUBNET6))


@contextlib.contextmanager
def host_process(pid: int | None = None) -> Iterator[subprocess.Popen]:
    """A ``sleep`` in the host's namespaces, with ``pid`` if asked (skips
    when the kernel will not hand that number out)."""
    sleeper = _sleep_as(pid) if pid else subprocess.Popen(["sleep", "300"])
    try:
        yield sleeper
    finally:
        sleeper.kill()
        sleeper.wait()


def _sleep_as(pid: int) -> subprocess.Popen:
    """Reuse a freed PID as root can: set the last PID handed out just
    below it and fork, retrying while other forks race us."""
    for _ in range(50):
        try:
            with open("/proc/sys/kernel/ns_last_pid", "w") as last:
                last.write(str(pid - 1))
        except OSError as exc:
            pytest.skip(f"cannot choose the next PID: {exc}")
        sleeper = subprocess.Popen(["sleep", "300"])
        if sleeper.pid == pid:
            return sleeper
        sleeper.kill()
        sleeper.wait()
    pytest.skip(f"could not get PID {pid} back for a host process")


def _host_networking() -> tuple[set[str], set[str]]:
    """The host's addresses and route destinations/gateways, as strings."""
    with IPRoute() as ipr:
        addresses = {a.get_attr("IFA_ADDRESS") for a in ipr.get_addr()}
        routes = {
            str(r.get_attr(attr))
            for r in ipr.get_routes()
            for attr in ("RTA_DST", "RTA_GATEWAY")
            if r.get_attr(attr)
        }
    return addresses, routes


def assert_host_untouched(vif, ovs, links_before: set[str]) -> None:
    """No device, address or route of the test network reached the host."""
    assert leftovers(vif, ovs) == []
    assert not {"eth0", "ndtmv0"} & (host_links() - links_before)
    addresses, routes = _host_networking()
    ours = [
        found
        for found in addresses | routes
        if any(ipaddress.ip_address(found) in net for net in TEST_NETS)
    ]
    assert ours == []


@pytest.fixture
def plugger(osvif: None) -> Iterator[tuple[vifs.VifPlugger, object, list]]:
    """A plugger, an instance and a VIF, unplugged whatever happens."""
    made = support.netdev_plugger()
    instance, vif = make_instance(40), make_vif(40, False, None)
    yield made, instance, vif
    made.unplug(instance, [vif])


def test_a_host_process_pid_is_refused_then_the_real_one_plugs(
    containers, ovs, plugger
):
    made, instance, vif = plugger
    container = containers()
    links_before = host_links()

    with host_process() as sleeper:
        wrong = nova_docker.privsep.netns.NetnsTarget(container.id, sleeper.pid)
        with pytest.raises(exception.VifPlugError) as info:
            made.plug(instance, [vif], wrong)

    message = str(info.value)
    assert f"pid {sleeper.pid} for container {container.id}" in message
    assert "not in the container's cgroup" in message
    assert isinstance(info.value.__cause__, NetnsRefused)
    assert_host_untouched(vif, ovs, links_before)

    made.plug(instance, [vif], support.target_of(container))
    assert support.links_in(container) == {"lo", "eth0"}


def _enter(name: str, target: nova_docker.privsep.netns.NetnsTarget) -> None:
    cid, pid = target.container_id, target.pid
    if name == "link_addresses":
        nova_docker.privsep.netns.link_addresses(cid, pid)
    elif name == "configure_link":
        nova_docker.privsep.netns.configure_link(
            cid,
            pid,
            "ndtcf0",
            "fa:16:3e:d7:00:41",
            None,
            ["10.250.7.41/24", "fdd7:250:7::41/64"],
            [("10.250.70.0/24", "10.250.7.1")],
        )


@pytest.mark.parametrize("name", ["link_addresses", "configure_link"])
def test_entrypoints_refuse_a_host_process_and_name_it(containers, name):
    container = containers()

    with host_process() as sleeper:
        wrong = nova_docker.privsep.netns.NetnsTarget(container.id, sleeper.pid)
        with pytest.raises(NetnsRefused) as info:
            _enter(name, wrong)

    assert info.value.errno == errno.EPERM
    assert f"pid {sleeper.pid} for container {container.id}" in str(info.value)
    assert _host_networking()[0].isdisjoint({"10.250.7.41", "fdd7:250:7::41"})


def test_a_veth_is_never_moved_into_a_host_process_netns(containers):
    container = containers()
    tap, peer = f"tap{support.VIF_ID_PREFIX}mv", f"ns{support.VIF_ID_PREFIX}mv"
    nova_docker.privsep.netns.create_veth(tap, peer, None, True)
    try:
        with host_process() as sleeper, pytest.raises(NetnsRefused):
            nova_docker.privsep.netns.move_to_netns(
                peer, container.id, sleeper.pid, "ndtmv0"
            )
        links = host_links()
    finally:
        nova_docker.privsep.netns.delete_link(tap)

    assert peer in links and "ndtmv0" not in links
    assert support.links_in(container) == {"lo"}


@pytest.mark.parametrize(
    ("pid", "why"),
    [(1, "the host.s init"), (os.getpid(), "privileged daemon")],
    ids=["pid-1", "own-pid"],
)
def test_the_hosts_init_and_this_daemon_are_refused(containers, pid, why):
    container = containers()

    with pytest.raises(NetnsRefused, match=why) as info:
        nova_docker.privsep.netns.link_addresses(container.id, pid)

    assert f"pid {pid} for container {container.id}" in str(info.value)


def test_another_containers_init_is_refused(containers):
    mine, theirs = containers(), containers()

    with pytest.raises(NetnsRefused, match="not in the container's cgroup"):
        nova_docker.privsep.netns.link_addresses(mine.id, support.target_of(theirs).pid)


def test_a_dead_containers_pid_is_refused_gone_and_reused(containers, ovs, plugger):
    made, instance, vif = plugger
    container = containers()
    target = support.target_of(container)
    container.remove(force=True)
    links_before = host_links()

    with pytest.raises(exception.VifPlugError, match="no such process") as gone:
        made.plug(instance, [vif], target)
    with host_process(target.pid) as reused:
        assert reused.pid == target.pid
        with pytest.raises(exception.VifPlugError) as taken:
            made.plug(instance, [vif], target)

    assert f"pid {target.pid} for container {container.id}" in str(gone.value)
    assert "not in the container's cgroup" in str(taken.value)
    assert_host_untouched(vif, ovs, links_before)


def test_a_container_sharing_the_hosts_netns_is_refused(containers, ovs, plugger):
    made, instance, vif = plugger
    container = containers(network_mode="host")
    target = support.target_of(container)
    links_before = host_links()

    with pytest.raises(exception.VifPlugError) as info:
        made.plug(instance, [vif], target)

    assert f"pid {target.pid} for container {container.id}" in str(info.value)
    assert "network namespace is the host's" in str(info.value)
    assert_host_untouched(vif, ovs, links_before)
