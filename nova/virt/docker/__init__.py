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

"""Nova only loads compute drivers from the ``nova.virt`` namespace.

This one-file shim makes ``compute_driver = docker.DockerDriver`` work; the
driver itself lives in the ``nova_docker`` package.  There is deliberately no
``__init__.py`` in ``nova/`` or ``nova/virt/`` of this project: installing one
would replace Nova's own.
"""

from nova_docker.driver import DockerDriver

__all__ = ["DockerDriver"]
