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

"""Where the Nova process's time goes while a benchmark measures it:
``python -m bench --profile DIR``.

py-spy (the ``bench`` extra) samples the process from outside, 100 times a
second, idle threads included, so a thread that waits on a socket shows
where it waits.  Each recording is a speedscope file (one profile per
thread, which https://www.speedscope.app opens) and, beside it, a text
summary: each thread's frames with the most samples of their own, readable
without a browser.  py-spy pauses the process for each sample, so the times
of a profiled run are a little longer than an unprofiled one's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

INSTALL = "pip install '.[bench]'"
RATE = 100
TOP_FRAMES = 15
#: py-spy attaches and reads the interpreter's layout before its first
#: sample; it says so on stderr.
STARTED_LINE = "Sampling process"
START_TIMEOUT = 30
STOP_TIMEOUT = 120
REPO_ROOT = Path(__file__).resolve().parent.parent
_STDLIB = re.compile(r"/lib/python3\.\d+/(.*)$")
#: py-spy's names: of a profile, and of the frames it adds at the root of
#: each stack for the thread (``--threads``) and the process
#: (``--subprocesses``).
_PROFILE_NAME = re.compile(r'^(?:Process (\d+) )?Thread (\w+)(?: "(.*)")?$')
_THREAD_FRAME = re.compile(r"^thread \((\w+)\)(?:: (.*))?$")
_PROCESS_FRAME = re.compile(r"^process (\d+):")
#: A thread that spent less than this share of its samples away from its
#: most frequent stack mostly waited in one place, and one sampled for less
#: than this many seconds says little: each gets one line.
MOVING_SHARE = 0.05
MIN_SECONDS = 0.1
_BOOTSTRAP = frozenset({"Thread._bootstrap", "Thread._bootstrap_inner"})


class ProfilerUnavailable(RuntimeError):
    """``--profile`` was asked for and py-spy is not installed."""


def executable() -> Path:
    """py-spy beside this interpreter (a venv run without activating it),
    else on PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    if beside.exists():
        return beside
    found = shutil.which("py-spy")
    if found is None:
        raise ProfilerUnavailable(
            "--profile needs py-spy, which is not installed; install the "
            f"bench extra into this venv: {INSTALL}"
        )
    return Path(found)


def require() -> None:
    """Raise :class:`ProfilerUnavailable` now, rather than after a long run."""
    executable()


def paths(directory: Path, name: str) -> tuple[Path, Path, Path]:
    """The speedscope file, its text summary and py-spy's own log."""
    return (
        directory / f"{name}.speedscope.json",
        directory / f"{name}.txt",
        directory / f"{name}.py-spy.log",
    )


class PySpy:
    """``with PySpy(pid, directory, name): ...`` records ``pid`` (and its
    children) while the block runs, then writes the summary."""

    def __init__(self, pid: int, directory: Path, name: str) -> None:
        self.pid = pid
        self.name = name
        self.output, self.summary, self.log = paths(directory, name)
        self._spy: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        # --threads: py-spy's speedscope output has one profile per Python
        # thread ident, which the C library hands to the next thread once a
        # thread ends, so short-lived threads (the import's pipeline stages,
        # API requests) share a profile under the first one's name.  The
        # flag puts a frame naming each sample's own OS thread at the root
        # of its stack; the summary groups by that.  No flamegraph beside
        # it: py-spy writes one format per recording, and a second recorder
        # would pause the process twice as often.
        return [
            str(executable()),
            "record",
            "--pid",
            str(self.pid),
            "--subprocesses",
            "--rate",
            str(RATE),
            "--format",
            "speedscope",
            "--idle",
            "--threads",
            "--output",
            str(self.output),
        ]

    def __enter__(self) -> PySpy:
        self.output.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "wb") as log:
            self._spy = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT
            )
        self._wait_started()
        return self

    def _wait_started(self) -> None:
        """Until py-spy takes its first sample, so the block is recorded
        from its start."""
        assert self._spy is not None
        deadline = time.monotonic() + START_TIMEOUT
        while STARTED_LINE not in self.log.read_text(errors="replace"):
            if self._spy.poll() is not None or time.monotonic() > deadline:
                self._stop()
                raise RuntimeError(
                    f"py-spy did not start on pid {self.pid}: "
                    f"{self.log.read_text(errors='replace').strip()}"
                )
            time.sleep(0.05)

    def _stop(self) -> int:
        """SIGINT, as ^C: py-spy then writes its file; wait until it has."""
        assert self._spy is not None
        if self._spy.poll() is None:
            os.kill(self._spy.pid, signal.SIGINT)
        try:
            return self._spy.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            # Not left behind sampling: the recording is lost either way.
            self._spy.kill()
            self._spy.wait()
            raise

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        code = self._stop()
        if not self.output.exists():
            if kind is None:
                raise RuntimeError(
                    f"py-spy exited with {code} and wrote no {self.output}; "
                    f"see {self.log}"
                )
            return
        document = json.loads(self.output.read_text())
        self.summary.write_text(summarize(document, self.name))


