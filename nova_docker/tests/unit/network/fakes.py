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

"""Nova network models for the network unit tests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nova.network import model

VIF_ID = "0dd7a1b2-c3d4-4e5f-8a9b-0c1d2e3f4a5b"
OTHER_ID = "0dd7ffee-0000-4000-8000-000000000002"


def subnet(
    cidr: str,
    ips: list[str],
    gateway: str | None = None,
    dns: Sequence[str] = (),
    routes: Sequence[tuple[str, str]] = (),
    dhcp: bool = False,
) -> model.Subnet:
    # Nova keeps the subnet's enable_dhcp in its meta, as here.
    return model.Subnet(
        enable_dhcp=dhcp,
        cidr=cidr,
        ips=[model.FixedIP(address=ip) for ip in ips],
        gateway=model.IP(gateway, type="gateway") if gateway else None,
        dns=[model.IP(address, type="dns") for address in dns],
        routes=[
            model.Route(cidr=dst, gateway=model.IP(nexthop, type="gateway"))
            for dst, nexthop in routes
        ],
    )


def vif(
    subnets: list[model.Subnet],
    vif_id: str = VIF_ID,
    mac: str = "FA:16:3E:00:00:01",
    mtu: int | None = 1450,
    **fields: Any,
) -> model.VIF:
    meta = {"mtu": mtu} if mtu else {}
    network = model.Network(
        id="net-1", bridge="br-int", label="private", subnets=subnets, **meta
    )
    values: dict[str, Any] = {
        "id": vif_id,
        "address": mac,
        "network": network,
        "type": "ovs",
        "details": {"port_filter": True, "ovs_hybrid_plug": False},
        "devname": ("tap" + vif_id)[:14],
        "ovs_interfaceid": vif_id,
        "active": True,
    }
    values.update(fields)
    return model.VIF(**values)


def dual_stack(vif_id: str = VIF_ID, **fields: Any) -> model.VIF:
    return vif(
        [
            subnet("10.0.0.0/24", ["10.0.0.5"], "10.0.0.1", dns=["10.0.0.2"]),
            subnet("fd00:1::/64", ["fd00:1::5"], "fd00:1::1", dns=["fd00:1::2"]),
        ],
        vif_id=vif_id,
        **fields,
    )
