"""Wait for a condition that becomes true asynchronously (a container's
output appearing, a state settling).  The limit is a safety net against a
hung test, not an assertion about speed."""

from __future__ import annotations

import time
from collections.abc import Callable

SAFETY_LIMIT_SECONDS = 60


def until(condition: Callable[[], bool], what: str = "condition") -> None:
    deadline = time.monotonic() + SAFETY_LIMIT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} never became true")
        time.sleep(0.1)