@contextlib.contextmanager
def recording(directory: Path | None, name: str, pid: int) -> Iterator[None]:
    """:class:`PySpy` when ``--profile`` gave a directory; nothing when not."""
    if directory is None:
        yield
        return
    with PySpy(pid, directory, name):
        yield


# -- the summary -----------------------------------------------------------


@dataclasses.dataclass
class Thread:
    """One OS thread's samples, its Python frames only (outermost first)."""

    #: ``pid 7, tid 9``: what tells threads apart
    where: str
    #: py-spy's names for it, by samples: py-spy caches them by ident, so a
    #: short-lived thread can carry an earlier one's name
    names: Counter[str] = dataclasses.field(default_factory=Counter)
    stacks: list[tuple[int, ...]] = dataclasses.field(default_factory=list)
    weights: list[float] = dataclasses.field(default_factory=list)

    @property
    def seconds(self) -> float:
        return sum(self.weights)

    @property
    def title(self) -> str:
        name = self.names.most_common(1)[0][0] if self.names else ""
        return f"{name or 'thread'} ({self.where})"

    def moving_seconds(self) -> float:
        """The time away from its most frequent stack."""
        by_stack: Counter[tuple[int, ...]] = Counter()
        for stack, weight in zip(self.stacks, self.weights, strict=True):
            by_stack[stack] += weight
        return self.seconds - max(by_stack.values(), default=0.0)

    def entry(self, frames: list[dict[str, Any]]) -> int | None:
        """The frame the thread was started to run, past threading's own
        and ``run`` methods: it names a thread when py-spy's name may be
        another's."""
        entries: Counter[int] = Counter()
        for stack, weight in zip(self.stacks, self.weights, strict=True):
            started = [i for i in stack if not _runner(frames[i])]
            if started:
                entries[started[0]] += weight
        return entries.most_common(1)[0][0] if entries else None


def _runner(frame: dict[str, Any]) -> bool:
    name = frame["name"]
    return name in _BOOTSTRAP or name == "run" or name.endswith(".run")


def _where(pid: str | None, tid: str) -> str:
    return f"pid {pid}, tid {tid}" if pid else f"tid {tid}"


def _from_profile_name(profile_name: str) -> tuple[str, str]:
    """``Process 7 Thread 9 "retag"`` → (``pid 7, tid 9``, ``retag``)."""
    match = _PROFILE_NAME.match(profile_name)
    if not match:
        return profile_name, ""
    pid, tid, name = match.groups()
    return _where(pid, tid), name or ""


def _split_stack(
    stack: list[int], frames: list[dict[str, Any]]
) -> tuple[str | None, str, tuple[int, ...]]:
    """Where the thread named at the root of ``stack`` runs and its name,
    if it is named there, and the stack's Python frames."""
    pid = tid = None
    name = ""
    python: list[int] = []
    for index in stack:
        frame = frames[index]
        if frame.get("file"):
            python.append(index)
        elif thread := _THREAD_FRAME.match(frame["name"]):
            tid, name = thread[1], thread[2] or ""
        elif process := _PROCESS_FRAME.match(frame["name"]):
            # The innermost process frame is the thread's own process.
            pid = process[1]
        else:
            python.append(index)
    return (_where(pid, tid) if tid else None), name, tuple(python)


def threads(document: dict[str, Any]) -> list[Thread]:
    """The samples of a py-spy speedscope document by OS thread: by the
    thread frame at the root of each stack where there is one, else by
    profile."""
    frames = document["shared"]["frames"]
    found: dict[str, Thread] = {}
    for profile in document["profiles"]:
        if profile.get("type") != "sampled":
            continue
        profile_where, profile_name = _from_profile_name(profile["name"])
        for stack, weight in zip(profile["samples"], profile["weights"], strict=True):
            where, name, python = _split_stack(stack, frames)
            if where is None:
                where, name = profile_where, profile_name
            thread = found.setdefault(where, Thread(where))
            thread.names[name] += 1
            thread.stacks.append(python)
            thread.weights.append(weight)
    return list(found.values())


