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

"""Images small on the wire that expand to gigabytes, on the real engine.

Each is refused while it streams in: the fault names the image, what was
counted and the limit; nothing is left behind; and the engine's storage
grows by no more than the few bytes it was sent.  So are images cached
ahead of boots, snapshots, and layers whose compressed bytes are the cost
(many empty gzip members): ``docker load`` stores those bytes first.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
import tempfile
import uuid

import fixtures
from nova import exception as nova_exception
from oslo_utils import units

from nova_docker import exception
from nova_docker.engine import naming
from nova_docker.image import fetch
from nova_docker.image import layers
from nova_docker.tests import engine_support
from nova_docker.tests import tarcraft
from nova_docker.tests import waiting
from nova_docker.tests.functional import base
from nova_docker.tests.functional import test_root_disk

#: How much the engine's file system may fill during a refused load: the
#: tarball's own bytes (kilobytes here) and the engine's bookkeeping.
STORAGE_SLACK = 16 * units.Mi


def counted(layer: bytes) -> int:
    """What the driver charges ``layer``, as it does while loading it."""
    budget = layers.Budget(units.Pi, "no limit")
    for _chunk in layers.LayerMeter("layer", budget).metered([layer]):
        pass
    return budget.used


def rootfs_padded_to(expanded: int) -> bytes:
    """The test image's root file system and one sparse file, sized so that
    the layer is counted at exactly ``expanded`` bytes."""
    rootfs = engine_support.rootfs_tar()
    with tarfile.open(fileobj=io.BytesIO(rootfs)) as tar:
        tar.getmembers()
        body = rootfs[: tar.offset]

    def layer(pad: int) -> bytes:
        sparse = tarcraft.sparse_pax_file("pad", pad)
        return tarcraft.archive(body, sparse)

    pad = expanded // 2
    for _ in range(3):  # the PAX record's length follows the pad's digits
        pad += expanded - counted(layer(pad))
    found = layer(pad)
    assert counted(found) == expanded, (counted(found), expanded)
    return found


def empty_gzip_members_layer(members: int) -> tuple[bytes, str]:
    """A gzip layer of ``members`` empty members and then a tiny tar: its
    wire size is all it costs.  Returns it with its diff ID."""
    tar = tarcraft.archive(tarcraft.member("f", b"x" * 100))
    layer = gzip.compress(b"") * members + gzip.compress(tar)
    return layer, "sha256:" + hashlib.sha256(tar).hexdigest()


class ImageExpansionTestCase(base.DriverTestCase):
    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.useFixture(fixtures.MonkeyPatch("tempfile.tempdir", self.tmp))
        self.data_root = self.client.info()["DockerRootDir"]

    def free_bytes(self) -> int:
        stat = os.statvfs(self.data_root)
        return stat.f_bavail * stat.f_frsize

    def assert_refused_in_passing(self, tarball: bytes, instance, *fragments) -> None:
        self.assertLess(len(tarball), 4 * units.Mi)
        image = self.make_image(tarball)
        free_before = self.free_bytes()
        error = self.assertRaises(
            nova_exception.ImageUnacceptable, self.spawn, image, instance
        )
        message = error.format_message()
        for fragment in (image.id, "expands to more than", "counted", *fragments):
            self.assertIn(fragment, message)
        self.assertLess(free_before - self.free_bytes(), STORAGE_SLACK)
        self.assertEqual([], self.our_containers())
        self.assert_image_gone(image)
        self.assertEqual(tempfile.gettempdir(), self.tmp)
        self.assertEqual([], os.listdir(self.tmp))

    def test_a_sparse_file_image_is_refused_at_the_host_limit(self):
        self.flags(max_image_expanded_gb=2, group="docker")
        self.driver = self.make_driver()
        layer = tarcraft.archive(tarcraft.sparse_pax_file("hole", 50 * units.Gi))
        instance = self.make_instance()
        instance.flavor.root_gb = 0
        self.assert_refused_in_passing(
            tarcraft.image_tarball(layer),
            instance,
            "2.00 GiB",
            "[docker] max_image_expanded_gb",
            "50.00 GiB",
        )

    def test_a_compressed_layer_is_refused_at_the_flavors_root_disk(self):
        instance = self.make_instance()
        instance.flavor.root_gb = 1
        layer = tarcraft.gzip_of_zeros_file("zeros", 2 * units.Gi)
        self.assert_refused_in_passing(
            tarcraft.image_tarball(layer, diff_id="sha256:" + "0" * 64),
            instance,
            "1.00 GiB",
            "the flavor's root disk",
        )

    def test_an_image_just_within_its_limit_boots_and_one_byte_less_does_not(self):
        first = self.make_image()
        engine = self.driver._engine
        fetch.ImageFetcher(engine, self.glance, units.Ti).ensure(self.ctxt, first)
        loaded = self.client.inspect_image(naming.glance_image_ref(first.id))
        size = int(loaded["Config"]["Labels"][naming.EXPANDED_BYTES_LABEL])
        self.assertGreater(size, len(engine_support.busybox_tarball()) // 2)

        within = self.make_image()
        fetch.ImageFetcher(engine, self.glance, size).ensure(self.ctxt, within)
        over = self.make_image()
        error = self.assertRaises(
            nova_exception.ImageUnacceptable,
            fetch.ImageFetcher(engine, self.glance, size - 1).ensure,
            self.ctxt,
            over,
        )
        self.assertIn(f"{size} bytes", error.format_message())
        self.assert_image_gone(over)

    def test_a_cached_image_within_the_root_disk_boots_without_a_download(self):
        image = self.make_image()
        self.driver._fetcher.ensure(self.ctxt, image)
        small = self.make_instance()
        small.flavor.root_gb = 1
        # The busybox image fits 1 GB; the check reads the recorded size.
        self.spawn(image, small)
        self.assertEqual(1, self.glance.downloads[image.id])

    def test_an_image_just_within_the_flavors_root_disk_boots_through_the_driver(self):
        layer = rootfs_padded_to(units.Gi)
        cmd = engine_support.DEFAULT_CMD
        within = self.make_image(tarcraft.image_tarball(layer, cmd=cmd))
        instance = self.make_instance()
        instance.flavor.root_gb = 1

        self.spawn(within, instance)

        waiting.until(
            lambda: (
                "hello from nova-docker"
                in self.driver.get_console_output(self.ctxt, instance)
            ),
            "the instance booted",
        )
        loaded = self.client.inspect_image(naming.glance_image_ref(within.id))
        labels = loaded["Config"]["Labels"]
        self.assertEqual(str(units.Gi), labels[naming.EXPANDED_BYTES_LABEL])

    def test_one_byte_past_the_flavors_root_disk_is_refused_by_the_driver(self):
        layer = rootfs_padded_to(units.Gi + 1)
        instance = self.make_instance()
        instance.flavor.root_gb = 1
        self.assert_refused_in_passing(
            tarcraft.image_tarball(layer, cmd=engine_support.DEFAULT_CMD),
            instance,
            "1.00 GiB",
            "the flavor's root disk",
            f"({units.Gi + 1} bytes)",
        )

    def test_a_layer_of_empty_gzip_members_is_charged_its_bytes_on_the_wire(self):
        layer, diff_id = empty_gzip_members_layer(100_000)
        self.assertGreater(len(layer), units.Mi + units.Mi // 2)
        tarball = tarcraft.image_tarball(layer, diff_id=diff_id)
        engine = self.driver._engine
        over = self.make_image(tarball)
        free_before = self.free_bytes()

        error = self.assertRaises(
            nova_exception.ImageUnacceptable,
            fetch.ImageFetcher(engine, self.glance, units.Mi).ensure,
            self.ctxt,
            over,
        )

        message = error.format_message()
        self.assertIn("larger of its compressed and its expanded size", message)
        self.assertLess(free_before - self.free_bytes(), STORAGE_SLACK)
        self.assert_image_gone(over)
        # The engine takes such a layer: what it stored is what was charged.
        within = self.make_image(tarball)
        fetch.ImageFetcher(engine, self.glance, 4 * units.Mi).ensure(self.ctxt, within)
        loaded = self.client.inspect_image(naming.glance_image_ref(within.id))
        charged = int(loaded["Config"]["Labels"][naming.EXPANDED_BYTES_LABEL])
        self.assertGreaterEqual(charged, len(layer))

    def test_cache_image_refuses_an_image_past_the_limit_and_leaves_nothing(self):
        self.flags(max_image_expanded_gb=1, group="docker")
        self.driver = self.make_driver()
        layer = tarcraft.archive(tarcraft.sparse_pax_file("hole", 50 * units.Gi))
        image = self.make_image(tarcraft.image_tarball(layer))
        free_before = self.free_bytes()

        error = self.assertRaises(
            nova_exception.ImageUnacceptable,
            self.driver.cache_image,
            self.ctxt,
            image.id,
        )

        message = error.format_message()
        for fragment in (image.id, "1.00 GiB", "[docker] max_image_expanded_gb"):
            self.assertIn(fragment, message)
        self.assertLess(free_before - self.free_bytes(), STORAGE_SLACK)
        self.assert_image_gone(image)
        self.assertEqual([], os.listdir(self.tmp))

    def test_a_snapshot_past_the_limit_is_refused_and_leaves_nothing(self):
        command = test_root_disk.writer_command(8)
        image = self.make_image(
            test_root_disk.writer_tarball(), properties={"os_command_line": command}
        )
        instance = self.spawn(image)
        waiting.until(
            lambda: (
                test_root_disk.DONE
                in self.driver.get_console_output(self.ctxt, instance)
            ),
            "the writer finished",
        )
        loaded = self.client.inspect_image(naming.glance_image_ref(image.id))
        base_layers = int(loaded["Config"]["Labels"][naming.EXPANDED_BYTES_LABEL])
        # Room for the image it ran, not for the 8 MiB it wrote.
        self.driver._snapshotter._max_expanded_bytes = base_layers + 4 * units.Mi
        snapshot_id = str(uuid.uuid4())
        self.glance.create(self.ctxt, {"id": snapshot_id, "name": "snap"})
        self.tracker.images.append(naming.snapshot_ref(snapshot_id))

        error = self.assertRaises(
            exception.InvalidImageTarball,
            self.driver.snapshot,
            self.ctxt,
            instance,
            snapshot_id,
            lambda *args, **kwargs: None,
        )

        self.assertIn("expands to more than", error.format_message())
        self.assertEqual([], self.client.images(name=naming.snapshot_ref(snapshot_id)))
        self.assertNotIn(snapshot_id, self.glance._imagedata)
        self.assertEqual([], os.listdir(self.tmp))
