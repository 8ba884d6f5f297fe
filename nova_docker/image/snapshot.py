"""Engine → Glance: snapshot a container into a bootable Glance image.

The container is committed under the snapshot's own ``nova-glance:<uuid>``
tag, so the saved tarball already names the image the way a later boot will
look for it, then ``docker save`` streams straight into Glance's upload.
The local tag is removed afterwards: only the Glance image remains.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nova.compute import task_states
from oslo_log import log as logging

from nova_docker.engine import client as engine_client
from nova_docker.engine import naming
from nova_docker.image import fetch
from nova_docker.image import pipe as pipe_mod

LOG = logging.getLogger(__name__)


class Snapshotter:
    def __init__(self, engine: engine_client.Engine, image_api: Any) -> None:
        self._engine = engine
        self._image_api = image_api

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
        repository, tag = naming.glance_image_ref(image_id).split(":", 1)
        ref = f"{repository}:{tag}"
        self._engine.commit(container, repository, tag)
        try:
            update_task_state(
                task_state=task_states.IMAGE_UPLOADING,
                expected_state=task_states.IMAGE_PENDING_UPLOAD,
            )
            LOG.info("Uploading snapshot %s", image_id, instance=instance)
            self._image_api.update(
                context,
                image_id,
                snapshot_metadata(snapshot_name, instance.project_id),
                data=pipe_mod.IteratorReader(self._engine.save_image(ref)),
                purge_props=False,
            )
        finally:
            self._engine.remove_image(ref)


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
