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

"""``--profile``: the py-spy recorder and the text summary of its files."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from bench import profile
from bench import run

SITE = "/srv/venv/lib/python3.11/site-packages"
STDLIB = "/usr/lib/python3.11"


def _frames() -> list[dict[str, Any]]:
    ours = profile.REPO_ROOT / "nova_docker"
    return [
        {"name": "Thread.run", "file": f"{STDLIB}/threading.py", "line": 982},
        {"name": "integrity_iter", "file": f"{SITE}/glanceclient/utils.py", "line": 9},
        {"name": "SocketIO.readinto", "file": f"{STDLIB}/socket.py", "line": 706},
        {"name": "HTTPConnection.send", "file": f"{STDLIB}/http/client.py", "line": 1},
        {"name": "Condition.wait", "file": f"{STDLIB}/threading.py", "line": 320},
        {"name": "load_image", "file": f"{ours}/engine/client.py", "line": 477},
        {"name": "download", "file": f"{SITE}/nova_docker/image/glance.py", "line": 3},
        {"name": "retag", "file": f"{ours}/image/tarball.py", "line": 5},
        {"name": 'process 7:"python -m bench.probe"', "file": "", "line": 0},
        {"name": "thread (101): glance-download", "file": "", "line": 0},
        {"name": "thread (102): tarball-retag", "file": "", "line": 0},
        {"name": "thread (103): ThreadPoolExecutor-0_0", "file": "", "line": 0},
        {"name": "thread (104): periodic", "file": "", "line": 0},
    ]


def _sampled(name: str, samples: list[list[int]]) -> dict[str, Any]:
    return {
        "type": "sampled",
        "name": name,
        "unit": "seconds",
        "samples": samples,
        "weights": [0.1] * len(samples),
    }


def _document() -> dict[str, Any]:
    """A py-spy speedscope document of ``--threads --subprocesses``, made by
    hand: the download thread hashes 3 samples and reads 2; the engine-load
    thread sends once and then waits in recv 5 times; the re-tag thread,
    which got the download thread's ident once it ended, retags twice; a
    periodic thread waits throughout, but for one sample in 40."""
    process, download, retag, load, periodic = 8, 9, 10, 11, 12
    return {
        "$schema": "https://www.speedscope.app/file-format-schema.json",
        "shared": {"frames": _frames()},
        "profiles": [
            _sampled(
                'Process 7 Thread 201 "glance-download"',
                [
                    [process, download, 0, 6, 1],
                    [process, download, 0, 6, 2],
                    [process, download, 0, 6, 1],
                    [process, download, 0, 6, 2],
                    [process, download, 0, 6, 1],
                    [process, retag, 0, 7],
                    [process, retag, 0, 7],
                ],
            ),
            _sampled(
                'Process 7 Thread 202 "ThreadPoolExecutor-0_0"',
                [[process, load, 0, 5, 3]] + [[process, load, 0, 5, 2]] * 5,
            ),
            _sampled(
                'Process 7 Thread 203 "periodic"',
                [[process, periodic, 0, 4]] * 39 + [[process, periodic, 0, 2]],
            ),
        ],
    }


def _blocks(text: str) -> list[list[str]]:
    return [block.splitlines() for block in text.split("\n\n")]


def test_summary_lists_each_moving_thread_with_its_frames_by_self_time() -> None:
    blocks = _blocks(profile.summarize(_document(), "import-1"))

    assert blocks[0][0] == (
        "import-1: py-spy, 100 samples/s, idle included; 4 threads."
    )
    # The download thread moved most (0.2 s off its most frequent stack),
    # then the load thread (0.1 s).
    assert blocks[1] == [
        "glance-download (pid 7, tid 101): 0.50 s sampled,"
        " runs download (nova_docker/image/glance.py:3)",
        "   60.0 %    0.30 s  integrity_iter (glanceclient/utils.py:9)"
        " <- download (nova_docker/image/glance.py:3)",
        "   40.0 %    0.20 s  SocketIO.readinto (socket.py:706)"
        " <- download (nova_docker/image/glance.py:3)",
    ]
    assert blocks[2] == [
        "ThreadPoolExecutor-0_0 (pid 7, tid 103): 0.60 s sampled,"
        " runs load_image (nova_docker/engine/client.py:477)",
        "   83.3 %    0.50 s  SocketIO.readinto (socket.py:706)"
        " <- load_image (nova_docker/engine/client.py:477)",
        "   16.7 %    0.10 s  HTTPConnection.send (http/client.py:1)"
        " <- load_image (nova_docker/engine/client.py:477)",
    ]


def test_summary_tells_threads_apart_that_py_spy_merged_by_ident() -> None:
    text = profile.summarize(_document(), "import-1")

    assert "tarball-retag (pid 7, tid 102), 0.20 s: 100 % retag" in text
    download = _blocks(text)[1]
    assert not any("retag" in line for line in download)


def test_summary_puts_threads_that_mostly_waited_on_one_line_each() -> None:
    blocks = _blocks(profile.summarize(_document(), "import-1"))

    assert blocks[-1] == [
        "2 threads sampled under 0.1 s or mostly in one place:",
        "  tarball-retag (pid 7, tid 102), 0.20 s: 100 % retag"
        " (nova_docker/image/tarball.py:5)",
        "  periodic (pid 7, tid 104), 4.00 s: 98 % Condition.wait (threading.py:320)",
    ]


def test_summary_puts_a_thread_sampled_too_briefly_on_one_line() -> None:
    document = _document()
    for prof in document["profiles"]:
        prof["weights"] = [0.01] * len(prof["weights"])

    blocks = _blocks(profile.summarize(document, "import-1"))

    assert len(blocks) == 2
    assert blocks[1][0] == "4 threads sampled under 0.1 s or mostly in one place:"
    assert blocks[1][1].startswith("  glance-download (pid 7, tid 101), 0.05 s: 60 %")


def test_summary_of_a_recording_without_thread_frames_goes_by_profile() -> None:
    document = _document()
    # As py-spy writes it without --threads: no thread or process frames.
    for prof in document["profiles"]:
        prof["samples"] = [stack[2:] for stack in prof["samples"]]

    first = _blocks(profile.summarize(document, "t"))[1]

    assert first[0].startswith("glance-download (pid 7, tid 201): 0.70 s sampled")
    assert any("retag (nova_docker/image/tarball.py:5)" in line for line in first)


def test_summary_keeps_only_the_top_frames_of_a_thread() -> None:
    frames = [{"name": f"f{i}", "file": "", "line": 0} for i in range(20)]
    samples = [[i] for i in range(20) for _ in range(i + 1)]
    document = {
        "shared": {"frames": frames},
        "profiles": [_sampled('Process 1 Thread 1 "busy"', samples)],
    }

    lines = _blocks(profile.summarize(document, "t"))[1]

    assert len(lines) == 1 + profile.TOP_FRAMES
    assert lines[1].endswith("f19")
    assert lines[-1].endswith(f"f{20 - profile.TOP_FRAMES}")


@pytest.mark.parametrize(
    ("path", "short"),
    [
        (f"{SITE}/nova/compute/manager.py", "nova/compute/manager.py"),
        (f"{STDLIB}/socket.py", "socket.py"),
        (
            str(profile.REPO_ROOT / "nova_docker/image/fetch.py"),
            "nova_docker/image/fetch.py",
        ),
        ("/elsewhere/tool.py", "/elsewhere/tool.py"),
    ],
)
def test_frame_files_are_named_from_their_package(path: str, short: str) -> None:
    assert profile.short_file(path) == short


def _no_py_spy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An interpreter with no py-spy beside it, and none on PATH."""
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))


