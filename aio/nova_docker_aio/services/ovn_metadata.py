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

"""The metadata service at 169.254.169.254: Neutron's OVN metadata agent in
front of Nova's metadata API.

As on any ML2/OVN compute host, the agent makes one ``ovnmeta-<network>``
namespace per network with ports on its chassis, plugs it into the
integration bridge as the network's metadata port (a ``localport``, so each
chassis answers its own servers), gives it 169.254.169.254, and runs
Debian's ``haproxy`` there.  haproxy hands each request to the agent over a
unix socket; the agent adds the instance's identity (signed with the shared
secret) and forwards it to Nova's metadata API, which Nova's process serves
on the ``nova-metadata`` port.

Two settings of the agent do not fit a switch shared by several clouds: it
reads its chassis name from the switch's ``system-id`` and its bridge from
``ovn-bridge``, both one value per switch.  :mod:`nova_docker_aio.ovn_metadata_runner`
gives it the cloud's own instead; everything else is the upstream agent.

Only host 1's chassis runs an agent: a second agent on the same machine
would make the same namespace for the same network.  Servers on other hosts
of a cloud of several read their configuration from the config drive.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from nova_docker_aio import host
from nova_docker_aio import ini
from nova_docker_aio import procs
from nova_docker_aio import tools
from nova_docker_aio.layout import Layout
from nova_docker_aio.services import ovn
from nova_docker_aio.services import ovs
from nova_docker_aio.services.base import Context
from nova_docker_aio.services.base import Service
from nova_docker_aio.steps import step

RUNNER = "nova_docker_aio.ovn_metadata_runner"
#: What the agent names each network's namespace (``<prefix><network id>``).
NAMESPACE_PREFIX = "ovnmeta-"
#: The chassis Ml2/OVN marks once an agent serves it.
REGISTERED_KEY = "neutron:ovn-metadata-id"
#: The config sections of the agent's privsep contexts (neutron.privileged).
PRIVSEP_SECTIONS = (
    "privsep",
    "privsep_dhcp_release",
    "privsep_ovs_vsctl",
    "privsep_namespace",
    "privsep_conntrack",
    "privsep_link",
)


class MetadataAgent(Service):
    name = "ovn-metadata-agent"
    start_after = ("ovn-controller", "neutron")

    def ensure_installed(self, ctx: Context) -> None:
        ensure_installed()

    def configs(self, ctx: Context) -> dict[Path, str]:
        layout = ctx.layout
        return {
            layout.ovn_metadata_conf: config(
                layout, ctx.secrets["metadata"], ovs.Switch().connection
            )
        }

    def start(self, ctx: Context) -> None:
        start(ctx.layout)

    def healthy(self, ctx: Context) -> bool:
        return ctx.layout.ovn_metadata_socket.exists() and registered(ctx.layout)

    def stop(self, ctx: Context) -> None:
        super().stop(ctx)
        with step(self.name, "remove metadata proxies"):
            remove_proxies(ctx.layout)


def ensure_installed() -> None:
    # The agent finds haproxy on root's PATH, which has the sbin dirs.
    if not shutil.which("haproxy", path="/usr/sbin:/usr/bin"):
        with host.no_service_starts():
            host.apt_install(("haproxy",), why="the metadata service's proxy")


def config(layout: Layout, secret: str, switch_db: str) -> str:
    """``ovn_metadata_agent.ini`` (pure)."""
    # The launcher runs as root: privsep starts its daemons without sudo
    # (an empty root helper would mean sudo to oslo.privsep).
    helper = (
        f"{tools.bin_path('privsep-helper')} --config-file {layout.ovn_metadata_conf}"
    )
    privsep = {section: {"helper_command": helper} for section in PRIVSEP_SECTIONS}
    return ini.render(
        {
            "DEFAULT": {
                "use_stderr": "true",
                "state_path": str(layout.ovn_metadata_dir),
                "nova_metadata_host": "127.0.0.1",
                "nova_metadata_port": str(layout.port("nova-metadata")),
                "metadata_proxy_shared_secret": secret,
                # Requests are few; a worker process per core is for clouds.
                "metadata_workers": "0",
            },
            # haproxy is started in its namespace without sudo, too.
            "agent": {"root_helper": ""},
            "ovs": {"ovsdb_connection": switch_db},
            "ovn": {"ovn_sb_connection": f"unix:{layout.ovn_socket('sb')}"},
            "oslo_concurrency": {"lock_path": str(layout.lock_dir("ovn-metadata"))},
            **privsep,
        }
    )


def start(layout: Layout) -> None:
    layout.ovn_metadata_socket.unlink(missing_ok=True)
    layout.lock_dir("ovn-metadata").mkdir(parents=True, exist_ok=True)
    argv = [
        sys.executable,
        "-m",
        RUNNER,
        "--chassis",
        ovn.chassis_name(layout, 1),
        "--bridge",
        ovn.integration_bridge(layout, 1),
        "--config-file",
        str(layout.ovn_metadata_conf),
    ]
    pidfile = layout.pidfile(MetadataAgent.name)
    procs.spawn(argv, pidfile, layout.log(MetadataAgent.name))
    procs.wait_for(
        lambda: layout.ovn_metadata_socket.exists() and registered(layout),
        pidfile,
        120,
        "the OVN metadata agent",
    )


def registered(layout: Layout) -> bool:
    """Whether host 1's chassis says an agent serves it."""
    try:
        ids = ovn.sbctl(
            layout, "--bare", "--columns=external_ids", "find", "Chassis_Private",
            f"name={ovn.chassis_name(layout, 1)}",
        )  # fmt: skip
    except procs.ProcessError:
        return False
    return REGISTERED_KEY in ids


def remove_proxies(layout: Layout) -> list[str]:
    """Stop the haproxies the cloud's agent started and remove their
    namespaces (the agent leaves both when it stops, as upstream's does,
    so that metadata keeps answering across its restarts).  Returns the
    networks whose proxy went."""
    networks = []
    for pidfile in sorted(layout.ovn_metadata_pids.glob("*.pid.haproxy")):
        network = pidfile.name.split(".", 1)[0]
        _stop_haproxy(layout, pidfile)
        _delete_namespace(NAMESPACE_PREFIX + network)
        networks.append(network)
    return networks


def namespaces_left(layout: Layout) -> list[str]:
    """The metadata namespaces of this cloud's networks that still exist:
    the agent writes one haproxy config per network, named after it, and
    they outlive ``down``."""
    configs = layout.ovn_metadata_proxy_configs.glob("*.conf")
    names = (NAMESPACE_PREFIX + conf.stem for conf in configs)
    return [name for name in names if Path("/run/netns", name).exists()]


def _stop_haproxy(layout: Layout, pidfile: Path) -> None:
    with contextlib.suppress(OSError, ValueError):
        pid = int(pidfile.read_text().split()[0])
        # Only a haproxy of this cloud: its config file is in the state dir.
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        if b"haproxy" in cmdline and str(layout.ovn_metadata_dir).encode() in cmdline:
            os.kill(pid, signal.SIGTERM)
    pidfile.unlink(missing_ok=True)


def _delete_namespace(name: str) -> None:
    if Path("/run/netns", name).exists():
        subprocess.run(["ip", "netns", "delete", name], check=False)
