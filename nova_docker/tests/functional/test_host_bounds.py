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

"""Host-wide bounds on the real engine: tasks, open files, engine work and
the disk the image cache takes (issue 16, points 3 and 4)."""

from __future__ import annotations

import os
import subprocess
import time

import os_resource_classes as orc
from nova import objects
from nova.compute import provider_tree

from nova_docker import bounds
from nova_docker import host
from nova_docker.engine import naming
from nova_docker.tests import engine_support
from nova_docker.tests import waiting
from nova_docker.tests.functional import base

MIB = 1024 * 1024
GIB = 1024 * MIB
#: Forks tried in each container: bounded, and far above its share.
BOMB = (
    "(i=0; while [ $i -lt 300 ]; do sleep 600 & i=$((i+1)); done); "
    "echo bomb-over; exec sleep 600"
)
FLOOD_LINES = 200_000


def flavor(memory_mb: int = 64, **extra_specs: str) -> objects.Flavor:
    return objects.Flavor(
        memory_mb=memory_mb,
        vcpus=1,
        root_gb=0,
        ephemeral_gb=0,
        swap=0,
        extra_specs=extra_specs,
    )


class HostBoundsTestCase(base.DriverTestCase):
    def setUp(self):
        super().setUp()
        # Placement's view, made explicit: NCPU x 4 instances, all memory.
        self.flags(
            cpu_allocation_ratio=4.0,
            ram_allocation_ratio=1.0,
            reserved_host_cpus=0,
            reserved_host_memory_mb=0,
        )
        info = self.client.info()
        self.instances = int(info["NCPU"]) * 4
        self.memory_mb = int(info["MemTotal"]) // MIB

    def image_running(self, shell: str) -> objects.ImageMeta:
        ref = engine_support.build_image(self.client, cmd=["/bin/sh", "-c", shell])
        self.tracker.images.append(ref)
        return self.make_image(data=engine_support.saved(self.client, ref))

    def console(self, instance) -> str:
        return self.driver.get_console_output(self.ctxt, instance)

    def exec_output(self, instance, argv: list[str]) -> str:
        name = naming.container_name(instance.uuid)
        made = self.client.exec_create(name, argv)
        return self.client.exec_start(made["Id"]).decode()

    # -- tasks --------------------------------------------------------------

    def test_a_fork_bomb_in_three_instances_stops_at_their_shares(self):
        """Each container forks until its pids limit refuses; the limits,
        sized by flavor memory, add up to no more than the host's budget,
        and the host can still fork."""
        budget = self.instances * 10 + 160
        kernel = host.read_kernel_limits()
        reserve = kernel.tasks - self.instances * bounds.INSTANCE_TASKS - budget
        self.flags(reserved_host_pids=reserve, pids_limit_min=10, group="docker")
        self.driver = self.make_driver()
        image = self.image_running(BOMB)

        bombs = [
            self.spawn(image, self.make_instance(flavor=flavor(self.memory_mb // 4)))
            for _ in range(3)
        ]

        limits = [self.container(i)["HostConfig"]["PidsLimit"] for i in bombs]
        self.assertLessEqual(sum(limits), budget)
        for limit in limits:
            # More than the floor: a quarter of the host's memory gets a
            # quarter of what the floors leave.
            self.assertGreater(limit, 10)
        for instance, limit in zip(bombs, limits, strict=True):
            waiting.until(
                lambda i=instance: "can't fork" in self.console(i),
                "the fork bomb hitting its pids limit",
            )
            name = naming.container_name(instance.uuid)
            pids = self.client.stats(name, stream=False)["pids_stats"]
            self.assertLessEqual(pids["current"], limit)
        alive = subprocess.run(
            ["/bin/sh", "-c", "echo alive"], capture_output=True, text=True, check=True
        )
        self.assertEqual("alive\n", alive.stdout)

    # -- open files -----------------------------------------------------------

    def test_processes_in_the_container_get_the_nofile_limit(self):
        instance = self.spawn(self.make_image(), self.make_instance(flavor=flavor()))

        expected = self.driver._containers.task_limits(instance.flavor).nofile
        [ulimit] = self.container(instance)["HostConfig"]["Ulimits"]
        self.assertEqual({"Name": "nofile", "Soft": expected, "Hard": expected}, ulimit)
        limits = self.exec_output(instance, ["/bin/cat", "/proc/self/limits"])
        [line] = [x for x in limits.splitlines() if x.startswith("Max open files")]
        self.assertEqual(
            ["Max", "open", "files", str(expected), str(expected)], line.split()[:5]
        )
        self.assertGreaterEqual(expected, 1024)

    def test_a_flavor_may_lower_nofile_with_an_extra_spec(self):
        small = flavor(**{"docker:nofile_limit": "512"})
        instance = self.spawn(self.make_image(), self.make_instance(flavor=small))

        limits = self.exec_output(instance, ["/bin/sh", "-c", "ulimit -n"])
        self.assertEqual("512", limits.strip())

    # -- the start-up line ------------------------------------------------------

    def test_start_up_warns_in_one_line_when_the_floors_exceed_the_tasks(self):
        self.flags(pids_limit_min=100_000, group="docker")
        said = len(self.stdlog.logger.output)
        self.driver = self.make_driver()

        lines = [
            line
            for line in self.stdlog.logger.output[said:].splitlines()
            if "Instances may exceed the host's own limits" in line
        ]
        self.assertEqual(1, len(lines))
        floors = self.instances * 100_000
        self.assertIn(
            f"tasks: {self.instances} instances x pids_limit_min 100000 = {floors} >",
            lines[0],
        )
        self.assertIn("kernel.pid_max", lines[0])
        self.assertIn("WARNING", lines[0])

    def test_no_warning_when_the_host_can_hold_every_instance(self):
        self.flags(pids_limit_min=1, nofile_limit_min=1, group="docker")
        said = len(self.stdlog.logger.output)
        self.driver = self.make_driver()

        output = self.stdlog.logger.output[said:]
        self.assertNotIn("Instances may exceed the host's own limits", output)
        self.assertIn("Host limits for instances:", output)

    # -- engine work --------------------------------------------------------------

    def test_a_flood_is_held_back_not_dropped_and_the_console_reads_its_end(self):
        """Blocking logs: the engine takes every line, in order, however
        fast the container writes; none is dropped."""
        image = self.image_running(
            f"/bin/busybox seq 1 {FLOOD_LINES}; echo flood-done; exec sleep 600"
        )
        instance = self.spawn(image)

        waiting.until(
            lambda: self.console(instance).endswith("\nflood-done"), "the flood ending"
        )
        tail = self.console(instance).splitlines()
        self.assertEqual([str(FLOOD_LINES - 1), str(FLOOD_LINES)], tail[-3:-1])
        name = naming.container_name(instance.uuid)
        logged = self.client.logs(name).decode().split()
        numbers = [str(n) for n in range(1, FLOOD_LINES + 1)]
        self.assertEqual([*numbers, "flood-done"], logged)

    def test_a_flooding_container_waits_for_the_engine_within_its_log_files(self):
        """An endless flood: the container is seen blocked writing to the
        engine, the log on disk stays within its rotation, and the console
        log still answers with the newest output."""
        instance = self.spawn(self.image_running("exec /bin/busybox yes"))
        found = self.container(instance)
        pid = found["State"]["Pid"]

        blocked = 0
        for _ in range(20):
            with open(f"/proc/{pid}/wchan") as wchan:
                blocked += "pipe_write" in wchan.read()
            time.sleep(0.05)
        self.assertGreaterEqual(blocked, 10)
        logs = os.path.join(
            self.client.info()["DockerRootDir"], "containers", found["Id"], "local-logs"
        )
        waiting.until(
            lambda: len(os.listdir(logs)) == 2, "the log rotated at least once"
        )
        size = sum(os.path.getsize(os.path.join(logs, f)) for f in os.listdir(logs))
        # 2 files of 10 MB ("10m" is decimal), and the entry being written.
        self.assertLessEqual(size, 2 * 10_000_000 + 64 * 1024)
        console = self.console(instance)
        # The newest 100 KiB, less the last line's newline.
        self.assertEqual(100 * 1024 - 1, len(console))
        self.assertEqual({"y"}, set(console.split()))

    # -- disk ---------------------------------------------------------------------

    def test_disk_inventory_reserves_the_image_cache(self):
        self.flags(reserved_host_disk_mb=2048, disk_allocation_ratio=1.0)
        # At least one image in the cache, whatever else uses the engine.
        self.tracker.images.append(engine_support.build_image(self.client))
        for _ in range(5):
            before = self.images_bytes()
            inventory = self.inventory()
            if self.images_bytes() == before:
                break
        expected = -(-(2048 * MIB + before) // GIB)
        self.assertEqual(expected, inventory[orc.DISK_GB]["reserved"])
        self.assertGreater(inventory[orc.DISK_GB]["reserved"], 2)

    def images_bytes(self) -> int:
        """Every image the engine holds, each counted once."""
        return sum({i["Id"]: i["Size"] for i in self.client.images()}.values())

    def inventory(self) -> dict:
        tree = provider_tree.ProviderTree()
        tree.new_root(self.host, "00000000-0000-0000-0000-000000000001")
        self.driver.update_provider_tree(tree, self.host)
        return tree.data(self.host).inventory
