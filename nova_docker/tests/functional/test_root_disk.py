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

"""A flavor's root disk is a real limit, by the engine's quota or the audit.

Where the engine's storage has quotas (a private engine whose data root is
XFS with ``pquota``, or btrfs, in a loop-mounted file), a write past the
root disk fails inside the container.  Where it has none (ext4, as under
the host's engine here), the audit measures the instances and logs or stops
the one past its limit, with a fault in Nova's database naming usage and
limit; nothing else is touched.
"""

from __future__ import annotations

import functools
import re
import shutil
import unittest
import uuid

import nova.conf
import oslo_messaging as messaging
from nova import objects
from nova.compute import power_state
from nova.compute import vm_states
from oslo_utils import units

from nova_docker import conf as docker_conf
from nova_docker import rootdisk
from nova_docker.engine import naming
from nova_docker.tests import engine_support
from nova_docker.tests import waiting
from nova_docker.tests.functional import base
from nova_docker.tests.functional import private_engine

LINE = "Root disks on this host: "
#: Past a 1 GB root disk, the smallest a flavor can have.
WRITE_MIB = 1100
DONE = "writer-done"
AUDIT_THREAD = "nova-docker-root-disk-audit"


def writer_command(mib: int, sparse: bool = False) -> str:
    """Write a file of ``mib`` MiB, report how it went, then idle.

    ``sparse`` writes only its last MiB: the length still counts in full.
    """
    blocks = f"seek={mib - 1} count=1" if sparse else f"count={mib}"
    return (
        '/bin/sh -c \'trap "exit 0" TERM; '
        f"dd if=/dev/zero of=/fill bs=1M {blocks} 2>&1; "
        f"echo dd-exit=$?; echo size=$(wc -c < /fill); echo {DONE}; "
        "while :; do sleep 1; done'"
    )


@functools.cache
def writer_tarball() -> bytes:
    """``docker save`` of busybox with ``dd``, built once per run."""
    client = engine_support.engine_client()
    rootfs = engine_support.rootfs_tar(applets=(*engine_support.APPLETS, "dd", "wc"))
    ref = engine_support.build_image(client, rootfs=rootfs)
    try:
        return engine_support.saved(client, ref)
    finally:
        client.remove_image(ref)


class RootDiskMixin:
    """Instances in Nova's (test) database, so that faults can be read."""

    USES_DB = True

    def audit_every(self, seconds: int) -> None:
        """Set the interval before a driver exists to register it."""
        docker_conf.register_opts(nova.conf.CONF)
        self.flags(root_disk_audit_interval=seconds, group="docker")

    def db_instance(self, root_gb: int = 1) -> objects.Instance:
        flavor = objects.Flavor(
            name=f"rd-{root_gb}",
            flavorid=str(uuid.uuid4()),
            memory_mb=64,
            vcpus=1,
            root_gb=root_gb,
            ephemeral_gb=0,
            swap=0,
            extra_specs={},
        )
        instance = objects.Instance(
            context=self.ctxt,
            uuid=str(uuid.uuid4()),
            user_id="user",
            project_id="project",
            host=self.host,
            hostname="rd",
            vm_state=vm_states.ACTIVE,
            flavor=flavor,
            metadata={},
            system_metadata={},
            config_drive="",
        )
        instance.create()
        return instance

    def spawn_writer(
        self, mib: int, wait: bool = True, sparse: bool = False, root_gb: int = 1
    ) -> objects.Instance:
        """An instance with a root disk of ``root_gb`` that writes ``mib``
        MiB; with ``wait``, once it has written them."""
        command = writer_command(mib, sparse)
        image = self.make_image(
            writer_tarball(), properties={"os_command_line": command}
        )
        instance = self.spawn(image, self.db_instance(root_gb=root_gb))
        if not wait:
            return instance
        waiting.until(
            lambda: DONE in self.driver.get_console_output(self.ctxt, instance),
            f"the writer of {mib} MiB finished",
        )
        return instance

    def power(self, instance: objects.Instance) -> int:
        return self.driver.get_info(instance, use_cache=False).state

    def fault(self, instance: objects.Instance) -> objects.InstanceFault | None:
        return objects.InstanceFault.get_latest_for_instance(self.ctxt, instance.uuid)

    def mode_line(self) -> str:
        lines = [
            line.split(LINE, 1)[1]
            for line in self.stdlog.logger.output.splitlines()
            if LINE in line
        ]
        self.assertTrue(lines, "no root-disk line was logged")
        return lines[-1]


