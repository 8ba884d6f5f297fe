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

"""The one privilege-separation context of nova-docker.

Entrypoints live in the modules of this package, are small, take plain
types and keep their bodies in ``_inner`` helpers testable without privsep.

nova-compute has no sudo on the hosts we target and runs as root, so the
helper must be started directly rather than through ``sudo``::

    [nova_docker_privileged]
    helper_command = privsep-helper --config-file /etc/nova/nova.conf

    [vif_plug_ovs_privileged]   # os-vif's own context, same reason
    helper_command = privsep-helper --config-file /etc/nova/nova.conf

``privsep-helper`` appends ``--privsep_context``/``--privsep_sock_path``
itself.  Tests run entrypoints in-process instead, with
``nova_docker_privileged.set_client_mode(False)`` as Nova's PrivsepFixture
does.
"""

from oslo_privsep import capabilities
from oslo_privsep import priv_context

nova_docker_privileged = priv_context.PrivContext(
    "nova_docker",
    cfg_section="nova_docker_privileged",
    pypath=__name__ + ".nova_docker_privileged",
    capabilities=[
        # Create, move, rename and address links, routes and bridge ports
        # over rtnetlink, turn off checksum offload (SIOCETHTOOL) and edit
        # the FORWARD chain (iptables speaks nf_tables netlink).
        capabilities.CAP_NET_ADMIN,
        # setns(2) into the container's network namespace requires it.
        capabilities.CAP_SYS_ADMIN,
        # Opening /proc/<pid>/ns/net of the container's init is a ptrace
        # access check; the container keeps capabilities (e.g. CAP_SETUID,
        # CAP_NET_RAW) that are not a subset of ours, so without this the
        # kernel refuses with EACCES (measured on this kernel; pidfd setns
        # is refused the same way).
        capabilities.CAP_SYS_PTRACE,
    ],
)
