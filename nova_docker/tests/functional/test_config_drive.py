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

"""The config drive on the real engine, and the flavors refused at once.

Nova's ``InstanceMetadata`` builds the drive from the instance: here the
instance carries what nova-compute would have loaded (its key pair, EC2
ids, devices), and Neutron's one answer (the security groups) is stubbed,
as this suite runs no Neutron; the e2e suite runs the real one.
"""

from __future__ import annotations

import base64
import json
import uuid

import fixtures
from nova import exception as nova_exception
from nova import objects
from nova.api.metadata import base as instance_metadata
from nova.network import model as network_model
from oslo_utils import units

from nova_docker import configdrive
from nova_docker.engine import naming
from nova_docker.tests import engine_support
from nova_docker.tests.functional import base

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGn4dOZXSxQmSvYdpLy/9C26qS8GCU nova-docker"
USER_DATA = b"#!/bin/sh\necho configured by user data\n"
DRIVE = configdrive.SEED_DIR


class ConfigDriveTestCase(base.DriverWithDatabaseTestCase):
    def setUp(self):
        super().setUp()
        self.useFixture(
            fixtures.MockPatchObject(
                instance_metadata.security_group_api,
                "get_instance_security_groups",
                return_value=[],
            )
        )
        self.image = self.make_image()

    def make_configured(self, **updates) -> objects.Instance:
        instance = self.make_instance(
            hostname="web-1",
            config_drive="True",
            user_data=base64.b64encode(USER_DATA).decode(),
            key_data=KEY,
            key_name="mykey",
            metadata={"role": "frontend"},
            availability_zone="az-1",
            **updates,
        )
        instance.keypairs = objects.KeyPairList(
            objects=[objects.KeyPair(name="mykey", public_key=KEY, type="ssh")]
        )
        instance.ec2_ids = objects.EC2Ids(
            instance_id="i-00000001",
            ami_id="ami-00000001",
            kernel_id=None,
            ramdisk_id=None,
        )
        instance.device_metadata = None
        instance.numa_topology = None
        instance.info_cache = objects.InstanceInfoCache(
            network_info=network_model.NetworkInfo()
        )
        return instance

    def meta_data(self, instance) -> dict:
        return json.loads(
            self.read_file(instance, f"{DRIVE}/openstack/latest/meta_data.json")
        )

    def test_the_drive_carries_what_cloud_init_reads(self):
        instance = self.spawn(self.image, self.make_configured())

        meta = self.meta_data(instance)
        self.assertEqual(instance.uuid, meta["uuid"])
        self.assertEqual(instance.display_name, meta["name"])
        # Nova's own form: the hostname in its [api] dhcp_domain.
        self.assertEqual("web-1", meta["hostname"].split(".")[0])
        self.assertEqual({"mykey": KEY}, meta["public_keys"])
        self.assertEqual(
            [("mykey", KEY)], [(k["name"], k["data"]) for k in meta["keys"]]
        )
        self.assertEqual({"role": "frontend"}, meta["meta"])
        self.assertEqual("az-1", meta["availability_zone"])
        self.assertEqual(instance.project_id, meta["project_id"])
        self.assertEqual(
            USER_DATA, self.read_file(instance, f"{DRIVE}/openstack/latest/user_data")
        )
        for name in ("network_data.json", "vendor_data.json", "vendor_data2.json"):
            self.read_file(instance, f"{DRIVE}/openstack/latest/{name}")
        self.read_file(instance, f"{DRIVE}/ec2/latest/meta-data.json")
        # A read-only mount of a volume of its own: the container's root
        # cannot write there (the disk limits count only its own layer).
        code, out = self.exec(
            instance, f"stat -c %a {DRIVE}/openstack/latest/user_data"
        )
        self.assertEqual((0, b"444"), (code, out.strip()))
        code, out = self.exec(instance, f"touch {DRIVE}/x || exit 9; echo wrote")
        self.assertEqual(9, code, out)
        mounts = self.container(instance)["Mounts"]
        self.assertEqual(
            [(DRIVE, "volume", naming.config_drive_volume(instance.uuid), False)],
            [(m["Destination"], m["Type"], m["Name"], m["RW"]) for m in mounts],
        )
        # The container it was copied in through is gone.
        self.assertEqual(
            [naming.container_name(instance.uuid), naming.sandbox_name(instance.uuid)],
            sorted(c["Names"][0].lstrip("/") for c in self.our_containers()),
        )

    def test_the_admin_password_goes_onto_the_drive(self):
        instance = self.make_configured()
        self.driver.spawn(self.ctxt, instance, self.image, [], "s3cret", {})
        self.assertEqual("s3cret", self.meta_data(instance)["admin_pass"])

    def test_no_drive_unless_asked(self):
        instance = self.spawn(self.image)
        self.assertEqual([], self.container(instance)["Mounts"])

    def test_a_snapshot_leaves_the_drive_behind_and_destroy_removes_it(self):
        instance = self.spawn(self.image, self.make_configured())
        volume = naming.config_drive_volume(instance.uuid)
        self.assertIn(volume, self.volumes())
        snapshot_id = str(uuid.uuid4())
        self.glance.create(self.ctxt, {"id": snapshot_id, "name": "snap"})
        self.tracker.images.append(naming.glance_image_ref(snapshot_id))
        self.driver.snapshot(self.ctxt, instance, snapshot_id, lambda **kw: None)

        # The snapshot boots without any of the old drive's files.
        copy = self.spawn(self.image_meta(snapshot_id))
        _code, out = self.exec(copy, f"ls -A {DRIVE}")
        self.assertEqual(b"", out.strip(), out)
        self.driver.destroy(self.ctxt, instance, [])
        self.assertEqual([], [v for v in self.volumes() if v == volume])

    def test_an_image_that_has_a_file_where_the_drive_goes_fails_the_build(self):
        # /var/lib/cloud is a file: there is nowhere to put the drive.
        rootfs = engine_support.rootfs_tar({"var/lib/cloud": b"x"})
        ref = engine_support.build_image(self.client, rootfs=rootfs)
        try:
            tarball = engine_support.saved(self.client, ref)
        finally:
            self.client.remove_image(ref)
        image = self.make_image(data=tarball)
        instance = self.make_configured()
        with self.assertRaises(nova_exception.BuildAbortException) as caught:
            self.spawn(image, instance)
        self.assertIn(DRIVE, caught.exception.format_message())
        self.assertEqual([], self.our_containers())
        self.assertNotIn(naming.config_drive_volume(instance.uuid), self.volumes())

    def exec(self, instance, command: str) -> tuple[int, bytes]:
        name = naming.container_name(instance.uuid)
        run = self.client.exec_create(name, ["/bin/sh", "-c", command])
        out = self.client.exec_start(run["Id"])
        return self.client.exec_inspect(run["Id"])["ExitCode"], out

    def volumes(self) -> list[str]:
        return [v["Name"] for v in self.client.volumes().get("Volumes") or []]


