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

"""The driver on an engine started with ``--userns-remap=default``.

Root in the container is then an unprivileged user on the host: the
subordinate IDs of ``dockremap``, which dockerd creates (with ``useradd``)
when it is missing.  The fixture deletes that user again if it made it.
"""

from __future__ import annotations

from nova.compute import power_state

from nova_docker.tests.functional import private_engine


def host_uid_of(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("Uid:"):
                return int(line.split()[1])
    raise AssertionError(f"no Uid line for process {pid}")


def subordinate_start(user: str) -> int:
    with open("/etc/subuid") as subuid:
        for line in subuid:
            name, start, _count = line.strip().split(":")
            if name == user:
                return int(start)
    raise AssertionError(f"{user} has no subordinate UIDs")


class UserNamespaceRemapTestCase(private_engine.PrivateEngineTestCase):
    userns_remap = True

    def test_root_in_the_container_is_an_unprivileged_host_user(self):
        instance = self.spawn(self.make_image())
        host_config = self.container(instance)["HostConfig"]
        self.assertEqual("", host_config["UsernsMode"])
        pid = self.container(instance)["State"]["Pid"]
        self.assertEqual(subordinate_start(private_engine.REMAP_USER), host_uid_of(pid))
        self.assertNotEqual(0, host_uid_of(pid))

    def test_lifecycle_and_snapshot_work_with_remapping(self):
        instance = self.spawn(self.make_image())
        self.driver.reboot(self.ctxt, instance, [], "SOFT")
        self.driver.pause(instance)
        self.driver.reboot(self.ctxt, instance, [], "HARD")
        self.assertEqual(power_state.RUNNING, self.driver.get_info(instance).state)

        snapshot = self.glance.create(
            self.ctxt, {"name": "remapped", "container_format": "docker"}
        )
        self.driver.snapshot(self.ctxt, instance, snapshot["id"], lambda **kw: None)
        booted = self.spawn(self.image_meta(snapshot["id"]))
        self.assertEqual(power_state.RUNNING, self.driver.get_info(booted).state)

        for each in (instance, booted):
            self.driver.destroy(self.ctxt, each, [])
        self.assertEqual([], self.driver.list_instance_uuids())
        self.assertEqual([], self.client.containers(all=True))
