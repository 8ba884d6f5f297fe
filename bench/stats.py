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

"""Figures: a ratio against a baseline measured in the same run, plus the
absolute medians it came from."""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def median(samples: list[float]) -> float:
    return statistics.median(samples) if samples else float("nan")


@contextmanager
def stopwatch() -> Iterator[list[float]]:
    """``with stopwatch() as took: ...``; then ``took[0]`` is the seconds."""
    took: list[float] = []
    started = time.monotonic()
    try:
        yield took
    finally:
        took.append(time.monotonic() - started)


@dataclasses.dataclass
class Figure:
    """One line of the results table."""

    #: e.g. ``boot.overhead``
    name: str
    #: what ``ratio`` means, e.g. "(docker - fake) / raw"
    formula: str
    ratio: float
    #: the project's goal for ``ratio``, e.g. "<= 1.2"; empty if none
    target: str = ""
    #: named absolute medians, e.g. {"docker_s": 1.1, "raw_s": 0.2}
    medians: dict[str, float] = dataclasses.field(default_factory=dict)
    #: raw samples by the same names, for the JSON only
    samples: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    note: str = ""

    @property
    def met(self) -> bool | None:
        if not self.target:
            return None
        op, _, bound = self.target.partition(" ")
        limit = float(bound)
        checks = {
            "<": self.ratio < limit,
            "<=": self.ratio <= limit,
            ">=": self.ratio >= limit,
            "==": self.ratio == limit,
        }
        return checks[op]

    def as_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "met": self.met}
