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

"""Glance → engine: make a Glance image available as an engine image.

The download streams through three stages joined by bounded pipes::

    Glance download ──pipe──▶ tarball.retag ──pipe──▶ engine image load
      (thread)                  (thread)               (calling thread)

so no stage holds more than a few chunks and nothing touches the disk but the
engine itself.  The loaded image is tagged ``nova-glance:<glance uuid>``; a
second boot of the same image finds the tag and downloads nothing, and
concurrent boots of one image share a lock so it is downloaded once.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from nova import exception as nova_exception
from nova import objects
from nova.i18n import _
from oslo_concurrency import lockutils
from oslo_log import log as logging
from oslo_utils import units

from nova_docker import exception
from nova_docker.engine import client as engine_client
from nova_docker.engine import naming
from nova_docker.image import layers
from nova_docker.image import pipe as pipe_mod
from nova_docker.image import tarball

LOG = logging.getLogger(__name__)

DOCKER_CONTAINER_FORMAT = "docker"
PIPE_CHUNKS = 16


#: What the limit from ``[docker] max_image_expanded_gb`` is called in faults.
MAX_EXPANDED_REASON = "[docker] max_image_expanded_gb"


class ImageFetcher:
    """:param max_expanded_bytes: no image may expand to more on the
    engine's disk, whatever the flavor."""

    def __init__(
        self, engine: engine_client.Engine, image_api: Any, max_expanded_bytes: int
    ) -> None:
        self._engine = engine
        self._image_api = image_api
        self._max_expanded_bytes = max_expanded_bytes

    def ensure(self, context: Any, image_meta: Any, instance: Any = None) -> str:
        """Return the engine ref of ``image_meta``, loading it if needed.

        The image must fit the instance's root disk (its flavor's
        ``root_gb``, when set) as well as ``max_expanded_bytes``.

        :raises nova.exception.ImageUnacceptable: the image is not a usable
            Docker image, or expands past a limit; the reason says why.
        :raises nova.exception.FlavorDiskSmallerThanImage: the image is cached
            and expands to more than the flavor's root disk.
        """
        return self.ensure_inspected(context, image_meta, instance)[0]

    def ensure_inspected(
        self, context: Any, image_meta: Any, instance: Any = None
    ) -> tuple[str, dict[str, Any]]:
        """:meth:`ensure`, with the engine's inspect of the image, so that
        a boot need not ask for it again."""
        image_id = image_meta.id
        check_container_format(image_meta)
        ref = naming.glance_image_ref(image_id)
        root_disk = root_disk_bytes(instance)
        found = self._cached(ref, root_disk)
        if found is not None:
            return ref, found
        with lockutils.lock(f"nova-docker-image-{image_id}"):
            # Another boot may have loaded it while we waited.
            found = self._cached(ref, root_disk)
            if found is not None:
                return ref, found
            LOG.info(
                "Loading Glance image %s into the engine", image_id, instance=instance
            )
            self._load(context, image_id, ref, self._budget(root_disk))
        return ref, self._engine.inspect_image(ref)

    def prefetch(self, context: Any, image_id: str) -> bool:
        """Load ``image_id`` ahead of any boot; False if it was cached."""
        if self._engine.image_exists(naming.glance_image_ref(image_id)):
            return False
        image_meta = objects.ImageMeta.from_dict(self._image_api.get(context, image_id))
        self.ensure(context, image_meta)
        return True

    def _cached(self, ref: str, root_disk: int) -> dict[str, Any] | None:
        """The image's inspect when the engine has it, else None."""
        try:
            image = self._engine.inspect_image(ref)
        except exception.ImageNotCached:
            return None
        expanded = expanded_bytes(image)
        if root_disk and expanded is not None and expanded > root_disk:
            raise nova_exception.FlavorDiskSmallerThanImage(
                flavor_size=root_disk, image_size=expanded
            )
        return image

    def _budget(self, root_disk: int) -> layers.Budget:
        if root_disk and root_disk < self._max_expanded_bytes:
            return layers.Budget(root_disk, "the flavor's root disk")
        return layers.Budget(self._max_expanded_bytes, MAX_EXPANDED_REASON)

    def _load(
        self, context: Any, image_id: str, ref: str, budget: layers.Budget
    ) -> None:
        # No trusted_certs: the driver does not claim supports_trusted_certs,
        # so Nova never schedules such boots here.  Glance signatures are
        # still verified when [glance] verify_glance_signatures is set.
        try:
            loaded = load_streamed(
                lambda sink: self._image_api.download(context, image_id, data=sink),
                self._engine,
                ref,
                budget,
            )
        except exception.InvalidImageTarball as e:
            self._forget(ref)
            raise nova_exception.ImageUnacceptable(
                image_id=image_id, reason=e.format_message()
            ) from e
        except exception.EngineError as e:
            self._forget(ref)
            raise nova_exception.ImageUnacceptable(
                image_id=image_id,
                reason=_("the Docker Engine refused it: %s") % e.format_message(),
            ) from e
        except exception.EngineUnavailable as e:
            # The engine closes the connection when it rejects a load midway;
            # only if it no longer answers at all is it really unavailable.
            self._engine.ping()
            self._forget(ref)
            raise nova_exception.ImageUnacceptable(
                image_id=image_id,
                reason=_("the Docker Engine broke off loading it: %s")
                % e.format_message(),
            ) from e
        except Exception:
            self._forget(ref)
            raise
        self._check_loaded(image_id, ref, loaded)
        if not self._engine.image_exists(ref):
            raise nova_exception.ImageUnacceptable(
                image_id=image_id,
                reason=_("the engine loaded it but reported no image %s") % ref,
            )
        # A load does not stamp the tag's time; tagging again does, and the
        # image cache ages images by it.
        self._engine.tag_image(ref, ref)

    def _check_loaded(self, image_id: str, ref: str, loaded: list[str]) -> None:
        """Fail the load if the engine reports any image but ``ref``.

        The rebuilt tarball names only ``ref``, so this never fires unless
        that guarantee broke; a tag planted on the host is then removed at
        once rather than left for the next boot to run.
        """
        unexpected = [name for name in loaded if name != ref]
        if not unexpected:
            return
        LOG.error(
            "Loading Glance image %s made the engine report %s besides %s; "
            "removing them",
            image_id,
            unexpected,
            ref,
        )
        for name in [ref, *unexpected]:
            # An untagged image is named by its ID, which other tags may
            # share: only tags are removed.
            if not name.startswith("sha256:"):
                self._forget(name)
        raise nova_exception.ImageUnacceptable(
            image_id=image_id,
            reason=_(
                "loading it made the engine report images other than %(ref)s "
                "(%(others)s); they were removed"
            )
            % {"ref": ref, "others": ", ".join(unexpected)},
        )

    def _forget(self, ref: str) -> None:
        """Best-effort removal of a tag a failed load may have left."""
        try:
            self._engine.remove_image(ref)
        except exception.EngineUnavailable:
            LOG.warning("Could not check for a partial image %s: engine is down", ref)


