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

"""The DevStack plugin parses and configures nova-compute for this driver.

DevStack itself does not run here; its helper functions are replaced by
stubs that record their calls, and the plugin's phases run against them.
"""

import pathlib
import subprocess

DEVSTACK = pathlib.Path(__file__).parents[3] / "devstack"

STUBS = """
DEST=/opt/stack STACK_USER=stack NOVA_CPU_CONF=/etc/nova/nova-cpu.conf
function trueorfalse { echo "${!2:-$1}"; }
function iniset { echo "iniset $*"; }
function pip_install { echo "pip_install $*"; }
function echo_summary { :; }
function is_service_enabled { return 0; }
"""


def run_phase(*phase: str) -> str:
    script = f"{STUBS}\nsource {DEVSTACK}/settings\nsource {DEVSTACK}/plugin.sh"
    return subprocess.run(
        ["bash", "-c", script, "plugin", *phase],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def test_plugin_and_settings_parse():
    for name in ("plugin.sh", "settings"):
        subprocess.run(["bash", "-n", str(DEVSTACK / name)], check=True)


def test_post_config_sets_the_compute_driver():
    out = run_phase("stack", "post-config")
    assert (
        "iniset /etc/nova/nova-cpu.conf DEFAULT compute_driver docker.DockerDriver"
        in out
    )
    assert (
        "iniset /etc/nova/nova-cpu.conf docker api_url unix:///var/run/docker.sock"
        in out
    )


def test_install_is_not_editable():
    out = run_phase("stack", "install")
    assert out.strip() == "pip_install /opt/stack/nova-docker"
