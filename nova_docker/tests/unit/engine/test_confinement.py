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

"""What the start-up log says about confinement, from the engine's /info."""

from __future__ import annotations

import pytest

from nova_docker.engine import confinement

# This project's CI host: Debian's docker.io 20.10, no LSM loaded.
DEBIAN_NO_LSM = {"SecurityOptions": ["name=seccomp,profile=default"]}
UBUNTU = {
    "SecurityOptions": [
        "name=apparmor",
        "name=seccomp,profile=builtin",
        "name=cgroupns",
    ]
}
FEDORA_REMAPPED = {
    "SecurityOptions": [
        "name=seccomp,profile=default",
        "name=selinux",
        "name=userns",
    ]
}
ROOTLESS = {
    "SecurityOptions": [
        "name=seccomp,profile=default",
        "name=rootless",
        "name=cgroupns",
    ]
}


def facts(summary: str) -> dict[str, str]:
    return dict(pair.split("=", 1) for pair in summary.split(", "))


def test_a_host_without_an_lsm_says_apparmor_is_off():
    found = confinement.from_info(DEBIAN_NO_LSM)
    assert facts(found.summary()) == {
        "seccomp": "default",
        "no-new-privileges": "on",
        "apparmor": "off",
        "selinux": "off",
        "userns-remap": "off",
        "rootless-engine": "off",
        "cgroupns": "off",
        "privileged-flavors": "refused",
    }
    assert found.warnings() == []


def test_a_host_with_apparmor_gets_the_engines_default_profile():
    found = confinement.from_info(UBUNTU)
    assert found.apparmor == "docker-default"
    assert found.seccomp == "builtin"
    assert found.cgroupns is True
    assert facts(found.summary())["apparmor"] == "docker-default"


def test_selinux_and_userns_remap_are_reported():
    found = confinement.from_info(FEDORA_REMAPPED)
    assert (found.selinux, found.userns_remap, found.rootless) == (True, True, False)
    assert facts(found.summary())["userns-remap"] == "on"


def test_a_rootless_engine_is_reported():
    assert confinement.from_info(ROOTLESS).rootless is True


@pytest.mark.parametrize(
    "info",
    [
        {},
        {"SecurityOptions": None},
        {"SecurityOptions": ["name=apparmor"]},
        {"SecurityOptions": ["name=seccomp,profile=unconfined"]},
    ],
)
def test_no_seccomp_filter_is_warned_about(info):
    found = confinement.from_info(info)
    assert found.seccomp is None
    assert facts(found.summary())["seccomp"] == "off"
    assert any("seccomp" in warning for warning in found.warnings())


def test_engines_before_api_1_26_list_bare_names():
    found = confinement.from_info({"SecurityOptions": ["apparmor", "seccomp"]})
    assert (found.seccomp, found.apparmor) == ("default", "docker-default")


@pytest.mark.parametrize("option", ["seccomp=unconfined", "seccomp:unconfined"])
def test_security_opt_that_turns_seccomp_off_is_seen(option):
    found = confinement.from_info(DEBIAN_NO_LSM, [option])
    assert found.seccomp is None
    assert found.warnings()


def test_a_custom_seccomp_profile_is_named_custom_not_printed():
    found = confinement.from_info(DEBIAN_NO_LSM, ['seccomp={"defaultAction": "x"}'])
    assert found.seccomp == "custom"


def test_apparmor_options_apply_only_where_apparmor_is_loaded():
    assert confinement.from_info(UBUNTU, ["apparmor=my-profile"]).apparmor == (
        "my-profile"
    )
    assert confinement.from_info(UBUNTU, ["apparmor=unconfined"]).apparmor is None
    assert confinement.from_info(DEBIAN_NO_LSM, ["apparmor=my-profile"]).apparmor is (
        None
    )


def test_selinux_labels_disabled_by_security_opt():
    options = ["label=type:svirt_lxc_net_t", "label=disable", "label=level:s0"]
    assert confinement.from_info(FEDORA_REMAPPED, options).selinux is False
    assert confinement.from_info(FEDORA_REMAPPED, options[:1]).selinux is True


def test_other_security_opt_values_change_nothing():
    found = confinement.from_info(UBUNTU, ["no-new-privileges"])
    assert found == confinement.from_info(UBUNTU)


def test_privileged_flavors_are_said_to_escape_confinement():
    found = confinement.from_info(DEBIAN_NO_LSM, privileged_allowed=True)
    assert facts(found.summary())["privileged-flavors"] == "allowed"


def test_security_options_parse_into_names_and_fields():
    assert confinement.parse_security_options(
        ["name=seccomp,profile=default", "name=apparmor", "name=userns", ""]
    ) == {"seccomp": {"profile": "default"}, "apparmor": {}, "userns": {}}
