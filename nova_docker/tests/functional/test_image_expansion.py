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
grows by no more than the few bytes it was sent.
"""

from __future__ import annotations

import os
import tempfile

import fixtures
from nova import exception as nova_exception
from oslo_utils import units

from nova_docker.engine import naming
from nova_docker.image import fetch
from nova_docker.tests import engine_support
from nova_docker.tests import tarcraft
from nova_docker.tests.functional import base

#: How much the engine's file system may fill during a refused load: the
#: tarball's own bytes (kilobytes here) and the engine's bookkeeping.
STORAGE_SLACK = 16 * units.Mi


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
