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

"""The Glance floors: the raw loads split at their last byte, the load fed
from Glance, and the figures made of them."""

import hashlib
import math
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from bench import image_import
from bench import images
from bench import snapshot
from bench.stats import median

#: Reads 100 bytes of its stdin and says so; at a word on its control pipe
#: (argv[1]) closes stdin and says so; exits when the pipe closes.
READ_100 = """
import os, sys
control = int(sys.argv[1])
os.read(0, 100)
print("read", flush=True)
os.read(control, 5)
os.close(0)
print("closed", flush=True)
os.read(control, 5)
"""


class Engine:
    """A stand-in for :class:`bench.engine.RawEngine`: what was removed,
    and a load API that takes in every chunk before it answers."""

    def __init__(self, answer: list[dict[str, Any]] | None = None) -> None:
        self.removed: list[str] = []
        self.loaded = b""
        self.answer = answer if answer is not None else [{"stream": "Loaded"}]
        self.api = SimpleNamespace(load_image=self._load_image)

    def remove_image(self, ref: str) -> None:
        self.removed.append(ref)

    def _load_image(self, chunks: Iterator[bytes], quiet: bool) -> Iterator[dict]:
        assert quiet
        self.loaded = b"".join(chunks)
        return iter(self.answer)


def test_stdin_offset_is_how_far_a_process_read_its_file(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.write_bytes(b"x" * 1000)
    their_end, control = os.pipe()
    with open(data, "rb") as stdin:
        reader = subprocess.Popen(
            [sys.executable, "-c", READ_100, str(their_end)],
            stdin=stdin,
            stdout=subprocess.PIPE,
            text=True,
            pass_fds=(their_end,),
        )
    os.close(their_end)
    try:
        assert reader.stdout is not None
        assert reader.stdout.readline() == "read\n"
        assert images.stdin_offset(reader.pid, data) == 100
        # As the docker CLI does once it has sent its stdin.
        os.write(control, b"close")
        assert reader.stdout.readline() == "closed\n"
        assert images.stdin_offset(reader.pid, data) is None
    finally:
        os.close(control)
        reader.wait()
    assert images.stdin_offset(reader.pid, data) is None


def _fake_docker(bin_dir: Path, script: str, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text(f"#!/bin/sh\n{script}\n")
    docker.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")


def test_split_load_reads_the_whole_file_then_removes_the_image(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tarball = tmp_path / "image.tar"
    tarball.write_bytes(os.urandom(300_000))
    # What the fake CLI got on its stdin, to compare with the file.
    _fake_docker(
        tmp_path / "bin", f'[ "$1" = load ] && cat > {tmp_path}/got', monkeypatch
    )
    engine = Engine()

    total, tail = images.load_timed_split(engine, tarball, "big:1")

    assert (tmp_path / "got").read_bytes() == tarball.read_bytes()
    assert 0 <= tail <= total
    assert engine.removed == ["big:1"]


def test_split_load_that_fails_raises_with_the_cli_s_words(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tarball = tmp_path / "image.tar"
    tarball.write_bytes(b"not a tarball")
    _fake_docker(
        tmp_path / "bin", "cat >/dev/null; echo refused >&2; exit 1", monkeypatch
    )
    engine = Engine()

    with pytest.raises(subprocess.CalledProcessError) as failed:
        images.load_timed_split(engine, tarball, "big:1")

    assert failed.value.stderr == b"refused\n"
    assert engine.removed == []


class Download:
    """A Glance download: its chunks, once each, in the size asked for."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.chunk_sizes: list[int] = []

    def iter_content(self, chunk_size: int) -> Iterator[bytes]:
        self.chunk_sizes.append(chunk_size)
        for start in range(0, len(self.data), chunk_size):
            yield self.data[start : start + chunk_size]


def _ctx(download: Download, engine: Engine, hash_value: str = "") -> Any:
    asked: list[tuple[str, bool]] = []

    def download_image(image_id: str, stream: bool) -> Download:
        asked.append((image_id, stream))
        return download

    def get_image(image_id: str) -> Any:
        return SimpleNamespace(hash_algo="sha512", hash_value=hash_value)

    conn = SimpleNamespace(
        image=SimpleNamespace(download_image=download_image, get_image=get_image)
    )
    ctx = SimpleNamespace(docker=SimpleNamespace(conn=conn), engine=engine)
    ctx.asked = asked
    return ctx


def test_glance_floor_streams_glance_s_bytes_into_the_load() -> None:
    data = os.urandom(3 * image_import.MIB + 5)
    download, engine = Download(data), Engine()
    ctx = _ctx(download, engine)

    total, tail = image_import._glance_into_load(ctx, "glance-id", "big:1")

    assert ctx.asked == [("glance-id", True)]
    assert download.chunk_sizes == [image_import.MIB]
    assert engine.loaded == data
    assert 0 <= tail <= total
    assert engine.removed == ["big:1"]


def test_verified_floor_hashes_every_byte_it_loads() -> None:
    data = os.urandom(2 * image_import.MIB + 7)
    engine = Engine()
    ctx = _ctx(Download(data), engine, hashlib.sha512(data).hexdigest())

    total, tail = image_import._glance_into_load(ctx, "glance-id", "big:1", True)

    assert engine.loaded == data
    assert 0 <= tail <= total


def test_verified_floor_refuses_bytes_whose_hash_differs() -> None:
    data = os.urandom(image_import.MIB)
    ctx = _ctx(Download(data), Engine(), hashlib.sha512(b"other").hexdigest())

    with pytest.raises(RuntimeError, match="sha512 differs"):
        image_import._glance_into_load(ctx, "glance-id", "big:1", verify=True)


def test_glance_floor_raises_what_the_engine_reports_in_its_answer() -> None:
    engine = Engine(answer=[{"error": "unexpected EOF"}])
    ctx = _ctx(Download(b"truncated"), engine)

    with pytest.raises(RuntimeError, match="unexpected EOF"):
        image_import._glance_into_load(ctx, "glance-id", "big:1")


def _import_samples() -> dict[str, list[float]]:
    return {
        "docker_load_s": [4.0, 4.2, 4.4],
        "docker_load_tail_s": [2.0, 2.1, 2.2],
        "glance_download_s": [0.3, 0.3, 0.3],
        "glance_load_s": [4.5, 4.8, 5.1],
        "glance_load_tail_s": [2.1, 2.2, 2.3],
        "verified_load_s": [5.5, 5.8, 6.1],
        "verified_load_tail_s": [2.0, 2.2, 2.4],
        "first_boot_s": [9.0, 9.4, 9.8],
        "cached_boot_s": [1.0, 1.2, 1.4],
        "import_s": [8.0, 8.2, 8.4],
        "seam_load_s": [7.0, 7.1, 7.2],
        "seam_other_s": [0.5, 0.6, 0.7],
        "rss_growth_mib": [40.0, 44.0, 42.0],
    }


def test_import_glance_floor_is_the_glance_load_against_the_driver() -> None:
    figures = {f.name: f for f in image_import.figures(_import_samples(), 502.0)}

    floor = figures["import.glance_floor"]
    assert math.isclose(floor.ratio, 4.8 / 8.2)
    assert floor.met is None
    assert floor.medians["glance_load_tail_s"] == 2.2
    assert floor.medians["docker_load_tail_s"] == 2.1
    assert floor.samples["glance_load_s"] == [4.5, 4.8, 5.1]
    verified = figures["import.verified_floor"]
    assert math.isclose(verified.ratio, 5.8 / 8.2)
    assert verified.met is None


def test_import_throughput_keeps_its_ratio_and_series() -> None:
    figures = image_import.figures(_import_samples(), 502.0)

    assert [f.name for f in figures] == [
        "import.throughput",
        "import.glance_floor",
        "import.verified_floor",
        "import.rss_growth_mib",
    ]
    throughput = figures[0]
    assert math.isclose(throughput.ratio, 4.2 / 8.2)
    assert throughput.target == ">= 0.9"
    assert list(throughput.samples) == list(image_import.THROUGHPUT_KEYS)
    assert "glance_load_s" not in throughput.medians


def test_snapshot_glance_floor_sums_commit_save_and_upload_round_by_round() -> None:
    samples = {
        "driver_s": [7.0, 8.0, 9.0],
        "raw_s": [3.0, 2.0, 4.0],
        "glance_upload_s": [2.0, 3.5, 2.5],
    }

    throughput, floor = snapshot.figures(samples, 200.0)

    assert floor.name == "snapshot.glance_floor"
    assert floor.samples["floor_s"] == [5.0, 5.5, 6.5]
    assert math.isclose(floor.ratio, 5.5 / 8.0)
    assert floor.met is None
    # Not the sum of the medians (3.0 + 2.5): the rounds stay whole.
    assert floor.medians["floor_s"] == median([5.0, 5.5, 6.5])
    assert math.isclose(throughput.ratio, 3.0 / 8.0)
    assert throughput.target == ">= 0.9"


def test_save_into_writes_the_whole_save_and_sees_its_first_byte(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A save that thinks before its first byte, as dockerd's copy into its
    # temporary directory does, then writes the rest.
    _fake_docker(
        tmp_path / "bin",
        '[ "$1" = save ] && [ "$2" = snap:1 ] && sleep 0.2 && printf head '
        "&& sleep 0.2 && printf tail",
        monkeypatch,
    )
    out_path = tmp_path / "saved.tar"
    with open(out_path, "wb") as out:
        before = time.monotonic()
        first_byte = snapshot._save_into("snap:1", out)
        after = time.monotonic()

    assert out_path.read_bytes() == b"headtail"
    assert before < first_byte < after


def test_a_save_that_fails_raises_with_the_cli_s_words(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_docker(tmp_path / "bin", "echo 'no such image' >&2; exit 1", monkeypatch)
    with open(tmp_path / "saved.tar", "wb") as out:
        with pytest.raises(subprocess.CalledProcessError) as failed:
            snapshot._save_into("snap:1", out)

    assert failed.value.stderr == b"no such image\n"
