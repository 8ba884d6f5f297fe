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

"""A strict streaming tar reader, and a writer of plain ustar headers (pure).

Tar has many dialects (v7, ustar, GNU, PAX) and readers disagree at their
edges: Python's ``tarfile`` and the engine's Go reader name a member
differently when a PAX record carries ``GNU.sparse.name``, and see different
members when a PAX ``size`` hides headers in a member's data.  An archive
two readers see differently can smuggle a second manifest past any check.

So the reader accepts only what a ``docker save`` needs (regular files,
directories, symbolic links, and the long-name extensions that carry their
names) and refuses every other header type and PAX key, naming the member.
What leaves this module is never the input's headers: :class:`TarWriter`
writes fresh ustar headers with name, type, size and mode only, which every
reader reads alike.
"""

from __future__ import annotations

import dataclasses
import enum
import tarfile
from collections.abc import Iterator
from typing import BinaryIO

from nova_docker.exception import InvalidImageTarball

BLOCK = tarfile.BLOCKSIZE
#: Slices in which member data passes through; large, so layer bytes are
#: copied once per megabyte, not once per block.
DATA_SLICE = 1 << 20
#: Extension records (PAX, GNU long names) are tiny in any honest archive.
EXTENSION_MAX_BYTES = 64 * 1024
_ZERO_BLOCK = bytes(BLOCK)
_USTAR_SIZE_LIMIT = 8**11
#: PAX keys whose meaning every reader agrees on.  Anything else (above all
#: ``GNU.sparse.*``, which Python and Go read differently) is refused.
PAX_KEYS_ALLOWED = frozenset(
    {"path", "linkpath", "size", "mtime", "atime", "ctime"}
    | {"uid", "gid", "uname", "gname"}
)
_POSIX_MAGIC = b"ustar\x0000"
_GNU_MAGIC = b"ustar  \x00"
_V7_MAGIC = bytes(8)


class Kind(enum.Enum):
    FILE = "file"
    DIRECTORY = "directory"
    SYMLINK = "symbolic link"


_KINDS = {
    b"0": Kind.FILE,
    b"\x00": Kind.FILE,
    b"5": Kind.DIRECTORY,
    b"2": Kind.SYMLINK,
}
_REFUSED_KINDS = {
    b"1": "a hard link",
    b"3": "a character device",
    b"4": "a block device",
    b"6": "a FIFO",
    b"7": "a contiguous file",
    b"g": "a global PAX header",
    b"S": "a GNU sparse file",
    b"D": "a GNU directory dump",
    b"M": "a GNU multi-volume part",
    b"V": "a GNU volume label",
}
_EXTENSIONS = (b"x", b"L", b"K")


@dataclasses.dataclass(frozen=True)
class Member:
    """One archive member as this reader understood it; ``name`` is raw."""

    name: str
    kind: Kind
    size: int
    linkname: str = ""


def refuse(reason: str) -> InvalidImageTarball:
    return InvalidImageTarball(reason=f"the image tarball is refused: {reason}")


