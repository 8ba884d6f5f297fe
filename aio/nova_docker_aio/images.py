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

"""The one image builder of the launcher, the benchmarks and the end-to-end
tests: Debian's static busybox in an otherwise empty rootfs, imported into
the engine with a command.  No registry is ever used."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import tarfile
from collections.abc import Mapping
from pathlib import Path

from nova_docker_aio import engine
from nova_docker_aio import host

BUSYBOX = Path("/bin/busybox")
APPLETS = (
    "sh", "echo", "cat", "date", "sleep", "hostname", "ls", "wc", "[", "test",
    "mkdir", "httpd", "nc", "tail", "ping", "ip", "touch", "true", "env", "id",
)  # fmt: skip


def ensure_busybox() -> None:
    result = subprocess.run(
        ["file", "-L", str(BUSYBOX)], capture_output=True, text=True, check=False
    )
    if BUSYBOX.exists() and "static" in result.stdout:
        return
    packages = ["busybox-static"] + ([] if shutil.which("file") else ["file"])
    host.apt_install(packages, why="the locally built images' rootfs")


def rootfs_tar(
    extra_files: Mapping[str, bytes] | None = None,
    applets: tuple[str, ...] = APPLETS,
) -> bytes:
    """A tar of ``/bin/busybox``, links for ``applets``, ``/etc``, ``/root``,
    ``/tmp``, and ``extra_files`` (absolute path -> content; executable when
    it starts with ``#!``).

    The one rootfs builder: the launcher's demo, the benchmarks and every
    test suite make their images from it.
    """
    buf = io.BytesIO()
    directories = (("bin", 0o755), ("etc", 0o755), ("root", 0o700), ("tmp", 0o1777))
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for directory, mode in directories:
            info = tarfile.TarInfo(directory)
            info.type, info.mode = tarfile.DIRTYPE, mode
            tar.addfile(info)
        tar.add(str(BUSYBOX), arcname="bin/busybox")
        for applet in applets:
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
        for path, content in (extra_files or {}).items():
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size = len(content)
            # A script is made to be run.
            info.mode = 0o755 if content.startswith(b"#!") else 0o644
            tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def build(
    repository: str,
    cmd: list[str],
    tag: str | None = None,
    extra_files: Mapping[str, bytes] | None = None,
) -> str:
    """Import a busybox image running ``cmd``; return its ref.

    Without ``tag`` the tag is a digest of what goes in, and an identical
    image already there is used as it is.
    """
    ensure_busybox()
    changes = [f"CMD {json.dumps(cmd)}"]
    if tag is None:
        tag = _digest(changes, extra_files)
    ref = f"{repository}:{tag}"
    if not engine.has_image(ref):
        engine.import_rootfs(rootfs_tar(extra_files), ref, changes)
    return ref


def _digest(changes: list[str], extra_files: Mapping[str, bytes] | None) -> str:
    recipe = hashlib.sha256(
        json.dumps([changes, APPLETS, BUSYBOX.stat().st_size]).encode()
    )
    for path, content in sorted((extra_files or {}).items()):
        recipe.update(path.encode() + b"\0" + hashlib.sha256(content).digest())
    return recipe.hexdigest()[:12]
