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

"""Open files, extra specs and the log configuration of a container spec."""

import pytest
from nova import exception as nova_exception

from nova_docker.engine import spec


def make_spec(**overrides) -> spec.ContainerSpec:
    values = dict(
        name="nova-x",
        image="nova-glance:x",
        hostname="h",
        labels={},
        memory_bytes=64 * 1024 * 1024,
        vcpus=1,
        pids_limit=100,
    )
    values.update(overrides)
    return spec.ContainerSpec(**values)


def test_nofile_becomes_equal_soft_and_hard_ulimits():
    host = make_spec(nofile=4096).host_config_kwargs()
    assert host["ulimits"] == [{"name": "nofile", "soft": 4096, "hard": 4096}]


def test_no_nofile_leaves_the_engines_ulimits():
    assert make_spec().host_config_kwargs()["ulimits"] is None


def test_nofile_extra_spec_replaces_the_default():
    assert spec.nofile_limit_for({}, 65536) == 65536
    assert spec.nofile_limit_for({"docker:nofile_limit": "512"}, 65536) == 512


@pytest.mark.parametrize("raw", ["0", "-3", "many"])
def test_nofile_extra_spec_must_be_positive(raw):
    with pytest.raises(nova_exception.InvalidInput, match="docker:nofile_limit"):
        spec.nofile_limit_for({"docker:nofile_limit": raw}, 10)


def test_json_file_logs_block_and_rotate_without_compress_option():
    assert make_spec(log_driver="json-file").host_config_kwargs()["log_config"] == {
        "Type": "json-file",
        "Config": {"mode": "blocking", "max-size": "10m", "max-file": "2"},
    }


def test_local_logs_are_not_compressed_on_rotation():
    config = spec.log_config("local", "1m", 3)
    assert config["Config"]["compress"] == "false"
    assert config["Config"]["mode"] == "blocking"
    assert config["Config"]["max-file"] == "3"
