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

"""What a tenant's container may do on the host, with default settings.

Checked twice where it matters: in the engine's view of the container
(``HostConfig``) and in the kernel's, from ``/proc/self/status`` inside it.
"""

from __future__ import annotations

import io
import os
import tarfile
import tempfile
import uuid

from nova import exception as nova_exception
from nova import objects

from nova_docker.engine import naming
from nova_docker.tests import engine_support
from nova_docker.tests import waiting
from nova_docker.tests.functional import base

# Docker's default capability set (CHOWN, DAC_OVERRIDE, FSETID, FOWNER, MKNOD,
# NET_RAW, SETGID, SETUID, SETFCAP, SETPCAP, NET_BIND_SERVICE, SYS_CHROOT,
# KILL, AUDIT_WRITE): nothing is added to it.
ENGINE_DEFAULT_CAPS = "00000000a80425fb"
SECCOMP_FILTER = "2"
STATUS_COMMAND = "/bin/sh -c 'cat /proc/self/status; echo status-done; sleep 600'"


def flavor(**extra_specs: str) -> objects.Flavor:
    return objects.Flavor(
        memory_mb=64,
        vcpus=1,
        root_gb=1,
        ephemeral_gb=0,
        swap=0,
        extra_specs=extra_specs,
    )


def proc_status(text: str) -> dict[str, str]:
    fields = (line.split(":", 1) for line in text.splitlines() if ":" in line)
    return {key.strip(): value.strip() for key, value in fields}


def with_symlink(tarball: bytes, name: str, target: str) -> bytes:
    """``tarball`` (a root filesystem) plus a symlink ``name`` → ``target``,
    and ``target`` as a directory in it, so the link resolves in there."""
    buffer = io.BytesIO(tarball)
    with tarfile.open(fileobj=buffer, mode="a") as tar:
        directory = tarfile.TarInfo(target.lstrip("/"))
        directory.type, directory.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(directory)
        link = tarfile.TarInfo(name)
        link.type, link.linkname = tarfile.SYMTYPE, target
        tar.addfile(link)
    return buffer.getvalue()