class AuditTestCase(RootDiskMixin, base.DriverTestCase):
    """The host's engine: overlay2 on ext4, which has no quotas.

    Its driver runs no audit thread; each test runs one round itself.
    """

    def make_driver(self):
        self.audit_every(0)
        return super().make_driver()

    def audit(self, action: str, **kwargs) -> list[rootdisk.Overuse]:
        """One audit round, as the thread runs it, with ``action``."""
        audit = rootdisk.RootDisks(
            self.driver._engine,
            self.driver._containers,
            self.host,
            rootdisk.Options(audit_interval=0, overuse_action=action, stop_timeout=5),
            **kwargs,
        )
        return audit.audit()

    def foreign(self, labels: dict[str, str]) -> str:
        """A running container that is not this host's instance and has
        written a little: were it ours, it would be over its limit."""
        ref = engine_support.build_image(
            self.client, cmd=["/bin/sh", "-c", "echo x > /x; sleep 600"]
        )
        self.tracker.images.append(ref)
        found = self.client.create_container(ref, labels=labels)["Id"]
        self.addCleanup(self.client.remove_container, found, force=True)
        self.client.start(found)
        return found

    def test_the_start_up_line_says_the_engine_cannot_enforce_and_how_it_audits(self):
        cannot = (
            "the engine cannot enforce root disks (overlay2 on extfs without "
            "project quotas; the engine says: --storage-opt is supported only "
            "for overlay over xfs with 'pquota' mount option)"
        )
        self.assertEqual(
            f"{cannot}; not audited, since root_disk_audit_interval is 0",
            self.mode_line(),
        )
        self.audit_every(60)
        base.DriverTestCase.make_driver(self)  # with the audit thread

        self.assertEqual(
            f"{cannot}; auditing every 60 s, action=stop", self.mode_line()
        )

    def test_containers_record_their_root_disk_and_ask_the_engine_for_no_quota(self):
        instance = self.spawn(self.make_image(), self.db_instance(root_gb=3))
        found = self.container(instance)
        self.assertEqual(
            str(3 * units.Gi), found["Config"]["Labels"][naming.ROOT_DISK_BYTES_LABEL]
        )
        self.assertFalse(found["HostConfig"].get("StorageOpt"))

    def test_a_flavor_without_a_root_disk_records_the_largest_image(self):
        self.flags(max_image_expanded_gb=4, group="docker")
        self.driver = self.make_driver()
        instance = self.spawn(self.make_image(), self.db_instance(root_gb=0))
        labels = self.container(instance)["Config"]["Labels"]
        self.assertEqual(str(4 * units.Gi), labels[naming.ROOT_DISK_BYTES_LABEL])

    def test_a_flavor_without_a_root_disk_is_audited_too(self):
        self.flags(max_image_expanded_gb=1, group="docker")
        self.driver = self.make_driver()
        over = self.spawn_writer(WRITE_MIB, sparse=True, root_gb=0)
        within = self.spawn_writer(8, root_gb=0)

        found = self.audit(rootdisk.ACTION_STOP)

        self.assertEqual([over.uuid], [o.instance_uuid for o in found])
        self.assertEqual(power_state.SHUTDOWN, self.power(over))
        self.assertEqual(power_state.RUNNING, self.power(within))
        self.assertIn(f"root disk of {units.Gi} bytes", self.fault(over).message)

    def test_the_probe_leaves_nothing_and_sweeps_only_this_hosts_leftovers(self):
        ours = self.leftover_probe(self.host)
        theirs = self.leftover_probe(f"{self.host}-other")

        self.driver.init_host(self.host)

        probe_tags = [
            tag
            for image in self.client.images(name=naming.ROOT_DISK_PROBE_REPOSITORY)
            for tag in image.get("RepoTags") or ()
        ]
        self.assertNotIn(ours[1], probe_tags)
        self.assertIn(theirs[1], probe_tags)
        ids = [c["Id"] for c in self.client.containers(all=True)]
        self.assertNotIn(ours[0], ids)
        self.assertIn(theirs[0], ids)
        mine = naming.root_disk_probe_selector(self.host)
        self.assertEqual([], self.driver._engine.list_containers(mine))
        self.assertEqual(
            [],
            self.driver._engine.image_tags(naming.ROOT_DISK_PROBE_REPOSITORY, mine),
        )

    def leftover_probe(self, host: str) -> tuple[str, str]:
        """A probe container and image as a start cut short leaves them."""
        labels = naming.root_disk_probe_selector(host)
        ref = naming.root_disk_probe_ref(uuid.uuid4().hex[:12])
        self.driver._engine.import_image(rootdisk.EMPTY_TAR, ref, labels)
        self.tracker.images.append(ref)
        found = self.client.create_container(ref, command=["/probe"], labels=labels)
        self.addCleanup(self.driver._engine.remove_container, found["Id"])
        return found["Id"], ref

    def test_stop_stops_the_instance_past_its_limit_and_records_why(self):
        over = self.spawn_writer(WRITE_MIB)
        within = self.spawn_writer(8)
        self.assertEqual(power_state.RUNNING, self.power(over))

        found = self.audit(rootdisk.ACTION_STOP)

        self.assertEqual([over.uuid], [o.instance_uuid for o in found])
        self.assertEqual(power_state.SHUTDOWN, self.power(over))
        self.assertEqual(power_state.RUNNING, self.power(within))
        fault = self.fault(over)
        used = int(re.search(r"holds (\d+) bytes", fault.message).group(1))
        self.assertGreaterEqual(used, WRITE_MIB * units.Mi)
        self.assertIn(f"root disk of {units.Gi} bytes", fault.message)
        self.assertIsNone(self.fault(within))

    def test_log_only_logs_naming_the_instance_usage_and_limit(self):
        over = self.spawn_writer(WRITE_MIB)

        self.audit(rootdisk.ACTION_LOG)

        self.assertEqual(power_state.RUNNING, self.power(over))
        self.assertIsNone(self.fault(over))
        warning = next(
            line
            for line in self.stdlog.logger.output.splitlines()
            if "Root disk exceeded" in line
        )
        self.assertIn(over.uuid, warning)
        self.assertIn(f"over its root disk of {units.Gi} bytes", warning)
        self.assertNotIn("stopping", warning)

    def test_a_sparse_file_counts_at_its_length(self):
        over = self.spawn_writer(WRITE_MIB, sparse=True)

        found = self.audit(rootdisk.ACTION_LOG)

        self.assertEqual([over.uuid], [o.instance_uuid for o in found])
        self.assertGreaterEqual(found[0].used_bytes, WRITE_MIB * units.Mi)

    def test_a_fault_nova_cannot_record_leaves_the_stop_and_the_other_instances(self):
        first = self.spawn_writer(WRITE_MIB, sparse=True)
        second = self.spawn_writer(WRITE_MIB, sparse=True)

        def conductor_away(instance_uuid: str, fault: Exception) -> None:
            raise messaging.MessagingTimeout("no reply from the conductor")

        found = self.audit(rootdisk.ACTION_STOP, fault_recorder=conductor_away)

        self.assertEqual(2, len(found))
        self.assertEqual(power_state.SHUTDOWN, self.power(first))
        self.assertEqual(power_state.SHUTDOWN, self.power(second))
        self.assertIn(
            f"Could not record the fault of instance {first.uuid}",
            self.stdlog.logger.output,
        )

    def test_containers_of_others_or_of_an_older_driver_are_never_touched(self):
        unlabelled = self.foreign({})
        other_host = self.foreign(
            {
                naming.HOST_LABEL: f"{self.host}-other",
                naming.UUID_LABEL: str(uuid.uuid4()),
                naming.ROOT_DISK_BYTES_LABEL: "1",
            }
        )
        # Ours, but created before the label existed: no known limit.
        older = self.foreign(
            {naming.HOST_LABEL: self.host, naming.UUID_LABEL: str(uuid.uuid4())}
        )

        self.assertEqual([], self.audit(rootdisk.ACTION_STOP))

        for found in (unlabelled, other_host, older):
            self.assertTrue(self.client.inspect_container(found)["State"]["Running"])


