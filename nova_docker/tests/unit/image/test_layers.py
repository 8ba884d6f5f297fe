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

"""Counting what layers expand to, on layers made by hand."""

from __future__ import annotations

import bz2
import gzip
import lzma
import tarfile
import tracemalloc

import pytest

from nova_docker.exception import InvalidImageTarball
from nova_docker.image import layers
from nova_docker.tests import tarcraft

GIB = 1 << 30
OVERHEAD = layers.ENTRY_OVERHEAD


def count(data: bytes, limit: int = 100 * GIB, slice_size: int = 4096) -> int:
    budget = layers.Budget(limit, "the test's limit")
    chunks = (data[i : i + slice_size] for i in range(0, len(data), slice_size))
    meter = layers.LayerMeter("l/layer.tar", budget)
    assert b"".join(meter.metered(chunks)) == data
    assert meter.is_tar
    return budget.used


def sparse_pax(real_size: int) -> bytes:
    """A PAX 1.0 sparse file: a map of one empty region, and no data."""
    sparse_map = b"1\n0\n0\n" + bytes(506)
    pax = {
        "GNU.sparse.major": "1",
        "GNU.sparse.minor": "0",
        "GNU.sparse.name": "big",
        "GNU.sparse.realsize": str(real_size),
    }
    return tarcraft.member("GNUSparseFile.0/big", sparse_map, pax=pax)


def sparse_old_gnu(real_size: int, extended: bool = False) -> bytes:
    """A GNU 'S' sparse file whose header's realsize field says ``real_size``."""
    header = bytearray(
        tarcraft.member("big", kind=tarfile.GNUTYPE_SPARSE, fmt=tarfile.GNU_FORMAT)
    )
    header[483:495] = b"%011o\x00" % real_size
    header[482] = 1 if extended else 0
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\x00 " % sum(header[:512])
    extension = bytes(512) if extended else b""
    return bytes(header[:512]) + extension + bytes(header[512:])


def test_plain_files_count_their_size_and_an_entry_each():
    data = tarcraft.archive(
        tarcraft.directory("etc"),
        tarcraft.member("etc/a", b"x" * 1000),
        tarcraft.member("etc/b", b"y" * 5000),
        tarcraft.symlink("etc/c", "a"),
    )
    assert count(data) == 4 * OVERHEAD + 6000


def test_the_count_does_not_depend_on_how_the_stream_is_sliced():
    data = tarcraft.archive(
        tarcraft.member("a", b"x" * 700, pax={"path": "p" * 300}),
        tarcraft.member("b" * 150, b"y" * 3, fmt=tarfile.GNU_FORMAT),
    )
    counts = {count(data, slice_size=size) for size in (1, 511, 512, 513, 1 << 20)}
    assert len(counts) == 1
    # Two entries and their data, and the extension records' own bytes.
    assert 2 * OVERHEAD + 703 + 300 + 150 < counts.pop() < 2 * OVERHEAD + 703 + 600


def test_a_pax_sparse_file_counts_its_real_size():
    assert count(tarcraft.archive(sparse_pax(2 * GIB))) >= 2 * GIB


@pytest.mark.parametrize("extended", [False, True])
def test_an_old_gnu_sparse_file_counts_its_real_size(extended):
    data = tarcraft.archive(sparse_old_gnu(3 * GIB, extended), tarcraft.member("z"))
    assert count(data) == 2 * OVERHEAD + 3 * GIB


def test_a_sparse_file_past_the_limit_stops_at_its_header():
    data = tarcraft.archive(sparse_pax(50 * GIB))
    with pytest.raises(InvalidImageTarball, match=r"more than 1\.00 GiB .*'l/layer"):
        count(data, limit=GIB)


def test_pax_size_zero_hides_nothing_from_the_count():
    hidden = tarcraft.member("hidden", b"h" * 4096)
    data = tarcraft.archive(tarcraft.member("cover", hidden, pax={"size": "0"}, size=0))
    record = len(b"9 size=0\n")
    assert count(data) == 2 * OVERHEAD + 4096 + record


def test_a_link_declaring_data_is_header_only_as_for_the_engine():
    # Go skips no data after a link whatever its size says, so neither do we:
    # the next header is read where the engine reads it.
    link = tarcraft.member("l", kind=tarfile.SYMTYPE, linkname="x", size=5 * GIB)
    data = tarcraft.archive(link, tarcraft.member("f", b"z" * 10))
    assert count(data) == 2 * OVERHEAD + 10


@pytest.mark.parametrize(
    "compress",
    [gzip.compress, bz2.compress, lzma.compress],
    ids=["gzip", "bzip2", "xz"],
)
def test_compressed_layers_count_what_they_inflate_to(compress):
    data = tarcraft.archive(tarcraft.member("zeros", bytes(8 << 20)))
    assert count(compress(data)) == OVERHEAD + (8 << 20)


