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

from __future__ import annotations

import pytest
from nova import exception as nova_exception

from nova_docker.engine import spec


def make_spec(**overrides) -> spec.ContainerSpec:
    values = dict(
        name="nova-x",
        image="nova-glance:x",
        hostname="h",
        labels={"a": "b"},
        memory_bytes=64 * 1024 * 1024,
        vcpus=2,
        pids_limit=100,
    )
    values.update(overrides)
    return spec.ContainerSpec(**values)


def test_vcpus_become_a_cfs_quota_and_memory_a_cap_without_swap():
    host = make_spec().host_config_kwargs()
    assert host["cpu_quota"] == 200_000
    assert host["cpu_period"] == 100_000
    assert host["cpu_shares"] == 2048
    assert host["mem_limit"] == host["memswap_limit"] == 64 * 1024 * 1024


def test_defaults_are_unprivileged_networkless_and_never_restarted():
    host = make_spec().host_config_kwargs()
    assert host["privileged"] is False
    assert host["security_opt"] == ["no-new-privileges:true"]
    assert host["network_mode"] == "none"
    assert host["restart_policy"] == {"Name": "no"}
    assert host["cap_drop"] is None
    assert host["log_config"] == {
        "Type": "local",
        "Config": {
            "mode": "blocking",
            "max-size": "10m",
            "max-file": "2",
            "compress": "false",
        },
    }


def test_create_kwargs_keep_command_none_for_the_image_default():
    kwargs = make_spec().create_kwargs()
    assert kwargs["command"] is None
    assert kwargs["labels"] == {"a": "b"}
    assert make_spec(command=("a", "b")).create_kwargs()["command"] == ["a", "b"]


def test_os_command_line_is_split_like_a_shell():
    assert spec.command_for("img", "sh -c 'echo hi there'", {}) == (
        "sh",
        "-c",
        "echo hi there",
    )


def test_unparseable_os_command_line_is_refused():
    with pytest.raises(nova_exception.ImageUnacceptable, match="cannot be parsed"):
        spec.command_for("img", "sh -c 'unterminated", {"Cmd": ["x"]})


def test_image_without_cmd_or_entrypoint_is_refused():
    with pytest.raises(nova_exception.ImageUnacceptable, match="neither CMD"):
        spec.command_for("img", None, {"Cmd": None, "Entrypoint": None})


def test_image_command_is_kept_when_not_overridden():
    assert spec.command_for("img", None, {"Cmd": ["sh"]}) is None
    assert spec.command_for("img", "", {"Entrypoint": ["init"]}) is None


def test_metadata_keys_that_are_not_variable_names_are_skipped():
    env, skipped = spec.environment_from_metadata(
        {"GOOD_1": "x", "1bad": "y", "with-dash": "z", "_ok": 5}
    )
    assert env == {"GOOD_1": "x", "_ok": "5"}
    assert skipped == ["1bad", "with-dash"]


def test_privileged_needs_both_the_flavor_and_the_operator():
    assert spec.privileged_requested({}, allowed=False) is False
    assert spec.privileged_requested({"docker:privileged": "true"}, True) is True
    with pytest.raises(nova_exception.InvalidInput, match="allow_privileged"):
        spec.privileged_requested({"docker:privileged": "True"}, allowed=False)


@pytest.mark.parametrize("raw", ["0", "-3", "many"])
def test_pids_limit_extra_spec_must_be_positive(raw):
    with pytest.raises(nova_exception.InvalidInput, match="positive integer"):
        spec.pids_limit_for({"docker:pids_limit": raw}, 10)


def test_pids_limit_extra_spec_overrides_the_default():
    assert spec.pids_limit_for({}, 10) == 10
    assert spec.pids_limit_for({"docker:pids_limit": "25"}, 10) == 25


def test_hostname_is_cut_to_63_characters_and_falls_back():
    assert spec.hostname_for("a" * 70, "nova-x") == "a" * 63
    assert spec.hostname_for(None, "nova-x") == "nova-x"
    assert spec.hostname_for("web-", "nova-x") == "web"


SECOND = 1_000_000_000
IMAGE_CHECK = {"Test": ["CMD-SHELL", "true"], "Interval": 1, "Timeout": 1, "Retries": 3}


def test_containers_are_created_with_healthchecks_off_by_default():
    assert make_spec().create_kwargs()["healthcheck"] == {"test": ["NONE"]}


@pytest.mark.parametrize(
    "image_check",
    [None, {}, IMAGE_CHECK, {"Test": ["NONE"]}],
)
def test_image_healthcheck_is_off_unless_the_operator_allows_it(image_check):
    assert spec.healthcheck_for(image_check, False, 30) == {"test": ["NONE"]}


def test_allowed_image_healthcheck_is_kept_with_its_durations_raised():
    check = spec.healthcheck_for(IMAGE_CHECK, allowed=True, min_interval=30)
    assert check == {
        "test": ["CMD-SHELL", "true"],
        "interval": 30 * SECOND,
        "timeout": 30 * SECOND,
    }


def test_allowed_image_healthcheck_keeps_durations_above_the_floor():
    slow = {"Test": ["CMD", "true"], "Interval": 600 * SECOND, "Timeout": 45 * SECOND}
    check = spec.healthcheck_for(slow, allowed=True, min_interval=30)
    assert check["interval"] == 600 * SECOND
    assert check["timeout"] == 45 * SECOND


def test_unset_durations_mean_the_engines_30s_and_are_raised_past_it():
    check = spec.healthcheck_for({"Test": ["CMD", "true"]}, True, min_interval=60)
    assert check["interval"] == check["timeout"] == 60 * SECOND
    check = spec.healthcheck_for({"Test": ["CMD", "true"]}, True, min_interval=5)
    assert check["interval"] == check["timeout"] == 30 * SECOND


def test_a_start_period_the_image_sets_is_raised_and_none_is_added():
    with_period = {**IMAGE_CHECK, "StartPeriod": 1}
    assert spec.healthcheck_for(with_period, True, 30)["start_period"] == 30 * SECOND
    assert "start_period" not in spec.healthcheck_for(IMAGE_CHECK, True, 30)


def test_an_image_healthcheck_with_a_start_interval_stays_off():
    # The SDK cannot send a start interval; the engine would take the image's.
    quick_start = {**IMAGE_CHECK, "StartPeriod": SECOND, "StartInterval": 1}
    assert spec.healthcheck_for(quick_start, True, 30) == {"test": ["NONE"]}


@pytest.mark.parametrize("image_check", [None, {}, {"Test": []}, {"Test": ["NONE"]}])
def test_an_image_without_a_healthcheck_gets_none_even_when_allowed(image_check):
    assert spec.healthcheck_for(image_check, True, 30) == {"test": ["NONE"]}


def test_healthcheck_results_are_not_shared_between_containers():
    first = spec.healthcheck_for(None, False, 30)
    first["test"].append("x")
    assert spec.healthcheck_for(None, False, 30) == {"test": ["NONE"]}
    assert make_spec().healthcheck == {"test": ["NONE"]}
