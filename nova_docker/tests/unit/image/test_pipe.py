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

from __future__ import annotations

import threading

import pytest

from nova_docker.image import pipe


def test_chunks_flow_in_order_and_end_cleanly():
    p = pipe.Pipe(2)

    def produce():
        for i in range(10):
            p.write(b"%d," % i)
        p.close()

    threading.Thread(target=produce).start()
    assert b"".join(p) == b"0,1,2,3,4,5,6,7,8,9,"


def test_the_queue_is_bounded():
    p = pipe.Pipe(2)
    p.write(b"a")
    p.write(b"b")
    writer = threading.Thread(target=p.write, args=(b"c",), daemon=True)
    writer.start()
    writer.join(0.5)
    # The third chunk waits for the reader: memory stays bounded.
    assert writer.is_alive()
    assert next(iter(p)) == b"a"
    writer.join(5)
    assert not writer.is_alive()


def test_an_aborted_stream_raises_instead_of_ending():
    p = pipe.Pipe(4)
    p.write(b"partial")
    p.abort(RuntimeError("glance went away"))
    reader = iter(p)
    assert next(reader) == b"partial"
    with pytest.raises(pipe.PipeAborted, match="glance went away"):
        next(reader)


def test_an_abandoned_pipe_fails_the_producer():
    p = pipe.Pipe(1)
    p.write(b"x")
    p.abandon()
    with pytest.raises(pipe.PipeClosed):
        p.write(b"y")


def test_iterator_reader_serves_any_read_size():
    reader = pipe.IteratorReader(iter([b"abc", b"", b"defg", b"h"]))
    assert reader.read(2) == b"ab"
    assert reader.read(4) == b"cdef"
    assert reader.read() == b"gh"
    assert reader.read(10) == b""


def test_iterator_reader_read1_never_joins_chunks():
    whole = b"d" * 64
    reader = pipe.IteratorReader(iter([b"abc", b"", whole, b"xy"]))
    assert reader.read1(2) == b"ab"
    # The rest of a chunk, not the start of the next.
    assert reader.read1(10) == b"c"
    # A chunk asked for whole is passed on as it came: not a copy.
    assert reader.read1(100) is whole
    assert reader.read1(0) == b""
    assert reader.read1() == b"xy"
    assert reader.read1(5) == b""


def test_iterator_reader_iterates_in_bounded_pieces():
    reader = pipe.IteratorReader(iter([b"x" * (3 << 20)]))
    sizes = [len(piece) for piece in reader]
    assert sizes == [1 << 20] * 3
