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

"""Server verbs as a user performs them, with the waits the figures need.

Polling is the only way a user sees ACTIVE; it is kept light (one small
request per poll) because the API shares its process with nova-compute.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.clouds import BenchCloud
from nova_docker_aio import poll

#: Seconds between polls of one server, and of a list of servers.
POLL_ONE = 0.025
POLL_MANY = 0.25
TIMEOUT = 900


class BootFailed(RuntimeError):
    pass


def boot(cloud: BenchCloud, name: str, image_id: str = "", count: int = 1) -> Any:
    """``POST /servers`` (``--nic none``); ``count`` > 1 is one multi-create."""
    extra = {"min_count": count, "max_count": count} if count > 1 else {}
    return cloud.conn.compute.create_server(
        name=name,
        image_id=image_id or cloud.base_image_id,
        flavor_id=cloud.flavor_id,
        networks="none",
        **extra,
    )


def _fault(server: Any) -> str:
    return str((server.fault or {}).get("message", "no fault recorded"))


def wait_active(cloud: BenchCloud, server_id: str) -> None:
    wait_status(cloud, server_id, "ACTIVE", TIMEOUT, POLL_ONE)


def wait_status(
    cloud: BenchCloud, server_id: str, status: str, timeout: float, interval: float
) -> None:
    """Poll the API until the server has ``status``; a server in ERROR
    fails at once, with its fault."""

    def reached() -> bool:
        server = cloud.conn.compute.get_server(server_id)
        if server.status == "ERROR":
            raise BootFailed(f"server {server_id} went to ERROR: {_fault(server)}")
        return server.status == status

    poll.until(reached, f"server {server_id} is {status}", timeout, interval)


def boot_timed(cloud: BenchCloud, name: str, image_id: str = "") -> tuple[str, float]:
    """POST /servers → ACTIVE; returns the server ID and the seconds."""
    started = time.monotonic()
    server = boot(cloud, name, image_id)
    wait_active(cloud, server.id)
    return server.id, time.monotonic() - started


def _ids(cloud: BenchCloud, prefix: str, status: str) -> list[str]:
    found = cloud.conn.compute.servers(details=False, name=f"^{prefix}", status=status)
    return [s.id for s in found]


def wait_all_active(cloud: BenchCloud, prefix: str, count: int) -> list[str]:
    """Until ``count`` servers named ``prefix*`` are ACTIVE; their IDs."""
    polls = 0

    def all_active() -> list[str]:
        nonlocal polls
        active = _ids(cloud, prefix, "ACTIVE")
        if len(active) >= count:
            return active
        polls += 1
        if polls % 8 == 0 and _ids(cloud, prefix, "ERROR"):
            failed = next(cloud.conn.compute.servers(name=f"^{prefix}", status="ERROR"))
            raise BootFailed(f"{failed.name} went to ERROR: {_fault(failed)}")
        return []

    return poll.until(all_active, f"{count} {prefix}* ACTIVE", TIMEOUT, POLL_MANY)


def boot_many(cloud: BenchCloud, prefix: str, count: int) -> tuple[list[str], float]:
    """One multi-create of ``count``; until all ACTIVE: IDs and seconds."""
    started = time.monotonic()
    boot(cloud, prefix, count=count)
    ids = wait_all_active(cloud, prefix, count)
    return ids, time.monotonic() - started


def delete_all(cloud: BenchCloud, server_ids: list[str], workers: int = 10) -> None:
    """``DELETE /servers/{id}`` for each, ``workers`` requests at a time."""
    if not server_ids:
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(cloud.conn.compute.delete_server, server_ids))


def wait_deleted(cloud: BenchCloud, server_ids: list[str]) -> None:
    """Until Nova no longer lists any of these servers."""
    wanted = set(server_ids)

    def gone() -> bool:
        return not {s.id for s in cloud.conn.compute.servers(details=False)} & wanted

    poll.until(gone, f"{len(wanted)} servers deleted", TIMEOUT, POLL_MANY)


def remove(cloud: BenchCloud, server_ids: list[str]) -> None:
    """Delete and wait: the untimed cleanup between measurements."""
    delete_all(cloud, server_ids)
    wait_deleted(cloud, server_ids)
