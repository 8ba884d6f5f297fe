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

"""Servers moving between hosts, each with its own engine.

The host's engine is the source, a private engine the destination, and two
DockerDrivers with their own ``host`` and ``[docker] api_url`` stand for the
two nova-computes.  The tests make the driver calls Nova's compute manager
makes, in its order, with what it passes (the image meta of a resize comes
from the instance's system metadata and has no ID).  Nova's migration record
lives in its test database: the driver reads where a server goes from it.
"""

from __future__ import annotations

import io
import os
import tarfile
import tempfile
import uuid

import fixtures
import nova.conf
from nova import exception as nova_exception
from nova import objects
from nova import utils as nova_utils
from nova.compute import task_states

from nova_docker import exception
from nova_docker import migration as migration_mod
from nova_docker.engine import naming
from nova_docker.tests import engine_support
from nova_docker.tests.functional import base
from nova_docker.tests.functional import private_engine

CONF = nova.conf.CONF
STOP_TIMEOUT = 5
MiB = 1024 * 1024
OUR_REPOSITORIES = (
    naming.GLANCE_REPOSITORY,
    naming.SNAPSHOT_REPOSITORY,
    naming.MIGRATION_REPOSITORY,
)


class MoveTestCase(base.DriverTestCase):
    """``self.source`` on the host's engine, ``self.dest`` on a private one."""

    # Nova's migration record says where a server goes.
    USES_DB = True

    def setUp(self):
        super().setUp()
        private_engine.require_prerequisites()
        # Whatever the driver writes through tempfile lands here, to be seen.
        self.useFixture(fixtures.NestedTempfile())
        self.source = self.driver
        self.dest_engine = self.useFixture(private_engine.PrivateEngine())
        self.dest_client = self.dest_engine.client()
        self.dest_host = f"{self.host}-dest"
        self.dest = self.driver_for(self.dest_host, self.dest_engine.url)
        self.image = self.make_image()
        self.instance = self.spawn(
            self.image, self.make_instance(image_ref=self.image.id)
        )
        self.tracker.images.append(naming.migration_image_ref(self.instance.uuid))
        self.temp_files = sorted(os.listdir(tempfile.gettempdir()))

    def driver_for(self, host: str, url: str):
        """A second nova-compute: its own host name and engine."""
        own_url = CONF.docker.api_url
        self.flags(host=host)
        self.flags(api_url=url, group="docker")
        try:
            return self.make_driver()
        finally:
            self.flags(host=self.host)
            self.flags(api_url=own_url, group="docker")

    # -- what Nova does ---------------------------------------------------

    def new_flavor(self, **changes) -> objects.Flavor:
        flavor = self.instance.flavor.obj_clone()
        flavor.id += 1
        flavor.flavorid = str(flavor.id)
        flavor.name = "resized"
        for key, value in changes.items():
            setattr(flavor, key, value)
        return flavor

    def boot_image_meta(self, instance) -> objects.ImageMeta:
        """What Nova passes finish_migration: the image as the instance's
        system metadata keeps it."""
        image = self.glance.show(self.ctxt, instance.image_ref)
        system_metadata = nova_utils.get_system_metadata_from_image(image)
        return objects.ImageMeta.from_dict(
            nova_utils.get_image_from_system_metadata(system_metadata)
        )

    def start_migration(self, instance, dest_host: str) -> objects.Migration:
        migration = objects.Migration(
            context=self.ctxt,
            source_compute=self.host,
            source_node=self.host,
            dest_compute=dest_host,
            dest_host="192.0.2.2",
            instance_uuid=instance.uuid,
            migration_type="resize",
            status="migrating",
            old_instance_type_id=instance.flavor.id,
            new_instance_type_id=instance.flavor.id,
        )
        migration.create()
        instance.migration_context = objects.MigrationContext(
            instance_uuid=instance.uuid, migration_id=migration.id
        )
        return migration

    def migrate_away(self, instance, flavor, dest_host: str):
        """resize_instance on the source; the disk info, as Nova keeps it."""
        migration = self.start_migration(instance, dest_host)
        disk_info = self.source.migrate_disk_and_power_off(
            self.ctxt, instance, "192.0.2.2", flavor, [], timeout=STOP_TIMEOUT
        )
        instance.host = dest_host
        instance.old_flavor = instance.flavor
        instance.new_flavor = flavor
        return migration, disk_info

    def finish(self, dest, instance, migration, disk_info, power_on=True):
        """finish_resize on the destination: the new flavor is now the one."""
        instance.flavor = instance.new_flavor
        dest.finish_migration(
            self.ctxt,
            migration,
            instance,
            disk_info,
            [],
            self.boot_image_meta(instance),
            True,
            {},
            power_on=power_on,
        )

    def resize(self, flavor=None, dest=None, dest_host=None):
        dest, dest_host = dest or self.dest, dest_host or self.dest_host
        flavor = flavor or self.new_flavor()
        migration, disk_info = self.migrate_away(self.instance, flavor, dest_host)
        self.finish(dest, self.instance, migration, disk_info)
        return migration

    def shared_storage(self, here, there) -> bool:
        """Nova's _is_instance_storage_shared between two computes."""
        data = here.check_instance_shared_storage_local(self.ctxt, self.instance)
        return there.check_instance_shared_storage_remote(self.ctxt, data)

    def revert(self, migration, dest=None):
        """revert_resize on the destination, finish_revert_resize on the
        source."""
        dest = dest or self.dest
        shared = self.shared_storage(dest, self.source)
        dest.destroy(self.ctxt, self.instance, [], None, not shared)
        self.instance.flavor = self.instance.old_flavor
        self.instance.host = self.host
        self.source.finish_revert_migration(
            self.ctxt, self.instance, [], migration, power_on=True
        )

    # -- what the engines show --------------------------------------------

    def write(self, client, instance, path: str, text: str) -> None:
        name = naming.container_name(instance.uuid)
        run = client.exec_create(name, ["/bin/sh", "-c", f"echo {text} > {path}"])
        client.exec_start(run)
        self.assertEqual(0, client.exec_inspect(run)["ExitCode"])

    def read(self, client, instance, path: str) -> bytes:
        stream, _ = client.get_archive(naming.container_name(instance.uuid), path)
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
            return tar.extractfile(tar.next()).read()

    def inspect(self, client, instance) -> dict:
        return client.inspect_container(naming.container_name(instance.uuid))

    def containers_of(self, client, host: str) -> list[dict]:
        return engine_support.containers_of_host(client, host)

    def our_tags(self, client) -> list[str]:
        return [
            tag
            for image in client.images()
            for tag in image.get("RepoTags") or ()
            if tag.split(":")[0] in OUR_REPOSITORIES
        ]

    def transient_images(self) -> list[str]:
        return [
            image_id
            for image_id, image in self.glance.images.items()
            if migration_mod.INSTANCE_PROPERTY in (image.get("properties") or {})
        ]

    def assert_nothing_left_in_transit(self) -> None:
        """No Glance image, commit tag or temporary file outlives a move."""
        self.assertEqual([], self.transient_images())
        snapshot_tags = self.client.images(name=naming.SNAPSHOT_REPOSITORY)
        self.assertEqual([], [i for i in snapshot_tags if self._is_ours(i)])
        self.assertEqual(self.temp_files, sorted(os.listdir(tempfile.gettempdir())))

    def _is_ours(self, image: dict) -> bool:
        labels = image.get("Labels") or {}
        return labels.get(naming.HOST_LABEL) == self.host

    def assert_limits(self, driver, client, instance, flavor) -> None:
        """The limits a server of ``flavor`` booted on that host would get."""
        reference = self.make_instance(flavor=flavor, image_ref=self.image.id)
        driver.spawn(self.ctxt, reference, self.image, [], None, {}, power_on=False)
        expected = self.inspect(client, reference)["HostConfig"]
        got = self.inspect(client, instance)["HostConfig"]
        driver.destroy(self.ctxt, reference, [])
        limits = [api for api in migration_mod.UPDATABLE_LIMITS.values()]
        self.assertEqual({k: expected[k] for k in limits}, {k: got[k] for k in limits})
        self.assertEqual(flavor.memory_mb * MiB, got["Memory"])
        self.assertEqual(flavor.vcpus * 100_000, got["CpuQuota"])


