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

"""The engine-side image cache: pre-caching and pruning as Nova asks."""

from __future__ import annotations

from nova_docker.engine import naming
from nova_docker.tests.functional import base


class ImageCacheTestCase(base.DriverTestCase):
    def cached(self, image) -> bool:
        return bool(self.client.images(name=naming.glance_image_ref(image.id)))

    def test_cache_image_loads_once_and_reports_whether_it_did(self):
        image = self.make_image()
        self.assertTrue(self.driver.cache_image(self.ctxt, image.id))
        self.assertFalse(self.driver.cache_image(self.ctxt, image.id))
        self.assertTrue(self.cached(image))
        self.spawn(image)
        self.assertEqual(1, self.glance.downloads[image.id])

    def test_unused_images_are_pruned_and_used_ones_kept(self):
        self.flags(remove_unused_original_minimum_age_seconds=0, group="image_cache")
        used, unused = self.make_image(), self.make_image()
        instance = self.spawn(used, self.make_instance(image_ref=used.id))
        self.driver.cache_image(self.ctxt, unused.id)

        self.driver.manage_image_cache(self.ctxt, [instance])

        self.assertTrue(self.cached(used))
        self.assertFalse(self.cached(unused))

    def test_an_image_a_container_runs_is_never_forced_out(self):
        self.flags(remove_unused_original_minimum_age_seconds=0, group="image_cache")
        image = self.make_image()
        self.spawn(image)
        # Nova no longer lists the instance, but its container still exists.
        self.driver.manage_image_cache(self.ctxt, [])
        self.assertTrue(self.cached(image))

    def test_young_images_are_kept(self):
        self.flags(remove_unused_original_minimum_age_seconds=3600, group="image_cache")
        image = self.make_image()
        self.driver.cache_image(self.ctxt, image.id)
        self.driver.manage_image_cache(self.ctxt, [])
        self.assertTrue(self.cached(image))

    def test_pruning_can_be_turned_off(self):
        self.flags(remove_unused_base_images=False, group="image_cache")
        self.flags(remove_unused_original_minimum_age_seconds=0, group="image_cache")
        image = self.make_image()
        self.driver.cache_image(self.ctxt, image.id)
        self.driver.manage_image_cache(self.ctxt, [])
        self.assertTrue(self.cached(image))
