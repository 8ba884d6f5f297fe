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

"""The raw-Docker side of every comparison, and the record of what the
benchmarks made on the engine so that exactly that is removed.

Containers are labelled with the run's ID; images are tagged with it.
Nothing is ever pulled, and nothing is removed by pattern.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import docker
import docker.errors

#: Every raw container a benchmark makes carries this label (value: run ID).
RUN_LABEL = "org.nova-docker.bench-run"
#: What a container costs to keep: memory limit, as the bench flavor.
MEMORY_LIMIT = 64 * 1024 * 1024


class RawEngine:
    """Docker API calls the way a user would make them, with bookkeeping."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.api = docker.APIClient(version="auto", timeout=900, max_pool_size=8)
        self.images: list[str] = []
        self.files: list[Path] = []

    def client(self) -> docker.APIClient:
        """A client of its own, for one thread of a parallel baseline."""
        return docker.APIClient(version=self.api.api_version, timeout=900)

    # -- containers -------------------------------------------------------

    def create_start(
        self, image: str, name: str, client: docker.APIClient | None = None
    ) -> float:
        """``docker run -d --network none`` through the API; the seconds."""
        api = client or self.api
        started = time.monotonic()
        self.create(image, name, api=api)
        api.start(name)
        return time.monotonic() - started

    def create(
        self,
        image: str,
        name: str,
        network_mode: str = "none",
        api: docker.APIClient | None = None,
    ) -> None:
        """``docker create --network <network_mode>``, labelled as this run's."""
        api = api or self.api
        api.create_container(
            image,
            name=name,
            labels={RUN_LABEL: self.run_id},
            host_config=api.create_host_config(
                network_mode=network_mode, mem_limit=MEMORY_LIMIT
            ),
        )

    def remove(self, name: str, client: docker.APIClient | None = None) -> float:
        """``docker rm -f``; the seconds."""
        started = time.monotonic()
        with contextlib.suppress(docker.errors.NotFound):
            (client or self.api).remove_container(name, force=True, v=True)
        return time.monotonic() - started

    def in_parallel(self, names: list[str], work: Callable[..., float]) -> float:
        """Run ``work(name, client)`` for every name at once; wall seconds."""
        clients = [self.client() for _ in names]
        with ThreadPoolExecutor(max_workers=max(1, len(names))) as pool:
            started = time.monotonic()
            pairs = zip(names, clients, strict=True)
            futures = [pool.submit(work, name, client) for name, client in pairs]
            for future in futures:
                future.result()
            took = time.monotonic() - started
        for c in clients:
            c.close()
        return took

    def exec(self, container: str, argv: list[str]) -> None:
        """Run ``argv`` in ``container`` to completion; raise if it fails."""
        made = self.api.exec_create(container, argv)
        self.api.exec_start(made["Id"])
        code = self.api.exec_inspect(made["Id"])["ExitCode"]
        if code != 0:
            raise RuntimeError(f"{argv} in {container} exited with {code}")

    def write_random(self, container: str, path: str, mib: int) -> None:
        """Add ``mib`` MiB of incompressible data to a container's rootfs."""
        self.exec(
            container,
            [
                "/bin/busybox",
                "dd",
                "if=/dev/urandom",
                f"of={path}",
                "bs=1M",
                f"count={mib}",
            ],
        )

    # -- images -----------------------------------------------------------

    def track_image(self, ref: str) -> str:
        self.images.append(ref)
        return ref

    def remove_image(self, ref: str) -> None:
        with contextlib.suppress(docker.errors.NotFound):
            self.api.remove_image(ref, force=True)

    def cli(self, *args: str, stdin: Any = None, stdout: Any = None) -> None:
        """The ``docker`` CLI, for baselines the issue names as commands."""
        subprocess.run(
            ["docker", *args],
            stdin=stdin,
            stdout=stdout if stdout is not None else subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            check=True,
        )

    # -- cleanup ----------------------------------------------------------

    def cleanup(self) -> list[str]:
        """Remove every container of this run, then every image and file
        recorded; return what could not be removed."""
        left = []
        found = self.api.containers(
            all=True, filters={"label": f"{RUN_LABEL}={self.run_id}"}
        )
        for container in found:
            try:
                self.api.remove_container(container["Id"], force=True, v=True)
            except docker.errors.APIError as exc:
                left.append(f"container {container['Id'][:12]}: {exc}")
        for ref in reversed(self.images):
            try:
                self.remove_image(ref)
            except docker.errors.APIError as exc:
                left.append(f"image {ref}: {exc}")
        for path in self.files:
            path.unlink(missing_ok=True)
        return left