def frame_label(frame: dict[str, Any]) -> str:
    """``function (file:line)``, the file as its package names it."""
    file = short_file(frame.get("file") or "")
    if not file:
        return frame["name"]
    return f"{frame['name']} ({file}:{frame.get('line') or 0})"


def short_file(path: str) -> str:
    """The path from its package on: after ``site-packages/``, the
    standard library's directory, or this checkout."""
    for marker in ("site-packages/", "dist-packages/"):
        if marker in path:
            return path.rsplit(marker, 1)[1]
    stdlib = _STDLIB.search(path)
    if stdlib:
        return stdlib[1]
    with contextlib.suppress(ValueError):
        return str(Path(path).relative_to(REPO_ROOT))
    return path


def _ours(frame: dict[str, Any]) -> bool:
    return short_file(frame.get("file") or "").startswith("nova_docker/")


def self_seconds(
    thread: Thread, frames: list[dict[str, Any]]
) -> Counter[tuple[int | None, int | None]]:
    """Seconds by (innermost frame, the driver's innermost frame below
    it): a socket read in the engine's load and one in Glance's download
    are told apart.  None where a sample had no such frame."""
    seconds: Counter[tuple[int | None, int | None]] = Counter()
    for stack, weight in zip(thread.stacks, thread.weights, strict=True):
        leaf = stack[-1] if stack else None
        callers = [i for i in stack[:-1] if _ours(frames[i])]
        ours = callers[-1] if callers and not _ours(frames[stack[-1]]) else None
        seconds[leaf, ours] += weight
    return seconds


def _row_label(key: tuple[int | None, int | None], frames: list[dict]) -> str:
    leaf, ours = key
    label = frame_label(frames[leaf]) if leaf is not None else "(no Python frame)"
    if ours is not None:
        label += f" <- {frame_label(frames[ours])}"
    return label


def _thread_lines(thread: Thread, frames: list[dict[str, Any]]) -> list[str]:
    total = thread.seconds
    entry = thread.entry(frames)
    started = f", runs {frame_label(frames[entry])}" if entry is not None else ""
    lines = [f"{thread.title}: {total:.2f} s sampled{started}"]
    for key, took in self_seconds(thread, frames).most_common(TOP_FRAMES):
        share = 100 * took / total if total else 0.0
        lines.append(f"  {share:5.1f} %  {took:6.2f} s  {_row_label(key, frames)}")
    return lines


def _one_line(thread: Thread, frames: list[dict[str, Any]]) -> str:
    key, took = self_seconds(thread, frames).most_common(1)[0]
    share = 100 * took / thread.seconds if thread.seconds else 0.0
    return (
        f"  {thread.title}, {thread.seconds:.2f} s: {share:.0f} % "
        f"{_row_label(key, frames)}"
    )


def shown_in_full(thread: Thread) -> bool:
    """Long enough to read, and not all the time in one place."""
    if thread.seconds < MIN_SECONDS:
        return False
    return thread.moving_seconds() >= MOVING_SHARE * thread.seconds


def summarize(document: dict[str, Any], title: str) -> str:
    """The text summary of a py-spy speedscope document: the threads that
    moved, those that moved most first, each with the frames where most of
    its samples ended; then the others, one line each."""
    frames = document["shared"]["frames"]
    found = [t for t in threads(document) if t.stacks]
    full = sorted(filter(shown_in_full, found), key=Thread.moving_seconds, reverse=True)
    lines = [
        f"{title}: py-spy, {RATE} samples/s, idle included; {len(found)} threads.",
        "Self time by innermost frame; '<-': the driver's innermost frame below.",
        "Names are py-spy's, and a short-lived thread may show an earlier one's;",
        "'runs' is read from its samples.",
    ]
    for thread in full:
        lines += ["", *_thread_lines(thread, frames)]
    brief = [t for t in found if t not in full]
    if brief:
        lines += [
            "",
            f"{len(brief)} threads sampled under {MIN_SECONDS} s or mostly "
            "in one place:",
        ]
        lines += [_one_line(t, frames) for t in brief]
    return "\n".join(lines) + "\n"