class AuditThreadTestCase(RootDiskMixin, private_engine.PrivateEngineTestCase):
    """The audit on its own thread, with an engine that goes away."""

    def make_driver(self):
        self.audit_every(1)
        return super().make_driver()

    def test_the_audit_survives_the_engine_going_away_and_stops_an_overuse(self):
        self.assertIn("auditing every 1 s, action=stop", self.mode_line())
        self.engine.stop()
        waiting.until(
            lambda: "Root-disk audit skipped" in self.stdlog.logger.output,
            "a round found the engine down",
        )
        self.engine.start()

        # The audit may stop it before it has written all.
        over = self.spawn_writer(WRITE_MIB, wait=False)

        waiting.until(
            lambda: self.power(over) == power_state.SHUTDOWN,
            "the audit thread stopped the instance",
        )
        waiting.until(lambda: self.fault(over) is not None, "the fault is recorded")
        self.assertIn(f"root disk of {units.Gi} bytes", self.fault(over).message)

    def test_cleanup_host_ends_the_audit_thread(self):
        thread = self.driver._root_disks._thread
        self.assertEqual(AUDIT_THREAD, thread.name)
        self.assertTrue(thread.is_alive())

        self.driver.cleanup_host(self.host)

        self.assertFalse(thread.is_alive())


