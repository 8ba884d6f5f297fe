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
    [("/etc/motd", "etc/motd"), ("etc//motd", "etc/motd"), ("a/./b", "a/b")],
)
def test_paths_are_resolved_inside_the_container_root(given, expected):
    assert inject.container_path(given) == expected


@pytest.mark.parametrize("path", ["../etc/passwd", "/a/../../b", "/", "a/.."])
def test_paths_that_climb_out_are_refused(path):
    with pytest.raises(nova_exception.InvalidInput):
        inject.container_path(path)


def test_nothing_to_inject_gives_no_archive():
    assert inject.files_archive([], None) is None


def test_archive_holds_only_the_files_and_a_private_ssh_dir():
    archive = inject.files_archive([("/etc/motd", b"hi"), ("/tmp/x", "s")], "key ")
    found = members(archive)
    assert set(found) == {"etc/motd", "tmp/x", "root/.ssh", "root/.ssh/authorized_keys"}
    assert found["root/.ssh"].mode == 0o700
    assert found["root/.ssh/authorized_keys"].mode == 0o600
    assert all(m.isfile() or m.name == "root/.ssh" for m in found.values())
