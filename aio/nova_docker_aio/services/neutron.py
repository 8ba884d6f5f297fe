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

"""Neutron 29 with ML2/OVN: its configuration, schema migrations, the API
as a WSGI app, and the networks a fresh cloud starts with.

Neutron 29 ships no ``neutron-server``: its API is ``neutron.wsgi.api``,
served here under gunicorn like the other services.  ML2/OVN sizes its hash
ring by the number of API workers, which it learns from uWSGI, mod_wsgi or
the ``ASGI_WORKERS`` variable: gunicorn is none of them, so the variable
tells it (one worker).  The "first worker" election and the start time go to
files in the temp dir keyed by the parent PID, so each cloud gets its own
temp dir.  The OVN maintenance worker is not run: nothing here needs its
periodic repairs, and it would cost another Neutron process.  There is no
message bus; the only agent is OVN's metadata agent (:mod:`.ovn_metadata`),
which talks to OVN's southbound database.  Nova hears of plugged ports
through its external-events API (the ``[nova]`` user).

Its bootstrap makes the networks DevStack makes, each step finding before
it creates, so ``up`` twice changes nothing:

- ``public``: external, flat on physnet ``public`` (the external bridge),
  no DHCP; the host's address on that bridge is its gateway.
- ``private`` in the demo project: IPv4 and IPv6 subnets on Geneve.
- ``router1`` in the demo project: gateway on ``public``, interfaces on both
  ``private`` subnets, so floating IPs and SNAT work.
- the demo project's ``default`` security group also admits ICMP and TCP 80
  from anywhere, so the demo server answers pings and HTTP.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from nova_docker_aio import clouds_yaml
from nova_docker_aio import external
from nova_docker_aio import ini
from nova_docker_aio import procs
from nova_docker_aio import tools
from nova_docker_aio import wsgi
from nova_docker_aio.external import Ranges
from nova_docker_aio.layout import Layout
from nova_docker_aio.services import mariadb
from nova_docker_aio.services.base import Context
from nova_docker_aio.services.base import Service
from nova_docker_aio.services.ovn import PHYSNET
from nova_docker_aio.steps import say

if TYPE_CHECKING:
    from openstack.connection import Connection

APP = "neutron.wsgi.api"


class Neutron(Service):
    name = "neutron"
    setup_after = ("mariadb",)
    start_after = ("ovn-controller",)
    bootstrap_after = ("keystone",)
    databases = ("neutron",)
    catalog = ("network", "")

    def ports(self, ctx: Context) -> tuple[str, ...]:
        return ("neutron",)

    def configs(self, ctx: Context) -> dict[Path, str]:
        conf, ml2 = config_files(ctx.layout)
        paste = str(tools.data_file("neutron/api-paste.ini"))
        return {
            conf: config(ctx.layout, ctx.secrets, paste),
            ml2: ml2_config(ctx.layout),
        }

    def setup(self, ctx: Context) -> None:
        log = ctx.layout.log("neutron-manage")
        ctx.once(self.name, "db sync", lambda: db_sync(ctx.layout), log)

    def start(self, ctx: Context) -> None:
        start(ctx.layout)

    def healthy(self, ctx: Context) -> bool:
        return wsgi.answers(ctx.layout.url(self.name))

    def bootstrap(self, ctx: Context) -> None:
        layout = ctx.layout
        ranges = external.ranges(layout)
        ctx.once(
            self.name,
            "default networks",
            lambda: default_networks(layout, ranges),
            layout.log(self.name),
        )
        ctx.once(
            self.name,
            "metadata ports",
            lambda: metadata_ports(layout),
            layout.log(self.name),
        )
        say(
            f"  [neutron] public {ranges.public} (host {ranges.host_address} on "
            f"{layout.bridge('ext')}), private {ranges.private} and {ranges.private6}"
        )


def config_files(layout: Layout) -> tuple[Path, Path]:
    return layout.neutron_conf, layout.ml2_conf


def config(layout: Layout, secrets: dict[str, str], paste: str) -> str:
    """ML2/OVN, no message bus."""
    return ini.render(
        {
            "DEFAULT": {
                "use_stderr": "true",
                "host": layout.compute_host,
                "core_plugin": "ml2",
                "service_plugins": "ovn-router",
                "auth_strategy": "keystone",
                "api_paste_config": paste,
                "state_path": str(layout.data_dir("neutron")),
                "transport_url": "fake://",
                "notify_nova_on_port_status_changes": "true",
                "notify_nova_on_port_data_changes": "true",
                "allow_overlapping_ips": "true",
            },
            "database": {
                "connection": mariadb.url(layout, "neutron", secrets["db_neutron"])
            },
            "keystone_authtoken": ini.authtoken(layout, "neutron", secrets["neutron"]),
            "nova": ini.service_client(layout, "neutron", secrets["neutron"]),
            "oslo_concurrency": {"lock_path": str(layout.lock_dir("neutron"))},
            "oslo_messaging_notifications": {"driver": "noop"},
        }
    )


def ml2_config(layout: Layout) -> str:
    """Tenant networks are Geneve (OVN's overlay); ``public`` is a flat
    provider network on the cloud's external bridge."""
    return ini.render(
        {
            "ml2": {
                "type_drivers": "flat,geneve",
                "tenant_network_types": "geneve",
                "mechanism_drivers": "ovn",
                "extension_drivers": "port_security",
                "overlay_ip_version": "4",
            },
            "ml2_type_flat": {"flat_networks": "public"},
            "ml2_type_geneve": {"vni_ranges": "1:65536", "max_header_size": "38"},
            "securitygroup": {"enable_security_group": "true"},
            "ovn": {
                "ovn_nb_connection": f"unix:{layout.ovn_socket('nb')}",
                "ovn_sb_connection": f"unix:{layout.ovn_socket('sb')}",
                "ovn_l3_scheduler": "leastloaded",
                # A metadata port per network, for the metadata agent.
                "ovn_metadata_enabled": "true",
                "enable_distributed_floating_ip": "false",
            },
        }
    )


def _config_args(layout: Layout) -> list[str]:
    args: list[str] = []
    for path in config_files(layout):
        args += ["--config-file", str(path)]
    return args


def db_sync(layout: Layout) -> None:
    procs.run(
        [
            tools.bin_path("neutron-db-manage"),
            *_config_args(layout),
            "upgrade",
            "heads",
        ],
        layout.log("neutron-manage"),
    )


def start(layout: Layout) -> None:
    tmp = layout.tmp_dir("neutron")
    tmp.mkdir(parents=True, exist_ok=True)
    # A new gunicorn master is a new key, but stale files would pile up.
    for stale in tmp.iterdir():
        stale.unlink()
    env = {
        "OS_NEUTRON_CONFIG_FILES": ";".join(str(p) for p in config_files(layout)),
        "ASGI_WORKERS": "1",
        "TMPDIR": str(tmp),
    }
    # Loading ML2/OVN takes a while on a busy two-core machine.
    wsgi.start(layout, "neutron", APP, env, threads=8, timeout=180)


PUBLIC = "public"
PRIVATE = "private"
ROUTER = "router1"
#: (protocol, port or None, ethertype) opened in the demo project.
DEMO_RULES = (("icmp", None, "IPv4"), ("tcp", 80, "IPv4"), ("ipv6-icmp", None, "IPv6"))


def _network(conn: Connection, name: str, **attrs: Any) -> Any:
    return conn.network.find_network(name) or conn.network.create_network(
        name=name, **attrs
    )


def _subnet(conn: Connection, network: Any, name: str, **attrs: Any) -> Any:
    found = conn.network.find_subnet(name, network_id=network.id)
    return found or conn.network.create_subnet(
        name=name, network_id=network.id, **attrs
    )


def _public(admin: Connection, ranges: Ranges) -> Any:
    network = _network(
        admin,
        PUBLIC,
        is_router_external=True,
        provider_network_type="flat",
        provider_physical_network=PHYSNET,
    )
    first = ranges.public.network_address
    _subnet(
        admin,
        network,
        f"{PUBLIC}-subnet",
        ip_version=4,
        cidr=str(ranges.public),
        gateway_ip=ranges.host_address,
        is_dhcp_enabled=False,
        allocation_pools=[{"start": str(first + 2), "end": str(first + 254)}],
    )
    return network


def _private(demo: Connection, ranges: Ranges) -> list[Any]:
    network = _network(demo, PRIVATE)
    v4 = _subnet(
        demo, network, f"{PRIVATE}-subnet", ip_version=4, cidr=str(ranges.private)
    )
    v6 = _subnet(
        demo,
        network,
        f"{PRIVATE}-subnet-v6",
        ip_version=6,
        cidr=str(ranges.private6),
        ipv6_address_mode="slaac",
        ipv6_ra_mode="slaac",
    )
    return [v4, v6]


def _router(demo: Connection, public: Any, subnets: list[Any]) -> None:
    router = demo.network.find_router(ROUTER) or demo.network.create_router(
        name=ROUTER, external_gateway_info={"network_id": public.id}
    )
    attached = {
        ip["subnet_id"]
        for port in demo.network.ports(device_id=router.id)
        for ip in port.fixed_ips
    }
    for subnet in subnets:
        if subnet.id not in attached:
            demo.network.add_interface_to_router(router, subnet_id=subnet.id)


def _open_demo_ports(demo: Connection) -> None:
    project = demo.current_project_id
    group = demo.network.find_security_group("default", project_id=project)
    have = {
        (rule.protocol, rule.port_range_min, rule.ether_type)
        for rule in demo.network.security_group_rules(
            security_group_id=group.id, direction="ingress"
        )
    }
    for protocol, port, ether in DEMO_RULES:
        if (protocol, port, ether) not in have:
            demo.network.create_security_group_rule(
                security_group_id=group.id,
                direction="ingress",
                protocol=protocol,
                port_range_min=port,
                port_range_max=port,
                ether_type=ether,
            )


def metadata_ports(layout: Layout) -> None:
    """Give every network a metadata port.

    ML2/OVN makes one with each new network; a cloud made before the
    metadata service ran has networks without.  Any update of a
    DHCP-enabled subnet makes ML2/OVN add its network's port (as its
    maintenance task would); the SDK sends no unchanged attribute, so this
    is a plain PUT of the subnet's own description.
    """
    admin = clouds_yaml.connect(layout, clouds_yaml.ADMIN_CLOUD)
    for subnet in admin.network.subnets(ip_version=4, is_dhcp_enabled=True):
        body = {"subnet": {"description": subnet.description or ""}}
        admin.network.put(f"/subnets/{subnet.id}", json=body).raise_for_status()


def default_networks(layout: Layout, ranges: Ranges) -> None:
    admin = clouds_yaml.connect(layout, clouds_yaml.ADMIN_CLOUD)
    demo = clouds_yaml.connect(layout, clouds_yaml.DEMO_CLOUD)
    public = _public(admin, ranges)
    _router(demo, public, _private(demo, ranges))
    # Listing as the demo user makes Neutron create the project's default
    # group if it has none yet.
    list(demo.network.security_groups())
    _open_demo_ports(demo)
