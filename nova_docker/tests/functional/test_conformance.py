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

"""Nova's own virt driver conformance suite, run against a real engine.

``_VirtDriverTestCase`` ships in the nova wheel.  It spawns the instance of
``nova.tests.unit.utils.get_test_instance``, whose image we turn into a real
``docker save`` tarball in Nova's Glance fixture.  Operations the driver does
not offer raise NotImplementedError, which that suite logs and lets pass.  The
tests overridden here are those whose upstream form assumes libvirt, or a
guest that this suite's image is not.
"""

from __future__ import annotations

import json

from nova import exception
from nova import objects
from nova import test
from nova.compute import power_state
from nova.tests.unit import utils as test_utils
from nova.tests.unit.virt import test_virt_drivers

from nova_docker.engine import naming
from nova_docker.tests import engine_support
from nova_docker.tests.functional import base

TEST_IMAGE_ID = "cedef40a-ed67-4d10-800e-17455edce175"


class DockerDriverConformanceTestCase(
    test_virt_drivers._VirtDriverTestCase, base.DockerHostMixin, test.TestCase
):
    def setUp(self):
        self.driver_module = "nova.virt.docker.DockerDriver"
        super().setUp()
        self.tracker.images.append(naming.glance_image_ref(TEST_IMAGE_ID))
        image = self.image_service.images[TEST_IMAGE_ID]
        image["container_format"] = "docker"
        image["disk_format"] = "raw"
        self.image_service._imagedata[TEST_IMAGE_ID] = engine_support.busybox_tarball()
        self._keep_uploads()
        self.connection.init_host(self.host)
        self.addCleanup(self.connection.cleanup_host, self.host)

    def _keep_uploads(self):
        """Upstream's image service drops an update's data; Glance reads it
        all, and the driver fails an upload left unread."""
        update = self.image_service.update

        def reading_update(context, image_id, metadata, data=None, **kwargs):
            if data is not None:
                self.image_service._imagedata[image_id] = data.read()
            return update(context, image_id, metadata, **kwargs)

        self.image_service.update = reading_update

    def _get_running_instance(self, obj=True):
        # Upstream's version spawns with an OVS port on a bridge that no
        # switch here serves.  Plugging real ports into a real Open vSwitch
        # is covered by tests/functional/network; the suite runs port-less.
        instance = test_utils.get_test_instance(obj=obj)
        image_meta = test_utils.get_test_image_object(None, instance)
        self.connection.spawn(
            self.ctxt, instance, image_meta, [], "herp", {}, network_info=[]
        )
        return instance, []

    def test_live_migration(self):
        # Upstream skips this for drivers without live migration.  Nova never
        # reaches live_migration here: the pre-checks refuse, naming why, and
        # the server stays ACTIVE where it is.
        instance, _ = self._get_running_instance()
        for check in (
            lambda: self.connection.check_can_live_migrate_destination(
                self.ctxt, instance, {}, {}
            ),
            lambda: self.connection.check_can_live_migrate_source(
                self.ctxt, instance, {}
            ),
        ):
            self.assertRaises(exception.NoValidHost, check)
        self.assertRaises(
            NotImplementedError,
            self.connection.live_migration,
            self.ctxt,
            instance,
            "otherhost",
            None,
            None,
        )

    def test_migrate_disk_and_power_off(self):
        # Upstream's instance has no migration record, which Nova always
        # makes first: it says where the server goes.
        instance, network_info = self._get_running_instance()
        migration = objects.Migration(
            context=self.ctxt,
            source_compute=self.host,
            dest_compute="dest_host",
            instance_uuid=instance.uuid,
            migration_type="migration",
            status="migrating",
        )
        migration.create()
        instance.migration_context = objects.MigrationContext(
            instance_uuid=instance.uuid, migration_id=migration.id
        )
        disk_info = self.connection.migrate_disk_and_power_off(
            self.ctxt,
            instance,
            "dest_host",
            test_utils.get_test_flavor(),
            network_info,
        )
        image_id = json.loads(disk_info)["image_id"]
        self.assertIn(image_id, self.image_service.images)
        state = self.connection.get_info(instance).state
        self.assertEqual(power_state.SHUTDOWN, state)

    def test_set_admin_password(self):
        # Upstream's expects success or NotImplementedError.  The suite's
        # busybox image has no chpasswd: the driver says the guest cannot
        # take a password, which is what Nova tells the user, and the
        # server runs on.  An image with chpasswd is in test_config_drive.
        instance, _ = self._get_running_instance(obj=True)
        self.assertRaises(
            exception.SetAdminPasswdNotSupported,
            self.connection.set_admin_password,
            instance,
            "p4ssw0rd",
        )
        self.assertEqual(power_state.RUNNING, self.connection.get_info(instance).state)

    def test_live_migration_force_complete(self):
        # Upstream's version reaches into libvirt's ``active_migrations``.
        instance, _ = self._get_running_instance()
        self.assertRaises(
            NotImplementedError,
            self.connection.live_migration_force_complete,
            instance,
        )
