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

"""What one run shares between its benchmarks."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path
from typing import Any

from bench.clouds import BenchCloud
from bench.clouds import Clouds
from bench.engine import RawEngine
from bench.stats import Figure


@dataclasses.dataclass(frozen=True)
class Options:
    #: sequential boots per cloud (median of these)
    iterations: int = 10
    #: servers in the burst, and deleted in the delete benchmark
    burst: int = 50
    #: instances on the host for the density probe
    density: int = 250
    #: the import image: layers x MiB of random data each
    import_layers: int = 5
    import_layer_mib: int = 100
    snapshot_mib: int = 200
    #: repetitions of the heavy benchmarks (import, snapshot, density probes)
    heavy_iterations: int = 3
    #: servers whose containers are killed behind Nova's back, one sample each
    events: int = 5
    #: where py-spy's recordings go (``--profile``); None: not profiled
    profile: Path | None = None


@dataclasses.dataclass
class Context:
    options: Options
    engine: RawEngine
    clouds: Clouds
    workdir: Path
    #: the busybox base image on the engine (also uploaded to each Glance)
    base_ref: str
    figures: list[Figure] = dataclasses.field(default_factory=list)
    extras: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: servers left running by one benchmark for the next, by driver
    alive: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    _serial: itertools.count = dataclasses.field(default_factory=itertools.count)

    @property
    def docker(self) -> BenchCloud:
        cloud = self.clouds.get("docker")
        if cloud is None:
            raise RuntimeError("this benchmark needs the docker cloud")
        return cloud

    @property
    def fake(self) -> BenchCloud:
        cloud = self.clouds.get("fake")
        if cloud is None:
            raise RuntimeError("this benchmark needs the fake-driver cloud")
        return cloud

    def name(self, what: str) -> str:
        """A unique server/container/image name of this run."""
        return f"bench-{self.engine.run_id}-{what}-{next(self._serial)}"

    def say(self, line: str) -> None:
        print(f"  {line}", flush=True)
