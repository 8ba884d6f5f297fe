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

"""Images made locally for the benchmarks: a busybox base, and a big
multi-layer image of random data.  Nothing is pulled."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from bench.engine import RUN_LABEL
from bench.engine import RawEngine
from nova_docker_aio import images
from nova_docker_aio import poll

#: busybox ``sleep`` as PID 1: about 1 MiB per container and no wake-ups.
#: It has no TERM handler, which costs nothing here: deletes kill.
SLEEP_CMD = ["/bin/sleep", "999999"]
UPLOAD_TIMEOUT = 900
#: How often the CLI's read offset is looked at while it sends a tarball:
#: the error on the moment its stdin was read through.
STDIN_POLL = 0.005


def base_image(engine: RawEngine) -> str:
    """``docker import`` of static busybox, tagged with the run; its ref."""
    ref = images.build("nova-docker-bench", SLEEP_CMD, tag=engine.run_id)
    return engine.track_image(ref)


def layered_image(engine: RawEngine, base: str, layers: int, mib: int) -> str:
    """``base`` plus ``layers`` commits of ``mib`` MiB of random data each."""
    current = base
    for i in range(layers):
        name = f"bench-layer-{engine.run_id}-{i}"
        engine.api.create_container(
            current,
            command=[
                "/bin/busybox",
                "dd",
                "if=/dev/urandom",
                f"of=/layer{i}",
                "bs=1M",
                f"count={mib}",
            ],
            name=name,
            labels={RUN_LABEL: engine.run_id},
            host_config=engine.api.create_host_config(network_mode="none"),
        )
        try:
            engine.api.start(name)
            if engine.api.wait(name)["StatusCode"] != 0:
                raise RuntimeError(f"writing layer {i} failed")
            ref = f"nova-docker-bench-big:{engine.run_id}-{i}"
            repository, tag = ref.split(":")
            engine.api.commit(
                name,
                repository=repository,
                tag=tag,
                changes=f"CMD {json.dumps(SLEEP_CMD)}",
            )
            current = engine.track_image(ref)
        finally:
            engine.remove(name)
    return current


def save(engine: RawEngine, ref: str, path: Path) -> int:
    """``docker save`` through the API into ``path``; returns its size."""
    engine.files.append(path)
    with open(path, "wb") as out:
        for chunk in engine.api.get_image(ref, chunk_size=1024 * 1024):
            out.write(chunk)
    return path.stat().st_size


def load_timed(engine: RawEngine, path: Path, ref: str) -> float:
    """``docker load < path``'s seconds; then ``ref`` goes, layers and all,
    so the next load finds no work done."""
    return load_timed_split(engine, path, ref)[0]


def load_timed_split(engine: RawEngine, path: Path, ref: str) -> tuple[float, float]:
    """``docker load < path``, split in two: returns
    the seconds in all, and the seconds from the moment the CLI had read
    the whole file until it exited.

    ``docker load`` (moby's ``image/tarexport/load.go``) first untars the
    whole stream into a temporary directory and only then registers the
    layers; the CLI sends its stdin as the request body during the first
    phase, so what follows is dockerd's second phase.  The moment is seen
    from outside, in ``/proc``, so the file still goes in by redirection,
    with nothing of ours in between."""
    with open(path, "rb") as data:
        started = time.monotonic()
        cli = subprocess.Popen(
            ["docker", "load"],
            stdin=data,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        read_through = _until_read(cli, path)
        _, errors = cli.communicate()
        ended = time.monotonic()
    if cli.returncode != 0:
        raise subprocess.CalledProcessError(cli.returncode, cli.args, stderr=errors)
    engine.remove_image(ref)
    return ended - started, ended - read_through


def _until_read(cli: subprocess.Popen[bytes], path: Path) -> float:
    """The moment ``cli`` had read all of ``path``, its stdin, or exited.

    The CLI's HTTP client closes the request body, and so stdin, once it
    has sent it: a stdin that no longer holds the file has been read."""
    size = path.stat().st_size
    while cli.poll() is None:
        offset = stdin_offset(cli.pid, path)
        if offset is None or offset >= size:
            return time.monotonic()
        time.sleep(STDIN_POLL)
    return time.monotonic()


def stdin_offset(pid: int, path: Path) -> int | None:
    """How far process ``pid`` has read into ``path`` on its stdin; None
    once its stdin is no longer that file (closed, or the process gone)."""
    try:
        if os.readlink(f"/proc/{pid}/fd/0") != str(path.resolve()):
            return None
        info = Path(f"/proc/{pid}/fdinfo/0").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    for line in info.splitlines():
        if line.startswith("pos:"):
            return int(line.split()[1])
    return None


def upload(conn: Any, name: str, path: Path) -> str:
    """Create a docker/raw Glance image from a tarball; wait until active."""
    image = conn.image.create_image(
        name,
        filename=str(path),
        container_format="docker",
        disk_format="raw",
        allow_duplicates=True,
        wait=True,
        timeout=900,
    )
    return image.id


def upload_timed(conn: Any, name: str, path: Path) -> tuple[str, float]:
    """Like :func:`upload`, but with no checksums computed first: one PUT of
    the file, then the wait until Glance calls it active.  Returns the ID
    and the seconds of PUT + wait."""
    image = conn.image.create_image(
        name, container_format="docker", disk_format="raw", allow_duplicates=True
    )
    started = time.monotonic()
    with open(path, "rb") as data:
        image.upload(conn.image, data=data, size=path.stat().st_size)
    poll.until(
        lambda: conn.image.get_image(image.id).status == "active",
        f"Glance image {image.id} is active",
        UPLOAD_TIMEOUT,
        interval=0.05,
    )
    return image.id, time.monotonic() - started
