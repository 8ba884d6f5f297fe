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

"""The engine's cache of Glance images, pruned as Nova's image cache manager
asks (``[image_cache] remove_unused_base_images`` and
``remove_unused_original_minimum_age_seconds``).

An image's age is the time since it was tagged by its load, which the engine
records as ``Metadata.LastTagTime``.  Images a container still uses are never
forced out: the engine refuses, and the image stays.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable

from oslo_log import log as logging

from nova_docker import exception
from nova_docker.engine import client as engine_client
from nova_docker.engine import naming

LOG = logging.getLogger(__name__)


class ImageCache:
    def __init__(self, engine: engine_client.Engine) -> None:
        self._engine = engine

    def cached_ids(self) -> dict[str, str]:
        """Glance image UUID → engine ref, for every cached image."""
        return {
            ref.rpartition(":")[2]: ref
            for ref in self._engine.image_tags(naming.GLANCE_REPOSITORY)
        }

    def prune(self, in_use: Iterable[str], min_age_seconds: int) -> list[str]:
        """Remove cached images not in ``in_use`` and older than the minimum.

        Returns the Glance UUIDs whose images were removed.
        """
        keep = set(in_use)
        removed = []
        for image_id, ref in sorted(self.cached_ids().items()):
            if image_id in keep or self._age(ref) < min_age_seconds:
                continue
            try:
                self._engine.remove_image(ref)
            except exception.EngineError as e:
                LOG.info("Keeping cached image %s: %s", ref, e.format_message())
                continue
            LOG.info("Removed unused cached image %s", ref)
            removed.append(image_id)
        return removed

    def _age(self, ref: str) -> float:
        metadata = self._engine.inspect_image(ref).get("Metadata") or {}
        tagged = parse_time(metadata.get("LastTagTime"))
        if tagged is None:
            return float("inf")
        return (datetime.datetime.now(datetime.UTC) - tagged).total_seconds()


def parse_time(text: str | None) -> datetime.datetime | None:
    """The engine's RFC 3339 time, with nanoseconds cut to microseconds."""
    if not text or text.startswith("0001-01-01"):
        return None
    stamp, _, fraction = text.rstrip("Z").partition(".")
    micro = (fraction + "000000")[:6] if fraction else "000000"
    return datetime.datetime.fromisoformat(f"{stamp}.{micro}+00:00")
