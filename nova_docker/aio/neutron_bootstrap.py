"""The networks a fresh cloud starts with, as DevStack makes them; every
step finds before it creates, so ``up`` twice changes nothing.

- ``public``: external, flat on physnet ``public`` (the external bridge),
  no DHCP; the host's address on that bridge is its gateway.
- ``private`` in the demo project: IPv4 and IPv6 subnets on Geneve.
- ``router1`` in the demo project: gateway on ``public``, interfaces on both
  ``private`` subnets, so floating IPs and SNAT work.
- the demo project's ``default`` security group also admits ICMP and TCP 80
  from anywhere, so the demo server answers pings and HTTP.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING
from typing import Any

from nova_docker.aio import catalog
from nova_docker.aio.external import Ranges
from nova_docker.aio.layout import Layout
from nova_docker.aio.ovn import PHYSNET

if TYPE_CHECKING:
    from openstack.connection import Connection

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


def bootstrap(layout: Layout, secrets: Mapping[str, str], ranges: Ranges) -> None:
    admin = catalog.connect(layout, secrets)
    demo = catalog.connect(layout, secrets, catalog.DEMO_CLOUD)
    public = _public(admin, ranges)
    _router(demo, public, _private(demo, ranges))
    # Listing as the demo user makes Neutron create the project's default
    # group if it has none yet.
    list(demo.network.security_groups())
    _open_demo_ports(demo)