class ColdMigrationTestCase(MoveTestCase):
    def setUp(self):
        super().setUp()
        self.write(self.client, self.instance, "/root/data", "kept")
        self.original_id = self.inspect(self.client, self.instance)["Id"]

    def test_cold_migration_keeps_a_file_written_in_the_container(self):
        self.resize(flavor=self.instance.flavor)

        arrived = self.inspect(self.dest_client, self.instance)
        self.assertTrue(arrived["State"]["Running"])
        self.assertEqual(
            b"kept\n", self.read(self.dest_client, self.instance, "/root/data")
        )
        self.assertEqual(
            naming.migration_image_ref(self.instance.uuid), arrived["Config"]["Image"]
        )
        self.assertEqual(self.dest_host, arrived["Config"]["Labels"][naming.HOST_LABEL])
        # The source keeps its container, stopped, until the resize is
        # confirmed; nothing else outlives the move.
        original = self.inspect(self.client, self.instance)
        self.assertFalse(original["State"]["Running"])
        self.assert_nothing_left_in_transit()
        self.assertEqual(
            [naming.migration_image_ref(self.instance.uuid)],
            self.our_tags(self.dest_client),
        )

    def test_resize_to_another_host_sets_the_new_flavors_limits(self):
        flavor = self.new_flavor(
            memory_mb=512, vcpus=2, extra_specs={"docker:pids_limit": "321"}
        )
        self.resize(flavor=flavor)

        self.assert_limits(self.dest, self.dest_client, self.instance, flavor)
        self.assert_limits(
            self.source, self.client, self.instance, self.instance.old_flavor
        )

    def test_confirm_removes_the_source_container(self):
        migration = self.resize()

        self.source.confirm_migration(self.ctxt, migration, self.instance, [])

        self.assertEqual([], self.containers_of(self.client, self.host))
        self.assertTrue(
            self.inspect(self.dest_client, self.instance)["State"]["Running"]
        )
        self.assert_nothing_left_in_transit()

    def test_revert_gives_back_the_original_container_and_leaves_nothing(self):
        migration = self.resize(flavor=self.new_flavor(memory_mb=512))

        self.revert(migration)

        original = self.inspect(self.client, self.instance)
        self.assertEqual(self.original_id, original["Id"])
        self.assertTrue(original["State"]["Running"])
        self.assertEqual(b"kept\n", self.read(self.client, self.instance, "/root/data"))
        self.assert_limits(
            self.source, self.client, self.instance, self.instance.flavor
        )
        self.assertEqual([], self.dest_client.containers(all=True))
        self.assertEqual([], self.our_tags(self.dest_client))
        self.assert_nothing_left_in_transit()

    def test_a_stopped_server_arrives_stopped(self):
        self.source.power_off(self.instance, STOP_TIMEOUT)
        migration, disk_info = self.migrate_away(
            self.instance, self.instance.flavor, self.dest_host
        )
        self.finish(self.dest, self.instance, migration, disk_info, power_on=False)

        arrived = self.inspect(self.dest_client, self.instance)
        self.assertEqual("created", arrived["State"]["Status"])
        self.assertEqual(
            b"kept\n", self.read(self.dest_client, self.instance, "/root/data")
        )


