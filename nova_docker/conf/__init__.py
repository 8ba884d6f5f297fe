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

"""The ``[docker]`` option group.

Options are registered on Nova's ``CONF`` by :func:`register_opts`, which the
driver calls when it is constructed; nothing here reads ``CONF`` at import.
"""

from oslo_config import cfg

from nova_docker.conf import docker as docker_conf

GROUP = docker_conf.docker_group
MIN_API_VERSION = docker_conf.MIN_API_VERSION


def register_opts(conf: cfg.ConfigOpts) -> None:
    docker_conf.register_opts(conf)


def list_opts() -> list[tuple[cfg.OptGroup, list[cfg.Opt]]]:
    """Entry point for oslo-config-generator (namespace ``nova_docker``)."""
    return docker_conf.list_opts()
