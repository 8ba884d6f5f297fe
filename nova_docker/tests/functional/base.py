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

"""A DockerDriver on the real engine, with Nova's Glance fixture in front.

The fixture is extended to hand out image data in Glance-sized chunks (the
stock one writes everything at once) and to keep what a snapshot uploads, so
that snapshots can be booted again.
"""

from __future__ import annotations

import collections
import io
import tarfile
import uuid

from nova import context
from nova import objects
from nova import test
from nova.tests import fixtures as nova_fixtures
from nova.tests.unit import fake_instance
from nova.virt import fake

from nova_docker import driver
from nova_docker.engine import naming
from nova_docker.tests import engine_support

GLANCE_CHUNK = 64 * 1024


class RecordingGlance(nova_fixtures.GlanceFixture):
    """Nova's Glance fixture that streams downloads and keeps uploads."""

    def setUp(self):
        super().setUp()
        self.downloads: collections.Counter[str] = collections.Counter()

    def download(self, context, image_id, data=None, dst_path=None, trusted_certs=None):
        self.show(context, image_id)
        self.downloads[image_id] += 1
        payload = self._imagedata.get(image_id, b"")
        for start in range(0, len(payload), GLANCE_CHUNK):
            data.write(payload[start : start + GLANCE_CHUNK])

    def update(self, context, image_id, metadata, data=None, purge_props=False):
        image = super().update(context, image_id, metadata, purge_props=purge_props)
        if data is not None:
            self._imagedata[image_id] = data.read()
        return image


class DockerHostMixin:
    """For Nova TestCases: a compute host name of the test's own, set before
    the driver is built, and removal of what the test made on the engine.

    The name keeps the test's containers apart from any other user of the
    engine, such as a running demo cloud.
    """

    def _clear_attrs(self):
        # Nova's TestCase deletes instance attributes after each test; pytest
        # keeps the test method as one and fails deleting it a second time.
        pass

    def setUp(self):
        super().setUp()
        self.host = f"nova-docker-test-{uuid.uuid4().hex[:8]}"
        self.flags(host=self.host)
        self.client = engine_support.engine_client()
        self.tracker = engine_support.Tracker(self.client)
        self.tracker.host_labels.append(self.host)
        self.addCleanup(self.tracker.cleanup)


class DriverMixin:
    """A DockerDriver on the real engine, Glance recorded, and helpers."""

    def setUp(self):
        super().setUp()
        self.glance = self.useFixture(RecordingGlance(self))
        self.ctxt = context.get_admin_context()
        self.driver = self.make_driver()

    def make_driver(self) -> driver.DockerDriver:
        docker_driver = driver.DockerDriver(fake.FakeVirtAPI())
        docker_driver.init_host(self.host)
        # As nova-compute does when it stops: ends the root-disk audit.
        self.addCleanup(docker_driver.cleanup_host, self.host)
        return docker_driver

    def make_image(
        self,
        data: bytes | None = None,
        container_format: str = "docker",
        properties: dict | None = None,
    ) -> objects.ImageMeta:
        """A Glance image holding ``data`` (default: the busybox tarball)."""
        image_id = str(uuid.uuid4())
        self.tracker.images.append(naming.glance_image_ref(image_id))
        meta = {
            "id": image_id,
            "name": f"test-{image_id[:8]}",
            "container_format": container_format,
            "disk_format": "raw",
            "properties": properties or {},
        }
        payload = engine_support.busybox_tarball() if data is None else data
        self.glance.create(self.ctxt, meta, data=io.BytesIO(payload))
        return self.image_meta(image_id)

    def image_meta(self, image_id: str) -> objects.ImageMeta:
        return objects.ImageMeta.from_dict(self.glance.show(self.ctxt, image_id))

    def make_instance(self, **updates) -> objects.Instance:
        updates.setdefault("uuid", str(uuid.uuid4()))
        updates.setdefault("hostname", "test-server")
        # What nova-compute has loaded when it builds (the config drive's
        # check reads them): no drive unless a test asks.
        updates.setdefault("config_drive", "")
        updates.setdefault("launched_at", None)
        updates.setdefault("system_metadata", {})
        updates.setdefault("host", self.host)
        updates["expected_attrs"] = ["system_metadata"] + (
            ["metadata"] if "metadata" in updates else []
        )
        return fake_instance.fake_instance_obj(self.ctxt, **updates)

    def spawn(self, image_meta, instance=None, injected_files=(), **kw):
        instance = instance or self.make_instance()
        self.driver.spawn(
            self.ctxt, instance, image_meta, list(injected_files), None, {}, **kw
        )
        return instance

    def container(self, instance) -> dict:
        return self.client.inspect_container(naming.container_name(instance.uuid))

    def our_containers(self) -> list[dict]:
        return engine_support.containers_of_host(self.client, self.host)

    def read_file(self, instance, path: str) -> bytes:
        stream, _ = self.client.get_archive(naming.container_name(instance.uuid), path)
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
            member = tar.next()
            return tar.extractfile(member).read()

    def assert_image_gone(self, image_meta) -> None:
        ref = naming.glance_image_ref(image_meta.id)
        self.assertEqual([], self.client.images(name=ref))


class DriverTestCase(DriverMixin, DockerHostMixin, test.NoDBTestCase):
    pass


class DriverWithDatabaseTestCase(DriverMixin, DockerHostMixin, test.TestCase):
    """For what nova-compute reads from Nova's database as it builds (the
    config drive's block device mappings): Nova's own test database."""