class InterruptedMoveTestCase(MoveTestCase):
    def test_a_destination_restarting_before_the_finish_waits_for_it(self):
        """nova-compute restarts on the destination after the source handed
        the server over (Nova already names the destination its host) and
        before the queued finish: with ``resume_guests_state_on_host_boot``
        Nova asks to resume a server whose container is still in Glance."""
        self.write(self.client, self.instance, "/root/data", "kept")
        migration, disk_info = self.migrate_away(
            self.instance, self.instance.flavor, self.dest_host
        )
        self.instance.task_state = task_states.RESIZE_MIGRATED

        self.dest.resume_state_on_host_boot(self.ctxt, self.instance, [], None)

        self.assertEqual([], self.dest_client.containers(all=True))
        self.finish(self.dest, self.instance, migration, disk_info)
        self.assertTrue(
            self.inspect(self.dest_client, self.instance)["State"]["Running"]
        )
        self.assertEqual(
            b"kept\n", self.read(self.dest_client, self.instance, "/root/data")
        )

    def test_resume_at_boot_outside_a_move_still_starts_the_server(self):
        self.source.power_off(self.instance, STOP_TIMEOUT)

        self.source.resume_state_on_host_boot(self.ctxt, self.instance, [], None)

        self.assertTrue(self.inspect(self.client, self.instance)["State"]["Running"])


