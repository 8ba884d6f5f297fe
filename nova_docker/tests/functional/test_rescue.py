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

"""Rescue and unrescue on the real engine: a shell on the server's own
filesystem (or a rescue image) in its sandbox, and back, keeping what the
rescue changed, with nothing left behind."""

from __future__ import annotations

import os
from unittest import mock

import docker
import nova.conf
from nova import exception as nova_exception

from nova_docker import conf as docker_conf
from nova_docker import exception
from nova_docker import rescue
from nova_docker.engine import client as engine_client
from nova_docker.engine import naming
from nova_docker.tests import engine_support
from nova_docker.tests import waiting
from nova_docker.tests.functional import base
from nova_docker.tests.functional import test_config_drive

NO_SHELL_APPLETS = tuple(a for a in engine_support.APPLETS if a != "sh")
PASSWORDS = test_config_drive.AdminPasswordTestCase


class RescueTestCase(base.DriverTestCase):
    def setUp(self):
        super().setUp()
        self.image = self.make_image()
        self.instance = self.spawn(
            self.image, self.make_instance(image_ref=self.image.id)
        )
        self.addCleanup(self.remove_rescue_leftovers)

    def make_driver(self):
        # The rescue shell ignores SIGTERM: unrescue waits this long.
        docker_conf.register_opts(nova.conf.CONF)
        self.flags(stop_timeout=1, group="docker")
        return super().make_driver()

    def remove_rescue_leftovers(self):
        """What the tracker cannot find by host label, in case a test failed."""
        uuid = self.instance.uuid
        # The instance's own container first: an image it still runs on
        # would only lose its tag below, and stay behind untagged.
        for found in engine_support.containers_of_instance(self.client, uuid):
            self.client.remove_container(found["Id"], force=True, v=True)
        for name in (naming.rescue_name(uuid), naming.rescued_name(uuid)):
            if self.exists(name):
                self.client.remove_container(name, force=True)
        volume = naming.rescue_tools_volume(uuid)
        if self.client.volumes(filters={"name": volume}).get("Volumes"):
            self.client.remove_volume(volume, force=True)
        for ref in (
            naming.rescue_image_ref(uuid),
            naming.unrescue_image_ref(uuid),
            naming.migration_image_ref(uuid),
        ):
            if self.client.images(name=ref):
                self.client.remove_image(ref, force=True)

    # -- helpers ----------------------------------------------------------

    def exists(self, name: str) -> bool:
        try:
            self.client.inspect_container(name)
        except docker.errors.NotFound:
            return False
        return True

    def rescue_container(self, instance=None) -> dict:
        instance = instance or self.instance
        return self.client.inspect_container(naming.rescue_name(instance.uuid))

    def rescue(self, image_meta=None, password=None, instance=None):
        instance = instance or self.instance
        self.driver.rescue(
            self.ctxt, instance, None, image_meta or self.image, password, None, None
        )

    def run_in(
        self, name: str, script: str, shell: tuple[str, ...] = ("/bin/sh",)
    ) -> str:
        run = self.client.exec_create(name, [*shell, "-c", script])
        output = self.client.exec_start(run["Id"]).decode()
        self.assertEqual(0, self.client.exec_inspect(run["Id"])["ExitCode"], output)
        return output

    def netns(self, found: dict) -> int:
        return os.stat(f"/proc/{found['State']['Pid']}/ns/net").st_ino

    def cmdline(self, found: dict) -> list[str]:
        with open(f"/proc/{found['State']['Pid']}/cmdline", "rb") as f:
            return f.read().decode().split("\0")[:-1]

    def image_of(self, applets=engine_support.APPLETS, files=None):
        rootfs = engine_support.rootfs_tar(files or {}, applets=applets)
        cmd = ["/bin/busybox", "sleep", "3600"]
        ref = engine_support.build_image(self.client, cmd=cmd, rootfs=rootfs)
        try:
            return self.make_image(data=engine_support.saved(self.client, ref))
        finally:
            self.client.remove_image(ref)

    def assert_nothing_left(self, image_ids: list[str]) -> None:
        uuid = self.instance.uuid
        self.assertEqual([], engine_support.containers_of_instance(self.client, uuid))
        for name in (naming.rescue_name(uuid), naming.rescued_name(uuid)):
            self.assertFalse(self.exists(name), name)
        volumes = self.client.volumes(
            filters={"label": f"{naming.RESCUE_OF_LABEL}={uuid}"}
        )
        self.assertEqual([], volumes.get("Volumes") or [])
        for repository in (naming.RESCUE_REPOSITORY, naming.MIGRATION_REPOSITORY):
            tags = [
                t for i in self.client.images(name=repository) for t in i["RepoTags"]
            ]
            self.assertEqual([], [t for t in tags if uuid in t])
        for image_id in image_ids:
            self.assertRaises(
                docker.errors.NotFound, self.client.inspect_image, image_id
            )

    # -- rescue of the server's own filesystem ----------------------------

    def test_rescue_runs_a_shell_on_the_servers_filesystem_in_its_sandbox(self):
        name = naming.container_name(self.instance.uuid)
        self.run_in(name, "echo before > /root/mark")
        original = self.container(self.instance)

        self.rescue()

        self.assertFalse(self.container(self.instance)["State"]["Running"])
        found = self.rescue_container()
        self.assertTrue(found["State"]["Running"])
        # A shell waiting on its terminal, not the image's command.
        self.assertEqual(["/bin/sh"], self.cmdline(found))
        self.assertTrue(found["Config"]["Tty"] and found["Config"]["OpenStdin"])
        sandbox = self.client.inspect_container(naming.sandbox_name(self.instance.uuid))
        self.assertEqual(self.netns(sandbox), self.netns(found))
        self.assertEqual("before\n", self.run_in(found["Id"], "cat /root/mark"))
        # The instance's limits and confinement.
        for key in ("Memory", "NanoCpus", "CpuQuota", "PidsLimit", "SecurityOpt",
                    "CapDrop", "Ulimits", "Privileged"):  # fmt: skip
            self.assertEqual(original["HostConfig"][key], found["HostConfig"][key], key)
        # Known to the host as a rescue, never as a second instance.
        labels = found["Config"]["Labels"]
        self.assertEqual(self.instance.uuid, labels[naming.RESCUE_OF_LABEL])
        self.assertEqual(self.host, labels[naming.RESCUE_HOST_LABEL])
        self.assertEqual("", labels[naming.HOST_LABEL])
        self.assertEqual([self.instance.uuid], self.driver.list_instance_uuids())
        self.assertEqual(
            (naming.rescue_name(self.instance.uuid), True),
            self.driver._rescues.console_target(self.instance),
        )

    def test_unrescue_keeps_the_changes_and_runs_the_original_command(self):
        original = self.container(self.instance)
        self.rescue()
        rescue_image = self.rescue_container()["Image"]
        self.run_in(naming.rescue_name(self.instance.uuid), "echo fixed > /etc/fixed")

        self.driver.unrescue(self.ctxt, self.instance)

        again = self.container(self.instance)
        self.assertTrue(again["State"]["Running"])
        self.assertEqual(b"fixed\n", self.read_file(self.instance, "/etc/fixed"))
        self.assertEqual(engine_support.DEFAULT_CMD, self.cmdline(again))
        for key in ("Cmd", "Env", "WorkingDir", "Tty"):
            self.assertEqual(original["Config"][key], again["Config"][key], key)
        # Root either way: an empty user is the image's, now the rescue's root.
        self.assertEqual(
            original["Config"]["User"] or rescue.RESCUE_USER, again["Config"]["User"]
        )
        # None would take the image's, which is now the rescue shell.
        self.assertEqual([], again["Config"]["Entrypoint"])
        for key in ("Memory", "PidsLimit", "SecurityOpt", "CapDrop", "LogConfig"):
            self.assertEqual(original["HostConfig"][key], again["HostConfig"][key], key)
        sandbox = self.client.inspect_container(naming.sandbox_name(self.instance.uuid))
        self.assertEqual(
            f"container:{sandbox['Id']}", again["HostConfig"]["NetworkMode"]
        )
        labels = again["Config"]["Labels"]
        for key, value in original["Config"]["Labels"].items():
            self.assertEqual(value, labels[key], key)
        self.assertEqual("", labels[naming.RESCUE_HOST_LABEL])
        self.assertFalse(self.exists(naming.rescue_name(self.instance.uuid)))
        self.assertEqual(
            [naming.migration_image_ref(self.instance.uuid)],
            self.client.inspect_image(again["Image"])["RepoTags"],
        )
        waiting.until(
            lambda: (
                b"hello from nova-docker"
                in self.client.logs(again["Id"], stdout=True, stderr=True)
            ),
            "the original command's first line",
        )

        self.driver.destroy(self.ctxt, self.instance, None)

        self.assert_nothing_left([rescue_image, again["Image"]])

    def test_a_second_rescue_keeps_the_first_ones_changes(self):
        rescue_name = naming.rescue_name(self.instance.uuid)
        self.rescue()
        self.run_in(rescue_name, "echo one > /root/one")
        self.driver.unrescue(self.ctxt, self.instance)
        self.rescue()
        self.assertEqual("one\n", self.run_in(rescue_name, "cat /root/one"))
        self.run_in(rescue_name, "echo two > /root/two")
        self.driver.unrescue(self.ctxt, self.instance)
        images = [self.container(self.instance)["Image"]]

        self.assertEqual(b"one\n", self.read_file(self.instance, "/root/one"))
        self.assertEqual(b"two\n", self.read_file(self.instance, "/root/two"))
        self.driver.destroy(self.ctxt, self.instance, None)
        self.assert_nothing_left(images)

    def test_an_image_without_a_shell_is_rescued_with_the_drivers_busybox(self):
        image = self.image_of(applets=("sleep",))
        instance = self.spawn(image, self.make_instance(image_ref=image.id))
        self.instance = instance
        with self.assertLogs("nova_docker.rescue", level="WARNING") as said:
            self.rescue(image, "rescue-pass")

        found = self.rescue_container(instance)
        self.assertTrue(found["State"]["Running"])
        self.assertEqual([rescue.BUSYBOX, "sh"], self.cmdline(found))
        self.assertIn("rescue password was not applied", "\n".join(said.output))
        busybox_sh = (rescue.BUSYBOX, "sh")
        self.run_in(found["Id"], "echo fixed > /fixed", busybox_sh)
        # The busybox came on a volume: nothing of it in the filesystem.
        changed = [c["Path"] for c in self.client.diff(found["Id"]) or []]
        self.assertNotIn(rescue.BUSYBOX, changed)

        self.driver.unrescue(self.ctxt, instance)

        self.assertEqual(b"fixed\n", self.read_file(instance, "/fixed"))
        self.assertEqual(
            ["/bin/busybox", "sleep", "3600"], self.cmdline(self.container(instance))
        )

    def test_the_rescue_password_is_roots_through_chpasswd(self):
        files = dict(PASSWORDS.ACCOUNTS, **{"usr/sbin/chpasswd": PASSWORDS.CHPASSWD})
        image = self.image_of(PASSWORDS.WITH_CHPASSWD, files)
        self.instance = self.spawn(image, self.make_instance(image_ref=image.id))

        self.rescue(image, "r3scue")

        shadow = self.run_in(naming.rescue_name(self.instance.uuid), "cat /etc/shadow")
        self.assertTrue(shadow.split(":")[1].startswith("$"), shadow)

    # -- a rescue image ---------------------------------------------------

    def test_a_rescue_image_boots_in_the_same_sandbox_and_changes_nothing(self):
        rescue_image = self.image_of(files={"/rescue-tools": b"yes\n"})
        name = naming.container_name(self.instance.uuid)
        self.run_in(name, "echo mine > /root/mark")

        self.rescue(rescue_image)

        found = self.rescue_container()
        self.assertEqual(
            naming.glance_image_ref(rescue_image.id), found["Config"]["Image"]
        )
        self.assertEqual("yes\n", self.run_in(found["Id"], "cat /rescue-tools"))
        self.run_in(found["Id"], "test ! -e /root/mark; echo lost > /root/lost")
        sandbox = self.client.inspect_container(naming.sandbox_name(self.instance.uuid))
        self.assertEqual(self.netns(sandbox), self.netns(found))

        self.driver.unrescue(self.ctxt, self.instance)

        self.assertTrue(self.container(self.instance)["State"]["Running"])
        self.assertEqual("mine\n", self.run_in(name, "cat /root/mark"))
        self.run_in(name, "test ! -e /root/lost")
        self.assertFalse(self.exists(naming.rescue_name(self.instance.uuid)))
        self.driver.destroy(self.ctxt, self.instance, None)
        self.assert_nothing_left([])

    # -- failures and removal ---------------------------------------------

    def without_busybox(self):
        """A host with no busybox to bring (the engine cannot be made to
        lose a file of the compute host's)."""

        def missing():
            raise exception.SandboxUnavailable(reason="no busybox here")

        self.driver._rescues._busybox = missing

    def assert_unchanged(self, running: bool, image: str) -> None:
        found = self.container(self.instance)
        self.assertEqual(running, found["State"]["Running"])
        self.assertEqual(image, found["Image"])
        uuid = self.instance.uuid
        self.assertFalse(self.exists(naming.rescue_name(uuid)))
        self.assertEqual([], self.client.images(name=naming.rescue_image_ref(uuid)))
        volumes = self.client.volumes(
            filters={"label": f"{naming.RESCUE_OF_LABEL}={uuid}"}
        )
        self.assertEqual([], volumes.get("Volumes") or [])

    def test_a_rescue_that_fails_leaves_the_server_as_it_was(self):
        image = self.image_of(NO_SHELL_APPLETS)
        self.instance = self.spawn(image, self.make_instance(image_ref=image.id))
        image_before = self.container(self.instance)["Image"]
        self.without_busybox()

        # Committed and created, then the engine cannot start the shell.
        raised = self.assertRaises(
            nova_exception.InstanceNotRescuable, self.rescue, image
        )

        self.assertIn("/bin/sh", raised.format_message())
        self.assert_unchanged(True, image_before)
        self.assertEqual(
            ["/bin/busybox", "sleep", "3600"],
            self.cmdline(self.container(self.instance)),
        )

    def test_a_stopped_server_whose_rescue_fails_stays_stopped(self):
        image = self.image_of(NO_SHELL_APPLETS)
        self.instance = self.spawn(image, self.make_instance(image_ref=image.id))
        image_before = self.container(self.instance)["Image"]
        self.driver.power_off(self.instance)
        self.without_busybox()

        self.assertRaises(nova_exception.InstanceNotRescuable, self.rescue, image)

        self.assert_unchanged(False, image_before)

    def test_a_rescue_image_that_is_not_a_docker_image_is_refused(self):
        bare = self.make_image(data=b"not a tarball", container_format="bare")
        image_before = self.container(self.instance)["Image"]

        raised = self.assertRaises(
            nova_exception.InstanceNotRescuable, self.rescue, bare
        )

        self.assertIn("container_format", raised.format_message())
        self.assert_unchanged(True, image_before)

    def test_a_server_without_its_container_is_not_rescuable_and_says_why(self):
        self.client.remove_container(
            naming.container_name(self.instance.uuid), force=True
        )
        raised = self.assertRaises(nova_exception.InstanceNotRescuable, self.rescue)
        self.assertIn("could not be found", raised.format_message())

    def test_unrescue_joins_a_sandbox_made_again_when_it_went(self):
        uuid = self.instance.uuid
        self.rescue()
        self.run_in(naming.rescue_name(uuid), "echo fixed > /etc/fixed")
        # An operator removed it; the sandbox is joined by name, not by ID.
        self.client.remove_container(naming.sandbox_name(uuid), force=True)

        self.driver.unrescue(self.ctxt, self.instance)

        again = self.container(self.instance)
        sandbox = self.client.inspect_container(naming.sandbox_name(uuid))
        self.assertEqual(self.netns(sandbox), self.netns(again))
        self.assertEqual(b"fixed\n", self.read_file(self.instance, "/etc/fixed"))

    def test_an_unrescue_that_fails_keeps_the_rescue_and_says_why(self):
        uuid = self.instance.uuid
        image_before = self.container(self.instance)["Image"]
        self.rescue()
        self.run_in(naming.rescue_name(uuid), "echo kept > /root/kept")
        create_like = engine_client.Engine.create_like

        def engine_refuses(engine, name, body):
            # A fault the engine cannot be made to have on demand (a full
            # disk as it creates the container), for the new container only.
            if name == naming.container_name(uuid):
                raise exception.EngineError(action="create", reason="disk full")
            return create_like(engine, name, body)

        with mock.patch.object(engine_client.Engine, "create_like", engine_refuses):
            raised = self.assertRaises(
                nova_exception.InstanceUnRescueFailure,
                self.driver.unrescue,
                self.ctxt,
                self.instance,
            )

        self.assertIn("was not kept", raised.format_message())
        self.assertIn("disk full", raised.format_message())
        self.assertEqual(image_before, self.container(self.instance)["Image"])
        self.assertTrue(self.exists(naming.rescue_name(uuid)))
        self.assertFalse(self.exists(naming.rescued_name(uuid)))
        self.assertEqual([], self.client.images(name=naming.unrescue_image_ref(uuid)))
        # Nova leaves the server in ERROR, which it may rescue: the same
        # rescue, with what was changed in it, carries on.
        self.rescue()
        self.assertEqual(
            "kept\n", self.run_in(naming.rescue_name(uuid), "cat /root/kept")
        )
        rescue_image = self.rescue_container()["Image"]
        self.driver.destroy(self.ctxt, self.instance, None)
        self.assert_nothing_left([rescue_image])

    def test_destroy_of_a_rescued_server_leaves_nothing(self):
        self.rescue()
        rescue_image = self.rescue_container()["Image"]

        self.driver.destroy(self.ctxt, self.instance, None)

        self.assert_nothing_left([rescue_image])
        self.assertEqual([], self.our_containers())
