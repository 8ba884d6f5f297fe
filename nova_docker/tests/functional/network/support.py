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

"""Helpers for plugging real containers into a real userspace Open vSwitch.

Everything the tests create is named or tracked so teardown removes exactly it:
containers and the image carry the ``ndt`` prefix, VIF ids start with
``0dd7`` (so host devices are ``tap0dd7…``, ``qbr0dd7…``), and the tests'
bridge is ``ndtbrint`` on the host's shared Open vSwitch, which they claim
and release like a cloud does (the last user stops it, by PID).  With ``CI=true`` a
missing engine, OVS or root is a failure, not a skip.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import uuid

import docker
import pytest
from nova.conf import CONF

import nova_docker.privsep.netns
from nova_docker.network import vifs
from nova_docker.tests import engine_support
from nova_docker_aio.services import ovs as aio_ovs

APPLETS = ("sh", "sleep", "nc", "ping", "ping6", "ip", "cat", "echo")
BRIDGE = "ndtbrint"
#: Host devices of test VIFs all contain this, right after their prefix.
VIF_ID_PREFIX = "0dd7"
#: PID 1 has no default signal handlers: trap TERM so restarts are quick.
COMMAND = ["/bin/sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"]


def unavailable(reason: str) -> None:
    """Skip, or fail when CI promises the environment is complete."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


def new_vif_id() -> str:
    return str(uuid.UUID(VIF_ID_PREFIX + uuid.uuid4().hex[4:]))


class Ovs:
    """The host's shared Open vSwitch (see :mod:`nova_docker_aio.services.ovs`), as
    the tests use it: its OVSDB connection and ``ovs-vsctl``.

    The tests add only the bridge :data:`BRIDGE` and remove only it, so they
    run while a cloud's bridges sit on the same switch.
    """

    def __init__(self, switch: aio_ovs.Switch) -> None:
        self.switch = switch

    @property
    def connection(self) -> str:
        return self.switch.connection

    def vsctl(self, *args: str) -> str:
        return aio_ovs.vsctl(self.switch, *args)


def rootfs() -> bytes:
    """Debian's static busybox and the applets the tests use, as a tar."""
    return engine_support.rootfs_tar(applets=APPLETS)


class ContainerFactory:
    """Creates ``ndt`` busybox containers without a network; removes them."""

    def __init__(self, client: docker.DockerClient, image: str) -> None:
        self.client = client
        self.image = image
        self.made: list[str] = []

    def __call__(
        self, network_mode: str = "none"
    ) -> docker.models.containers.Container:
        """A started container; ``network_mode="host"`` shares the host's
        network namespace (what the driver must refuse to plug)."""
        name = f"ndt-{uuid.uuid4().hex[:10]}"
        # Docker disables IPv6 in containers it gives no network, and takes
        # no net.* sysctl for the host's namespace.
        sysctls = {
            "net.ipv6.conf.all.disable_ipv6": "0",
            "net.ipv6.conf.default.disable_ipv6": "0",
        }
        # create(), unlike run(), never falls back to pulling.
        container = self.client.containers.create(
            self.image,
            COMMAND,
            name=name,
            network_mode=network_mode,
            sysctls=sysctls if network_mode == "none" else None,
        )
        self.made.append(container.id)
        container.start()
        return container

    def cleanup(self) -> None:
        for ident in self.made:
            try:
                self.client.containers.get(ident).remove(force=True)
            except docker.errors.NotFound:
                pass


def target_of(
    container: docker.models.containers.Container,
) -> nova_docker.privsep.netns.NetnsTarget:
    """The container's namespace as the driver pins it: ID and init PID."""
    container.reload()
    pid = int(container.attrs["State"]["Pid"])
    return nova_docker.privsep.netns.NetnsTarget(container.id, pid)


def links_in(container: docker.models.containers.Container) -> set[str]:
    """The interface names inside the container's network namespace."""
    target = target_of(container)
    return set(
        nova_docker.privsep.netns.link_addresses(target.container_id, target.pid)
    )


def privsep_helper() -> str:
    """The ``privsep-helper`` next to this interpreter, run without sudo."""
    return str(pathlib.Path(sys.executable).parent / "privsep-helper")


def forward_rules() -> str:
    """The FORWARD chains of iptables and ip6tables, as rule specs."""
    return "".join(
        subprocess.run(
            [binary, "-w", "-S", "FORWARD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for binary in ("iptables", "ip6tables")
    )


def netdev_plugger() -> vifs.VifPlugger:
    """A plugger for this machine's userspace (netdev) switch, configured
    from os-vif's ``[os_vif_ovs]`` as the driver configures it."""
    return vifs.VifPlugger(datapath_type="netdev", ovsdb_config=lambda: CONF.os_vif_ovs)
