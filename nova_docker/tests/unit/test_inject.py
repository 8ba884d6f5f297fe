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

import io
import tarfile

import pytest
from nova import exception as nova_exception

from nova_docker import inject


def members(archive: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        return {m.name: m for m in tar}


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("/etc/motd", "etc/motd"),
        ("etc//motd", "etc/motd"),
        ("a/./b", "a/b"),
        ("//etc/motd", "etc/motd"),
        ("./etc/motd", "etc/motd"),
        ("/etc/..motd", "etc/..motd"),
        ("/etc/motd..", "etc/motd.."),
        ("/srv/.hidden", "srv/.hidden"),
        ("/srv/a\\..\\b", "srv/a\\..\\b"),
        ("/srv/caf\u00e9 \u2603", "srv/caf\u00e9 \u2603"),
        ("/srv/" + "n" * 255, "srv/" + "n" * 255),
    ],
)
def test_paths_are_resolved_inside_the_container_root(given, expected):
    assert inject.container_path(given) == expected


@pytest.mark.parametrize(
    "path",
    [
        "../etc/passwd",
        "/a/../../b",
        "a/..",
        "/a/b/..",
        "..",
        "/..",
        "/./../etc",
        "a/b/../../..",
    ],
)
def test_paths_that_climb_out_are_refused(path):
    with pytest.raises(nova_exception.InvalidInput, match="climbs out"):
        inject.container_path(path)


@pytest.mark.parametrize(
    "path",
    [
        "/zz/yy/..\x00/MARK",
        "/etc/passwd\x00.txt",
        "\x00",
        "/a\nb",
        "/a\rb",
        "/a\tb",
        "/etc/\x1b[31mred",
        "/a\x7fb",
        "/a\x85b",
        "/a\x9bb",
        "/a\ud800b",
        "/a\udcffb",
    ],
)
def test_paths_with_control_characters_are_refused(path):
    with pytest.raises(nova_exception.InvalidInput, match="control character"):
        inject.container_path(path)


@pytest.mark.parametrize("path", ["", "/", "//", "///", ".", "./.", "/./"])
def test_paths_that_name_no_file_are_refused(path):
    with pytest.raises(nova_exception.InvalidInput, match="names no file"):
        inject.container_path(path)


@pytest.mark.parametrize("path", ["/etc/", "/etc/.", "etc/motd/", "a/./", "/tmp//"])
def test_paths_that_name_a_directory_are_refused(path):
    # "/etc/." would be a file named "etc": the engine removes a directory
    # that an archived file replaces.
    with pytest.raises(nova_exception.InvalidInput, match="names a directory"):
        inject.container_path(path)


@pytest.mark.parametrize(
    "path", ["/srv/" + "n" * 256, "/srv/" + "\u00e9" * 128, "/a" * 2048]
)
def test_paths_beyond_the_kernels_limits_are_refused(path):
    with pytest.raises(nova_exception.InvalidInput, match="too long"):
        inject.container_path(path)


def test_the_refusal_names_the_path_as_its_repr():
    with pytest.raises(nova_exception.InvalidInput) as raised:
        inject.container_path("/zz/yy/..\x00/MARK")
    assert repr("/zz/yy/..\x00/MARK") in raised.value.format_message()


def test_an_unsafe_path_among_good_ones_gives_no_archive():
    with pytest.raises(nova_exception.InvalidInput):
        inject.files_archive([("/etc/motd", b"hi"), ("/a/..\x00/b", b"x")])


def test_nothing_to_inject_gives_no_archive():
    assert inject.files_archive([], None) is None


def test_archive_holds_only_the_files_and_a_private_ssh_dir():
    archive = inject.files_archive([("/etc/motd", b"hi"), ("/tmp/x", "s")], "key ")
    found = members(archive)
    assert set(found) == {"etc/motd", "tmp/x", "root/.ssh", "root/.ssh/authorized_keys"}
    assert found["root/.ssh"].mode == 0o700
    assert found["root/.ssh/authorized_keys"].mode == 0o600
    assert all(m.isfile() or m.name == "root/.ssh" for m in found.values())
