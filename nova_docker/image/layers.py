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

"""What an image's layers will cost the engine's disk, counted in passing.

A layer is a tar archive the engine unpacks onto its storage.  Its size on
the wire says little: a sparse entry of a few blocks unpacks to its full
"real size" (the engine writes the holes as zeros), and a compressed layer
to whatever its stream inflates to.  So each layer's bytes are walked as
they stream past: decompressed in bounded slices, its tar headers read the
way the engine's Go reader reads them, and every entry charged at the size
it will have on disk.  The first charge past the limit stops the load,
before the engine has unpacked anything.  Pure: no I/O, no CONF.

A layer is charged the larger of its bytes on the wire and what it expands
to.  ``docker load`` first stores the archive's bytes in the engine's data
root, then unpacks each layer from there, so a layer of many empty gzip
members (megabytes on the wire, nothing inside) costs the engine its wire
size.  The engine's peak during a load is therefore about the archive plus
what it expands to, each held to the limit; once loaded, the archive's copy
is gone and what the image expands to remains.
"""

from __future__ import annotations

import bz2
import dataclasses
import lzma
import zlib
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator

from nova_docker.exception import InvalidImageTarball
from nova_docker.image import tarstream
from nova_docker.image.tarstream import refuse

BLOCK = tarstream.BLOCK
#: Charged for every entry besides its data: an inode and a block, at least,
#: so a layer of a million empty files is not free.
ENTRY_OVERHEAD = 4096
#: Decompressed output is produced in slices of at most this many bytes.
INFLATE_SLICE = 1 << 20
#: Extension records of a layer (PAX, with xattrs; long names) are small.
EXTENSION_MAX_BYTES = 1 << 20
#: Types whose header carries no data for Go's reader, whatever its size.
_HEADER_ONLY = frozenset(b"123456")
_PAX_SPARSE_SIZES = ("GNU.sparse.realsize", "GNU.sparse.size")


@dataclasses.dataclass
class Budget:
    """The bytes an image may expand to, shared by all of its layers."""

    limit: int
    #: What the limit is, for the message: "[docker] max_image_expanded_gb".
    reason: str
    used: int = 0

    def charge(self, size: int, layer: str) -> None:
        self.used += size
        if self.used > self.limit:
            raise refuse(
                f"it expands to more than {_gib(self.limit)} ({self.reason}): "
                f"{_gib(self.used)} counted by layer {layer!r} when the "
                "load was stopped (each layer counts the larger of its "
                "compressed and its expanded size)"
            )


def _gib(size: int) -> str:
    return f"{size / (1 << 30):.2f} GiB ({size} bytes)"


