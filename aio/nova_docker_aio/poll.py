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

"""Wait for something that becomes true on its own: the one poll helper of
the launcher, the benchmarks and the end-to-end tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class Timeout(RuntimeError):
    """What was awaited did not come; the message names it."""


def until(
    check: Callable[[], T],
    what: str,
    timeout: float,
    interval: float = 1.0,
) -> T:
    """Call ``check`` until it returns something true, and return that.

    Raises :class:`Timeout` naming ``what`` after ``timeout`` seconds.
    ``check`` may raise to stop early (a process that died, a server that
    went to ERROR).
    """
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise Timeout(f"after {timeout:.0f}s still not: {what}")
        time.sleep(interval)
