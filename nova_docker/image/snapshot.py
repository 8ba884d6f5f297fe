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

"""Engine → Glance: snapshot a container into a bootable Glance image.

The container is committed under ``nova-snapshot:<snapshot uuid>``, then
``docker save`` streams into Glance's upload through :func:`tarball.scrub`,
which rebuilds the archive untagged and without the labels that name this
host and the instance (a later boot re-tags the image by its Glance UUID,
as every load does).  The local tag is removed
afterwards: only the Glance image remains.  A tag left by a snapshot that
a crash of the engine or of nova-compute cut short is swept away at start-up
and by every image cache pass.  A committed image keeps its container's
labels, so each compute host sweeps only its own: several hosts (or the
all-in-one clouds) may share one engine.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

from nova.compute import task_states
from oslo_log import log as logging

from nova_docker import exception
from nova_docker.engine import client as engine_client
from nova_docker.engine import naming
from nova_docker.image import fetch
from nova_docker.image import layers
from nova_docker.image import pipe as pipe_mod
from nova_docker.image import tarball

LOG = logging.getLogger(__name__)
PIPE_CHUNKS = 16


class Snapshotter:
    """:param host: this compute host; only its snapshot tags are swept.
    :param max_expanded_bytes: a snapshot that would expand to more is
        refused, since no host of this cloud would boot it."""

    def __init__(
        self,
        engine: engine_client.Engine,
        image_api: Any,
        host: str,
        max_expanded_bytes: int,
    ) -> None:
        self._engine = engine
        self._image_api = image_api
        self._host = host
        self._max_expanded_bytes = max_expanded_bytes
        # Snapshot tags in use; held while sweeping, so that a sweep never
        # removes the tag of a snapshot still being taken.
        self._in_flight: set[str] = set()
        self._lock = threading.Lock()

    def snapshot(
        self,
        context: Any,
        instance: Any,
        container: str,
        image_id: str,
        update_task_state: Callable[..., None],
    ) -> None:
        """Commit ``container`` and upload it as Glance image ``image_id``."""
        update_task_state(task_state=task_states.IMAGE_PENDING_UPLOAD)
        snapshot_name = self._image_api.get(context, image_id)["name"]

        def uploading() -> None:
            update_task_state(
                task_state=task_states.IMAGE_UPLOADING,
                expected_state=task_states.IMAGE_PENDING_UPLOAD,
            )
            LOG.info("Uploading snapshot %s", image_id, instance=instance)

        self.export(
            context,
            container,
            image_id,
            snapshot_metadata(snapshot_name, instance.project_id),
            before_upload=uploading,
        )

    def export(
        self,
        context: Any,
        container: str,
        image_id: str,
        metadata: dict[str, Any],
        budget: layers.Budget | None = None,
        before_upload: Callable[[], None] | None = None,
    ) -> None:
        """Commit ``container`` and stream it into the existing Glance image
        ``image_id``; afterwards only the Glance image remains.

        :param budget: what the layers may expand to; by default
            ``max_expanded_bytes``, since no host of this cloud would boot
            more.  A migration passes the new flavor's root disk.
        """
        ref = naming.snapshot_ref(image_id)
        repository, tag = ref.split(":", 1)
        if budget is None:
            budget = layers.Budget(self._max_expanded_bytes, fetch.MAX_EXPANDED_REASON)
        with self._lock:
            self._in_flight.add(ref)
        try:
            self._engine.commit(container, repository, tag)
            if before_upload is not None:
                before_upload()
            self._upload(context, image_id, metadata, ref, budget)
        finally:
            with self._lock:
                self._in_flight.discard(ref)
            self._forget(ref)

    def _upload(
        self,
        context: Any,
        image_id: str,
        metadata: dict[str, Any],
        ref: str,
        budget: layers.Budget,
    ) -> None:
        scrubbed = pipe_mod.Pipe(PIPE_CHUNKS)
        scrubber = pipe_mod.Stage(
            "snapshot-scrub",
            lambda: pipe_mod.pump(
                functools.partial(tarball.scrub, budget=budget),
                self._engine.save_image(ref),
                scrubbed,
            ),
        )
        scrubber.start()
        try:
            self._image_api.update(
                context,
                image_id,
                metadata,
                data=pipe_mod.IteratorReader(scrubbed),
                purge_props=False,
            )
        except Exception:
            # Glance saw the stream break; the stage knows why it broke.
            scrubbed.abandon()
            scrubber.join()
            if scrubber.real_error() is not None:
                raise scrubber.real_error() from None
            raise
        if not scrubbed.ended:
            # Never waited for: the save would block on a pipe no one
            # reads, and the image would hold part of the snapshot.
            scrubbed.abandon()
            scrubber.join()
            raise exception.SnapshotNotRead(image_id=image_id)
        scrubber.join()

    def sweep(self) -> None:
        """Remove this host's tags of snapshots that were cut short."""
        ours = naming.host_selector(self._host)
        with self._lock:
            for ref in self._engine.image_tags(naming.SNAPSHOT_REPOSITORY, ours):
                if ref not in self._in_flight:
                    LOG.info("Removing %s, left by an interrupted snapshot", ref)
                    self._forget(ref)

    def _forget(self, ref: str) -> None:
        try:
            self._engine.remove_image(ref)
        except exception.EngineUnavailable:
            LOG.warning(
                "Could not remove %s, the engine is down; the next image "
                "cache pass removes it",
                ref,
            )


def snapshot_metadata(name: str, owner: str) -> dict[str, Any]:
    return {
        "name": name,
        "disk_format": "raw",
        "container_format": fetch.DOCKER_CONTAINER_FORMAT,
        "properties": {
            "image_location": "snapshot",
            "image_state": "available",
            "owner_id": owner,
        },
    }
