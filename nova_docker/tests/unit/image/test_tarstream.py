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

"""The strict tar reader and the plain ustar writer, on hand-made archives."""

from __future__ import annotations

import io
import tarfile

import pytest

from nova_docker.exception import InvalidImageTarball
from nova_docker.image import pipe
from nova_docker.image import tarstream
from nova_docker.image.tarstream import Kind
from nova_docker.tests import tarcraft


def read(data: bytes) -> list[tuple[str, Kind, bytes, str]]:
    reader = tarstream.TarReader(io.BytesIO(data))
    found = []
    for m in reader.members():
        found.append((m.name, m.kind, b"".join(reader.data()), m.linkname))
    reader.drain_trailer()
    return found


def pax_record(key: str, value: str) -> bytes:
    body = f" {key}={value}\n".encode()
    length = len(body) + 1
    length += len(str(length + len(body))) - 1
    return str(length).encode() + body


def raw_pax(records: bytes, then: bytes) -> bytes:
    header = tarcraft.member("PaxHeader", records, kind=tarfile.XHDTYPE)
    return header + then


@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT])
def test_reads_what_tarfile_writes(fmt):
    data = tarcraft.archive(
        tarcraft.member("d", kind=tarfile.DIRTYPE, fmt=fmt),
        tarcraft.member("d/f", b"hello", fmt=fmt),
        tarcraft.member("d/l", kind=tarfile.SYMTYPE, linkname="f", fmt=fmt),
        tarcraft.member("deep/" * 25 + "f", b"long", fmt=fmt),
    )
    assert read(data) == [
        ("d/", Kind.DIRECTORY, b"", ""),
        ("d/f", Kind.FILE, b"hello", ""),
        ("d/l", Kind.SYMLINK, b"", "f"),
        ("deep/" * 25 + "f", Kind.FILE, b"long", ""),
    ]


def test_pax_path_and_size_are_honoured():
    data = tarcraft.archive(
        tarcraft.member("short", b"abc", pax={"path": "p" * 200, "mtime": "1.5"})
    )
    assert read(data) == [("p" * 200, Kind.FILE, b"abc", "")]


def test_trailing_zero_padding_is_accepted():
    data = tarcraft.archive(tarcraft.member("f", b"x")) + bytes(8192)
    assert read(data) == [("f", Kind.FILE, b"x", "")]


@pytest.mark.parametrize(
    ("kind", "what"),
    [
        (tarfile.LNKTYPE, "a hard link"),
        (tarfile.CHRTYPE, "a character device"),
        (tarfile.BLKTYPE, "a block device"),
        (tarfile.FIFOTYPE, "a FIFO"),
        (tarfile.CONTTYPE, "a contiguous file"),
        (tarfile.XGLTYPE, "a global PAX header"),
        (tarfile.GNUTYPE_SPARSE, "a GNU sparse file"),
        (b"Z", "the unknown type b'Z'"),
    ],
)
def test_other_member_types_are_refused_by_name(kind, what):
    data = tarcraft.archive(tarcraft.member("odd", kind=kind, linkname="x"))
    with pytest.raises(InvalidImageTarball, match=f"'odd' is {what}|'odd' has {what}"):
        read(data)


@pytest.mark.parametrize(
    "key", ["GNU.sparse.name", "GNU.sparse.realsize", "GNU.sparse.major", "hdrcharset"]
)
def test_pax_keys_readers_disagree_on_are_refused(key):
    data = tarcraft.archive(tarcraft.member("f", b"x", pax={key: "1"}))
    with pytest.raises(InvalidImageTarball, match=f"PAX key '{key}' on 'f'"):
        read(data)


def test_a_repeated_pax_key_is_refused():
    records = pax_record("path", "a") + pax_record("path", "manifest.json")
    data = tarcraft.archive(raw_pax(records, tarcraft.member("f", b"x")))
    with pytest.raises(InvalidImageTarball, match="'path' is repeated"):
        read(data)