class SameHostResizeTestCase(MoveTestCase):
    def setUp(self):
        super().setUp()
        self.write(self.client, self.instance, "/root/data", "kept")
        self.original_id = self.inspect(self.client, self.instance)["Id"]
        self.glance_images = sorted(self.glance.images)

    def test_resize_on_the_same_host_changes_limits_and_copies_nothing(self):
        flavor = self.new_flavor(
            memory_mb=512, vcpus=2, extra_specs={"docker:pids_limit": "123"}
        )
        self.resize(flavor=flavor, dest=self.source, dest_host=self.host)

        resized = self.inspect(self.client, self.instance)
        self.assertEqual(self.original_id, resized["Id"])
        self.assertTrue(resized["State"]["Running"])
        self.assert_limits(self.source, self.client, self.instance, flavor)
        self.assertEqual(b"kept\n", self.read(self.client, self.instance, "/root/data"))
        self.assertEqual(self.glance_images, sorted(self.glance.images))
        self.assertEqual([], self.client.images(name=naming.MIGRATION_REPOSITORY))

    def test_confirm_on_the_same_host_keeps_the_container(self):
        migration = self.resize(
            flavor=self.new_flavor(memory_mb=512), dest=self.source, dest_host=self.host
        )

        self.source.confirm_migration(self.ctxt, migration, self.instance, [])

        self.assertEqual(
            self.original_id, self.inspect(self.client, self.instance)["Id"]
        )

    def test_revert_on_the_same_host_gives_back_the_old_limits(self):
        old_flavor = self.instance.flavor
        migration = self.resize(
            flavor=self.new_flavor(memory_mb=512, vcpus=2),
            dest=self.source,
            dest_host=self.host,
        )

        self.revert(migration, dest=self.source)

        reverted = self.inspect(self.client, self.instance)
        self.assertEqual(self.original_id, reverted["Id"])
        self.assertTrue(reverted["State"]["Running"])
        self.assert_limits(self.source, self.client, self.instance, old_flavor)
        self.assertEqual(b"kept\n", self.read(self.client, self.instance, "/root/data"))

    def test_a_limit_the_engine_refuses_is_refused_and_changes_nothing(self):
        old_flavor = self.instance.flavor
        self.start_migration(self.instance, self.host)

        error = self.assertRaises(
            nova_exception.InstanceFaultRollback,
            self.source.migrate_disk_and_power_off,
            self.ctxt,
            self.instance,
            "192.0.2.1",
            self.new_flavor(memory_mb=4),
            [],
            timeout=STOP_TIMEOUT,
        )

        self.assertIsInstance(error.inner_exception, nova_exception.ResizeError)
        self.assertIn(
            "below the Docker Engine's minimum of 6 MB",
            error.inner_exception.format_message(),
        )
        server = self.inspect(self.client, self.instance)
        self.assertEqual(self.original_id, server["Id"])
        self.assertTrue(server["State"]["Running"])
        self.assert_limits(self.source, self.client, self.instance, old_flavor)


