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

"""The launcher's one way to the Docker Engine (the SDK; never the CLI).

Only this module imports ``docker``.  What the driver puts on the engine is
recognised by the driver's own names (:mod:`nova_docker.engine.naming`).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors

from nova_docker.engine import naming
from nova_docker_aio import host
from nova_docker_aio import poll

#: Where nova-compute and the launcher reach the machine's engine.
DEFAULT_URL = "unix:///var/run/docker.sock"
TIMEOUT = 60


def _client(api_url: str = DEFAULT_URL, timeout: float = TIMEOUT) -> docker.APIClient:
    return docker.APIClient(base_url=api_url, version="auto", timeout=timeout)


def answers(api_url: str = DEFAULT_URL) -> bool:
    """True when an engine answers there."""
    try:
        with _client(api_url, timeout=5) as client:
            client.ping()
    except Exception:
        return False
    return True


def ensure_running(logfile: Path) -> None:
    """Make sure an engine answers, installing and starting it when possible.

    A dockerd started here is the machine's engine, shared by every cloud:
    ``down`` leaves it running.
    """
    if answers():
        return
    if not shutil.which("dockerd"):
        host.apt_install(["docker.io"], why="the Docker engine")
    host.require_root("starting dockerd")
    logfile.parent.mkdir(parents=True, exist_ok=True)
    with open(logfile, "ab") as log:
        subprocess.Popen(
            ["dockerd"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        poll.until(answers, "the engine answers", timeout=30, interval=0.5)
    except poll.Timeout as exc:
        raise host.HostError(
            "no Docker engine answers on /var/run/docker.sock and dockerd did "
            f"not come up; see {logfile}"
        ) from exc


def remove_containers_of(compute_host: str, api_url: str = DEFAULT_URL) -> list[str]:
    """Force-remove every container of this compute host, its instances'
    and rescue containers and then their network sandboxes, the rescues'
    images, and the volumes (config drives, rescue tools); return names."""
    removed = []
    selectors = (naming.host_selector, naming.rescue_selector, naming.sandbox_selector)
    with _client(api_url) as client:
        for selector in selectors:
            labels = naming.label_filters(selector(compute_host))
            for found in client.containers(all=True, filters={"label": labels}):
                client.remove_container(found["Id"], force=True, v=True)
                removed.extend(name.lstrip("/") for name in found["Names"])
                removed.extend(_remove_rescue_images(client, found))
        labels = naming.label_filters(naming.host_selector(compute_host))
        for volume in client.volumes(filters={"label": labels}).get("Volumes") or []:
            client.remove_volume(volume["Name"], force=True)
            removed.append(volume["Name"])
    return removed


def _remove_rescue_images(client: docker.APIClient, found: dict) -> list[str]:
    """The images a rescue container's server was left with."""
    rescued = (found.get("Labels") or {}).get(naming.RESCUE_OF_LABEL)
    if not rescued:
        return []
    removed = []
    for ref in naming.rescue_image_refs(rescued):
        if client.images(name=ref):
            client.remove_image(ref, force=True)
            removed.append(ref)
    return removed


def remove_glance_copies(image_ids: list[str], api_url: str = DEFAULT_URL) -> list[str]:
    """Remove the engine's copies of these Glance images; return the refs.

    An image still used by a container (kept with --keep-containers) stays.
    """
    removed = []
    with _client(api_url) as client:
        for image_id in image_ids:
            ref = naming.glance_image_ref(image_id)
            try:
                client.remove_image(ref)
            except docker.errors.APIError:
                continue
            removed.append(ref)
    return removed


def describe_instance(server_id: str, api_url: str = DEFAULT_URL) -> str:
    """``docker ps --filter label=<uuid label>=ID`` as one line per running
    container: ID, image, status, name."""
    label = f"{naming.UUID_LABEL}={server_id}"
    with _client(api_url) as client:
        found = client.containers(filters={"label": label})
    lines = [
        f"{c['Id'][:12]}  {c['Image']}  {c['Status']}  {c['Names'][0].lstrip('/')}"
        for c in found
    ]
    return "\n".join(lines)


def has_image(ref: str) -> bool:
    with _client() as client:
        try:
            client.inspect_image(ref)
        except docker.errors.ImageNotFound:
            return False
    return True


def import_rootfs(rootfs: bytes, ref: str, changes: list[str]) -> None:
    """``docker import --change ... - REF``."""
    repository, tag = ref.rsplit(":", 1)
    with _client(timeout=300) as client:
        client.import_image_from_data(
            rootfs, repository=repository, tag=tag, changes=changes
        )


def save(ref: str) -> Iterator[bytes]:
    """``docker save REF``, streamed."""
    with _client(timeout=300) as client:
        yield from client.get_image(ref, chunk_size=1 << 20)


def remove_image(ref: str) -> None:
    with _client() as client:
        try:
            client.remove_image(ref, force=True)
        except docker.errors.ImageNotFound:
            pass
