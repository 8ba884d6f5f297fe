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

"""The all-in-one cloud launcher (``nova-docker-aio``), a distribution of
its own that never goes onto a compute host.

It starts upstream Keystone, Glance, Placement, Nova and Neutron/OVN on
loopback ports against a private MariaDB, one module per service
(:mod:`nova_docker_aio.services`), with every path of a cloud's state dir
in :mod:`nova_docker_aio.layout`.  It reaches the Docker driver only
through the ``nova.conf`` it renders and the driver's naming module
(:mod:`nova_docker.engine.naming`); the driver imports nothing from here.
:class:`nova_docker_aio.private.PrivateCloud` is the cloud the end-to-end
tests and the benchmarks bring up and down.
"""
