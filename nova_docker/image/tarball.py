"""Check and re-tag a ``docker save`` tarball while it streams past.

Glance image bytes are untrusted.  Before the engine sees them we make sure
they are one image's worth of a well-formed ``docker save`` archive, and we
rewrite ``manifest.json`` so the loaded image is tagged by its Glance UUID and
by nothing else: a tarball saved as ``busybox:latest`` must not re-point the
host's own ``busybox:latest``.  Entries stream through one at a time; only the
small JSON metadata files are held in memory, and those are size-capped.
"""

from __future__ import annotations

import io
import json
import posixpath
import tarfile
from typing import Any
from typing import BinaryIO

from nova_docker.exception import InvalidImageTarball

MANIFEST = "manifest.json"
OCI_INDEX = "index.json"
# The pre-1.10 tag file; it would re-create the tarball's own tags.
LEGACY_TAGS = "repositories"
METADATA_MAX_BYTES = 1 << 20
# Annotations through which a containerd-backed engine names loaded images.
_NAME_ANNOTATIONS = ("io.containerd.image.name", "org.opencontainers.image.ref.name")
_STREAM_BUFFER = 1 << 20
# A tar archive ends with two zero blocks.
_END_OF_ARCHIVE = 2 * tarfile.BLOCKSIZE


def retag(source: BinaryIO, target: BinaryIO, ref: str) -> None:
    """Copy a ``docker save`` tarball from ``source`` to ``target``.

    The copy names exactly one image, ``ref``.  Raises
    :class:`InvalidImageTarball` naming the problem; ``target`` then holds an
    unfinished archive that the engine will refuse.
    """
    try:
        _copy(source, target, ref)
    except (tarfile.TarError, EOFError) as e:
        raise InvalidImageTarball(
            reason=f"the image data is truncated or is not a tar archive ({e})"
        ) from e


def _copy(source: BinaryIO, target: BinaryIO, ref: str) -> None:
    counted = _CountingReader(source)
    seen: set[str] = set()
    manifest = None
    archive_end = 0
    with (
        tarfile.open(fileobj=counted, mode="r|", bufsize=_STREAM_BUFFER) as tin,
        tarfile.open(fileobj=target, mode="w|", bufsize=_STREAM_BUFFER) as tout,
    ):
        # Copy layer data in large blocks, not tarfile's default 16 KiB.
        tout.copybufsize = _STREAM_BUFFER
        for member in tin:
            name = _safe_name(member)
            seen.add(name)
            archive_end = member.offset_data + _padded(member.size)
            if name == LEGACY_TAGS:
                continue
            if name == MANIFEST:
                manifest = _parse_manifest(_read_small(tin, member))
                _add_bytes(tout, member, _dump([{**manifest, "RepoTags": [ref]}]))
            elif name == OCI_INDEX:
                index = _untag_index(_read_small(tin, member))
                _add_bytes(tout, member, _dump(index))
            elif member.isfile():
                tout.addfile(member, tin.extractfile(member))
            else:
                tout.addfile(member)
        # Read to the very end before finishing the copy: the producer may
        # still fail (Glance verifies signatures after the last byte), and
        # only the total length tells a clean end from a cut at a header.
        counted.drain()
        if counted.total < archive_end + _END_OF_ARCHIVE:
            raise InvalidImageTarball(
                reason="the image data is truncated: the archive has no end marker"
            )
        if manifest is None:
            raise InvalidImageTarball(
                reason="not a docker save tarball: it has no manifest.json"
            )
        _check_complete(manifest, seen)


class _CountingReader:
    def __init__(self, source: BinaryIO) -> None:
        self._source = source
        self.total = 0

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size)
        self.total += len(data)
        return data

    def drain(self) -> None:
        while self.read(_STREAM_BUFFER):
            pass


def _padded(size: int) -> int:
    return -(-size // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE


def _safe_name(member: tarfile.TarInfo) -> str:
    """The member's normalised name; refuses anything that leaves the archive."""
    if not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
        raise InvalidImageTarball(
            reason=f"unexpected special file {member.name!r} in the image tarball"
        )
    name = _inside(member.name, member.name)
    if member.issym():
        _inside(posixpath.join(posixpath.dirname(name), member.linkname), member.name)
    elif member.islnk():
        _inside(member.linkname, member.name)
    return name


def _inside(path: str, member_name: str) -> str:
    normal = posixpath.normpath(path)
    if path.startswith("/") or normal == ".." or normal.startswith("../"):
        raise InvalidImageTarball(
            reason=f"unsafe path {member_name!r} in the image tarball"
        )
    return normal


def _read_small(tin: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    if member.size > METADATA_MAX_BYTES:
        raise InvalidImageTarball(
            reason=f"{member.name} is implausibly large ({member.size} bytes)"
        )
    return tin.extractfile(member).read()


def _parse_manifest(data: bytes) -> dict[str, Any]:
    try:
        entries = json.loads(data)
    except ValueError as e:
        raise InvalidImageTarball(reason=f"manifest.json is not JSON: {e}") from e
    if not isinstance(entries, list) or not entries:
        raise InvalidImageTarball(
            reason="the tarball contains no image (manifest.json lists none)"
        )
    if len(entries) != 1:
        raise InvalidImageTarball(
            reason=f"the tarball contains {len(entries)} images; "
            "a Glance image must hold exactly one"
        )
    entry = entries[0]
    if (
        not isinstance(entry, dict)
        or not isinstance(entry.get("Config"), str)
        or not isinstance(entry.get("Layers"), list)
    ):
        raise InvalidImageTarball(
            reason="manifest.json does not describe an image (no Config/Layers)"
        )
    return entry


def _untag_index(data: bytes) -> dict[str, Any]:
    try:
        index = json.loads(data)
    except ValueError as e:
        raise InvalidImageTarball(reason=f"index.json is not JSON: {e}") from e
    for descriptor in index.get("manifests") or []:
        annotations = descriptor.get("annotations") or {}
        for key in _NAME_ANNOTATIONS:
            annotations.pop(key, None)
    return index


def _check_complete(manifest: dict[str, Any], seen: set[str]) -> None:
    for path in [manifest["Config"], *manifest["Layers"]]:
        if not isinstance(path, str) or posixpath.normpath(path) not in seen:
            raise InvalidImageTarball(
                reason=f"manifest.json refers to {path!r}, "
                "which is missing from the tarball"
            )


def _dump(document: Any) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


def _add_bytes(tout: tarfile.TarFile, member: tarfile.TarInfo, data: bytes) -> None:
    member.size = len(data)
    tout.addfile(member, io.BytesIO(data))
