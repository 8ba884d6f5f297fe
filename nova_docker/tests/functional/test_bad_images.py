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

"""Broken and hostile images: a clear fault, and nothing left behind.

Every case asserts the fault text a user would read, that no container and
no image tag remain, and that nothing was written to the temp directory.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
import tempfile

import fixtures
from nova import exception as nova_exception

from nova_docker.tests import engine_support
from nova_docker.tests.functional import base


def _members(tarball: bytes) -> list[tuple[tarfile.TarInfo, bytes | None]]:
    with tarfile.open(fileobj=io.BytesIO(tarball)) as tar:
        return [(m, tar.extractfile(m).read() if m.isfile() else None) for m in tar]


def _pack(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def _file(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


class BadImageTestCase(base.DriverTestCase):
    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.useFixture(fixtures.MonkeyPatch("tempfile.tempdir", self.tmp))

    def assert_refused(self, image, *fragments):
        instance = self.make_instance()
        error = self.assertRaises(
            nova_exception.ImageUnacceptable, self.spawn, image, instance
        )
        message = error.format_message()
        self.assertIn(image.id, message)
        for fragment in fragments:
            self.assertIn(fragment, message)
        self.assertEqual([], self.our_containers())
        self.assert_image_gone(image)
        self.assertEqual(tempfile.gettempdir(), self.tmp)
        self.assertEqual([], os.listdir(self.tmp))
        return message

    def test_wrong_container_format_is_refused_before_download(self):
        image = self.make_image(b"QFI\xfb" + bytes(4096), container_format="bare")
        self.assert_refused(image, "container_format is 'bare'", "docker save")
        self.assertEqual(0, self.glance.downloads[image.id])

    def test_truncated_tarball(self):
        tarball = engine_support.busybox_tarball()
        image = self.make_image(tarball[: len(tarball) // 2])
        self.assert_refused(image, "truncated")

    def test_bytes_that_are_not_a_tar_archive(self):
        image = self.make_image(b"this is not an image\n" * 1000)
        self.assert_refused(image, "not a tar archive")

    def test_tarball_with_no_image(self):
        image = self.make_image(
            _pack([_file("manifest.json", b"[]"), _file("repositories", b"{}")])
        )
        self.assert_refused(image, "contains no image")

    def test_tarball_without_manifest(self):
        image = self.make_image(_pack([_file("hello.txt", b"hi")]))
        self.assert_refused(image, "no manifest.json")

    def test_tarball_with_two_images(self):
        refs = [engine_support.build_image(self.client) for _ in range(2)]
        self.tracker.images.extend(refs)
        tarball = subprocess.run(
            ["docker", "save", *refs], check=True, capture_output=True
        ).stdout
        image = self.make_image(tarball)
        self.assert_refused(image, "contains 2 images")

    def test_manifest_pointing_at_a_missing_layer(self):
        members = [
            (info, data)
            for info, data in _members(engine_support.busybox_tarball())
            if not info.name.endswith("layer.tar")
        ]
        image = self.make_image(_pack(members))
        self.assert_refused(image, "missing from the tarball")

    def test_path_traversal_entry(self):
        members = _members(engine_support.busybox_tarball())
        members.insert(0, _file("../escaped.txt", b"owned"))
        image = self.make_image(_pack(members))
        self.assert_refused(image, "unsafe path '../escaped.txt'")

    def test_absolute_path_entry(self):
        members = _members(engine_support.busybox_tarball())
        members.insert(0, _file("/etc/escaped.txt", b"owned"))
        image = self.make_image(_pack(members))
        self.assert_refused(image, "unsafe path")

    def test_symlink_pointing_out_of_the_archive(self):
        link = tarfile.TarInfo("evil")
        link.type, link.linkname = tarfile.SYMTYPE, "../../etc/passwd"
        members = [*_members(engine_support.busybox_tarball()), (link, None)]
        image = self.make_image(_pack(members))
        self.assert_refused(image, "'evil' points outside the archive")

    def test_huge_declared_size_with_little_data(self):
        header = tarfile.TarInfo("blob")
        header.size = 10 * 1024**3
        image = self.make_image(header.tobuf() + b"x" * 4096)
        self.assert_refused(image, "truncated")

    def test_image_without_command(self):
        ref = engine_support.build_image(self.client, cmd=None)
        self.tracker.images.append(ref)
        image = self.make_image(engine_support.saved(self.client, ref))
        instance = self.make_instance()
        error = self.assertRaises(
            nova_exception.ImageUnacceptable, self.spawn, image, instance
        )
        self.assertIn("neither CMD nor ENTRYPOINT", error.format_message())
        self.assertEqual([], self.our_containers())

    def test_command_that_does_not_exist_aborts_the_build(self):
        image = self.make_image(properties={"os_command_line": "/bin/no-such-thing"})
        instance = self.make_instance()
        error = self.assertRaises(
            nova_exception.BuildAbortException, self.spawn, image, instance
        )
        self.assertIn("did not start", error.format_message())
        self.assertIn("no-such-thing", error.format_message())
        self.assertEqual([], self.our_containers())

    def test_manifest_that_is_not_json(self):
        image = self.make_image(_pack([_file("manifest.json", b"{nope")]))
        self.assert_refused(image, "manifest.json is not JSON")

    def test_bad_image_then_good_image_of_the_same_host_works(self):
        bad = self.make_image(b"garbage" * 100)
        self.assert_refused(bad, "not a tar archive")
        instance = self.spawn(self.make_image())
        self.assertTrue(self.driver.instance_exists(instance))

    def test_manifest_listing_config_only(self):
        manifest = json.dumps([{"Config": "c.json", "Layers": []}]).encode()
        image = self.make_image(_pack([_file("manifest.json", manifest)]))
        self.assert_refused(image, "'c.json'", "missing from the tarball")