class SecureDefaultsTestCase(base.DriverTestCase):
    def status_of(self, instance) -> dict[str, str]:
        def output() -> str:
            return self.driver.get_console_output(self.ctxt, instance)

        waiting.until(lambda: "status-done" in output(), "the status dump")
        return proc_status(output())

    def test_containers_are_unprivileged_limited_and_mount_nothing(self):
        image = self.make_image(properties={"os_command_line": STATUS_COMMAND})
        instance = self.spawn(image, self.make_instance(flavor=flavor()))

        host_config = self.container(instance)["HostConfig"]
        self.assertFalse(host_config["Privileged"])
        self.assertEqual([], host_config.get("CapAdd") or [])
        self.assertEqual([], host_config.get("Binds") or [])
        self.assertEqual([], host_config.get("Mounts") or [])
        self.assertEqual([], host_config.get("Devices") or [])
        self.assertEqual([], self.container(instance)["Mounts"])
        self.assertEqual(["no-new-privileges:true"], host_config["SecurityOpt"])
        self.assertEqual(64 * 1024 * 1024, host_config["Memory"])
        self.assertGreater(host_config["PidsLimit"], 0)
        sandbox = naming.sandbox_name(instance.uuid)
        self.assertEqual(f"container:{sandbox}", host_config["NetworkMode"])
        self.assertEqual(
            {
                "Type": "local",
                "Config": {
                    "mode": "blocking",
                    "max-size": "10m",
                    "max-file": "2",
                    "compress": "false",
                },
            },
            host_config["LogConfig"],
        )
        self.assertNotEqual("host", host_config["PidMode"])
        self.assertNotEqual("host", host_config["IpcMode"])

        status = self.status_of(instance)
        self.assertEqual("1", status["NoNewPrivs"])
        self.assertEqual(SECCOMP_FILTER, status["Seccomp"])
        self.assertEqual(ENGINE_DEFAULT_CAPS, status["CapBnd"])
        self.assertEqual(ENGINE_DEFAULT_CAPS, status["CapEff"])

    def test_cap_drop_removes_capabilities_from_the_default_set(self):
        self.flags(cap_drop=["NET_RAW", "MKNOD"], group="docker")
        self.driver = self.make_driver()
        image = self.make_image(properties={"os_command_line": STATUS_COMMAND})
        instance = self.spawn(image)

        self.assertEqual(
            ["NET_RAW", "MKNOD"], self.container(instance)["HostConfig"]["CapDrop"]
        )
        dropped = (1 << 13) | (1 << 27)  # CAP_NET_RAW, CAP_MKNOD
        expected = int(ENGINE_DEFAULT_CAPS, 16) & ~dropped
        self.assertEqual(expected, int(self.status_of(instance)["CapEff"], 16))

    def test_the_engines_own_files_cannot_fill_the_host(self):
        """/etc/hosts, /etc/hostname and /etc/resolv.conf are files on the
        engine's data root, outside the writable layer the root-disk limits
        count: root in the container appends to none of them, reads all of
        them, and /proc/sys stays read-only as the engine's default has it.
        """
        script = (
            "for f in /etc/hosts /etc/hostname /etc/resolv.conf /proc/sys/kernel/"
            'hostname; do echo x >> $f 2>/dev/null; echo "$f=$?"; done; '
            "cat /etc/hosts > /dev/null && echo read-ok; echo done-writing; "
            "sleep 600"
        )
        command = f"/bin/sh -c '{script}'"
        image = self.make_image(properties={"os_command_line": command})
        instance = self.spawn(image)

        def output() -> str:
            return self.driver.get_console_output(self.ctxt, instance)

        waiting.until(lambda: "done-writing" in output(), "the write attempts")
        for path in ("/etc/hosts", "/etc/hostname", "/etc/resolv.conf"):
            self.assertIn(f"{path}=1", output())
        self.assertIn("/proc/sys/kernel/hostname=1", output())
        self.assertIn("read-ok", output())
        readonly = self.container(instance)["HostConfig"]["ReadonlyPaths"]
        self.assertIn("/proc/sysrq-trigger", readonly)

    def test_a_privileged_flavor_is_refused_unless_the_host_allows_it(self):
        privileged = flavor(**{"docker:privileged": "true"})
        instance = self.make_instance(flavor=privileged)
        error = self.assertRaises(
            nova_exception.InvalidInput, self.spawn, self.make_image(), instance
        )
        self.assertIn("allow_privileged", error.format_message())
        self.assertEqual([], self.our_containers())

        self.flags(allow_privileged=True, group="docker")
        self.driver = self.make_driver()
        # Created, not started: on some hosts (this project's CI VM) runc
        # cannot start a privileged container ("unable to apply caps").
        self.spawn(self.make_image(), instance, power_on=False)
        self.assertTrue(self.container(instance)["HostConfig"]["Privileged"])

    def test_an_injected_path_climbing_out_is_refused_and_leaves_nothing(self):
        for path in ("../etc/passwd", "/tmp/../../etc/shadow", "a/../../b"):
            self.assertRaises(
                nova_exception.InvalidInput,
                self.spawn,
                self.make_image(),
                injected_files=[(path, b"owned")],
            )
        self.assertEqual([], self.our_containers())

    def test_an_injected_file_through_an_image_symlink_stays_in_the_container(self):
        outside = tempfile.mkdtemp(prefix="nova-docker-escape-")
        self.addCleanup(os.rmdir, outside)
        rootfs = with_symlink(engine_support.rootfs_tar(), "escape", outside)
        repository, tag = "nova-docker-test", uuid.uuid4().hex[:12]
        self.client.import_image_from_data(
            rootfs,
            repository=repository,
            tag=tag,
            changes=['CMD ["/bin/sleep", "600"]'],
        )
        ref = f"{repository}:{tag}"
        self.tracker.images.append(ref)
        image = self.make_image(engine_support.saved(self.client, ref))

        instance = self.spawn(image, injected_files=[("/escape/owned", b"owned")])

        self.assertEqual([], os.listdir(outside))
        self.assertEqual(b"owned", self.read_file(instance, f"{outside}/owned"))