class EnforcedTestMixin(RootDiskMixin):
    """A private engine whose data root is a file system with quotas."""

    #: What ``dd`` says when the quota stops it.
    quota_error = ""

    def test_the_start_up_line_says_enforced(self):
        self.assertTrue(
            self.mode_line().startswith("enforced by the engine's quota"),
            self.mode_line(),
        )
        self.assertIsNone(self.driver._root_disks._thread)

    def test_a_write_past_the_root_disk_fails_in_the_container(self):
        instance = self.spawn_writer(WRITE_MIB)
        output = self.driver.get_console_output(self.ctxt, instance)

        self.assertIn("dd-exit=1", output)
        self.assertIn(self.quota_error, output)
        # Stopped by the quota near 1 GiB, not by a full file system (3 GiB).
        written = int(re.search(r"size=(\d+)", output)[1])
        self.assertLessEqual(written, units.Gi)
        self.assertGreater(written, units.Gi // 2)
        found = self.container(instance)
        self.assertEqual({"size": "1G"}, found["HostConfig"]["StorageOpt"])

    def test_a_flavor_without_a_root_disk_gets_the_largest_image_as_quota(self):
        instance = self.spawn(self.make_image(), self.db_instance(root_gb=0))
        largest = nova.conf.CONF.docker.max_image_expanded_gb
        found = self.container(instance)
        self.assertEqual({"size": f"{largest}G"}, found["HostConfig"]["StorageOpt"])


class XfsPquotaTestCase(EnforcedTestMixin, private_engine.PrivateEngineTestCase):
    """overlay2 on XFS mounted with ``pquota``: the recommended setup."""

    data_root_fs = private_engine.XFS_PQUOTA
    quota_error = "No space left on device"

    def test_the_engine_stores_on_overlay2_over_xfs(self):
        self.assertIn("(overlay2 on xfs)", self.mode_line())


class BtrfsTestCase(EnforcedTestMixin, private_engine.PrivateEngineTestCase):
    """The btrfs storage driver, whose quotas are qgroups."""

    data_root_fs = private_engine.BTRFS
    quota_error = "Disk quota exceeded"

    def test_the_engine_stores_on_btrfs(self):
        self.assertIn("(btrfs)", self.mode_line())


#: The file systems on which the enforced tests above run.
ENFORCING_FILE_SYSTEMS = (private_engine.XFS_PQUOTA, private_engine.BTRFS)


def enforcing_refusals() -> dict[str, str]:
    """Why each file system with quotas cannot be a data root here; an
    empty entry for one that can."""
    found = {}
    for fs in ENFORCING_FILE_SYSTEMS:
        if shutil.which(fs.mkfs[0]) is None:
            found[fs.kind] = f"{fs.mkfs[0]} is not installed"
        else:
            found[fs.kind] = private_engine.data_root_refusal(fs) or ""
    return found


class EnforcementIsTestedTestCase(unittest.TestCase):
    """The enforced tests skip where the kernel refuses their file system,
    which is this host's fact.  Under CI, though, a run in which neither
    XFS nor btrfs could be mounted has left quotas untested: that fails."""

    def test_quotas_are_tested_on_xfs_or_btrfs(self):
        private_engine.require_prerequisites()
        refusals = enforcing_refusals()
        why = "no root-disk quota can be tested here: " + "; ".join(
            f"{kind}: {refusal}" for kind, refusal in refusals.items()
        )
        engine_support.require(not all(refusals.values()), why)
