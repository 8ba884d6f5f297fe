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

"""Network options of the ``[docker]`` group, registered with the rest by
:mod:`nova_docker.conf.docker`.

The network package reads no CONF: the driver passes these values to
:class:`nova_docker.network.vifs.VifPlugger`.
"""

from oslo_config import cfg

network_opts = [
    cfg.StrOpt(
        "ovs_datapath_type",
        default="system",
        choices=[
            ("system", "The Open vSwitch kernel datapath."),
            ("netdev", "The userspace datapath, for hosts without the kernel module."),
        ],
        help="""
Open vSwitch datapath type used when Neutron's port binding does not name one.

os-vif (re)sets the integration bridge's ``datapath_type`` on every plug, so
this must match how the bridge was created.  With ``netdev``, TX checksum
offload is also turned off on the container's end of each veth pair, since
the userspace datapath forwards partially checksummed frames unchanged and
TCP would fail.

Possible values:

* ``system``: the kernel datapath (needs the ``openvswitch`` module).
* ``netdev``: the userspace datapath, for hosts without that module.

Related options:

* ``[os_vif_ovs] ovsdb_connection``: the OVSDB os-vif talks to.
* ``[neutron] ovs_bridge``: the integration bridge when Neutron names none.
""",
    ),
    cfg.StrOpt(
        "metadata_route",
        default="on-link",
        choices=[
            (
                "on-link",
                "Route 169.254.169.254 on-link over the first port "
                "whose IPv4 subnet has DHCP enabled.",
            ),
            (
                "none",
                "Add no route: the metadata service is reached through "
                "the default gateway or the subnets' host routes.",
            ),
        ],
        help="""
How a container reaches the metadata service at 169.254.169.254.

A VM learns the route from Neutron's DHCP; a container's addresses and
routes are set by the driver, so it adds the route itself.  With ML2/OVN,
each network's metadata port is a namespace on every compute host that holds
169.254.169.254 itself, so an on-link route reaches it, and it is what OVN's
DHCP would have given (a route to that port).  A subnet's own host route to
the address always wins.

Possible values:

* ``on-link``: for ML2/OVN, and for DHCP agents serving isolated metadata.
* ``none``: for back ends whose routers proxy metadata (ML2/OVS with the L3
  agent), where the default route already leads there.

Related options:

* Neutron's ``[ovn] ovn_metadata_enabled`` and its OVN metadata agent on
  each compute host provide the service.
""",
    ),
]
