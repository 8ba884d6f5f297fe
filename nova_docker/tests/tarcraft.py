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
import io
import json
import tarfile
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
