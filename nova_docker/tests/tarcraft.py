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

"""Hand-made tar archives, as a hostile tenant would make them.

Members are raw bytes: a header (any format, any PAX records, any type)
followed by its data.  ``tarfile`` writes the headers, since it writes
whatever PAX records and types it is given; nothing here reads them back
through the code under test.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import struct
import tarfile
import zlib
from collections.abc import Mapping

BLOCK = tarfile.BLOCKSIZE
END = bytes(2 * BLOCK)


def member(
    name: str,
    data: bytes = b"",
    kind: bytes = tarfile.REGTYPE,
    linkname: str = "",
    pax: Mapping[str, str] | None = None,
    fmt: int = tarfile.USTAR_FORMAT,
    size: int | None = None,
) -> bytes:
    """One member: header (with ``pax`` records if given) and padded data.

    ``size`` overrides the header's size field (data is written as given).
    """
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    info.size = len(data) if size is None else size
    info.mtime = 0
    if pax is not None:
        info.pax_headers = dict(pax)
        fmt = tarfile.PAX_FORMAT
    header = info.tobuf(fmt, "utf-8", "surrogateescape")
    return header + data + bytes(-len(data) % BLOCK)


def directory(name: str) -> bytes:
    return member(name, kind=tarfile.DIRTYPE)


def symlink(name: str, target: str) -> bytes:
    return member(name, kind=tarfile.SYMTYPE, linkname=target)


def global_pax(records: Mapping[str, str]) -> bytes:
    """A global PAX header (type ``g``) and its records.  Python's tarfile
    applies its records to every later member; Go's reader returns it as an
    entry of its own and applies none of them."""
    return tarfile.TarInfo.create_pax_global_header(dict(records))


def archive(*members: bytes) -> bytes:
    return b"".join(members) + END


@dataclasses.dataclass
class SavedImage:
    """A ``docker save`` tarball taken apart: its members, in order."""

    members: list[tuple[str, bytes]]

    @classmethod
    def parse(cls, tarball: bytes) -> SavedImage:
        found = []
        with tarfile.open(fileobj=io.BytesIO(tarball)) as tar:
            for info in tar:
                data = tar.extractfile(info).read() if info.isfile() else b""
                info.mtime = 0
                raw = info.tobuf(tarfile.USTAR_FORMAT, "utf-8", "strict")
                found.append((info.name, raw + data + bytes(-len(data) % BLOCK)))
        return cls(found)

    def data(self, name: str) -> bytes:
        raw = dict(self.members)[name]
        size = tarfile.TarInfo.frombuf(raw[:BLOCK], "utf-8", "strict").size
        return raw[BLOCK : BLOCK + size]

    @property
    def manifest(self) -> dict:
        return json.loads(self.data("manifest.json"))[0]

    def renamed(self, prefix: str) -> list[bytes]:
        """This image's config and layers under ``prefix``, and a manifest
        entry naming them, for smuggling a second image into another."""
        out = [directory(prefix)]
        for name in [self.manifest["Config"], *self.manifest["Layers"]]:
            out.append(member(f"{prefix}/{name.replace('/', '_')}", self.data(name)))
        return out

    def smuggled_manifest(self, prefix: str, tags: list[str]) -> bytes:
        m = self.manifest
        entry = {
            "Config": f"{prefix}/{m['Config'].replace('/', '_')}",
            "RepoTags": tags,
            "Layers": [f"{prefix}/{name.replace('/', '_')}" for name in m["Layers"]],
        }
        return json.dumps([entry]).encode()

    def pack(self, *extra: bytes, without: tuple[str, ...] = ()) -> bytes:
        kept = [raw for name, raw in self.members if name not in without]
        return archive(*kept, *extra)


def gzip_of_zeros_file(name: str, size: int) -> bytes:
    """A gzip layer holding one file of ``size`` zero bytes, made without
    compressing ``size`` bytes: after a full flush a deflate stream starts
    afresh, so one compressed MiB of zeros can simply be repeated."""
    mib = 1 << 20
    assert size % mib == 0
    deflate = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    header = member(name, size=size)
    prefix = deflate.compress(header) + deflate.flush(zlib.Z_FULL_FLUSH)
    zeros = deflate.compress(bytes(mib)) + deflate.flush(zlib.Z_FULL_FLUSH)
    tail = deflate.compress(END) + deflate.flush()
    crc = zlib.crc32(header)
    for _ in range(size // mib):
        crc = zlib.crc32(bytes(mib), crc)
    crc = zlib.crc32(END, crc)
    total = len(header) + size + len(END)
    return (
        b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
        + prefix
        + zeros * (size // mib)
        + tail
        + struct.pack("<II", crc, total & 0xFFFFFFFF)
    )


def sparse_pax_file(name: str, real_size: int) -> bytes:
    """A PAX 1.0 sparse member of ``real_size`` bytes that holds no data:
    a few hundred bytes on the wire."""
    sparse_map = b"1\n0\n0\n" + bytes(BLOCK - 6)
    pax = {
        "GNU.sparse.major": "1",
        "GNU.sparse.minor": "0",
        "GNU.sparse.name": name,
        "GNU.sparse.realsize": str(real_size),
    }
    return member(f"GNUSparseFile.0/{name}", sparse_map, pax=pax)


def image_tarball(
    layer: bytes, cmd: list[str] | None = None, diff_id: str | None = None
) -> bytes:
    """A ``docker save`` tarball of one image whose one layer is ``layer``.

    ``diff_id`` is the digest of the layer uncompressed; give it for a
    compressed layer (any value, where the load is to be stopped first).
    """
    diff_id = diff_id or "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": cmd or ["/bin/sh"]},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        }
    ).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps(
        [{"Config": config_name, "RepoTags": None, "Layers": ["l/layer.tar"]}]
    ).encode()
    return archive(
        directory("l"),
        member("l/layer.tar", layer),
        member(config_name, config),
        member("manifest.json", manifest),
    )