@pytest.mark.parametrize(
    "records",
    [b"99 path=a\n", b"3 \n", b"x path=a\n", b"9 path=a\x00\n", b"8 path\n"],
)
def test_malformed_pax_records_are_refused(records):
    data = tarcraft.archive(raw_pax(records, tarcraft.member("f", b"x")))
    with pytest.raises(InvalidImageTarball, match="malformed PAX header before 'f'"):
        read(data)


def test_two_pax_headers_for_one_member_are_refused():
    first = tarcraft.member("p", pax={"path": "a"})[:1024]
    data = tarcraft.archive(first + tarcraft.member("p", b"x", pax={"path": "b"}))
    with pytest.raises(InvalidImageTarball, match="two b'x' headers"):
        read(data)


def test_gnu_and_pax_names_for_one_member_are_refused():
    pax = tarcraft.member("p", pax={"path": "a"})[:1024]
    data = tarcraft.archive(pax + tarcraft.member("y" * 120, fmt=tarfile.GNU_FORMAT))
    with pytest.raises(InvalidImageTarball, match="both a GNU and a PAX header"):
        read(data)


def test_pax_size_is_what_every_reader_uses():
    # PAX size 0 on a member with data: the data is read as headers, as the
    # engine would; the member it hides is seen, not skipped.
    hidden = tarcraft.member("hidden", b"boo")
    data = tarcraft.archive(
        tarcraft.member("cover", hidden, pax={"size": "0"}, size=len(hidden))
    )
    assert [name for name, *_ in read(data)] == ["cover", "hidden"]


def test_bad_checksum_is_not_a_tar_archive():
    data = bytearray(tarcraft.archive(tarcraft.member("f", b"x")))
    data[0] = ord("g")
    with pytest.raises(InvalidImageTarball, match="not a tar archive"):
        read(bytes(data))


def test_unknown_magic_is_refused():
    data = bytearray(tarcraft.archive(tarcraft.member("f", b"x")))
    data[257:265] = b"ustar\x0099"
    _fix_checksum(data)
    with pytest.raises(InvalidImageTarball, match="unknown tar header format"):
        read(bytes(data))


def test_a_lone_zero_block_is_refused():
    data = (
        tarcraft.member("f", b"x")
        + bytes(512)
        + tarcraft.archive(tarcraft.member("g", b"y"))
    )
    with pytest.raises(InvalidImageTarball, match="lone zero block"):
        read(data)


def test_data_after_the_end_marker_is_refused():
    data = tarcraft.archive(tarcraft.member("f", b"x")) + tarcraft.archive(
        tarcraft.member("g", b"y")
    )
    with pytest.raises(InvalidImageTarball, match="after the end-of-archive"):
        read(data)


def test_truncation_anywhere_is_reported():
    data = tarcraft.archive(tarcraft.member("f", b"x" * 3000), tarcraft.member("g"))
    for cut in range(0, len(data), 256):
        with pytest.raises(InvalidImageTarball, match="truncated"):
            read(data[:cut])


def test_a_directory_with_data_is_refused():
    data = tarcraft.archive(tarcraft.member("d", b"abc", kind=tarfile.DIRTYPE, size=3))
    with pytest.raises(InvalidImageTarball, match="directory 'd/' declares 3 bytes"):
        read(data)


@pytest.mark.parametrize("name", ["a\nb", "tab\there", "del\x7f"])
def test_control_characters_in_names_are_refused(name):
    data = tarcraft.archive(tarcraft.member(name, b"x"))
    with pytest.raises(InvalidImageTarball, match="control characters"):
        read(data)


def test_a_name_that_is_not_utf8_is_refused():
    data = tarcraft.archive(tarcraft.member("caf\udce9", b"x"))
    with pytest.raises(InvalidImageTarball, match="not UTF-8"):
        read(data)