class FlavorRefusalTestCase(base.DriverTestCase):
    def flavor(self, memory_mb=64, **extra_specs) -> objects.Flavor:
        return objects.Flavor(
            name="f", flavorid="f", memory_mb=memory_mb, vcpus=1, root_gb=0,
            ephemeral_gb=0, swap=0, extra_specs=extra_specs,
        )  # fmt: skip

    def test_a_flavor_below_the_engines_memory_minimum_fails_at_once(self):
        image = self.make_image()
        instance = self.make_instance(flavor=self.flavor(memory_mb=4))
        with self.assertRaises(nova_exception.BuildAbortException) as caught:
            self.spawn(image, instance)
        self.assertIn(
            "4 MB is below the Docker Engine's minimum of 6 MB", str(caught.exception)
        )
        # Refused before anything was fetched or made.
        self.assertEqual(0, self.glance.downloads[image.id])
        self.assertEqual([], self.our_containers())

    def test_a_typo_in_the_drivers_extra_specs_fails_and_others_are_ignored(self):
        image = self.make_image()
        typo = self.flavor(**{"docker:pid_limit": "64", "hw:cpu_policy": "shared"})
        with self.assertRaises(nova_exception.BuildAbortException) as caught:
            self.spawn(image, self.make_instance(flavor=typo))
        self.assertIn("docker:pid_limit", str(caught.exception))
        self.assertIn("docker:pids_limit", str(caught.exception))

        other = self.flavor(**{"hw:cpu_policy": "shared", "docker:pids_limit": "64"})
        instance = self.spawn(image, self.make_instance(flavor=other))
        self.assertEqual(64, self.container(instance)["HostConfig"]["PidsLimit"])

    def test_volumes_and_ephemeral_disks_fail_at_once(self):
        """Block devices as Nova's compute manager hands them to spawn (a
        boot from volume, a flavor's ephemeral disk): named in the
        fault, refused before anything is fetched or made."""
        image = self.make_image()
        asked = {
            "root_device_name": "/dev/vda",
            "block_device_mapping": [
                {"mount_device": "/dev/vda", "boot_index": 0, "connection_info": {}}
            ],
            "ephemerals": [{"num": 0, "size": 2, "device_name": "/dev/vdb"}],
            "swap": {"swap_size": 512, "device_name": "/dev/vdc"},
        }
        with self.assertRaises(nova_exception.BuildAbortException) as caught:
            self.spawn(image, block_device_info=asked)
        message = str(caught.exception)
        self.assertIn("1 volume(s) requested", message)
        self.assertIn("ephemeral disks of 2 GB", message)
        self.assertNotIn("swap", message)
        self.assertEqual(0, self.glance.downloads[image.id])
        self.assertEqual([], self.our_containers())

    def test_an_accelerator_fails_at_once(self):
        """Cyborg's ARQs as Nova hands them to spawn."""
        image = self.make_image()
        arq = {"uuid": "a1", "device_profile_name": "gpu", "attach_handle_type": "PCI"}
        with self.assertRaises(nova_exception.BuildAbortException) as caught:
            self.spawn(image, accel_info=[arq])
        self.assertIn("1 accelerator(s) requested", str(caught.exception))
        self.assertEqual([], self.our_containers())

    def test_a_flavors_swap_is_the_containers_swap_limit(self):
        """A flavor's swap, which Nova also hands spawn as a swap device,
        lets the container use that much of the host's swap: memory plus
        swap is its limit."""
        swap = objects.Flavor(
            name="s", flavorid="s", memory_mb=64, vcpus=1, root_gb=0,
            ephemeral_gb=0, swap=512, extra_specs={},
        )  # fmt: skip
        asked = {"swap": {"swap_size": 512, "device_name": "/dev/vdb"}}
        instance = self.spawn(
            self.make_image(),
            self.make_instance(flavor=swap),
            block_device_info=asked,
        )
        host = self.container(instance)["HostConfig"]
        self.assertEqual(64 * units.Mi, host["Memory"])
        self.assertEqual((64 + 512) * units.Mi, host["MemorySwap"])

    def test_block_device_info_without_devices_boots(self):
        """What Nova passes for a plain flavor: no swap, no ephemerals, no
        volumes."""
        none_asked = {
            "root_device_name": "/dev/vda",
            "block_device_mapping": [],
            "ephemerals": [],
            "swap": None,
        }
        instance = self.spawn(self.make_image(), block_device_info=none_asked)
        self.assertTrue(self.container(instance)["State"]["Running"])


