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

"""Test helpers shared by every suite that needs a real Docker Engine.

Images are built here from Debian's static busybox: no registry is reachable
and tests never pull.  Everything a test creates is tracked and removed, by
name or ID, never by pattern: a demo cloud may be using the same engine.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import tarfile
import unittest
import uuid

import docker

from nova_docker.engine import naming
from nova_docker_aio import images

APPLETS = ("sh", "echo", "sleep", "cat", "ls", "touch", "date", "true", "env", "id")
# PID 1 gets no default signal handlers, so the image traps TERM itself;
# otherwise every stop would wait the whole stop timeout.
DEFAULT_CMD = [
    "/bin/sh",
    "-c",
    "trap 'echo bye; exit 0' TERM; echo hello from nova-docker; "
    "while :; do sleep 1; done",
]


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def require(condition: bool, why: str) -> None:
    """Skip when ``condition`` is false, except under CI, where it is a
    failure: CI installs everything, so a missing part there is a defect.

    ``unittest.SkipTest``, not ``pytest.skip``: testtools (under Nova's
    TestCase) reports only the former as a skip.
    """
    if condition:
        return
    if in_ci():
        raise RuntimeError(f"CI=true but {why}")
    raise unittest.SkipTest(why)


def engine_client() -> docker.APIClient:
    """A client for the local engine; fails under CI, skips elsewhere."""
    try:
        client = docker.APIClient(version="auto", timeout=60)
        client.ping()
    except Exception as e:
        if in_ci():
            raise RuntimeError(f"CI=true but no Docker Engine answers: {e}") from e
        # unittest's SkipTest, not pytest.skip: Nova's testtools-based cases
        # report pytest's outcome exception as an error.
        raise unittest.SkipTest(
            f"no Docker Engine answers here ({e}); run 'make test'"
        ) from e
    return client


def rootfs_tar(
    extra_files: dict[str, bytes] | None = None, applets: tuple[str, ...] = APPLETS
) -> bytes:
    """A tiny root filesystem: static busybox and links for ``applets``,
    from the one builder the launcher, benchmarks and tests share."""
    return images.rootfs_tar(extra_files, applets)


def build_image(
    client: docker.APIClient,
    cmd: list[str] | None = DEFAULT_CMD,
    entrypoint: list[str] | None = None,
    changes: list[str] | tuple[str, ...] = (),
    rootfs: bytes | None = None,
) -> str:
    """Import a busybox image under a unique test tag; returns the ref.

    ``changes`` are more Dockerfile instructions (``WORKDIR /srv``), as
    ``docker import --change`` takes them; ``rootfs`` replaces the default
    :func:`rootfs_tar`.
    """
    ref = f"nova-docker-test:{uuid.uuid4().hex[:12]}"
    all_changes = []
    if cmd is not None:
        all_changes.append(f"CMD {json.dumps(cmd)}")
    if entrypoint is not None:
        all_changes.append(f"ENTRYPOINT {json.dumps(entrypoint)}")
    all_changes.extend(changes)
    repository, tag = ref.split(":")
    client.import_image_from_data(
        rootfs_tar() if rootfs is None else rootfs,
        repository=repository,
        tag=tag,
        changes=all_changes,
    )
    return ref


def with_config(tarball: bytes, **config: object) -> bytes:
    """A ``docker save`` tarball whose image config has ``config`` set in
    its ``Config`` (``Healthcheck={...}``): values the engine's own builder
    would refuse, as a hand-made image may carry them."""
    with tarfile.open(fileobj=io.BytesIO(tarball)) as tar:
        members = [(m, tar.extractfile(m).read() if m.isfile() else None) for m in tar]
    files = {m.name: data for m, data in members}
    manifest = json.loads(files["manifest.json"])
    image_config = json.loads(files[manifest[0]["Config"]])
    image_config.setdefault("config", {}).update(config)
    new_config = json.dumps(image_config).encode()
    # The config is named by its digest, as the engine saves it.
    renamed = {manifest[0]["Config"]: hashlib.sha256(new_config).hexdigest() + ".json"}
    manifest[0]["Config"] = renamed[manifest[0]["Config"]]
    files[manifest[0]["Config"]] = new_config
    files["manifest.json"] = json.dumps(manifest).encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as out:
        for info, data in members:
            info.name = renamed.get(info.name, info.name)
            content = None if data is None else files[info.name]
            if content is not None:
                info.size = len(content)
            out.addfile(info, None if content is None else io.BytesIO(content))
    return buffer.getvalue()


def saved(client: docker.APIClient, ref: str) -> bytes:
    return b"".join(client.get_image(ref))


@functools.cache
def busybox_tarball() -> bytes:
    """``docker save`` of the default test image, built once per run."""
    client = engine_client()
    ref = build_image(client)
    try:
        return saved(client, ref)
    finally:
        client.remove_image(ref)


def containers_of_host(client: docker.APIClient, host: str) -> list[dict]:
    """Every container a compute host made: its instances', their network
    sandboxes and rescue containers, stopped ones too."""
    return [
        found
        for selector in (
            naming.host_selector,
            naming.sandbox_selector,
            naming.rescue_selector,
        )
        for found in client.containers(
            all=True,
            filters={"label": naming.label_filters(selector(host))},
        )
    ]


def containers_of_instance(client: docker.APIClient, instance_uuid: str) -> list[dict]:
    """An instance's container and its network sandbox, stopped ones too."""
    return [
        found
        for label in (naming.UUID_LABEL, naming.SANDBOX_OF_LABEL)
        for found in client.containers(
            all=True, filters={"label": f"{label}={instance_uuid}"}
        )
    ]


def _images_of(labels: dict[str, str]) -> list[str]:
    """The images the driver made for a container's instance, which a test
    that does not destroy it leaves: a rescue's, and an unrescued (or moved)
    instance's own."""
    rescued = labels.get(naming.RESCUE_OF_LABEL)
    if rescued:
        return list(naming.rescue_image_refs(rescued))
    instance = labels.get(naming.UUID_LABEL)
    return [naming.migration_image_ref(instance)] if instance else []


class Tracker:
    """Remembers what a test made on the engine and removes exactly that."""

    def __init__(self, client: docker.APIClient) -> None:
        self.client = client
        self.images: list[str] = []
        self.host_labels: list[str] = []

    def cleanup(self) -> None:
        for host in self.host_labels:
            for c in containers_of_host(self.client, host):
                self.client.remove_container(c["Id"], force=True, v=True)
                self.images += _images_of(c.get("Labels") or {})
            # Config drives' volumes outlive a container that was not
            # destroyed through the driver.
            selector = {"label": naming.label_filters(naming.host_selector(host))}
            for volume in self.client.volumes(filters=selector).get("Volumes") or []:
                self.client.remove_volume(volume["Name"], force=True)
        for ref in self.images:
            try:
                self.client.remove_image(ref, force=True)
            except docker.errors.NotFound:
                pass