def test_a_file_named_like_a_directory_is_refused():
    data = tarcraft.archive(tarcraft.member("d/", b"x", kind=tarfile.AREGTYPE))
    with pytest.raises(InvalidImageTarball, match="has a directory's name"):
        read(data)


def test_base256_sizes_are_read():
    data = bytearray(tarcraft.member("f", b"abc"))
    data[124:136] = b"\x80" + (3).to_bytes(11, "big")
    _fix_checksum(data)
    assert read(bytes(data) + tarcraft.END) == [("f", Kind.FILE, b"abc", "")]


def test_negative_sizes_are_refused():
    data = bytearray(tarcraft.member("f"))
    data[124:136] = b"\xff" * 12
    _fix_checksum(data)
    with pytest.raises(InvalidImageTarball, match="negative or oversized"):
        read(bytes(data) + tarcraft.END)


def test_read_small_refuses_before_reading():
    reader = tarstream.TarReader(io.BytesIO(tarcraft.member("big", size=10**9)))
    next(reader.members())
    with pytest.raises(InvalidImageTarball, match="implausibly large"):
        reader.read_small(1024, "big")


def test_the_writer_writes_bare_ustar_headers():
    out = io.BytesIO()
    writer = tarstream.TarWriter(out)
    writer.directory("d")
    writer.file_bytes("d/f", b"data")
    writer.close()
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tar:
        members = tar.getmembers()
        assert [(m.name, m.type, m.size) for m in members] == [
            ("d", tarfile.DIRTYPE, 0),
            ("d/f", tarfile.REGTYPE, 4),
        ]
        assert all(m.pax_headers == {} and m.uid == 0 for m in members)
        assert tar.extractfile("d/f").read() == b"data"


def test_the_writer_encodes_sizes_past_8_gib_in_base256():
    out = io.BytesIO()
    tarstream.TarWriter(out)._header("big", tarfile.REGTYPE, 9 << 30, 0o644)
    header = out.getvalue()
    assert len(header) == 512
    assert tarfile.TarInfo.frombuf(header, "utf-8", "strict").size == 9 << 30


def test_the_writer_refuses_names_ustar_cannot_hold():
    with pytest.raises(InvalidImageTarball, match="ustar"):
        tarstream.TarWriter(io.BytesIO()).file_bytes("n" * 300, b"")


def test_the_writer_refuses_data_of_the_wrong_length():
    writer = tarstream.TarWriter(io.BytesIO())
    with pytest.raises(InvalidImageTarball, match="held 2 bytes, not 3"):
        writer.file("f", 3, iter([b"ab"]))


def _fix_checksum(data: bytearray) -> None:
    data[148:156] = b" " * 8
    data[148:156] = b"%06o\x00 " % sum(data[:512])


def test_member_data_from_a_pipe_passes_its_chunks_uncopied():
    layer = bytes(range(256)) * 8192  # 2 MiB
    archive = tarcraft.member("layer.tar", layer)
    # Chunks as a download brings them: the first holds the header and the
    # data's start, the next ones data alone.
    cut = tarstream.BLOCK + 1024
    middle = archive[cut : cut + (1 << 20)]
    chunks = [archive[:cut], middle, archive[cut + (1 << 20) :]]
    reader = tarstream.TarReader(pipe.IteratorReader(iter(chunks)))

    member = next(reader.members())
    pieces = list(reader.data())

    assert member.name == "layer.tar"
    assert b"".join(pieces) == layer
    assert any(piece is middle for piece in pieces)


def test_member_data_cut_short_in_a_pipe_is_refused_as_truncated():
    archive = tarcraft.member("layer.tar", b"z" * 4096)
    reader = tarstream.TarReader(pipe.IteratorReader(iter([archive[:2048]])))

    next(reader.members())
    with pytest.raises(InvalidImageTarball, match=r"truncated \(in member data"):
        list(reader.data())
