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

"""The boot benchmark's raw pod and its reading of the probe's seconds."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from bench import boot


class Engine:
    """Records the raw engine calls, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.api = SimpleNamespace(start=self._start)

    def _start(self, name: str) -> None:
        self.calls.append(("start", name))

    def create(self, image: str, name: str, network_mode: str = "none") -> None:
        self.calls.append(("create", image, name, network_mode))


def test_raw_pod_makes_the_container_before_its_sandbox_then_starts_both() -> None:
    engine = Engine()

    boot._raw_pod(engine, "img:1", "pod")

    # The driver's order: a sandbox that exists at the container's create
    # would be pinned by ID, so the container comes first.
    assert engine.calls == [
        ("create", "img:1", "pod", "container:pod-sandbox"),
        ("create", "img:1", "pod-sandbox", "none"),
        ("start", "pod-sandbox"),
        ("start", "pod"),
    ]


def test_engine_seconds_are_all_calls_and_the_starts_among_them() -> None:
    calls = {
        "seconds": {
            "POST /containers/create": 0.5,
            "POST /containers/{}/start": 2.0,
            "GET /containers/{}/json": 0.25,
        }
    }

    assert boot._engine_seconds(calls) == (2.75, 2.0)
    assert boot._engine_seconds({}) == (0.0, 0.0)
