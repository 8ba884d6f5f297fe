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

"""The [docker] options: registration and the generated sample."""

import pathlib
import subprocess
import sys

import pytest
from oslo_config import cfg

from nova_docker import conf

SAMPLE = pathlib.Path(__file__).parents[3] / "etc" / "nova-docker.conf.sample"


def test_options_register_on_a_config_object_and_have_help():
    config = cfg.ConfigOpts()
    conf.register_opts(config)
    config([])
    assert config.docker.api_url == "unix:///var/run/docker.sock"
    assert config.docker.tls_verify is True
    assert config.docker.allow_privileged is False
    assert config.docker.allow_image_healthcheck is False
    assert config.docker.healthcheck_min_interval == 30
    for _group, opts in conf.list_opts():
        for opt in opts:
            assert opt.help and len(opt.help.strip()) > 20, opt.name


def test_healthcheck_floor_must_be_at_least_a_second():
    config = cfg.ConfigOpts()
    conf.register_opts(config)
    config([])
    with pytest.raises(ValueError):
        config.set_override("healthcheck_min_interval", 0, group="docker")
    with pytest.raises(ValueError):
        config.set_override("healthcheck_min_interval", 86401, group="docker")


def test_generated_sample_is_up_to_date():
    generated = subprocess.run(
        [sys.executable, "-m", "oslo_config.generator", "--namespace", "nova_docker"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert SAMPLE.read_text() == generated, "run 'make genconfig'"
