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

"""Spawning from Glance on the real engine: the happy paths."""

from __future__ import annotations

import threading

import docker.errors
import fixtures
from nova import objects
from nova.compute import power_state

from nova_docker.engine import naming
from nova_docker.tests import engine_support
from nova_docker.tests import waiting
from nova_docker.tests.functional import base


class SpawnTestCase(base.DriverTestCase):
    def test_spawn_runs_the_image_command_as_a_labelled_container(self):
        image = self.make_image()
        instance = self.spawn(image, self.make_instance(hostname="web-1"))

        info = self.container(instance)
        self.assertEqual(f"/nova-{instance.uuid}", info["Name"])
        self.assertEqual("web-1", info["Config"]["Hostname"])
        labels = info["Config"]["Labels"]
        self.assertEqual(instance.uuid, labels[naming.UUID_LABEL])
        self.assertEqual(instance.name, labels[naming.NAME_LABEL])
        self.assertEqual(instance.project_id, labels[naming.PROJECT_LABEL])
        self.assertEqual(self.host, labels[naming.HOST_LABEL])
        self.assertEqual(power_state.RUNNING, self.driver.get_info(instance).state)
        waiting.until(
            lambda: (
                "hello from nova-docker"
                in self.driver.get_console_output(self.ctxt, instance)
            )
        )

    def test_flavor_becomes_hard_limits_and_defaults_are_locked_down(self):
        flavor = objects.Flavor(
            memory_mb=96,
            vcpus=2,
            root_gb=1,
            ephemeral_gb=0,
            swap=0,
            extra_specs={"docker:pids_limit": "77"},
        )
        instance = self.spawn(self.make_image(), self.make_instance(flavor=flavor))

        host_config = self.container(instance)["HostConfig"]
        self.assertEqual(96 * 1024 * 1024, host_config["Memory"])
        self.assertEqual(96 * 1024 * 1024, host_config["MemorySwap"])
        self.assertEqual(200_000, host_config["CpuQuota"])
        self.assertEqual(100_000, host_config["CpuPeriod"])
        self.assertEqual(77, host_config["PidsLimit"])
        self.assertFalse(host_config["Privileged"])
        self.assertIn("no-new-privileges:true", host_config["SecurityOpt"])
        self.assertEqual("no", host_config["RestartPolicy"]["Name"])
        # The network is the sandbox's, which has no engine network either.
        sandbox = naming.sandbox_name(instance.uuid)
        self.assertEqual(f"container:{sandbox}", host_config["NetworkMode"])
        self.assertEqual(
            "none", self.client.inspect_container(sandbox)["HostConfig"]["NetworkMode"]
        )
        self.assertEqual([], host_config.get("Binds") or [])

    def test_default_pids_limit_applies_without_extra_spec(self):
        self.flags(pids_limit=321, group="docker")
        self.driver = self.make_driver()
        instance = self.spawn(self.make_image())
        self.assertEqual(321, self.container(instance)["HostConfig"]["PidsLimit"])

    def test_image_is_tagged_by_glance_uuid_and_second_boot_downloads_nothing(self):
        image = self.make_image()
        self.spawn(image)
        self.spawn(image)

        self.assertEqual(1, self.glance.downloads[image.id])
        tagged = self.client.inspect_image(naming.glance_image_ref(image.id))
        # Only our tag: the tarball's own repository tag is not re-created.
        self.assertEqual([naming.glance_image_ref(image.id)], tagged["RepoTags"])

    def test_an_image_pruned_between_load_and_create_is_loaded_again(self):
        image = self.make_image()
        ensure = self.driver._fetcher.ensure_inspected
        ensured = []

        def ensure_then_prune(*args, **kwargs):
            ref, found = ensure(*args, **kwargs)
            if not ensured:
                # What an operator's `docker image prune -a` does at the
                # wrong moment: the engine forgets the image just loaded.
                self.client.remove_image(ref, force=True)
            ensured.append(ref)
            return ref, found

        self.useFixture(
            fixtures.MockPatchObject(
                self.driver._fetcher,
                "ensure_inspected",
                side_effect=ensure_then_prune,
            )
        )
        instance = self.spawn(image)

        self.assertEqual(2, len(ensured))
        self.assertEqual(2, self.glance.downloads[image.id])
        self.assertTrue(self.container(instance)["State"]["Running"])

    def test_concurrent_boots_of_one_image_download_it_once(self):
        image = self.make_image()
        errors = []

        def boot():
            try:
                self.spawn(image)
            except Exception as e:  # reported below
                errors.append(e)

        threads = [threading.Thread(target=boot) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        self.assertEqual([], errors)
        self.assertEqual(1, self.glance.downloads[image.id])
        self.assertEqual(4, len(self.driver.list_instance_uuids()))
        self.assertEqual(8, len(self.our_containers()))  # each with its sandbox

    def test_os_command_line_overrides_the_image_command(self):
        image = self.make_image(
            properties={"os_command_line": "/bin/sh -c 'echo overridden; sleep 600'"}
        )
        instance = self.spawn(image)
        self.assertEqual(
            ["/bin/sh", "-c", "echo overridden; sleep 600"],
            self.container(instance)["Config"]["Cmd"],
        )
        waiting.until(
            lambda: "overridden" in self.driver.get_console_output(self.ctxt, instance)
        )

    def test_entrypoint_image_takes_os_command_line_as_arguments(self):
        ref = engine_support.build_image(
            self.client, cmd=None, entrypoint=["/bin/echo", "args:"]
        )
        self.tracker.images.append(ref)
        image = self.make_image(
            engine_support.saved(self.client, ref),
            properties={"os_command_line": "one two"},
        )
        instance = self.spawn(image)
        waiting.until(
            lambda: (
                "args: one two" in self.driver.get_console_output(self.ctxt, instance)
            )
        )

    def test_injected_files_and_ssh_key_are_in_place_before_start(self):
        self.flags(inject_key=True, group="docker")
        self.driver = self.make_driver()
        instance = self.make_instance(key_data="ssh-ed25519 AAAAC3Nz test@host")
        self.spawn(
            self.make_image(),
            instance,
            injected_files=[("/etc/motd", b"welcome\n"), ("tmp/x/y.txt", "deep")],
        )

        self.assertEqual(b"welcome\n", self.read_file(instance, "/etc/motd"))
        self.assertEqual(b"deep", self.read_file(instance, "/tmp/x/y.txt"))
        self.assertEqual(
            b"ssh-ed25519 AAAAC3Nz test@host\n",
            self.read_file(instance, "/root/.ssh/authorized_keys"),
        )

    def test_ssh_key_is_not_written_unless_enabled(self):
        instance = self.make_instance(key_data="ssh-ed25519 AAAAC3Nz test@host")
        self.spawn(self.make_image(), instance)
        self.assertRaises(
            docker.errors.NotFound,
            self.read_file,
            instance,
            "/root/.ssh/authorized_keys",
        )

    def test_metadata_becomes_environment_when_enabled(self):
        self.flags(metadata_as_env=True, group="docker")
        self.driver = self.make_driver()
        instance = self.make_instance(metadata={"ROLE": "db", "not-a-var": "x"})
        self.spawn(self.make_image(), instance)

        env = self.container(instance)["Config"]["Env"]
        self.assertIn("ROLE=db", env)
        self.assertFalse([e for e in env if e.startswith("not-a-var")])

    def test_metadata_is_not_environment_by_default(self):
        instance = self.make_instance(metadata={"ROLE": "db"})
        self.spawn(self.make_image(), instance)
        self.assertNotIn("ROLE=db", self.container(instance)["Config"]["Env"] or [])

    def test_spawn_without_power_on_leaves_the_container_created(self):
        instance = self.spawn(self.make_image(), power_on=False)
        self.assertEqual(power_state.SHUTDOWN, self.driver.get_info(instance).state)