def root_disk_bytes(instance: Any) -> int:
    """The instance's root disk in bytes; 0 when its flavor sets none."""
    if instance is None:
        return 0
    flavor = instance.flavor
    # A flavor object built by hand (tests, tools) may lack the field.
    if hasattr(flavor, "obj_attr_is_set") and not flavor.obj_attr_is_set("root_gb"):
        return 0
    return int(flavor.root_gb or 0) * units.Gi


def expanded_bytes(image: dict[str, Any]) -> int | None:
    """What a loaded image's layers expand to, as counted at its load;
    None for an image loaded before the driver counted."""
    labels = (image.get("Config") or {}).get("Labels") or {}
    value = labels.get(naming.EXPANDED_BYTES_LABEL, "")
    return int(value) if value.isdigit() else None


def check_container_format(image_meta: Any) -> None:
    container_format = (
        image_meta.container_format
        if image_meta.obj_attr_is_set("container_format")
        else None
    )
    if container_format != DOCKER_CONTAINER_FORMAT:
        raise nova_exception.ImageUnacceptable(
            image_id=image_meta.id,
            reason=_(
                "container_format is %(actual)r; nova-docker boots only "
                "images with container_format 'docker' (the output of "
                "'docker save')"
            )
            % {"actual": container_format},
        )


def load_streamed(
    download: Callable[[pipe_mod.Pipe], None],
    engine: engine_client.Engine,
    ref: str,
    budget: layers.Budget,
) -> list[str]:
    """Run ``download(sink)`` into the engine's image load, tagged ``ref``;
    returns what the engine reports it loaded.

    The first failure along the pipeline is raised: a Glance error before a
    tarball error before an engine error, since each later stage only sees
    the earlier one's failure as a truncated stream.
    """
    raw = pipe_mod.Pipe(PIPE_CHUNKS)
    checked = pipe_mod.Pipe(PIPE_CHUNKS)
    fetcher = pipe_mod.Stage("glance-download", lambda: _produce(download, raw))
    retagger = pipe_mod.Stage(
        "tarball-retag",
        lambda: pipe_mod.pump(
            functools.partial(tarball.retag, ref=ref, budget=budget), raw, checked
        ),
    )
    fetcher.start()
    retagger.start()
    load_error = None
    loaded: list[str] = []
    try:
        loaded = engine.load_image(iter(checked))
    except BaseException as e:
        load_error = e
        checked.abandon()
    retagger.join()
    fetcher.join()
    for error in (fetcher.real_error(), retagger.real_error()):
        if error is not None:
            raise error
    if load_error is not None:
        raise load_error
    return loaded


def _produce(download: Callable[[pipe_mod.Pipe], None], sink: pipe_mod.Pipe) -> None:
    try:
        download(sink)
    except BaseException as e:
        sink.abort(e)
        raise
    sink.close()