class TarReader:
    """Members of an archive read from ``source``, one at a time.

    After each member is yielded, its data must be consumed with
    :meth:`data` or :meth:`read_small` (or is skipped) before the next.
    """

    def __init__(self, source: BinaryIO) -> None:
        self._source = source
        # Member data is taken as the source holds it (a buffered reader's
        # or a pipe's ``read1``), not joined into slices of a fixed size.
        self._read_some = getattr(source, "read1", source.read)
        #: Bytes consumed so far, for messages and the end-of-archive check.
        self.offset = 0
        self._pending = 0

    def members(self) -> Iterator[Member]:
        while True:
            self._skip_pending()
            member = self._next_member()
            if member is None:
                return
            self._pending = member.size
            yield member

    def data(self) -> Iterator[bytes]:
        """The current member's data, in slices; then its padding."""
        size = left = self._pending
        self._pending = 0
        while left:
            chunk = self._read_some(min(left, DATA_SLICE))
            if not chunk:
                raise self._truncated("member data")
            left -= len(chunk)
            self.offset += len(chunk)
            yield chunk
        self._read(_padding(size), "member padding")

    def read_small(self, limit: int, name: str) -> bytes:
        if self._pending > limit:
            raise refuse(f"{name} is implausibly large ({self._pending} bytes)")
        return b"".join(self.data())

    def drain_trailer(self) -> None:
        """Read the rest of the stream; only zero padding may follow the end
        marker (anything else is data some reader could still take)."""
        while chunk := self._source.read(DATA_SLICE):
            self.offset += len(chunk)
            if chunk.count(0) != len(chunk):
                raise refuse("there is data after the end-of-archive marker")

    # -- internals --------------------------------------------------------

    def _skip_pending(self) -> None:
        if self._pending:
            for _chunk in self.data():
                pass

    def _read(self, size: int, what: str) -> bytes:
        parts, left = [], size
        while left:
            chunk = self._source.read(left)
            if not chunk:
                raise self._truncated(what)
            parts.append(chunk)
            left -= len(chunk)
            self.offset += len(chunk)
        return b"".join(parts)

    def _truncated(self, what: str) -> InvalidImageTarball:
        return InvalidImageTarball(
            reason=f"the image data is truncated (in {what} at byte {self.offset})"
        )

    def _next_member(self) -> Member | None:
        extensions: dict[bytes, bytes] = {}
        while True:
            block = self._read(BLOCK, "a header")
            if block == _ZERO_BLOCK:
                if self._read(BLOCK, "the end-of-archive marker") != _ZERO_BLOCK:
                    raise refuse(f"a lone zero block at byte {self.offset - BLOCK}")
                return None
            header = _Header.parse(block, self.offset - BLOCK)
            if header.typeflag not in _EXTENSIONS:
                return header.member(extensions)
            if header.typeflag in extensions:
                raise refuse(f"two {header.typeflag!r} headers precede one member")
            if header.size > EXTENSION_MAX_BYTES:
                raise refuse(f"an extension header of {header.size} bytes")
            self._pending = header.size
            extensions[header.typeflag] = b"".join(self.data())


def _padding(size: int) -> int:
    return -size % BLOCK


@dataclasses.dataclass(frozen=True)
class _Header:
    name: str
    typeflag: bytes
    size: int
    linkname: str

    @classmethod
    def parse(cls, block: bytes, offset: int) -> _Header:
        check_checksum(block, offset)
        magic = block[257:265]
        if magic not in (_POSIX_MAGIC, _GNU_MAGIC, _V7_MAGIC):
            raise refuse(f"an unknown tar header format at byte {offset}")
        name = _text(block[0:100])
        if magic == _POSIX_MAGIC and block[345] != 0:
            name = _text(block[345:500]) + "/" + name
        return cls(
            name=name,
            typeflag=block[156:157],
            size=parse_number(block[124:136], name),
            linkname=_text(block[157:257]),
        )

    def member(self, extensions: dict[bytes, bytes]) -> Member:
        pax = _pax_records(extensions.get(b"x"), self.name)
        name = _chosen(pax, "path", extensions.get(b"L"), self.name)
        linkname = _chosen(pax, "linkpath", extensions.get(b"K"), self.linkname)
        kind = self._kind(name)
        size = _pax_size(pax, name) if "size" in pax else self.size
        if kind is not Kind.FILE and size:
            raise refuse(f"{kind.value} {name!r} declares {size} bytes of data")
        _check_name(name)
        if kind is Kind.SYMLINK:
            _check_name(linkname)
        return Member(name=name, kind=kind, size=size, linkname=linkname)

    def _kind(self, name: str) -> Kind:
        if self.typeflag in _REFUSED_KINDS:
            raise refuse(f"{name!r} is {_REFUSED_KINDS[self.typeflag]}")
        kind = _KINDS.get(self.typeflag)
        if kind is None:
            raise refuse(f"{name!r} has the unknown type {self.typeflag!r}")
        if kind is Kind.FILE and name.endswith("/"):
            # v7 archives mark directories this way; readers disagree on it.
            raise refuse(f"regular file {name!r} has a directory's name")
        return kind


def check_checksum(block: bytes, offset: int) -> None:
    """Refuses a header block whose checksum is wrong, as every reader does."""
    stored = block[148:156]
    unsigned = sum(block[:148]) + 8 * 32 + sum(block[156:])
    # Some old writers summed signed chars; Go and Python accept both.
    high = sum(1 for b in block[:148] + block[156:] if b > 127)
    signed = unsigned - 256 * high
    try:
        expected = int(stored.replace(b"\x00", b" ").strip() or b"-1", 8)
    except ValueError:
        expected = -1
    if expected not in (unsigned, signed):
        raise InvalidImageTarball(
            reason="the image data is not a tar archive "
            f"(bad header checksum at byte {offset})"
        )