def test_missing_py_spy_is_an_error_naming_the_bench_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_py_spy(tmp_path, monkeypatch)

    with pytest.raises(profile.ProfilerUnavailable, match=r"pip install '\.\[bench\]'"):
        profile.require()


def test_py_spy_beside_the_interpreter_is_found_without_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_py_spy(tmp_path, monkeypatch)
    (tmp_path / "py-spy").touch()

    assert profile.executable() == tmp_path / "py-spy"


def test_no_directory_records_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    def must_not_start(*_: Any, **__: Any) -> None:
        raise AssertionError("py-spy started without --profile")

    monkeypatch.setattr(subprocess, "Popen", must_not_start)

    with profile.recording(None, "import-1", os.getpid()):
        pass


def test_options_carry_the_profile_directory_with_and_without_quick() -> None:
    plain = run._options(run.parse(["--profile", "profiles"]))
    quick = run._options(run.parse(["--quick", "--profile", "profiles"]))

    assert plain.profile == Path("profiles")
    assert quick.profile == Path("profiles")
    assert quick.import_layer_mib == run.QUICK.import_layer_mib
    assert run._options(run.parse([])).profile is None


def test_the_results_json_names_the_profile_directory() -> None:
    options = run._options(run.parse(["--quick", "--profile", "profiles"]))

    as_json = run._options_json(options, ["import"])

    assert json.loads(json.dumps(as_json))["profile"] == "profiles"
    assert as_json["only"] == ["import"]


def test_run_asked_to_profile_without_py_spy_stops_before_measuring(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_py_spy(tmp_path, monkeypatch)

    def must_not_run(*_: Any, **__: Any) -> None:
        raise AssertionError("the run went on without py-spy")

    monkeypatch.setattr(run.report, "machine", must_not_run)
    monkeypatch.setattr(run, "RawEngine", must_not_run)
    out = tmp_path / "latest.json"

    with pytest.raises(SystemExit, match=r"py-spy.*pip install '\.\[bench\]'"):
        run.main(["--only", "import", "--profile", str(tmp_path), "--out", str(out)])

    assert not out.exists()


SPIED = """
import sys, threading, time
def spin():
    while True:
        sum(range(1000))
threading.Thread(target=spin, name="spinner", daemon=True).start()
print("ready", flush=True)
time.sleep(600)
"""


def _py_spy_usable() -> bool:
    try:
        profile.executable()
    except profile.ProfilerUnavailable:
        return False
    return os.geteuid() == 0


@pytest.mark.skipif(not _py_spy_usable(), reason="needs py-spy, as root")
def test_recording_writes_a_speedscope_file_and_its_summary(tmp_path: Path) -> None:
    spied = subprocess.Popen(
        [sys.executable, "-c", SPIED], stdout=subprocess.PIPE, text=True
    )
    try:
        assert spied.stdout is not None
        assert spied.stdout.readline() == "ready\n"
        with profile.PySpy(spied.pid, tmp_path / "profiles", "toy-1") as spy:
            # About 50 samples: the spinner cannot be missed.
            time.sleep(0.5)
    finally:
        os.kill(spied.pid, signal.SIGKILL)
        spied.wait()

    document = json.loads(spy.output.read_text())
    names = [p["name"] for p in document["profiles"]]
    assert any('"spinner"' in name for name in names)
    summary = spy.summary.read_text()
    assert summary.startswith("toy-1: py-spy")
    assert "spinner (pid" in summary
    assert "spin (<string>:5)" in summary or "spin (<string>:4)" in summary
