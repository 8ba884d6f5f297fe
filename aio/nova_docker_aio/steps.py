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

"""Progress output: every step prints its duration; a failure names the
service, the step and the log file to read."""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path


class StepFailed(Exception):
    """A launcher step failed; the message is meant for the user."""

    def __init__(self, service: str, step: str, log: Path | None, cause: str):
        where = f"; see {log}" if log else ""
        super().__init__(f"{service}: {step} failed: {cause}{where}")
        self.log = log


_print_lock = threading.Lock()


def say(line: str) -> None:
    """Print one whole line; steps may run in parallel threads."""
    with _print_lock:
        print(line, flush=True)


@contextlib.contextmanager
def step(service: str, what: str, log: Path | None = None) -> Iterator[None]:
    """Run a block of work and print ``[service] what  1.2s`` when it ends."""
    start = time.monotonic()
    try:
        yield
    except StepFailed:
        say(f"  [{service}] {what}  FAILED")
        raise
    except Exception as exc:
        say(f"  [{service}] {what}  FAILED")
        raise StepFailed(service, what, log, str(exc) or type(exc).__name__) from exc
    say(f"  [{service}] {what}  {time.monotonic() - start:.1f}s")


def skip(service: str, what: str) -> None:
    say(f"  [{service}] {what}  (already done)")


def tail(log: Path | None, lines: int = 15) -> None:
    """Show the end of a log after a failure, so the cause is on screen."""
    if not log or not log.exists():
        return
    content = log.read_text(errors="replace").splitlines()[-lines:]
    print(f"--- last lines of {log} ---", file=sys.stderr)
    for line in content:
        print(f"  {line}", file=sys.stderr)
