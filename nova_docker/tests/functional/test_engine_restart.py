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

"""dockerd stopped and started under running, paused and stopped instances.

The same driver object is used throughout, as nova-compute would keep it:
after the restart it must report each instance's true state, list each
instance once, and carry out what Nova's power-state sync then asks of it.
"""

from __future__ import annotations

import os

from nova.compute import power_state

from nova_docker.engine import naming
from nova_docker.tests.functional import private_engine

RUNNING = power_state.RUNNING
PAUSED = power_state.PAUSED
SHUTDOWN = power_state.SHUTDOWN


class _RestartTestCase(private_engine.PrivateEngineTestCase):
    def setUp(self):
        super().setUp()
        image = self.make_image()
        self.instances = {name: self.spawn(image) for name in ("run", "pause", "stop")}
        self.driver.pause(self.instances["pause"])
        self.driver.power_off(self.instances["stop"], timeout=5)

    def states(self) -> dict[str, int]:
        return {
            name: self.driver.get_info(instance).state
            for name, instance in self.instances.items()
        }

    def pids(self) -> dict[str, int]:
        return {
            name: self.container(instance)["State"]["Pid"]
            for name, instance in self.instances.items()
        }

    def sandbox_pids(self) -> dict[str, int]:
        """Every instance's sandbox, stopped servers' too, and its PID."""
        return {
            name: self.client.inspect_container(naming.sandbox_name(i.uuid))["State"][
                "Pid"
            ]
            for name, i in self.instances.items()
        }

    def assert_joined(self, name: str) -> None:
        """The instance runs in the namespace of its running sandbox."""
        instance = self.instances[name]
        sandbox = self.client.inspect_container(naming.sandbox_name(instance.uuid))
        self.assertTrue(sandbox["State"]["Running"])
        self.assertEqual(
            os.stat(f"/proc/{sandbox['State']['Pid']}/ns/net").st_ino,
            os.stat(f"/proc/{self.container(instance)['State']['Pid']}/ns/net").st_ino,
        )

    def assert_listed_once(self) -> None:
        listed = self.driver.list_instance_uuids()
        expected = sorted(i.uuid for i in self.instances.values())
        self.assertEqual(expected, sorted(listed))

    def restart(self, crash: bool = False) -> None:
        if crash:
            self.engine.kill()
        else:
            self.engine.stop()
        self.engine.start()


class RestartWithoutLiveRestoreTestCase(_RestartTestCase):
    def test_clean_restart_reports_every_instance_shut_down(self):
        self.restart()
        self.assertEqual(
            {"run": SHUTDOWN, "pause": SHUTDOWN, "stop": SHUTDOWN}, self.states()
        )
        self.assert_listed_once()

    def test_the_sync_after_a_restart_sees_true_states_right_after_one_before(
        self,
    ):
        # A power-state sync just before the restart caches these states.
        self.assertEqual(
            {"run": RUNNING, "pause": PAUSED, "stop": SHUTDOWN}, self.states()
        )
        self.restart()
        # Nova's next sync starts by counting the instances on the host.
        self.assertEqual(3, self.driver.get_num_instances())
        self.assertEqual(
            {"run": SHUTDOWN, "pause": SHUTDOWN, "stop": SHUTDOWN}, self.states()
        )

    def test_crash_reports_all_shut_down_and_host_boot_resume_restarts(self):
        self.restart(crash=True)
        self.assertEqual(
            {"run": SHUTDOWN, "pause": SHUTDOWN, "stop": SHUTDOWN}, self.states()
        )
        self.assert_listed_once()
        # What sync_power_states does for an ACTIVE instance found shut down.
        self.driver.power_off(self.instances["run"], timeout=5)
        self.assertEqual(SHUTDOWN, self.driver.get_info(self.instances["run"]).state)
        # What resume_guests_state_on_host_boot does for the running ones.
        for name in ("run", "pause"):
            self.driver.resume_state_on_host_boot(
                self.ctxt, self.instances[name], [], None
            )
        self.assertEqual(
            {"run": RUNNING, "pause": RUNNING, "stop": SHUTDOWN}, self.states()
        )
        # The engine stopped the sandboxes too: each started again, its
        # ports plugged, before its instance.
        self.assert_joined("run")
        self.assert_joined("pause")
        self.assert_listed_once()


class RestartWithLiveRestoreTestCase(_RestartTestCase):
    live_restore = True

    def test_clean_restart_keeps_the_same_processes_running_and_paused(self):
        before, sandboxes = self.pids(), self.sandbox_pids()
        self.restart()
        self.assertEqual(
            {"run": RUNNING, "pause": PAUSED, "stop": SHUTDOWN}, self.states()
        )
        self.assertEqual(before, self.pids())
        # Every sandbox, a stopped server's too, keeps its namespace.
        self.assertEqual(sandboxes, self.sandbox_pids())
        self.assertNotIn(0, sandboxes.values())
        self.assert_listed_once()

    def test_crash_and_restart_keeps_the_same_processes_running_and_paused(self):
        before = self.pids()
        self.restart(crash=True)
        self.assertEqual(
            {"run": RUNNING, "pause": PAUSED, "stop": SHUTDOWN}, self.states()
        )
        self.assertEqual(before, self.pids())
        self.assert_listed_once()

    def test_restored_instances_can_still_be_paused_stopped_and_started(self):
        self.restart()
        run, paused = self.instances["run"], self.instances["pause"]
        self.driver.unpause(paused)
        self.driver.pause(run)
        self.assertEqual(PAUSED, self.driver.get_info(run).state)
        self.driver.power_off(paused, timeout=5)
        self.driver.power_on(self.ctxt, self.instances["stop"], [])
        self.assertEqual(
            {"run": PAUSED, "pause": SHUTDOWN, "stop": RUNNING}, self.states()
        )
        self.assert_joined("stop")
