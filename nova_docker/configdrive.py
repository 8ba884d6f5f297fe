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

"""The config drive of a container: Nova's own metadata tree, as a
directory where cloud-init's ConfigDrive datasource looks for a seed.

A container has no block device to attach, and cloud-init reads a config
drive from ``/var/lib/cloud/seed/config_drive`` as readily as from a disk
labelled ``config-2``.  The tree is Nova's ``InstanceMetadata`` (the same
files libvirt writes to its ISO): ``openstack/<version>/meta_data.json``,
``user_data``, ``network_data.json``, the vendor data, and ``ec2/``.

It is copied through the engine, before the first start, onto a named
volume of the instance's own (``nova-config-drive-<uuid>``), which the
container mounts read-only, as a VM's drive is a read-only disk:
- nothing the container writes can land outside its writable layer, where
  the root-disk limits count it;
- a snapshot or a migration commits the container without its volumes, so
  the drive (its user data, its admin password) never goes into an image.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterable
from typing import Any

from nova.api.metadata import base as instance_metadata
from nova.virt import configdrive

#: Where cloud-init's ConfigDrive datasource looks for a seed directory.
SEED_DIR = "/var/lib/cloud/seed/config_drive"
#: Read-only in their modes too, as on the ISO libvirt writes.
FILE_MODE = 0o444
DIR_MODE = 0o555


def required(instance: Any) -> bool:
    """Whether Nova asks for a drive: the server's ``config_drive``,
    ``force_config_drive`` at its first build, or the image's
    ``img_config_drive=mandatory``."""
    return bool(configdrive.required_by(instance))


def seed_archive(
    instance: Any,
    injected_files: Iterable[tuple[str, bytes | str]],
    network_info: Any,
    admin_password: str | None,
) -> bytes:
    """The drive's files, as a tar to extract at :data:`SEED_DIR`."""
    extra_md = {"admin_pass": admin_password} if admin_password else None
    metadata = instance_metadata.InstanceMetadata(
        instance,
        content=list(injected_files or ()),
        extra_md=extra_md,
        network_info=network_info,
    )
    return tree_archive(metadata.metadata_for_config_drive())


def tree_archive(files: Iterable[tuple[str, bytes | str]]) -> bytes:
    """A tar of ``files`` (path relative to the drive → content) with their
    directories, read-only (pure).  No entry for the drive's own directory,
    whose mode stays the mount point's."""
    out = io.BytesIO()
    made: set[str] = set()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, content in files:
            data = content.encode() if isinstance(content, str) else bytes(content)
            _add_parents(tar, path, made)
            info = tarfile.TarInfo(path)
            info.size, info.mode = len(data), FILE_MODE
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _add_parents(tar: tarfile.TarFile, path: str, made: set[str]) -> None:
    parts = path.split("/")[:-1]
    for depth in range(1, len(parts) + 1):
        directory = "/".join(parts[:depth])
        if directory not in made:
            info = tarfile.TarInfo(directory)
            info.type, info.mode = tarfile.DIRTYPE, DIR_MODE
            tar.addfile(info)
            made.add(directory)