def parse_number(field: bytes, name: str) -> int:
    """A numeric header field: octal, or GNU's base-256 for large values."""
    if field[0] & 0x80:
        if field[0] != 0x80:
            raise refuse(f"{name!r} has a negative or oversized number")
        return int.from_bytes(field[1:], "big")
    text = field.replace(b"\x00", b" ").strip()
    if text and not all(48 <= b <= 55 for b in text):
        raise refuse(f"{name!r} has a malformed number {field!r}")
    return int(text or b"0", 8)


def _text(field: bytes) -> str:
    raw = field.split(b"\x00", 1)[0]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise refuse(f"a name that is not UTF-8: {raw!r}") from None


def _check_name(name: str) -> None:
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise refuse(f"the name {name!r} holds control characters")


def _chosen(pax: dict[str, str], key: str, gnu: bytes | None, plain: str) -> str:
    """The one name a PAX record, a GNU long-name header or the header
    itself gives; two extensions naming one member are refused."""
    if gnu is not None and key in pax:
        raise refuse(f"{plain!r} is named by both a GNU and a PAX header")
    if key in pax:
        return pax[key]
    return _text(gnu) if gnu is not None else plain


def _pax_records(data: bytes | None, name: str) -> dict[str, str]:
    records: dict[str, str] = {}
    while data:
        length_text = data.split(b" ", 1)[0]
        length = int(length_text) if length_text.isdigit() else -1
        if not len(length_text) + 3 <= length <= len(data):
            raise refuse(f"a malformed PAX header before {name!r}")
        record, data = data[:length], data[length:]
        key, sep, value = record[len(length_text) + 1 : -1].partition(b"=")
        if not sep or record[-1:] != b"\n" or b"\x00" in record:
            raise refuse(f"a malformed PAX header before {name!r}")
        key_text = key.decode("utf-8", "replace")
        if key_text not in PAX_KEYS_ALLOWED:
            raise refuse(f"the PAX key {key_text!r} on {name!r} is not accepted")
        if key_text in records:
            raise refuse(f"the PAX key {key_text!r} is repeated on {name!r}")
        records[key_text] = _text(value)
    return records


def _pax_size(pax: dict[str, str], name: str) -> int:
    if not pax["size"].isdigit():
        raise refuse(f"{name!r} has a malformed PAX size {pax['size']!r}")
    return int(pax["size"])


class TarWriter:
    """Writes an archive of fresh ustar headers: name, type, size, mode.

    Owner, times and every extension record of the input are dropped; a
    name that does not fit ustar's fields is refused rather than carried in
    an extension header some reader might read differently.
    """

    def __init__(self, target: BinaryIO) -> None:
        self._target = target
        self._written = 0

    def directory(self, name: str) -> None:
        self._header(name, tarfile.DIRTYPE, 0, 0o755)

    def file(self, name: str, size: int, chunks: Iterator[bytes]) -> None:
        self._header(name, tarfile.REGTYPE, size, 0o644)
        written = 0
        for chunk in chunks:
            written += len(chunk)
            self._target.write(chunk)
        if written != size:
            raise refuse(f"{name!r} held {written} bytes, not {size}")
        self._target.write(bytes(_padding(size)))

    def file_bytes(self, name: str, data: bytes) -> None:
        self.file(name, len(data), iter((data,)))

    def close(self) -> None:
        self._target.write(bytes(2 * BLOCK))

    def _header(self, name: str, typeflag: bytes, size: int, mode: int) -> None:
        info = tarfile.TarInfo(name)
        info.type, info.size, info.mode, info.mtime = typeflag, size, mode, 0
        # ustar's size field ends at 8 GiB; a larger layer's size goes in
        # base-256 (GNU's number form, which every reader decodes alike).
        fmt = tarfile.USTAR_FORMAT if size < _USTAR_SIZE_LIMIT else tarfile.GNU_FORMAT
        try:
            block = info.tobuf(fmt, "utf-8", "strict")
        except ValueError as e:
            raise refuse(f"{name!r} cannot be written as a ustar member: {e}") from e
        if len(block) != BLOCK:
            raise refuse(f"the name {name!r} is too long for a ustar member")
        self._target.write(block)
