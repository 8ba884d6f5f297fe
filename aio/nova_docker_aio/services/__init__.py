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

"""The services of a cloud, one module each, and the table ``up`` runs.

Where a service is installed, configured, set up, started, bootstrapped and
checked is answered by its module's name.  The table lists them in start
order; what may run at once follows from each service's ``*_after``
dependencies (see :mod:`.base`).  A new service (RabbitMQ, more Nova
services, a dashboard) is a new module and a new entry here.
"""

from __future__ import annotations

from nova_docker_aio.services import nova_hosts
from nova_docker_aio.services import ovn
from nova_docker_aio.services.base import Service
from nova_docker_aio.services.dashboard import Dashboard
from nova_docker_aio.services.engine_host import PrivateEngine
from nova_docker_aio.services.glance import Glance
from nova_docker_aio.services.keystone import Keystone
from nova_docker_aio.services.mariadb import MariaDB
from nova_docker_aio.services.neutron import Neutron
from nova_docker_aio.services.nova import Nova
from nova_docker_aio.services.ovn_metadata import MetadataAgent
from nova_docker_aio.services.ovs import OpenVSwitch
from nova_docker_aio.services.placement import Placement
from nova_docker_aio.services.rabbitmq import RabbitMQ
from nova_docker_aio.services.serialproxy import SerialProxy

#: Every cloud's database and API services.
CORE: tuple[Service, ...] = (MariaDB(), Keystone(), Glance(), Placement())
#: Only in a cloud with Neutron: the shared switch, the cloud's OVN, Neutron
#: and its metadata agent (on host 1's chassis: see :mod:`.ovn_metadata`).
NETWORK: tuple[Service, ...] = (
    OpenVSwitch(),
    ovn.Database("nb"),
    ovn.Database("sb"),
    ovn.Northd(),
    ovn.Controller(),
    Neutron(),
    MetadataAgent(),
)
#: The compute side, last: it needs everything above; then the proxy of
#: its servers' serial consoles.
COMPUTE: tuple[Service, ...] = (Nova(), SerialProxy())


def table(
    with_neutron: bool, hosts: int = 1, dashboard: bool = False
) -> tuple[Service, ...]:
    """A cloud's services, in start order; the dashboard last, with it.

    With several compute hosts, Nova's services talk over a private
    RabbitMQ, and each host has its own engine and (with Neutron) its own
    OVN chassis, tunnelled to the others over the cloud's underlay.
    """
    return (*_cloud(with_neutron, hosts), *((Dashboard(),) if dashboard else ()))


def _cloud(with_neutron: bool, hosts: int) -> tuple[Service, ...]:
    if hosts == 1:
        return (*CORE, *(NETWORK if with_neutron else ()), *COMPUTE)
    network: tuple[Service, ...] = ()
    if with_neutron:
        controllers = (ovn.Controller(i, hosts) for i in range(1, hosts + 1))
        *switching, _controller, neutron, metadata = NETWORK
        network = (*switching, ovn.Underlay(hosts), *controllers, neutron, metadata)
    engines = tuple(PrivateEngine(i) for i in range(1, hosts + 1))
    nova = nova_hosts.table(hosts)
    return (*CORE, RabbitMQ(), *network, *engines, *nova, SerialProxy(hosts))