class RefusedMoveTestCase(MoveTestCase):
    """A move that fails part-way leaves the server where it can be had
    again, and nothing behind: no container, tag, Glance image or file."""

    def setUp(self):
        super().setUp()
        self.write(self.client, self.instance, "/root/data", "kept")
        self.original = self.inspect(self.client, self.instance)

    def assert_untouched(self) -> None:
        server = self.inspect(self.client, self.instance)
        self.assertEqual(self.original["Id"], server["Id"])
        self.assertTrue(server["State"]["Running"])
        self.assertEqual(b"kept\n", self.read(self.client, self.instance, "/root/data"))

    def refused(self, flavor) -> nova_exception.ResizeError:
        self.start_migration(self.instance, self.dest_host)
        error = self.assertRaises(
            nova_exception.InstanceFaultRollback,
            self.source.migrate_disk_and_power_off,
            self.ctxt,
            self.instance,
            "192.0.2.2",
            flavor,
            [],
            timeout=STOP_TIMEOUT,
        )
        self.assertIsInstance(error.inner_exception, nova_exception.ResizeError)
        return error.inner_exception

    def test_a_root_disk_smaller_than_the_content_is_refused_before_it_stops(self):
        # Sparse: 2 GiB to the engine's count, nothing on its disk.
        name = naming.container_name(self.instance.uuid)
        run = self.client.exec_create(
            name, ["/bin/busybox", "truncate", "-s", "2G", "/root/big"]
        )
        self.client.exec_start(run)

        error = self.refused(self.new_flavor(root_gb=1))

        self.assertIn("more than the new flavor's root disk", error.format_message())
        server = self.inspect(self.client, self.instance)
        self.assertEqual(
            self.original["State"]["StartedAt"], server["State"]["StartedAt"]
        )
        self.assert_untouched()
        self.assertEqual([], self.transient_images())

    def test_a_failed_upload_restarts_the_server_and_leaves_nothing(self):
        def upload_breaks(context, image_id, metadata, data=None, purge_props=False):
            data.read(base.GLANCE_CHUNK)
            raise nova_exception.ImageNotAuthorized(image_id=image_id)

        self.glance.update = upload_breaks

        error = self.refused(self.instance.flavor)

        self.assertIn("Not authorized for image", error.format_message())
        self.assert_untouched()
        self.assert_nothing_left_in_transit()
        self.assertEqual([], self.dest_client.containers(all=True))

    def test_a_destination_engine_that_refuses_keeps_nothing_there(self):
        migration, disk_info = self.migrate_away(
            self.instance, self.new_flavor(), self.dest_host
        )
        # A limit the source passes and the destination's engine refuses
        # (the source refuses this one itself, before anything moves).
        self.instance.new_flavor.memory_mb = 4

        error = self.assertRaises(
            exception.EngineError,
            self.finish,
            self.dest,
            self.instance,
            migration,
            disk_info,
        )

        self.assertIn("Minimum memory limit", error.format_message())
        self.assertEqual([], self.dest_client.containers(all=True))
        self.assertEqual([], self.our_tags(self.dest_client))
        self.assert_nothing_left_in_transit()
        # The original is intact on the source, only stopped.
        original = self.inspect(self.client, self.instance)
        self.assertEqual(self.original["Id"], original["Id"])
        self.assertEqual(b"kept\n", self.read(self.client, self.instance, "/root/data"))

    def test_disk_info_from_elsewhere_is_refused_by_name(self):
        migration = self.start_migration(self.instance, self.dest_host)
        self.instance.new_flavor = self.instance.flavor

        error = self.assertRaises(
            nova_exception.MigrationError,
            self.finish,
            self.dest,
            self.instance,
            migration,
            '[{"path": "/var/lib/nova/instances/x/disk"}]',
        )

        self.assertIn("did not come from nova-docker", error.format_message())
        self.assertEqual([], self.dest_client.containers(all=True))

    def test_live_migration_is_refused_in_its_pre_check(self):
        for check in (
            lambda: self.dest.check_can_live_migrate_destination(
                self.ctxt, self.instance, {}, {}
            ),
            lambda: self.source.check_can_live_migrate_source(
                self.ctxt, self.instance, {}
            ),
        ):
            error = self.assertRaises(nova_exception.NoValidHost, check)
            self.assertIn("openstack server migrate", error.format_message())
        self.assert_untouched()


