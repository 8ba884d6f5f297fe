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

"""Calls made while the engine is stopped or hung, and the way back.

Every call must fail with Nova's HypervisorUnavailable naming the engine,
within ``[docker] api_timeout`` when the engine hangs, and the same driver
object must work again once the engine answers: nova-compute is not restarted.
"""

from __future__ import annotations

from nova import exception as nova_exception
from nova.compute import power_state
from nova.compute import provider_tree

from nova_docker.tests.functional import private_engine

RUNNING = power_state.RUNNING
SHUTDOWN = power_state.SHUTDOWN


class EngineDownTestCase(private_engine.PrivateEngineTestCase):
    api_timeout = 2

    def setUp(self):
        super().setUp()
        self.image = self.make_image()
        self.instance = self.spawn(self.image)

    def assert_unavailable(self, call, *args) -> str:
        error = self.assertRaises(nova_exception.HypervisorUnavailable, call, *args)
        message = error.format_message()
        self.assertIn(self.engine.url, message)
        return message

    def new_tree(self) -> provider_tree.ProviderTree:
        tree = provider_tree.ProviderTree()
        tree.new_root(self.host, "00000000-0000-0000-0000-000000000002")
        return tree

    def test_calls_on_a_stopped_engine_raise_hypervisor_unavailable(self):
        self.engine.stop()
        self.assert_unavailable(self.driver.get_info, self.instance)
        self.assert_unavailable(self.driver.instance_exists, self.instance)
        self.assert_unavailable(self.driver.list_instance_uuids)
        self.assert_unavailable(self.driver.list_instances)
        self.assert_unavailable(self.spawn, self.image)
        self.assert_unavailable(self.driver.get_available_resource, self.host)

    def test_inventory_is_not_replaced_while_the_engine_is_down(self):
        tree = self.new_tree()
        self.driver.update_provider_tree(tree, self.host)
        before = tree.data(self.host).inventory
        self.assertGreater(before["VCPU"]["total"], 0)

        self.engine.stop()
        self.assert_unavailable(self.driver.update_provider_tree, tree, self.host)
        self.assertEqual(before, tree.data(self.host).inventory)

    def test_a_hung_engine_fails_the_call_at_the_api_timeout(self):
        self.engine.freeze()
        message = self.assert_unavailable(self.driver.get_info, self.instance)
        self.assertIn("timed out", message)
        self.assertIn(f"read timeout={self.api_timeout}", message)

    def test_the_same_driver_works_again_when_the_engine_returns(self):
        self.engine.stop()
        self.assert_unavailable(self.spawn, self.image)
        self.engine.start()

        # Without live-restore the engine stopped the container on its way down.
        self.assertEqual(SHUTDOWN, self.driver.get_info(self.instance).state)
        self.driver.power_on(self.ctxt, self.instance, [])
        second = self.spawn(self.image)
        self.assertEqual(RUNNING, self.driver.get_info(second).state)
        # The spawn refused while the engine was down left nothing behind.
        self.assertEqual(
            sorted([self.instance.uuid, second.uuid]),
            sorted(self.driver.list_instance_uuids()),
        )
        self.assertGreater(self.driver.get_available_resource(self.host)["vcpus"], 0)
