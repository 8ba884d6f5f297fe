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

"""Host-level calls: loading, resources, engine reachability."""

from __future__ import annotations

import os
import shutil

import netaddr
import nova.virt.docker
import os_resource_classes as orc
from nova import exception as nova_exception
from nova.compute import manager
from nova.compute import provider_tree
from nova.virt import driver as nova_driver
from nova.virt import fake

from nova_docker import exception
from nova_docker.driver import DockerDriver
from nova_docker.tests.functional import base


class LoadingTestCase(base.DriverTestCase):
    def test_compute_driver_option_loads_the_driver_from_novas_namespace(self):
        loaded = nova_driver.load_compute_driver(
            fake.FakeVirtAPI(), "docker.DockerDriver"
        )
        self.assertIsInstance(loaded, DockerDriver)

    def test_compute_manager_loads_it_from_config(self):
        self.flags(compute_driver="docker.DockerDriver")
        self.assertIsInstance(manager.ComputeManager().driver, DockerDriver)

    def test_shim_is_installed_inside_the_real_nova_package(self):
        nova_dir = os.path.dirname(nova.__file__)
        # The real package, not a namespace made of this checkout's nova/.
        self.assertTrue(os.path.isdir(os.path.join(nova_dir, "virt", "libvirt")))
        self.assertEqual(
            os.path.join(nova_dir, "virt", "docker"),
            os.path.dirname(nova.virt.docker.__file__),
        )


class ResourcesTestCase(base.DriverTestCase):
    def test_available_resource_reports_engine_facts(self):
        info = self.client.info()
        resources = self.driver.get_available_resource(self.host)

        self.assertEqual(info["NCPU"], resources["vcpus"])
        self.assertEqual(info["MemTotal"] // (1024 * 1024), resources["memory_mb"])
        self.assertEqual("docker", resources["hypervisor_type"])
        self.assertGreater(resources["hypervisor_version"], 20_000_000)
        self.assertEqual(self.host, resources["hypervisor_hostname"])
        self.assertEqual("exe", resources["supported_instances"][0][2])

    def test_provider_tree_inventory_honours_reserved_and_ratios(self):
        self.flags(
            reserved_host_memory_mb=256,
            reserved_host_cpus=1,
            reserved_host_disk_mb=2048,
            cpu_allocation_ratio=4.0,
            ram_allocation_ratio=1.0,
            disk_allocation_ratio=1.0,
        )
        tree = provider_tree.ProviderTree()
        tree.new_root(self.host, "00000000-0000-0000-0000-000000000001")
        self.driver.update_provider_tree(tree, self.host)

        inventory = tree.data(self.host).inventory
        info = self.client.info()
        disk = shutil.disk_usage(info["DockerRootDir"])
        self.assertEqual(info["NCPU"], inventory[orc.VCPU]["total"])
        self.assertEqual(1, inventory[orc.VCPU]["reserved"])
        self.assertEqual(4.0, inventory[orc.VCPU]["allocation_ratio"])
        self.assertEqual(256, inventory[orc.MEMORY_MB]["reserved"])
        self.assertEqual(1.0, inventory[orc.MEMORY_MB]["allocation_ratio"])
        self.assertEqual(disk.total // 1024**3, inventory[orc.DISK_GB]["total"])
        # The image cache comes on top (test_host_bounds.py).
        self.assertGreaterEqual(inventory[orc.DISK_GB]["reserved"], 2)

    def test_traits_claim_raw_images_and_interface_attach_only(self):
        traits = self.driver.capabilities_as_traits()
        self.assertTrue(traits["COMPUTE_IMAGE_TYPE_RAW"])
        self.assertFalse(traits["COMPUTE_IMAGE_TYPE_QCOW2"])
        # Proven by tests/functional/network/test_driver_ports.py.
        self.assertTrue(traits["COMPUTE_NET_ATTACH_INTERFACE"])
        self.assertFalse(traits["COMPUTE_VOLUME_MULTI_ATTACH"])

    def test_host_ip_and_uptime(self):
        self.flags(my_ip="192.0.2.10")
        self.assertEqual(
            netaddr.IPAddress("192.0.2.10"),
            netaddr.IPAddress(self.driver.get_host_ip_addr()),
        )
        self.assertIn("load average", self.driver.get_host_uptime())

    def test_host_cpu_stats_feed_novas_cpu_monitor(self):
        stats = self.driver.get_host_cpu_stats()
        self.assertEqual({"kernel", "idle", "user", "iowait", "frequency"}, set(stats))
        self.assertGreater(stats["idle"], 0)

    def test_nodes(self):
        self.assertEqual([self.host], self.driver.get_available_nodes())
        self.assertEqual(
            [self.host], list(self.driver.get_nodenames_by_uuid().values())
        )


class UnreachableEngineTestCase(base.DriverTestCase):
    def unreachable_driver(self, url):
        self.flags(api_url=url, api_timeout=2, group="docker")
        return DockerDriver(fake.FakeVirtAPI())

    def test_init_host_names_the_endpoint_and_the_reason(self):
        driver = self.unreachable_driver("unix:///run/nova-docker-test-nothing.sock")
        error = self.assertRaises(
            exception.EngineUnavailable, driver.init_host, self.host
        )
        message = error.format_message()
        self.assertIn("unix:///run/nova-docker-test-nothing.sock", message)
        self.assertIn("FileNotFoundError", message)

    def test_calls_fail_with_hypervisor_unavailable(self):
        driver = self.unreachable_driver("tcp://127.0.0.1:9")
        instance = self.make_instance()
        error = self.assertRaises(
            nova_exception.HypervisorUnavailable, driver.get_info, instance
        )
        self.assertIn("tcp://127.0.0.1:9", error.format_message())
