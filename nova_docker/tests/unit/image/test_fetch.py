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

"""Which limit a load gets, cached images against the flavor's disk, and
what the engine reports after a load.

The engine is a stand-in; loads themselves are tested on the real engine
(tests/functional/test_image_expansion.py, test_hostile_images.py).
"""

from __future__ import annotations

import types

import pytest
from nova import exception as nova_exception
from oslo_utils import units

from nova_docker import exception
from nova_docker.engine import naming
from nova_docker.image import fetch
from nova_docker.tests import tarcraft

IMAGE_ID = "5b1f8ad2-3a6c-4c8e-9d42-0f2a8c1d7e11"


class InspectOnlyEngine:
    def __init__(self, labels: dict[str, str] | None) -> None:
        self.labels = labels

    def inspect_image(self, ref: str) -> dict:
        if self.labels is None:
            raise exception.ImageNotCached(ref=ref)
        return {"Config": {"Labels": self.labels}}


def image_meta():
    return types.SimpleNamespace(
        id=IMAGE_ID,
        container_format="docker",
        obj_attr_is_set=lambda name: True,
    )


def instance(root_gb: int):
    return types.SimpleNamespace(flavor=types.SimpleNamespace(root_gb=root_gb))


def cached(expanded: int | None) -> fetch.ImageFetcher:
    labels = {} if expanded is None else {naming.EXPANDED_BYTES_LABEL: str(expanded)}
    return fetch.ImageFetcher(InspectOnlyEngine(labels), None, 10 * units.Gi)


def test_a_cached_image_larger_than_the_root_disk_is_refused_with_both_sizes():
    fetcher = cached(3 * units.Gi)
    with pytest.raises(nova_exception.FlavorDiskSmallerThanImage) as raised:
        fetcher.ensure(None, image_meta(), instance(root_gb=2))
    message = raised.value.format_message()
    assert str(2 * units.Gi) in message and str(3 * units.Gi) in message


@pytest.mark.parametrize("root_gb", [0, 3])
def test_a_cached_image_that_fits_or_a_flavor_without_a_root_disk_boots(root_gb):
    ref = cached(3 * units.Gi).ensure(None, image_meta(), instance(root_gb))
    assert ref == naming.glance_image_ref(IMAGE_ID)


def test_an_image_cached_before_counting_is_not_held_back():
    assert cached(None).ensure(None, image_meta(), instance(root_gb=1))


@pytest.mark.parametrize(
    ("root_gb", "limit", "reason"),
    [
        (0, 10 * units.Gi, fetch.MAX_EXPANDED_REASON),
        (2, 2 * units.Gi, "the flavor's root disk"),
        (20, 10 * units.Gi, fetch.MAX_EXPANDED_REASON),
    ],
)
def test_a_load_gets_the_smaller_of_the_root_disk_and_the_host_limit(
    root_gb, limit, reason
):
    fetcher = fetch.ImageFetcher(InspectOnlyEngine(None), None, 10 * units.Gi)
    budget = fetcher._budget(fetch.root_disk_bytes(instance(root_gb)))
    assert (budget.limit, budget.reason) == (limit, reason)


def test_a_forged_or_missing_label_reads_as_unknown():
    assert fetch.expanded_bytes({"Config": {"Labels": {}}}) is None
    assert fetch.expanded_bytes({"Config": None}) is None
    label = {naming.EXPANDED_BYTES_LABEL: "-5"}
    assert fetch.expanded_bytes({"Config": {"Labels": label}}) is None


class LoadingEngine:
    """Reads the whole rebuilt tarball, then reports ``reported`` loaded."""

    def __init__(self, reported: list[str]) -> None:
        self.reported = reported
        self.tags: set[str] = set()
        self.removed: list[str] = []
        self.loaded_bytes = 0

    def inspect_image(self, ref: str) -> dict:
        if ref not in self.tags:
            raise exception.ImageNotCached(ref=ref)
        return {"Config": {"Labels": {}}}

    def image_exists(self, ref: str) -> bool:
        return ref in self.tags

    def load_image(self, chunks) -> list[str]:
        self.loaded_bytes = sum(len(chunk) for chunk in chunks)
        self.tags.update(name for name in self.reported if ":" in name)
        return list(self.reported)

    def remove_image(self, ref: str) -> bool:
        self.removed.append(ref)
        found = ref in self.tags
        self.tags.discard(ref)
        return found

    def tag_image(self, source: str, ref: str) -> None:
        self.tags.add(ref)


class OneImageGlance:
    def download(self, context, image_id, data=None):
        layer = tarcraft.archive(tarcraft.member("etc/motd", b"hi"))
        data.write(tarcraft.image_tarball(layer))


def load_reporting(reported: list[str]) -> tuple[LoadingEngine, fetch.ImageFetcher]:
    engine = LoadingEngine(reported)
    return engine, fetch.ImageFetcher(engine, OneImageGlance(), 10 * units.Gi)


def test_a_load_reporting_only_its_own_tag_is_kept():
    ref = naming.glance_image_ref(IMAGE_ID)
    engine, fetcher = load_reporting([ref])
    assert fetcher.ensure(None, image_meta()) == ref
    assert engine.loaded_bytes and engine.removed == []
    assert engine.tags == {ref}


def test_a_load_reporting_another_tag_removes_both_and_fails():
    ref = naming.glance_image_ref(IMAGE_ID)
    engine, fetcher = load_reporting([ref, "busybox:latest"])
    with pytest.raises(nova_exception.ImageUnacceptable) as raised:
        fetcher.ensure(None, image_meta())
    message = raised.value.format_message()
    assert "other than " + ref in message and "busybox:latest" in message
    assert sorted(engine.removed) == sorted([ref, "busybox:latest"])
    assert engine.tags == set()


def test_an_unexpected_untagged_image_is_reported_but_not_removed_by_id():
    # An ID may be shared with tags the host holds; only tags are removed.
    ref = naming.glance_image_ref(IMAGE_ID)
    other = "sha256:" + "2" * 64
    engine, fetcher = load_reporting([other])
    with pytest.raises(nova_exception.ImageUnacceptable, match="other than"):
        fetcher.ensure(None, image_meta())
    assert engine.removed == [ref]
