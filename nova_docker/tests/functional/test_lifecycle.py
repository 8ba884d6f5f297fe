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

"""Power, pause, reboot, delete and inventory on the real engine."""

from __future__ import annotations

import uuid
from unittest import mock

from nova import exception as nova_exception
from nova.compute import manager
from nova.compute import power_state

from nova_docker.engine import naming
from nova_docker.tests import waiting
from nova_docker.tests.functional import base


class LifecycleTestCase(base.DriverTestCase):
    def setUp(self):
        super().setUp()
        self.image = self.make_image()
        self.instance = self.spawn(self.image)

    def state(self):
        return self.driver.get_info(self.instance).state

    def started_at(self):
        return self.container(self.instance)["State"]["StartedAt"]

    def test_pause_and_unpause_are_reported_and_idempotent(self):
        self.driver.pause(self.instance)
        self.assertEqual(power_state.PAUSED, self.state())
        self.driver.pause(self.instance)
        self.assertEqual(power_state.PAUSED, self.state())
        self.driver.unpause(self.instance)
        self.assertEqual(power_state.RUNNING, self.state())
        self.driver.unpause(self.instance)
        self.assertEqual(power_state.RUNNING, self.state())

    def test_suspend_freezes_and_resume_thaws_the_same_processes(self):
        pid = self.container(self.instance)["State"]["Pid"]
        self.driver.suspend(self.ctxt, self.instance)
        self.assertEqual(power_state.PAUSED, self.state())
        self.driver.resume(self.ctxt, self.instance, [])
        self.assertEqual(power_state.RUNNING, self.state())
        self.assertEqual(pid, self.container(self.instance)["State"]["Pid"])

    def test_power_off_and_on(self):
        self.driver.power_off(self.instance, timeout=5)
        self.assertEqual(power_state.SHUTDOWN, self.state())
        # The image traps TERM: a clean shutdown, not a kill.
        self.assertEqual(0, self.container(self.instance)["State"]["ExitCode"])
        self.driver.power_off(self.instance, timeout=5)
        self.driver.power_on(self.ctxt, self.instance, [])
        self.assertEqual(power_state.RUNNING, self.state())
        self.driver.power_on(self.ctxt, self.instance, [])
        self.assertEqual(power_state.RUNNING, self.state())

    def test_power_off_with_zero_timeout_kills(self):
        self.driver.power_off(self.instance, timeout=0)
        self.assertEqual(power_state.SHUTDOWN, self.state())
        self.assertEqual(137, self.container(self.instance)["State"]["ExitCode"])

    def test_power_off_of_a_paused_instance(self):
        self.driver.pause(self.instance)
        self.driver.power_off(self.instance, timeout=5)
        self.assertEqual(power_state.SHUTDOWN, self.state())

    def test_soft_reboot_terminates_gracefully_and_starts_again(self):
        before = self.started_at()
        self.driver.reboot(self.ctxt, self.instance, [], "SOFT")
        self.assertEqual(power_state.RUNNING, self.state())
        self.assertNotEqual(before, self.started_at())
        waiting.until(
            lambda: "bye" in self.driver.get_console_output(self.ctxt, self.instance)
        )

    def test_hard_reboot_of_a_paused_instance(self):
        before = self.started_at()
        self.driver.pause(self.instance)
        self.driver.reboot(self.ctxt, self.instance, [], "HARD")
        self.assertEqual(power_state.RUNNING, self.state())
        self.assertNotEqual(before, self.started_at())

    def test_hard_reboot_of_a_stopped_instance_starts_it(self):
        self.driver.power_off(self.instance, timeout=0)
        self.driver.reboot(self.ctxt, self.instance, [], "HARD")
        self.assertEqual(power_state.RUNNING, self.state())

    def test_soft_delete_stops_and_restore_starts(self):
        self.driver.soft_delete(self.instance)
        self.assertEqual(power_state.SHUTDOWN, self.state())
        self.driver.restore(self.instance)
        self.assertEqual(power_state.RUNNING, self.state())

    def test_resume_state_on_host_boot_starts_a_stopped_container(self):
        self.client.stop(naming.container_name(self.instance.uuid), timeout=0)
        self.driver.resume_state_on_host_boot(self.ctxt, self.instance, [], None)
        self.assertEqual(power_state.RUNNING, self.state())

    def test_destroy_removes_the_container_and_is_idempotent(self):
        self.driver.destroy(self.ctxt, self.instance, [])
        self.assertEqual([], self.our_containers())
        self.assertFalse(self.driver.instance_exists(self.instance))
        self.assertRaises(
            nova_exception.InstanceNotFound, self.driver.get_info, self.instance
        )
        self.driver.destroy(self.ctxt, self.instance, [])

    def test_destroy_of_a_paused_instance(self):
        self.driver.pause(self.instance)
        self.driver.destroy(self.ctxt, self.instance, [])
        self.assertEqual([], self.our_containers())

    def test_exited_process_is_reported_shutdown(self):
        instance = self.spawn(
            self.make_image(properties={"os_command_line": "/bin/true"})
        )
        waiting.until(
            lambda: self.driver.get_info(instance).state == power_state.SHUTDOWN
        )

    def test_listing_sees_only_this_hosts_containers(self):
        other = self.spawn(self.image)
        foreign = self.client.create_container(
            self.container(self.instance)["Image"],
            name=f"not-nova-{uuid.uuid4().hex[:8]}",
            labels={
                naming.UUID_LABEL: str(uuid.uuid4()),
                naming.HOST_LABEL: "elsewhere",
            },
        )
        self.addCleanup(self.client.remove_container, foreign["Id"], force=True)

        self.assertCountEqual(
            [self.instance.uuid, other.uuid], self.driver.list_instance_uuids()
        )
        self.assertCountEqual(
            [self.instance.name, other.name], self.driver.list_instances()
        )

    def test_console_output_is_bounded_to_the_newest_bytes(self):
        self.flags(console_log_max_bytes=2048, group="docker")
        self.driver = self.make_driver()
        script = (
            "i=0; while [ $i -lt 400 ]; do echo line-$i; i=$((i+1)); done; sleep 600"
        )
        instance = self.spawn(
            self.make_image(properties={"os_command_line": f"/bin/sh -c '{script}'"})
        )
        waiting.until(
            lambda: "line-399" in self.driver.get_console_output(self.ctxt, instance)
        )
        output = self.driver.get_console_output(self.ctxt, instance)
        self.assertLessEqual(len(output.encode()), 2048)
        self.assertTrue(output.endswith("\nline-399"))
        self.assertNotIn("line-0\n", output)

    def test_console_log_lines_are_the_last_lines(self):
        """``console log show --lines N``: Nova cuts the driver's output at
        newlines, so N lines are the newest N, and one is the last."""
        script = "echo first; echo second; echo third; sleep 600"
        instance = self.spawn(
            self.make_image(properties={"os_command_line": f"/bin/sh -c '{script}'"})
        )
        waiting.until(
            lambda: "third" in self.driver.get_console_output(self.ctxt, instance)
        )
        output = self.driver.get_console_output(self.ctxt, instance).encode()
        tail = manager.ComputeManager._tail_log
        self.assertEqual(b"third", tail(None, output, 1))
        self.assertEqual(b"second\nthird", tail(None, output, 2))
        self.assertEqual(b"first\nsecond\nthird", tail(None, output, 3))

    def test_console_output_of_a_missing_instance(self):
        self.driver.destroy(self.ctxt, self.instance, [])
        self.assertRaises(
            nova_exception.InstanceNotFound,
            self.driver.get_console_output,
            self.ctxt,
            self.instance,
        )

    def test_power_state_sync_reads_every_state_from_one_listing(self):
        others = [self.spawn(self.image) for _ in range(2)]
        self.driver.pause(others[0])
        api = self.driver._engine.api
        with (
            mock.patch.object(api, "containers", wraps=api.containers) as listing,
            mock.patch.object(
                api, "inspect_container", wraps=api.inspect_container
            ) as inspect,
        ):
            states = [self.driver.get_info(i).state for i in (self.instance, *others)]
        self.assertEqual(
            [power_state.RUNNING, power_state.PAUSED, power_state.RUNNING], states
        )
        self.assertEqual(1, listing.call_count)
        self.assertEqual(0, inspect.call_count)

    def test_cached_state_is_forgotten_when_the_driver_changes_a_container(self):
        self.assertEqual(power_state.RUNNING, self.driver.get_info(self.instance).state)
        self.driver.pause(self.instance)
        self.assertEqual(power_state.PAUSED, self.driver.get_info(self.instance).state)

    def test_uncached_state_always_asks_the_engine(self):
        self.driver.get_info(self.instance)
        self.client.pause(naming.container_name(self.instance.uuid))
        self.assertEqual(
            power_state.PAUSED,
            self.driver.get_info(self.instance, use_cache=False).state,
        )

    def test_legacy_diagnostics_report_memory_and_processes(self):
        flat = self.driver.get_diagnostics(self.instance)
        self.assertGreater(flat["memory-actual"], 0)
        self.assertGreaterEqual(flat["pids"], 1)
        self.assertIn("cpu0_time", flat)

    def test_plug_vifs_of_an_instance_whose_container_is_gone_does_nothing(self):
        # nova-compute calls plug_vifs for every instance at start-up; one
        # whose container was removed outside Nova must not stop it.
        self.client.remove_container(
            naming.container_name(self.instance.uuid), force=True
        )
        vif = {"id": str(uuid.uuid4()), "active": True, "type": "ovs"}
        self.driver.plug_vifs(self.instance, [vif])
        self.assertFalse(self.driver.instance_exists(self.instance))