class ServerElsewhereTestCase(MoveTestCase):
    """Shelve, unshelve and evacuate: the server boots again on another
    host, from an image."""

    def test_shelve_offload_and_unshelve_on_another_engine_keep_the_filesystem(self):
        self.write(self.client, self.instance, "/root/data", "kept")
        shelved_id = str(uuid.uuid4())
        self.glance.create(self.ctxt, {"id": shelved_id, "name": "shelved"})
        # shelve: power off, snapshot; shelve_offload: destroy.
        self.source.power_off(self.instance, STOP_TIMEOUT)
        self.source.snapshot(self.ctxt, self.instance, shelved_id, lambda **kw: None)
        self.source.destroy(self.ctxt, self.instance, [], {})
        # unshelve, onto the other host.
        self.dest.spawn(
            self.ctxt, self.instance, self.image_meta(shelved_id), [], None, {}
        )

        self.assertEqual([], self.containers_of(self.client, self.host))
        self.assertEqual(
            b"kept\n", self.read(self.dest_client, self.instance, "/root/data")
        )
        self.assertTrue(
            self.inspect(self.dest_client, self.instance)["State"]["Running"]
        )

    def test_evacuated_server_is_rebuilt_and_its_old_host_removes_only_it(self):
        bystander = self.spawn(self.image)
        self.instance.host = self.dest_host
        # rebuild with recreate on the destination: Nova's default, a spawn.
        self.dest.spawn(self.ctxt, self.instance, self.image, [], None, {})
        # The failed host's nova-compute comes back.
        shared = self.shared_storage(self.source, self.dest)
        self.source.destroy(self.ctxt, self.instance, [], {}, not shared)

        self.assertFalse(shared)
        ours = self.containers_of(self.client, self.host)
        self.assertEqual(
            [
                naming.container_name(bystander.uuid),
                naming.sandbox_name(bystander.uuid),
            ],
            [name.lstrip("/") for c in ours for name in c["Names"]],
        )
        self.assertTrue(
            self.inspect(self.dest_client, self.instance)["State"]["Running"]
        )
        self.assertTrue(self.container(bystander)["State"]["Running"])


class SharedEngineTestCase(base.DriverTestCase):
    """Two compute hosts on one engine (as the all-in-one clouds may be): a
    returning host never touches the other host's container of a server."""

    def setUp(self):
        super().setUp()
        self.image = self.make_image()
        self.instance = self.spawn(self.image)
        self.other_host = f"{self.host}-b"
        self.tracker.host_labels.append(self.other_host)
        self.flags(host=self.other_host)
        self.other = self.make_driver()
        self.flags(host=self.host)
        # Evacuated to the other host, on the same engine.
        self.other.spawn(self.ctxt, self.instance, self.image, [], None, {})
        self.evacuated = self.container(self.instance)

    def assert_evacuated_untouched(self) -> None:
        found = self.container(self.instance)
        self.assertEqual(self.evacuated["Id"], found["Id"])
        self.assertTrue(found["State"]["Running"])

    def test_the_hosts_know_they_share_the_engine(self):
        data = self.driver.check_instance_shared_storage_local(self.ctxt, self.instance)
        self.assertTrue(
            self.other.check_instance_shared_storage_remote(self.ctxt, data)
        )

    def test_destroy_keeping_disks_leaves_the_other_hosts_container(self):
        self.driver.destroy(self.ctxt, self.instance, [], {}, destroy_disks=False)
        self.assert_evacuated_untouched()

    def test_destroy_with_disks_leaves_the_other_hosts_container(self):
        self.driver.destroy(self.ctxt, self.instance, [], {}, destroy_disks=True)
        self.assert_evacuated_untouched()