class LayerMeter:
    """Charges one layer to ``budget`` as its bytes pass :meth:`metered`.

    Detects the layer's compression on its first bytes, then inflates.
    The layer costs the larger of its bytes on the wire and what its
    entries expand to, charged as either grows.  Bytes that are not a tar
    archive at all are charged as they are and :attr:`is_tar` says so: the
    caller decides whether they were meant as a layer (a tar that breaks
    off into garbage is refused at once).
    """

    def __init__(self, name: str, budget: Budget) -> None:
        self.name = name
        self.budget = budget
        self._walker = _TarWalker(name, self._expanded_by)
        self._head = b""
        self._inflate: Callable[[bytes], None] | None = None
        #: The layer's bytes seen on the wire, and what they expand to.
        self.wire = 0
        self.expanded = 0
        self._charged = 0

    @property
    def is_tar(self) -> bool:
        return self._walker.is_tar is not False

    def metered(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        """``chunks`` unchanged, each charged before it is handed on."""
        for chunk in chunks:
            self.wire += len(chunk)
            self._settle()
            self._feed(chunk)
            yield chunk
        if self._inflate is None and self._head:
            self._walker.feed(self._head)

    def _expanded_by(self, size: int) -> None:
        self.expanded += size
        self._settle()

    def _settle(self) -> None:
        """Charge what the layer now costs beyond what it was charged."""
        owed = max(self.wire, self.expanded) - self._charged
        if owed > 0:
            self._charged += owed
            self.budget.charge(owed, self.name)

    def _feed(self, data: bytes) -> None:
        if self._inflate is None:
            self._head += data
            if len(self._head) < 6:
                return
            self._inflate = _inflater(self.name, self._head[:6], self._walker.feed)
            data, self._head = self._head, b""
        self._inflate(data)


def _inflater(
    name: str, magic: bytes, sink: Callable[[bytes], None]
) -> Callable[[bytes], None]:
    """A function feeding decompressed bytes to ``sink``, as the engine's
    detection would decompress them (by magic number)."""
    if magic.startswith(b"\x1f\x8b\x08"):
        return _Streams(lambda: zlib.decompressobj(16 + zlib.MAX_WBITS), sink).feed
    if magic.startswith(b"BZh"):
        return _Streams(bz2.BZ2Decompressor, sink).feed
    if magic.startswith(b"\xfd7zXZ\x00"):
        return _Streams(lzma.LZMADecompressor, sink).feed
    if magic.startswith(b"\x28\xb5\x2f\xfd") or _is_zstd_skippable(magic):
        raise refuse(
            f"layer {name!r} is compressed with zstd, whose expanded size "
            "nova-docker cannot count; save it uncompressed or with gzip"
        )
    return sink


def _is_zstd_skippable(magic: bytes) -> bool:
    return int.from_bytes(magic[:4], "little") & 0xFFFFFFF0 == 0x184D2A50


class _Streams:
    """Concatenated compressed streams (as ``gzip`` and the engine accept),
    each inflated in slices so that a bomb never sits in memory."""

    def __init__(self, new: Callable[[], object], sink: Callable[[bytes], None]):
        self._new = new
        self._sink = sink
        self._stream = new()

    def feed(self, data: bytes) -> None:
        while data:
            data = self._inflate(data)

    def _inflate(self, data: bytes) -> bytes:
        """Inflate one stream's share of ``data``; returns what follows it."""
        stream = self._stream
        try:
            while True:
                out = stream.decompress(data, INFLATE_SLICE)
                self._sink(out)
                data = _leftover(stream)
                if stream.eof or (not out and not data):
                    break
        except (zlib.error, OSError, EOFError, lzma.LZMAError) as e:
            raise refuse(f"a layer's compressed data is corrupt: {e}") from e
        if not stream.eof:
            return b""
        self._stream = self._new()
        return stream.unused_data


def _leftover(stream: object) -> bytes:
    """Input the decompressor handed back for want of output room.

    zlib hands it back; bz2 and lzma keep it, and the next call with no
    input goes on with it.
    """
    return getattr(stream, "unconsumed_tail", b"")


class _TarWalker:
    """A push parser over a layer's tar stream that charges each entry."""

    def __init__(self, layer: str, charge: Callable[[int], None]) -> None:
        self._layer = layer
        self._charge = charge
        self._skip = 0
        self._collect = BLOCK
        self._buffer = bytearray()
        self._on_collected: Callable[[bytes], None] = self._header
        self._pax: dict[str, str] = {}
        #: Past the end marker, or never a tar: bytes are charged as they are.
        self._ended = False
        #: None until the first header is seen.
        self.is_tar: bool | None = None

    def feed(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            if self._ended:
                # Whatever follows the end still had to be inflated.
                self._charge(len(view))
                return
            if self._skip:
                taken = min(self._skip, len(view))
                self._skip -= taken
                view = view[taken:]
                continue
            taken = min(self._collect - len(self._buffer), len(view))
            self._buffer += view[:taken]
            view = view[taken:]
            if len(self._buffer) == self._collect:
                collected, self._buffer = bytes(self._buffer), bytearray()
                self._collect = BLOCK
                self._on_collected(collected)

    def _header(self, block: bytes) -> None:
        if block == bytes(BLOCK):
            self._on_collected = self._second_zero_block
            return
        try:
            tarstream.check_checksum(block, 0)
            size = tarstream.parse_number(block[124:136], "an entry")
        except InvalidImageTarball as e:
            if self.is_tar is None:
                self.is_tar, self._ended = False, True
                self._charge(BLOCK)
                return
            raise refuse(f"layer {self._layer!r} is not a tar archive: {e}") from e
        self.is_tar = True
        typeflag = block[156]
        if typeflag in b"xgLK":
            self._extension(typeflag, size)
            return
        pax, self._pax = self._pax, {}
        size = self._pax_number(pax, "size", size)
        real = self._real_size(block, pax, size)
        self._charge(ENTRY_OVERHEAD + (0 if typeflag in _HEADER_ONLY else real))
        data = 0 if typeflag in _HEADER_ONLY else size
        if typeflag == ord("S") and block[482]:
            self._then_sparse_extension(data)
        else:
            self._skip = data + (-data % BLOCK)

    def _extension(self, typeflag: int, size: int) -> None:
        if size > EXTENSION_MAX_BYTES:
            raise refuse(f"layer {self._layer!r} has a {size}-byte extension header")
        self._charge(size)
        padded = size + (-size % BLOCK)
        if not padded:
            return
        self._collect = padded
        if typeflag == ord("x"):
            self._on_collected = lambda data: self._keep_pax(data[:size])
        else:
            self._on_collected = lambda _data: self._back_to_headers()

    def _keep_pax(self, data: bytes) -> None:
        for record in data.split(b"\n"):
            key, sep, value = record.partition(b" ")[2].partition(b"=")
            if sep:
                self._pax[key.decode("utf-8", "replace")] = value.decode(
                    "utf-8", "replace"
                )
        self._back_to_headers()

    def _back_to_headers(self) -> None:
        self._on_collected = self._header

    def _then_sparse_extension(self, data: int) -> None:
        def extension(block: bytes) -> None:
            if block[504]:
                return  # another extension block follows
            self._on_collected = self._header
            self._skip = data + (-data % BLOCK)

        self._on_collected = extension

    def _second_zero_block(self, block: bytes) -> None:
        if block != bytes(BLOCK):
            raise refuse(f"layer {self._layer!r} has a lone zero block")
        self._ended = True

    def _real_size(self, block: bytes, pax: dict[str, str], size: int) -> int:
        """What the entry unpacks to: its size, or a sparse file's real size."""
        real = size
        if block[156] == ord("S"):
            real = max(real, tarstream.parse_number(block[483:495], "a sparse file"))
        for key in _PAX_SPARSE_SIZES:
            real = max(real, self._pax_number(pax, key, 0))
        return real

    def _pax_number(self, pax: dict[str, str], key: str, default: int) -> int:
        value = pax.get(key)
        if value is None:
            return default
        if not value.isdigit():
            raise refuse(f"layer {self._layer!r} has a PAX {key} of {value!r}")
        return int(value)
