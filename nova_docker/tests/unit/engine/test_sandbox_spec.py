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

"""Who owns the namespace settings: the sandbox, never the instance in it."""

from __future__ import annotations

from nova_docker.engine import spec

BASE = dict(
    name="nova-x", image="img", hostname="web", labels={}, memory_bytes=1 << 26,
    vcpus=1, pids_limit=10, nameservers=("10.0.0.53",),
)  # fmt: skip


def test_an_instance_in_a_sandbox_names_it_and_sets_no_namespace_settings() -> None:
    joined = spec.ContainerSpec(**BASE, sandbox="nova-sandbox-x")
    host_config = joined.host_config_kwargs()
    assert host_config["network_mode"] == "container:nova-sandbox-x"
    # The engine refuses these with a joined namespace: they are the sandbox's.
    assert "dns" not in host_config and "sysctls" not in host_config
    assert joined.create_kwargs()["hostname"] is None


def test_an_instance_of_its_own_namespace_keeps_its_settings() -> None:
    own = spec.ContainerSpec(**BASE).host_config_kwargs()
    assert own["network_mode"] == "none"
    assert own["dns"] == ["10.0.0.53"]
    assert own["sysctls"] == spec.IPV6_SYSCTLS


def test_the_sandbox_has_the_settings_and_is_small_and_locked_down() -> None:
    sandbox = spec.SandboxSpec(
        name="nova-sandbox-x", image="sha256:abc", hostname="web", labels={},
        command=None, nameservers=("10.0.0.53",),
    )  # fmt: skip
    host_config = sandbox.host_config_kwargs()
    assert host_config["network_mode"] == "none"
    assert host_config["dns"] == ["10.0.0.53"]
    assert host_config["cap_drop"] == ["ALL"]
    assert host_config["mem_limit"] == spec.SANDBOX_MEMORY_BYTES
    assert host_config["pids_limit"] == spec.SANDBOX_PIDS
    assert host_config["restart_policy"] == {"Name": "no"}
    assert sandbox.create_kwargs()["hostname"] == "web"
