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

"""The launcher's networking plan: configs, names, ranges, switch claims."""

import configparser
import os
from pathlib import Path

from nova_docker_aio import external
from nova_docker_aio.layout import Layout
from nova_docker_aio.services import neutron
from nova_docker_aio.services import nova
from nova_docker_aio.services import ovn
from nova_docker_aio.services import ovs
from nova_docker_aio.tests.conf_support import LAYOUT
from nova_docker_aio.tests.conf_support import SECRETS
from nova_docker_aio.tests.conf_support import parse as _parse

OTHER = Layout(Path("/tmp/nova-docker-e2e-x"), 30100)
SWITCH_DB = "unix:/run/nova-docker-aio/ovs/db.sock"


def _nova() -> configparser.RawConfigParser:
    return _parse(nova.config(LAYOUT, SECRETS, "docker.DockerDriver", SWITCH_DB))


def test_nova_with_neutron_uses_the_catalog_and_the_clouds_bridge() -> None:
    conf = _nova()
    assert "endpoint_override" not in conf["neutron"]
    assert conf["neutron"]["ovs_bridge"] == LAYOUT.bridge("int")
    assert conf["os_vif_ovs"]["ovsdb_connection"] == SWITCH_DB
    assert conf["docker"]["ovs_datapath_type"] == "netdev"
    assert conf["service_user"]["send_service_user_token"] == "true"  # noqa: S105


def test_privsep_helpers_run_without_sudo_on_novas_config() -> None:
    conf = _nova()
    for group in ("nova_docker_privileged", "vif_plug_ovs_privileged"):
        helper = conf[group]["helper_command"]
        assert not helper.startswith("sudo")
        assert helper.endswith("--config-file /state/etc/nova/nova.conf")


def test_neutron_talks_to_the_clouds_own_ovn_over_its_sockets() -> None:
    ml2 = _parse(neutron.ml2_config(LAYOUT))
    assert ml2["ml2"]["mechanism_drivers"] == "ovn"
    assert ml2["ovn"]["ovn_nb_connection"] == "unix:/state/run/ovnnb_db.sock"
    assert ml2["ovn"]["ovn_sb_connection"] == "unix:/state/run/ovnsb_db.sock"
    assert ml2["ml2_type_flat"]["flat_networks"] == ovn.PHYSNET
    conf = _parse(neutron.config(LAYOUT, SECRETS, "/paste.ini"))
    assert conf["DEFAULT"]["service_plugins"] == "ovn-router"
    assert conf["nova"]["username"] == "neutron"
    assert "neutron:pw-db_neutron@" in conf["database"]["connection"]


def test_bridges_are_kernel_sized_prefixed_and_distinct_per_cloud() -> None:
    names = {layout.bridge(role) for layout in (LAYOUT, OTHER) for role in "ie"}
    assert len(names) == 4
    assert all(len(name) <= 15 and name.startswith("nda") for name in names)


def test_chassis_settings_are_chassis_specific_and_map_public() -> None:
    settings = ovn.chassis_settings(LAYOUT)
    suffix = f"-{LAYOUT.compute_host}"
    assert all(key.endswith(suffix) for key in settings)
    assert settings[f"ovn-bridge{suffix}"] == LAYOUT.bridge("int")
    assert settings[f"hostname{suffix}"] == LAYOUT.compute_host
    mapping = settings[f"ovn-bridge-mappings{suffix}"]
    assert mapping == f"public:{LAYOUT.bridge('ext')}"


def test_first_cloud_gets_devstacks_ranges_and_the_next_its_own() -> None:
    first, second = external.Ranges(0), external.Ranges(1)
    assert str(first.public) == "172.24.4.0/24"
    assert first.host_address == "172.24.4.1"
    assert str(first.private) == "10.0.0.0/24"
    assert not first.public.overlaps(second.public)
    assert not first.private.overlaps(second.private)
    assert first.private6 != second.private6


def test_claims_of_vanished_owners_do_not_keep_the_switch(tmp_path: Path) -> None:
    switch = ovs.Switch(tmp_path / "ovs")
    switch.users.mkdir(parents=True)
    state = tmp_path / "state"
    state.mkdir()
    (switch.users / "alive-cloud").write_text(f"state {state}\n")
    (switch.users / "gone-cloud").write_text(f"state {tmp_path / 'deleted'}\n")
    (switch.users / "this-run").write_text(ovs.pid_owner(os.getpid()) + "\n")
    (switch.users / "dead-run").write_text("pid 999999999 1\n")
    assert sorted(ovs.live_claims(switch)) == ["alive-cloud", "this-run"]


def test_another_clouds_recorded_range_is_taken(tmp_path: Path) -> None:
    switch = ovs.Switch(tmp_path / "ovs")
    switch.users.mkdir(parents=True)
    other, mine = Layout(tmp_path / "other", 1), Layout(tmp_path / "mine", 1)
    for layout in (other, mine):
        layout.root.mkdir()
        (switch.users / ovs.claim_name(layout)).write_text(f"state {layout.root}\n")
    other.network_index.write_text("3\n")
    mine.network_index.write_text("0\n")
    assert ovs.taken_elsewhere(mine, switch) == {3}
