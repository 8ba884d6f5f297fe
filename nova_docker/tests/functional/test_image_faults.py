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

"""Images that load but that the engine cannot create or fill a container
from: the build aborts with the engine's words, and nothing is left.

Another host would fail the same way, so these must not reach Nova as a
plain error, which it answers with a reschedule and, in the end, only
"Exceeded maximum number of retries".
"""

from __future__ import annotations

import io
import tarfile

import fixtures
from nova import exception as nova_exception

from nova_docker import exception
from nova_docker.engine import naming
from nova_docker.tests import engine_support
from nova_docker.tests.functional import base

PASSWD = b"root:x:0:0:root:/root:/bin/sh\n"


def with_symlink(rootfs: bytes, name: str, target: str) -> bytes:
    """``rootfs`` plus a symlink ``name`` → ``target`` (which may dangle)."""
    buffer = io.BytesIO(rootfs)
    with tarfile.open(fileobj=buffer, mode="a") as tar:
        link = tarfile.TarInfo(name)
        link.type, link.linkname = tarfile.SYMTYPE, target
        tar.addfile(link)
    return buffer.getvalue()


class ImageFaultTestCase(base.DriverTestCase):
    def image(self, rootfs: bytes | None = None, changes: tuple[str, ...] = ()):
        ref = engine_support.build_image(self.client, changes=changes, rootfs=rootfs)
        self.tracker.images.append(ref)
        return self.make_image(engine_support.saved(self.client, ref))

    def assert_aborted(self, image, *fragments, injected_files=()):
        instance = self.make_instance()
        error = self.assertRaises(
            nova_exception.BuildAbortException,
            self.spawn,
            image,
            instance,
            injected_files,
        )
        message = error.format_message()
        self.assertIn(instance.uuid, message)
        for fragment in fragments:
            self.assertIn(fragment, message)
        self.assertEqual([], self.our_containers())

    def test_a_working_dir_that_is_a_file_aborts_the_build(self):
        image = self.image(
            engine_support.rootfs_tar({"/etc/passwd": PASSWD}),
            changes=("WORKDIR /etc/passwd",),
        )
        self.assert_aborted(
            image, "the container was not created", "/etc/passwd is not a directory"
        )

    def test_an_injected_file_through_a_dangling_symlink_aborts_the_build(self):
        image = self.image(with_symlink(engine_support.rootfs_tar(), "opt", "/gone"))
        self.assert_aborted(
            image,
            "the injected files were not copied in",
            "/opt/app.conf",
            injected_files=[("/opt/app.conf", b"setting=1\n")],
        )

    def test_an_injected_file_under_a_regular_file_aborts_the_build(self):
        image = self.image(engine_support.rootfs_tar({"/etc/passwd": PASSWD}))
        self.assert_aborted(
            image,
            "the injected files were not copied in",
            "not a directory",
            injected_files=[("/etc/passwd/extra", b"x")],
        )

    def test_an_injected_path_with_a_nul_is_refused_before_the_engine(self):
        instance = self.make_instance()
        error = self.assertRaises(
            nova_exception.InvalidInput,
            self.spawn,
            self.make_image(),
            instance,
            [("/zz/yy/..\x00/MARK", b"owned")],
        )
        self.assertIn(repr("/zz/yy/..\x00/MARK"), error.format_message())
        self.assertEqual([], self.our_containers())

    def test_a_leftover_container_is_replaced(self):
        """A container of the instance's name (an interrupted build's) is
        found by the create's conflict, removed, and the create made again."""
        ref = engine_support.build_image(self.client)
        self.tracker.images.append(ref)
        instance = self.make_instance()
        name = naming.container_name(instance.uuid)
        labels = {naming.HOST_LABEL: self.host}
        leftover = self.client.create_container(ref, name=name, labels=labels)["Id"]

        self.spawn(self.make_image(), instance)

        self.assertNotEqual(leftover, self.container(instance)["Id"])
        self.assertIn("Removed a leftover container", self.stdlog.logger.output)

    def test_a_name_taken_meanwhile_is_no_fault_of_the_image(self):
        # Another create of this container wins the race between the
        # removal of a leftover and the create made again.
        engine = self.driver._engine
        remove = engine.remove_container
        ref = engine_support.build_image(self.client)
        self.tracker.images.append(ref)
        instance = self.make_instance()
        name = naming.container_name(instance.uuid)
        labels = {naming.HOST_LABEL: self.host}
        self.client.create_container(ref, name=name, labels=labels)
        raced = []

        def remove_then_lose_the_race(removed_name: str) -> bool:
            removed = remove(removed_name)
            if removed_name == name and not raced:
                raced.append(name)
                self.client.create_container(ref, name=name, labels=labels)
            return removed

        self.useFixture(
            fixtures.MockPatchObject(
                engine, "remove_container", side_effect=remove_then_lose_the_race
            )
        )
        error = self.assertRaises(
            exception.EngineError, self.spawn, self.make_image(), instance
        )
        self.assertIn("already in use", error.format_message())
        # Not the image's fault: no BuildAbortException, so Nova may
        # reschedule.
        self.assertNotIsInstance(error, nova_exception.BuildAbortException)

    def test_a_good_image_still_boots_with_its_injected_files(self):
        instance = self.spawn(self.image(), injected_files=[("/etc/motd", b"hello\n")])
        self.assertEqual(b"hello\n", self.read_file(instance, "/etc/motd"))
