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

"""The engine killed (SIGKILL) in the middle of a driver operation.

What must hold afterwards, once the engine is back: the operation failed
with an error naming the engine, and nothing it started is left behind (no
container, no ``nova-glance:`` tag), or a retry of it cleans up.

The moment of the kill is chosen through Nova's Glance fixture (part-way
through a download or an upload) or, for a spawn between create and start,
by wrapping the one engine seam, ``Engine.start``, so that the real engine
dies just before the real call reaches it.
"""

from __future__ import annotations

import os
import uuid

import fixtures
from nova import exception as nova_exception
from nova.compute import power_state

from nova_docker.engine import client as engine_client
from nova_docker.engine import naming
from nova_docker.tests import engine_support
from nova_docker.tests.functional import base
from nova_docker.tests.functional import private_engine

BIG_FILE_BYTES = 4 * 1024 * 1024
# Both pipes of the streamed load hold 32 chunks at most, so by this chunk
# the engine has been sent at least a megabyte of the tarball.
KILL_AFTER_CHUNKS = 48
START = "nova_docker.engine.client.Engine.start"


class EngineKilledTestCase(private_engine.PrivateEngineTestCase):
    def big_image(self):
        """A Glance image of about 5 MB, made on the private engine."""
        repository, tag = "nova-docker-test", uuid.uuid4().hex[:12]
        self.client.import_image_from_data(
            engine_support.rootfs_tar({"big.bin": bytes(BIG_FILE_BYTES)}),
            repository=repository,
            tag=tag,
            changes=['CMD ["/bin/sleep", "600"]'],
        )
        data = engine_support.saved(self.client, f"{repository}:{tag}")
        self.client.remove_image(f"{repository}:{tag}")
        return self.make_image(data)

    def kill_engine_during_download(self) -> None:
        """The next Glance download kills the engine part-way through."""
        stock = self.glance.download

        def download(context, image_id, data=None, **kwargs):
            self.glance.download = stock
            self.glance.downloads[image_id] += 1
            payload = self.glance._imagedata[image_id]
            chunks = range(0, len(payload), base.GLANCE_CHUNK)
            for number, start in enumerate(chunks):
                if number == KILL_AFTER_CHUNKS:
                    self.engine.kill()
                data.write(payload[start : start + base.GLANCE_CHUNK])

        self.glance.download = download

    def kill_engine_during_upload(self) -> None:
        """The next Glance upload kills the engine after its first chunk."""
        stock = self.glance.update

        def update(context, image_id, metadata, data=None, purge_props=False):
            self.glance.update = stock
            data.read(base.GLANCE_CHUNK)
            self.engine.kill()
            data.read()

        self.glance.update = update

    def kill_engine_before_start(self) -> None:
        """The engine dies just as the driver asks it to start a container."""
        stock = engine_client.Engine.start

        def start(engine, name):
            self.engine.kill()
            return stock(engine, name)

        self.useFixture(fixtures.MonkeyPatch(START, start))

    def assert_unavailable(self, call, *args, **kwargs) -> None:
        error = self.assertRaises(
            nova_exception.HypervisorUnavailable, call, *args, **kwargs
        )
        self.assertIn(self.engine.url, error.format_message())

    def test_a_load_cut_short_leaves_no_image_and_the_retry_boots(self):
        image = self.big_image()
        self.kill_engine_during_download()
        self.assert_unavailable(self.spawn, image)
        self.engine.start()

        self.assertEqual([], self.client.containers(all=True))
        self.assertEqual([], self.client.images(name=naming.glance_image_ref(image.id)))
        # Only the sandbox image, built when the driver started.
        left = [
            tag
            for found in self.client.images(all=True)
            for tag in found.get("RepoTags") or ["<untagged>"]
        ]
        self.assertEqual([], [t for t in left if not t.startswith("nova-sandbox:")])
        self.assertEqual([], os.listdir(self.engine.path("data", "tmp")))

        instance = self.spawn(image)
        self.assertEqual(power_state.RUNNING, self.driver.get_info(instance).state)
        self.assertEqual(2, self.glance.downloads[image.id])

    def test_a_spawn_cut_between_create_and_start_is_cleaned_by_destroy(self):
        image = self.make_image()
        self.spawn(image)  # the image is cached: only create and start remain
        instance = self.make_instance()
        self.kill_engine_before_start()
        self.assert_unavailable(self.spawn, image, instance)
        # What Nova's failed-build cleanup calls next, engine still down.
        self.assert_unavailable(self.driver.destroy, self.ctxt, instance, [])
        self.engine.start()

        self.assertIn(instance.uuid, self.driver.list_instance_uuids())
        self.driver.destroy(self.ctxt, instance, [])
        self.assertNotIn(instance.uuid, self.driver.list_instance_uuids())
        # The first server's container and sandbox only.
        self.assertEqual(2, len(self.client.containers(all=True)))

    def test_a_destroy_that_failed_with_the_engine_succeeds_when_retried(self):
        instance = self.spawn(self.make_image())
        self.engine.kill()
        self.assert_unavailable(self.driver.destroy, self.ctxt, instance, [])
        self.engine.start()

        self.driver.destroy(self.ctxt, instance, [])
        self.assertEqual([], self.client.containers(all=True))
        self.driver.destroy(self.ctxt, instance, [])

    def test_after_a_crash_the_instance_is_listed_and_destroy_removes_it(self):
        instance = self.spawn(self.make_image())
        self.engine.kill()
        self.engine.start()
        self.assertEqual([instance.uuid], self.driver.list_instance_uuids())
        self.driver.destroy(self.ctxt, instance, [])
        self.assertEqual([], self.driver.list_instance_uuids())

    def test_a_snapshot_cut_short_leaves_no_engine_image_once_swept(self):
        instance = self.spawn(self.make_image())
        snapshot = self.glance.create(self.ctxt, {"name": "cut-short"})
        self.kill_engine_during_upload()
        self.assert_unavailable(
            self.driver.snapshot, self.ctxt, instance, snapshot["id"], _no_task
        )
        self.engine.start()
        # What Nova's image cache periodic task calls on the same driver.
        self.driver.manage_image_cache(self.ctxt, [instance])

        tags = [
            tag for found in self.client.images() for tag in found.get("RepoTags") or []
        ]
        self.assertEqual([], [tag for tag in tags if snapshot["id"] in tag])


def _no_task(**kwargs: object) -> None:
    return None