def test_concatenated_gzip_streams_are_all_counted():
    first = tarcraft.member("a", b"a" * 3000)
    second = tarcraft.archive(tarcraft.member("b", b"b" * 5000))
    data = gzip.compress(first) + gzip.compress(second)
    assert count(data) == 2 * OVERHEAD + 8000


def empty_gzip_members_then(tar: bytes, members: int) -> bytes:
    """Megabytes of gzip members that inflate to nothing, then ``tar``."""
    return gzip.compress(b"") * members + gzip.compress(tar)


def test_a_layer_counts_at_least_its_compressed_size():
    tar = tarcraft.archive(tarcraft.member("f", b"x" * 100))
    data = empty_gzip_members_then(tar, 100_000)
    assert len(data) > 2_000_000
    # The engine stores these bytes before it unpacks a single one.
    assert count(data) == len(data)


def test_a_layer_of_empty_gzip_members_is_refused_in_passing():
    tar = tarcraft.archive(tarcraft.member("f", b"x" * 100))
    data = empty_gzip_members_then(tar, 100_000)
    budget = layers.Budget(1 << 20, "the test's limit")
    meter = layers.LayerMeter("l/layer.tar", budget)
    chunks = (data[i : i + 4096] for i in range(0, len(data), 4096))
    passed = 0
    with pytest.raises(InvalidImageTarball, match="larger of its compressed"):
        for chunk in meter.metered(chunks):
            passed += len(chunk)
    # Nothing past the limit was handed on to the engine.
    assert passed <= 1 << 20
    assert meter.wire > 1 << 20 > meter.expanded


def test_a_layer_is_charged_the_larger_of_wire_and_expanded_not_both():
    data = tarcraft.archive(tarcraft.member("zeros", bytes(1 << 20)))
    meter = layers.LayerMeter("l", layers.Budget(100 * GIB, "the test's limit"))
    list(meter.metered(iter([data])))
    assert meter.budget.used == max(meter.wire, meter.expanded) == OVERHEAD + (1 << 20)


def test_a_gzip_bomb_is_stopped_in_bounded_memory():
    zeros = tarcraft.member("zeros", bytes(256 << 20))[:1024]
    # A 256 MiB file of zeros, compressed from a small template.
    bomb = gzip.compress(zeros[:512] + bytes(256 << 20), compresslevel=9)
    tracemalloc.start()
    try:
        with pytest.raises(InvalidImageTarball, match="more than"):
            count(bomb, limit=64 << 20, slice_size=1 << 16)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20


def test_zeros_after_the_end_still_count():
    data = gzip.compress(tarcraft.archive(tarcraft.member("f", b"x")) + bytes(10 << 20))
    assert count(data) >= 10 << 20


def test_zstd_layers_are_refused_by_name():
    with pytest.raises(
        InvalidImageTarball, match=r"'l/layer\.tar' is compressed with zstd"
    ):
        count(b"\x28\xb5\x2f\xfd" + bytes(100))


def test_bytes_that_are_not_tar_are_counted_as_they_are():
    meter = layers.LayerMeter("j", layers.Budget(1 << 20, "the test's limit"))
    data = b"this is not a tar archive at all" * 100
    assert b"".join(meter.metered(iter([data]))) == data
    assert meter.is_tar is False
    assert meter.budget.used == len(data)


def test_a_tar_that_breaks_off_into_garbage_is_refused():
    data = tarcraft.member("f", b"x") + b"garbage!" * 200
    with pytest.raises(InvalidImageTarball, match=r"'l/layer\.tar' is not a tar"):
        count(data)


def test_corrupt_compressed_data_is_refused():
    data = bytearray(gzip.compress(tarcraft.archive(tarcraft.member("f", b"x" * 9000))))
    data[20:40] = bytes(20)
    with pytest.raises(InvalidImageTarball, match="corrupt"):
        count(bytes(data))


def test_a_huge_extension_header_is_refused():
    header = tarcraft.member("x", kind=tarfile.XHDTYPE, size=64 << 20)
    with pytest.raises(InvalidImageTarball, match="extension header"):
        count(header)


def test_the_budget_is_shared_by_all_layers():
    budget = layers.Budget(10 * OVERHEAD, "the test's limit")
    one = tarcraft.archive(*(tarcraft.member(f"f{i}") for i in range(6)))
    list(layers.LayerMeter("a", budget).metered(iter([one])))
    with pytest.raises(InvalidImageTarball, match="'b'"):
        list(layers.LayerMeter("b", budget).metered(iter([one])))
