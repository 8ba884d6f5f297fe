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

"""The config drive's archive, and the flavors no engine can run (pure)."""

from __future__ import annotations

import io
import tarfile

from nova_docker import configdrive
from nova_docker.engine import spec


def _members(archive: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        return {m.name: m for m in tar.getmembers()}


def test_the_drive_is_read_only_files_under_their_directories() -> None:
    archive = configdrive.tree_archive(
        [
            ("openstack/latest/meta_data.json", '{"uuid": "u"}'),
            ("openstack/latest/user_data", b"#!/bin/sh\n"),
            ("ec2/latest/meta-data.json", "{}"),
        ]
    )
    members = _members(archive)
    assert sorted(members) == [
        "ec2", "ec2/latest", "ec2/latest/meta-data.json",
        "openstack", "openstack/latest", "openstack/latest/meta_data.json",
        "openstack/latest/user_data",
    ]  # fmt: skip
    # No entry for the drive's own directory, nor anything above it.
    assert all(not name.startswith(("/", ".")) for name in members)
    for name, member in members.items():
        expected = configdrive.DIR_MODE if member.isdir() else configdrive.FILE_MODE
        assert member.mode == expected, name
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        assert tar.extractfile("openstack/latest/user_data").read() == b"#!/bin/sh\n"


def test_a_flavor_an_engine_can_run_has_no_problems() -> None:
    assert spec.flavor_problems(6, {}) == []
    assert (
        spec.flavor_problems(64, {"docker:pids_limit": "8", "hw:cpu_policy": "x"}) == []
    )


def test_too_little_memory_and_unknown_driver_specs_are_named() -> None:
    problems = spec.flavor_problems(4, {"docker:pid_limit": "8", "docker:x": "1"})
    assert len(problems) == 2
    assert "4 MB is below the Docker Engine's minimum of 6 MB" in problems[0]
    assert "docker:pid_limit, docker:x" in problems[1]
    assert "docker:pids_limit" in problems[1]


def test_no_block_device_is_no_problem() -> None:
    assert spec.block_device_problems(0, [0]) == []


def test_each_kind_of_block_device_is_named() -> None:
    problems = spec.block_device_problems(2, [1, 0, 3])
    assert problems == [
        "2 volume(s) requested: nova-docker attaches no volumes",
        "ephemeral disks of 1, 3 GB requested: a container has no disks",
    ]


def test_accelerators_are_named_and_none_is_no_problem() -> None:
    assert spec.accelerator_problems(0) == []
    assert spec.accelerator_problems(2) == [
        "2 accelerator(s) requested: nova-docker attaches no devices"
    ]
