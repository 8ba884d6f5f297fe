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

"""The sandbox image's pure parts: what it holds, its tag, its command."""

from __future__ import annotations

import io
import shutil
import tarfile
from pathlib import Path

import pytest

from nova_docker.image import sandbox


def _host_binary(name: str) -> bytes:
    found = shutil.which(name)
    assert found, f"{name} is part of the test environment"
    return Path(found).read_bytes()


def test_the_hosts_static_busybox_is_static_and_a_dynamic_binary_is_not() -> None:
    assert sandbox.is_static_elf(Path(sandbox.BUSYBOX).read_bytes())
    assert not sandbox.is_static_elf(_host_binary("ls"))


@pytest.mark.parametrize(
    "data", [b"", b"#!/bin/sh\necho hi\n", b"\x7fELF", b"\x7fELF\x02\x01" + b"\0" * 20]
)
def test_what_is_not_a_whole_elf_is_not_static(data: bytes) -> None:
    assert not sandbox.is_static_elf(data)


def test_the_image_holds_busybox_alone_executable() -> None:
    archive = sandbox.rootfs_archive(b"binary")
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        files = {m.name: m for m in tar.getmembers() if m.isfile()}
        assert list(files) == ["bin/busybox"]
        assert files["bin/busybox"].mode == 0o755
        assert tar.extractfile(files["bin/busybox"]).read() == b"binary"
        assert all(not m.issym() and not m.islnk() for m in tar.getmembers())


def test_the_tag_follows_the_binary() -> None:
    assert sandbox.digest(b"one") == sandbox.digest(b"one")
    assert sandbox.digest(b"one") != sandbox.digest(b"two")


def test_no_dns_servers_empties_the_resolver_and_some_keep_it() -> None:
    assert sandbox.sandbox_command(())[-1] == "no-dns"
    assert sandbox.sandbox_command(("10.0.0.53",))[-1] == "dns"
    assert sandbox.sandbox_command(())[0] == sandbox.BUSYBOX
