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

"""Snapshots: container → Glance → a new server that carries the changes."""

from __future__ import annotations

import json
import uuid

from nova import exception as nova_exception
from nova.compute import task_states

from nova_docker import exception
from nova_docker.engine import naming
from nova_docker.image import tarstream
from nova_docker.tests import engine_support
from nova_docker.tests import tarcraft
from nova_docker.tests import waiting
from nova_docker.tests.functional import base

# Each boot appends a line to a file in the container's filesystem and prints
# the file, so a server booted from a snapshot shows its parent's boots too.
COUNTING_BOOT = (
    "/bin/sh -c 'echo boot >> /root/boots; cat /root/boots; "
    'trap "exit 0" TERM; while :; do sleep 1; done\''
)


class SnapshotTestCase(base.DriverTestCase):
    def setUp(self):
        super().setUp()
        self.image = self.make_image(properties={"os_command_line": COUNTING_BOOT})
        self.instance = self.spawn(self.image)
        waiting.until(lambda: self.boots(self.instance) == 1)
        self.task_states = []

    def boots(self, instance) -> int:
        return self.driver.get_console_output(self.ctxt, instance).count("boot")

    def record_task_state(self, task_state, expected_state=None):
        self.task_states.append((task_state, expected_state))

    def take_snapshot(self, instance) -> str:
        snapshot_id = str(uuid.uuid4())
        self.glance.create(self.ctxt, {"id": snapshot_id, "name": "snap"})
        self.tracker.images.append(naming.glance_image_ref(snapshot_id))
        self.driver.snapshot(self.ctxt, instance, snapshot_id, self.record_task_state)
        return snapshot_id

    def test_snapshot_of_a_running_instance_boots_with_its_changes(self):
        snapshot_id = self.take_snapshot(self.instance)

        self.assertEqual(
            [
                (task_states.IMAGE_PENDING_UPLOAD, None),
                (task_states.IMAGE_UPLOADING, task_states.IMAGE_PENDING_UPLOAD),
            ],
            self.task_states,
        )
        snapshot = self.glance.show(self.ctxt, snapshot_id)
        self.assertEqual("docker", snapshot["container_format"])
        self.assertEqual("raw", snapshot["disk_format"])
        self.assertEqual("snap", snapshot["name"])
        # Only the Glance image remains: the committed tag is gone.
        self.assertEqual([], self.client.images(name=naming.snapshot_ref(snapshot_id)))
        self.assert_image_gone(self.image_meta(snapshot_id))

        child = self.spawn(self.image_meta(snapshot_id))
        waiting.until(lambda: self.boots(child) == 2, "second boot line")
        self.assertEqual(1, self.glance.downloads[snapshot_id])

    def test_the_uploaded_snapshot_names_no_host_and_no_tag(self):
        snapshot_id = self.take_snapshot(self.instance)

        saved = tarcraft.SavedImage.parse(self.glance._imagedata[snapshot_id])
        manifest = saved.manifest
        self.assertIsNone(manifest["RepoTags"])
        config = json.loads(saved.data(manifest["Config"]))
        for section in ("config", "container_config"):
            labels = (config.get(section) or {}).get("Labels") or {}
            self.assertEqual([], [k for k in labels if k.startswith("org.openstack")])
        self.assertNotIn("container", config)
        everything = b"".join(raw for _name, raw in saved.members)
        self.assertNotIn(self.host.encode(), everything)
        self.assertNotIn(self.instance.uuid.encode(), everything)

    def test_snapshot_of_a_stopped_instance(self):
        self.driver.power_off(self.instance, timeout=5)
        snapshot_id = self.take_snapshot(self.instance)
        child = self.spawn(self.image_meta(snapshot_id))
        waiting.until(lambda: self.boots(child) == 2, "second boot line")

    def test_an_upload_left_unread_fails_and_keeps_no_tag(self):
        # An image service that returns before the end of the stream (Glance
        # reads it all): the snapshot fails, where it would otherwise wait
        # on a pipe no one reads, or leave part of the image in Glance.
        def update(context, image_id, metadata, data=None, purge_props=False):
            data.read(tarstream.BLOCK)
            return self.glance.show(context, image_id)

        self.glance.update = update
        snapshot_id = str(uuid.uuid4())
        self.glance.create(self.ctxt, {"id": snapshot_id, "name": "snap"})

        self.assertRaises(
            exception.SnapshotNotRead,
            self.driver.snapshot,
            self.ctxt,
            self.instance,
            snapshot_id,
            self.record_task_state,
        )
        self.assertEqual([], self.client.images(name=naming.snapshot_ref(snapshot_id)))

    def test_snapshot_of_a_missing_instance_is_not_running(self):
        self.driver.destroy(self.ctxt, self.instance, [])
        self.assertRaises(
            nova_exception.InstanceNotRunning, self.take_snapshot, self.instance
        )


class SnapshotSweepTestCase(base.DriverTestCase):
    """Tags of snapshots cut short are swept, but only this host's: another
    compute host on the same engine may be uploading one right now."""

    def leftover(self, host: str) -> str:
        ref = naming.snapshot_ref(str(uuid.uuid4()))
        repository, tag = ref.split(":")
        self.client.import_image_from_data(
            engine_support.rootfs_tar(),
            repository=repository,
            tag=tag,
            changes=[f"LABEL {naming.HOST_LABEL}={host}"],
        )
        self.tracker.images.append(ref)
        return ref

    def tags(self) -> list[str]:
        found = self.client.images(name=naming.SNAPSHOT_REPOSITORY)
        return [tag for image in found for tag in image.get("RepoTags") or []]

    def test_start_up_sweeps_this_hosts_leftovers_and_no_one_elses(self):
        ours, theirs = self.leftover(self.host), self.leftover("another-host")

        self.driver.init_host(self.host)

        self.assertNotIn(ours, self.tags())
        self.assertIn(theirs, self.tags())

    def test_a_committed_snapshot_carries_this_hosts_label(self):
        instance = self.spawn(self.make_image())
        ref = naming.snapshot_ref(str(uuid.uuid4()))
        repository, tag = ref.split(":")
        self.client.commit(self.container(instance)["Id"], repository, tag)
        self.tracker.images.append(ref)

        labels = self.client.inspect_image(ref)["Config"]["Labels"]
        self.assertEqual(self.host, labels[naming.HOST_LABEL])