class AdminPasswordTestCase(base.DriverTestCase):
    """Root's password through the image's own chpasswd, or a refusal."""

    ACCOUNTS = {
        "etc/passwd": b"root:x:0:0:root:/root:/bin/sh\n",
        "etc/shadow": b"root:*:19000:0:99999:7:::\n",
    }
    #: Debian's static busybox has no chpasswd applet: the image's own, in
    #: the form chpasswd takes its input (``user:password`` lines on stdin).
    CHPASSWD = (
        b"#!/bin/sh\n"
        b"while IFS=: read -r user pass; do\n"
        b'  hash=$(mkpasswd -m sha512 "$pass") || exit 1\n'
        b'  sed -i "s|^$user:[^:]*:|$user:$hash:|" /etc/shadow || exit 1\n'
        b"done\n"
    )
    WITH_CHPASSWD = (*engine_support.APPLETS, "mkpasswd", "sed")

    def image_with(self, applets: tuple[str, ...]) -> objects.ImageMeta:
        files = dict(self.ACCOUNTS)
        if "mkpasswd" in applets:
            files["usr/sbin/chpasswd"] = self.CHPASSWD
        rootfs = engine_support.rootfs_tar(files, applets=applets)
        ref = engine_support.build_image(self.client, rootfs=rootfs)
        try:
            return self.make_image(data=engine_support.saved(self.client, ref))
        finally:
            self.client.remove_image(ref)

    def root_hash(self, instance) -> str:
        shadow = self.read_file(instance, "/etc/shadow").decode()
        return shadow.split(":")[1]

    def test_set_admin_password_sets_roots_password_and_hides_it(self):
        image = self.image_with(self.WITH_CHPASSWD)
        instance = self.spawn(image)
        self.assertEqual("*", self.root_hash(instance))

        self.driver.set_admin_password(instance, "n3w-pass word")

        # A crypt hash, not the password, and not the old "no password".
        hashed = self.root_hash(instance)
        self.assertTrue(hashed.startswith("$"), hashed)
        self.assertNotIn("n3w-pass", self.read_file(instance, "/etc/shadow").decode())

    def test_an_image_without_chpasswd_is_refused_and_keeps_running(self):
        instance = self.spawn(self.image_with(engine_support.APPLETS))
        with self.assertLogs("nova_docker.container", level="WARNING") as said:
            self.assertRaises(
                nova_exception.SetAdminPasswdNotSupported,
                self.driver.set_admin_password,
                instance,
                "secret",
            )
        self.assertIn("no chpasswd", said.output[0])
        self.assertTrue(self.container(instance)["State"]["Running"])

    def test_a_stopped_server_is_refused(self):
        instance = self.spawn(self.image_with(self.WITH_CHPASSWD))
        self.driver.power_off(instance, timeout=5)
        self.assertRaises(
            nova_exception.SetAdminPasswdNotSupported,
            self.driver.set_admin_password,
            instance,
            "secret",
        )

    def test_the_boots_password_is_roots_only_when_the_operator_says_so(self):
        image = self.image_with(self.WITH_CHPASSWD)
        plain = self.make_instance()
        self.driver.spawn(self.ctxt, plain, image, [], "boot-pass", {})
        self.assertEqual("*", self.root_hash(plain))

        self.flags(inject_password=True, group="docker")
        injected = self.make_instance()
        self.driver.spawn(self.ctxt, injected, image, [], "boot-pass", {})
        self.assertTrue(self.root_hash(injected).startswith("$"))

        # An image that cannot take it still boots.
        bare = self.make_instance()
        self.driver.spawn(
            self.ctxt, bare, self.image_with(engine_support.APPLETS), [], "x", {}
        )
        self.assertTrue(self.container(bare)["State"]["Running"])
