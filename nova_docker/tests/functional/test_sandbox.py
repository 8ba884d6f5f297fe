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

"""Each instance's network sandbox, on the real engine (no Neutron here:
``network/test_driver_ports.py`` plugs real ports into it).

The sandbox holds the namespace: it is made before the instance's first
start, stays through its reboots and power cycles, is made again when the
host or an operator took it away, and goes with the instance.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import uuid

import docker
import fixtures
from nova import exception as nova_exception
from nova.compute import power_state

from nova_docker.engine import naming
from nova_docker.image import sandbox as sandbox_image
from nova_docker.tests import engine_support
from nova_docker.tests import waiting
from nova_docker.tests.functional import base


class SandboxTestCase(base.DriverTestCase):
    def setUp(self):
        super().setUp()
        self.image = self.make_image()

    def sandbox(self, instance) -> dict:
        return self.client.inspect_container(naming.sandbox_name(instance.uuid))

    def netns(self, found: dict) -> int:
        """The network namespace (inode) of a running container's init."""
        return os.stat(f"/proc/{found['State']['Pid']}/ns/net").st_ino

    def assert_joined(self, instance) -> int:
        """The instance's container runs in its sandbox's namespace."""
        sandbox, container = self.sandbox(instance), self.container(instance)
        self.assertTrue(sandbox["State"]["Running"])
        self.assertTrue(container["State"]["Running"])
        self.assertEqual(self.netns(sandbox), self.netns(container))
        return self.netns(sandbox)

    def test_spawn_makes_a_sandbox_of_the_drivers_own_pinned_image(self):
        instance = self.spawn(self.image, self.make_instance(hostname="web-7"))

        self.assert_joined(instance)
        sandbox = self.sandbox(instance)
        busybox = open(sandbox_image.BUSYBOX, "rb").read()
        ref = naming.sandbox_image_ref(sandbox_image.digest(busybox))
        # Pinned: the sandbox names the image by ID, which the tag points to.
        self.assertEqual(self.client.inspect_image(ref)["Id"], sandbox["Image"])
        self.assertEqual(sandbox["Image"], sandbox["Config"]["Image"])
        labels = sandbox["Config"]["Labels"]
        self.assertEqual(instance.uuid, labels[naming.SANDBOX_OF_LABEL])
        self.assertEqual(self.host, labels[naming.SANDBOX_HOST_LABEL])
        # Not an instance to any listing of the host's instances.
        self.assertNotIn(naming.UUID_LABEL, labels)
        self.assertEqual([instance.name], self.driver.list_instances())
        # Its name and resolver are the instance's.
        self.assertEqual("web-7", sandbox["Config"]["Hostname"])
        self.assertEqual("web-7", self.container(instance)["Config"]["Hostname"])
        host_config = sandbox["HostConfig"]
        self.assertEqual(["ALL"], host_config["CapDrop"])
        self.assertIn("no-new-privileges:true", host_config["SecurityOpt"])
        self.assertEqual([], host_config.get("Binds") or [])
        self.assertGreater(host_config["Memory"], 0)

    def test_a_subnet_without_dns_gives_no_resolver_not_the_hosts(self):
        instance = self.spawn(self.image)
        resolv = self.read_file(instance, "/etc/resolv.conf")
        self.assertNotIn(b"nameserver", resolv)

    def test_reboots_and_power_cycles_keep_the_sandbox_and_its_namespace(self):
        instance = self.spawn(self.image)
        namespace = self.assert_joined(instance)
        sandbox_started = self.sandbox(instance)["State"]["StartedAt"]

        for step in (
            lambda: self.driver.reboot(self.ctxt, instance, [], "SOFT"),
            lambda: self.driver.reboot(self.ctxt, instance, [], "HARD"),
            lambda: self.driver.power_off(instance, timeout=5),
            lambda: self.driver.power_on(self.ctxt, instance, []),
            lambda: self.driver.suspend(self.ctxt, instance),
            lambda: self.driver.resume(self.ctxt, instance, []),
        ):
            step()
            # Power off stops only the instance: its ports stay plugged.
            sandbox = self.sandbox(instance)
            self.assertTrue(sandbox["State"]["Running"])
            self.assertEqual(sandbox_started, sandbox["State"]["StartedAt"])
        self.assertEqual(namespace, self.assert_joined(instance))

    def test_destroy_removes_the_container_and_its_sandbox(self):
        instance = self.spawn(self.image)
        self.driver.destroy(self.ctxt, instance, [])
        self.assertEqual([], self.our_containers())
        self.driver.destroy(self.ctxt, instance, [])

    def test_a_sandbox_removed_behind_novas_back_is_made_again_at_start(self):
        instance = self.spawn(self.image)
        old = self.sandbox(instance)["Id"]
        self.client.remove_container(naming.sandbox_name(instance.uuid), force=True)
        # The instance's process keeps the namespace it had.
        self.assertEqual(power_state.RUNNING, self.driver.get_info(instance).state)

        self.driver.reboot(self.ctxt, instance, [], "SOFT")

        self.assertNotEqual(old, self.sandbox(instance)["Id"])
        self.assert_joined(instance)

    def test_a_sandbox_killed_under_a_running_instance_moves_it_at_power_on(self):
        instance = self.spawn(self.image)
        started = self.container(instance)["State"]["StartedAt"]
        self.client.kill(naming.sandbox_name(instance.uuid))

        self.driver.power_on(self.ctxt, instance, [])

        # Started again, to join the sandbox's new namespace.
        self.assertNotEqual(started, self.container(instance)["State"]["StartedAt"])
        self.assert_joined(instance)

    def test_after_a_host_reboot_the_sandbox_starts_before_the_instance(self):
        instance = self.spawn(self.image)
        for name in (
            naming.container_name(instance.uuid),
            naming.sandbox_name(instance.uuid),
        ):
            self.client.kill(name)

        self.driver.resume_state_on_host_boot(self.ctxt, instance, [], None)

        self.assert_joined(instance)

    def test_an_instance_from_before_sandboxes_keeps_its_own_namespace(self):
        instance = self.make_instance()
        ref = self.driver._fetcher.ensure(self.ctxt, self.image, instance)
        spec = self.driver._containers.spec_for(instance, ref, self.image)
        legacy = dataclasses.replace(spec, sandbox=None)
        self.client.create_container(
            host_config=self.client.create_host_config(**legacy.host_config_kwargs()),
            **legacy.create_kwargs(),
        )
        self.client.start(legacy.name)

        self.driver.reboot(self.ctxt, instance, [], "HARD")
        self.driver.power_off(instance, timeout=5)
        self.driver.power_on(self.ctxt, instance, [])

        self.assertEqual(power_state.RUNNING, self.driver.get_info(instance).state)
        self.assertEqual("none", self.container(instance)["HostConfig"]["NetworkMode"])
        self.assertRaises(docker.errors.NotFound, self.sandbox, instance)
        self.driver.destroy(self.ctxt, instance, [])
        self.assertEqual([], self.our_containers())

    def test_a_command_that_fails_at_once_fails_the_build_with_its_words(self):
        image = self.make_image(
            properties={"os_command_line": "sh -c 'echo cannot find /data >&2; exit 3'"}
        )
        start = self.driver._containers.start

        def start_and_let_it_exit(instance):
            # The command exits within a millisecond of its start; the wait
            # makes sure it has when the driver looks, on a loaded host too.
            start(instance)
            self.client.wait(naming.container_name(instance.uuid), timeout=60)

        self.useFixture(
            fixtures.MockPatchObject(
                self.driver._containers, "start", side_effect=start_and_let_it_exit
            )
        )
        with self.assertRaises(nova_exception.BuildAbortException) as caught:
            self.spawn(image)
        message = caught.exception.format_message()
        self.assertIn("status 3", message)
        self.assertIn("cannot find /data", message)
        self.assertEqual([], self.our_containers())

    def test_a_command_that_finishes_at_once_is_a_server_shut_down(self):
        image = self.make_image(properties={"os_command_line": "true"})
        instance = self.spawn(image)
        waiting.until(
            lambda: (
                self.driver.get_info(instance, use_cache=False).state
                == power_state.SHUTDOWN
            ),
            "the finished command's server reported shut down",
        )
        self.assertTrue(self.sandbox(instance)["State"]["Running"])

    def test_no_busybox_is_said_at_start_and_fails_builds_leaving_nothing(self):
        self.flags(sandbox_busybox=f"/nonexistent/{uuid.uuid4().hex}", group="docker")
        with self.assertLogs("nova_docker.sandbox", level="ERROR") as said:
            self.driver = self.make_driver()
        self.assertEqual(1, len(said.records))
        self.assertIn("install busybox-static", said.output[0])

        with self.assertRaises(nova_exception.RescheduledException) as caught:
            self.spawn(self.image)
        self.assertIn("No network sandbox image", caught.exception.format_message())
        self.assertEqual([], self.our_containers())

    def test_a_dynamic_busybox_is_refused_by_name(self):
        self.flags(sandbox_busybox="/bin/ls", group="docker")
        self.driver = self.make_driver()
        with self.assertRaises(nova_exception.RescheduledException) as caught:
            self.spawn(self.image)
        self.assertIn("not a statically linked", caught.exception.format_message())

    def test_an_operators_sandbox_image_is_used_by_id(self):
        idle = ["/bin/sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"]
        ref = engine_support.build_image(self.client, cmd=idle)
        self.tracker.images.append(ref)
        self.flags(sandbox_image=ref, group="docker")
        self.driver = self.make_driver()

        instance = self.spawn(self.image)

        self.assert_joined(instance)
        self.assertEqual(
            self.client.inspect_image(ref)["Id"], self.sandbox(instance)["Image"]
        )

    def test_a_sandbox_image_removed_behind_novas_back_is_built_again(self):
        # A busybox of this test's own (a byte after the ELF changes nothing
        # it runs), so that its image is no other sandbox's.
        busybox = self.useFixture(fixtures.TempDir()).join("busybox")
        shutil.copyfile(sandbox_image.BUSYBOX, busybox)
        with open(busybox, "ab") as out:
            out.write(uuid.uuid4().bytes)
        ref = naming.sandbox_image_ref(sandbox_image.digest(open(busybox, "rb").read()))
        self.tracker.images.append(ref)
        self.flags(sandbox_busybox=busybox, group="docker")
        self.driver = self.make_driver()
        first = self.spawn(self.image)
        self.driver.destroy(self.ctxt, first, [])
        self.client.remove_image(ref, force=True)

        second = self.spawn(self.image)

        self.assert_joined(second)
        self.assertEqual(
            self.client.inspect_image(ref)["Id"], self.sandbox(second)["Image"]
        )

    def test_the_image_cache_never_prunes_the_sandbox_image(self):
        instance = self.spawn(self.image)
        image_id = self.sandbox(instance)["Image"]
        self.flags(remove_unused_original_minimum_age_seconds=0, group="image_cache")
        self.driver.manage_image_cache(self.ctxt, [])
        self.assertEqual(image_id, self.client.inspect_image(image_id)["Id"])
