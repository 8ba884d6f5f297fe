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

"""A bounded in-memory pipe between a producer and a consumer thread.

Glance pushes image data into a file-like ``write()``; the engine's image load
pulls it from an iterator.  A :class:`Pipe` joins the two with a queue of at
most ``max_chunks`` chunks, so memory stays bounded whatever the image size,
and either side can give up: a failed producer :meth:`abort`\\ s the stream (the
consumer then raises instead of seeing a clean end, so a half image is never
taken for a whole one), a failed consumer :meth:`abandon`\\ s it (the producer's
next ``write`` raises instead of blocking forever).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from typing import Any
from typing import BinaryIO

_POLL_SECONDS = 0.2
_EOF = object()


class PipeClosed(Exception):
    """The other side of the pipe has gone away."""


class PipeAborted(Exception):
    """The producer failed; what was read so far is incomplete."""


class Pipe:
    def __init__(self, max_chunks: int = 8) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=max_chunks)
        self._abandoned = threading.Event()
        self._ended = False

    # -- producer side ----------------------------------------------------

    def write(self, data: bytes) -> int:
        if data:
            self._put(bytes(data))
        return len(data)

    def close(self) -> None:
        """Signal a clean end of data."""
        self._put(_EOF)

    def abort(self, error: BaseException) -> None:
        """Signal that the data is incomplete because of ``error``."""
        try:
            self._put(PipeAborted(str(error) or type(error).__name__))
        except PipeClosed:
            pass

    def _put(self, item: object) -> None:
        while True:
            if self._abandoned.is_set():
                raise PipeClosed("the reader has gone away")
            try:
                self._queue.put(item, timeout=_POLL_SECONDS)
                return
            except queue.Full:
                continue

    # -- consumer side ----------------------------------------------------

    @property
    def ended(self) -> bool:
        """Whether the reader has taken the end of the data (or the abort)."""
        return self._ended

    def abandon(self) -> None:
        """Stop reading; unblocks and fails the producer."""
        self._abandoned.set()
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                return

    def __iter__(self) -> Iterator[bytes]:
        while (chunk := self._next_chunk()) is not None:
            yield chunk

    def _next_chunk(self) -> bytes | None:
        if self._ended:
            return None
        item = self._queue.get()
        if item is _EOF:
            self._ended = True
            return None
        if isinstance(item, PipeAborted):
            self._ended = True
            raise item
        return item


class IteratorReader:
    """A file-like ``read()`` over an iterator of byte chunks.

    :mod:`tarfile` and Glance's upload want file objects; a :class:`Pipe` and
    the engine's image save are iterators.  Holds one chunk at a time.
    """

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._chunk = b""
        self._offset = 0

    def read(self, size: int = -1) -> bytes:
        parts = []
        wanted = size
        while size < 0 or wanted > 0:
            if self._offset >= len(self._chunk):
                chunk = next(self._chunks, None)
                if chunk is None:
                    break
                self._chunk, self._offset = chunk, 0
                continue
            end = len(self._chunk)
            if size >= 0:
                end = min(end, self._offset + wanted)
                wanted -= end - self._offset
            parts.append(self._chunk[self._offset : end])
            self._offset = end
        return b"".join(parts)

    def read1(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (all when negative) of the current chunk
        alone, b"" at the end.  Never joins chunks, so that a whole chunk
        passes through as the same object, uncopied: layer data is most of
        an image, and a copy of each slice costs a fresh buffer as large."""
        if size == 0:
            return b""
        while self._offset >= len(self._chunk):
            chunk = next(self._chunks, None)
            if chunk is None:
                return b""
            self._chunk, self._offset = chunk, 0
        start, whole = self._offset, len(self._chunk)
        end = whole if size < 0 else min(whole, start + size)
        self._offset = end
        if start == 0 and end == whole:
            return self._chunk
        return self._chunk[start:end]

    def __iter__(self) -> Iterator[bytes]:
        while data := self.read(1 << 20):
            yield data


class Stage(threading.Thread):
    """A pipeline stage whose failure is kept for the caller to raise."""

    def __init__(self, name: str, work: Callable[[], None]) -> None:
        super().__init__(name=name, daemon=True)
        self._work = work
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._work()
        except BaseException as e:
            self.error = e

    def real_error(self) -> BaseException | None:
        """The stage's own failure; not the pipe's news of the other side's."""
        if isinstance(self.error, (PipeClosed, PipeAborted)):
            return None
        return self.error


def pump(
    transform: Callable[[BinaryIO, BinaryIO], None],
    source: Iterable[bytes],
    sink: Pipe,
) -> None:
    """Run ``transform(reader of source, sink)`` as one pipeline stage.

    On failure both neighbours hear of it: the source is abandoned (or
    closed), so its producer stops, and the sink is aborted, so its consumer
    never takes what was written for a whole.
    """
    try:
        transform(IteratorReader(source), sink)  # type: ignore[arg-type]
    except BaseException as e:
        _stop(source)
        sink.abort(e)
        raise
    sink.close()


def _stop(source: Any) -> None:
    if isinstance(source, Pipe):
        source.abandon()
    elif hasattr(source, "close"):
        source.close()
