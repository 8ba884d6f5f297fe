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

"""The image every instance's network sandbox runs: the driver's own, built
here from a static busybox with no registry, or an operator's.

Either way it is pinned by image ID once found, so that a re-tag on the
engine cannot swap what sandboxes run.  The driver's own image is tagged
``nova-sandbox:<digest>`` (never pruned by the image cache, which only
prunes Glance images) and holds one file, ``/bin/busybox``.
"""

from __future__ import annotations

import hashlib
import io
import struct
import tarfile
import threading
from pathlib import Path

from nova.i18n import _
from oslo_log import log as logging

from nova_docker import exception
from nova_docker.engine import client as engine_client
from nova_docker.engine import naming

LOG = logging.getLogger(__name__)

BUSYBOX = "/bin/busybox"
#: The sandbox's one process: an idle shell that answers SIGTERM at once.
#: Its first argument ``no-dns`` empties ``/etc/resolv.conf``, which the
#: instance shares: a subnet without DNS servers must not hand the
#: instance the host's own resolvers (the engine's fallback).
SANDBOX_SCRIPT = (
    '[ "$1" = no-dns ] && : > /etc/resolv.conf; '
    "trap 'exit 0' TERM INT; "
    f"while :; do {BUSYBOX} sleep 3600 & wait $!; done"
)
#: Prints the namespace's ``/proc/net/dev``, a separator, then one
#: ``<interface> <MAC>`` line each: what diagnostics report per NIC.
NIC_READER_SPLIT = "-- addresses --"
NIC_READER = (
    BUSYBOX, "sh", "-c",
    f"{BUSYBOX} cat /proc/net/dev; echo '{NIC_READER_SPLIT}'; "
    "for i in /sys/class/net/*; do "
    f'echo "${{i##*/}} $({BUSYBOX} cat $i/address)"; done',
)  # fmt: skip
#: Bumped whenever the image's content or script changes, so a new tag.
LAYOUT_VERSION = b"1"
_PT_INTERP = 3
#: An ELF64 header's size; an ELF32 one is smaller.
_ELF_HEADER_BYTES = 64


def sandbox_command(nameservers: tuple[str, ...]) -> tuple[str, ...]:
    """The driver's own sandbox's command for an instance (pure)."""
    return (BUSYBOX, "sh", "-c", SANDBOX_SCRIPT, "sandbox",
            "dns" if nameservers else "no-dns")  # fmt: skip


def is_static_elf(data: bytes) -> bool:
    """Whether ``data`` is an ELF executable with no interpreter (pure):
    a dynamic busybox would not run in an image that holds nothing else."""
    if len(data) < _ELF_HEADER_BYTES or data[:4] != b"\x7fELF":
        return False
    if data[4] not in (1, 2) or data[5] not in (1, 2):
        return False
    order = "<" if data[5] == 1 else ">"
    try:
        if data[4] == 2:
            (phoff,) = struct.unpack_from(order + "Q", data, 0x20)
            phentsize, phnum = struct.unpack_from(order + "HH", data, 0x36)
        else:
            (phoff,) = struct.unpack_from(order + "I", data, 0x1C)
            phentsize, phnum = struct.unpack_from(order + "HH", data, 0x2A)
        kinds = [
            struct.unpack_from(order + "I", data, phoff + index * phentsize)[0]
            for index in range(phnum)
        ]
    except struct.error:
        return False
    return bool(kinds) and _PT_INTERP not in kinds


def rootfs_archive(busybox: bytes) -> bytes:
    """The image's one layer: ``/bin/busybox`` and nothing else (pure)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for directory in ("bin", "etc"):
            info = tarfile.TarInfo(directory)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        info = tarfile.TarInfo(BUSYBOX.lstrip("/"))
        info.size, info.mode = len(busybox), 0o755
        tar.addfile(info, io.BytesIO(busybox))
    return out.getvalue()


def digest(busybox: bytes) -> str:
    """The tag of the image built from ``busybox`` (pure)."""
    return hashlib.sha256(LAYOUT_VERSION + busybox).hexdigest()[:16]


class SandboxImage:
    """Finds or builds the sandbox image once, and remembers its ID.

    :param configured: ``[docker] sandbox_image``; None builds our own.
    :param busybox: ``[docker] sandbox_busybox``.
    """

    def __init__(
        self,
        engine: engine_client.Engine,
        host: str,
        configured: str | None,
        busybox: str,
    ) -> None:
        self._engine = engine
        self._host = host
        self._configured = configured
        self._busybox = Path(busybox)
        self._lock = threading.Lock()
        self._id: str | None = None

    @property
    def own(self) -> bool:
        """Whether sandboxes run the driver's own image (and script)."""
        return not self._configured

    def ensure(self) -> str:
        """The image ID sandboxes are created from.

        Raises SandboxUnavailable naming why there is none.
        """
        with self._lock:
            if self._id is None:
                self._id = self._find_or_build()
            return self._id

    def forget(self) -> None:
        """The image left the engine (an operator's ``docker rmi -f``):
        find or build it again at the next :meth:`ensure`."""
        with self._lock:
            self._id = None

    def busybox(self) -> bytes:
        """The static busybox sandboxes are built from (a rescue brings it
        into its container); SandboxUnavailable says why there is none."""
        return self._read_busybox()

    def _find_or_build(self) -> str:
        if self._configured:
            return self._image_id(
                self._configured,
                _("is not in the engine (the driver never pulls); load it first"),
            )
        busybox = self._read_busybox()
        ref = naming.sandbox_image_ref(digest(busybox))
        if not self._engine.image_exists(ref):
            LOG.info(
                "Building the network sandbox image %s from %s", ref, self._busybox
            )
            try:
                self._engine.import_image(
                    rootfs_archive(busybox),
                    ref,
                    {naming.SANDBOX_HOST_LABEL: self._host},
                )
            except exception.EngineError as e:
                raise exception.SandboxUnavailable(reason=e.format_message()) from e
        return self._image_id(ref, _("vanished as it was built"))

    def _image_id(self, ref: str, missing: str) -> str:
        try:
            return str(self._engine.inspect_image(ref)["Id"])
        except exception.ImageNotCached as e:
            raise exception.SandboxUnavailable(
                reason=_("image %(ref)s %(missing)s") % {"ref": ref, "missing": missing}
            ) from e

    def _read_busybox(self) -> bytes:
        try:
            data = self._busybox.read_bytes()
        except OSError as e:
            raise exception.SandboxUnavailable(
                reason=_(
                    "cannot read %(path)s (install busybox-static, or set "
                    "[docker] sandbox_busybox or sandbox_image): %(error)s"
                )
                % {"path": self._busybox, "error": e.strerror}
            ) from e
        if not is_static_elf(data):
            raise exception.SandboxUnavailable(
                reason=_(
                    "%s is not a statically linked executable (install "
                    "busybox-static, or set [docker] sandbox_busybox)"
                )
                % self._busybox
            )
        return data
