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

"""Images made to re-tag the host's other images, booted on the real engine.

Each attack smuggles a second image (the attacker's) into a tarball and
asks the engine to tag it as a victim: another tenant's cached Glance image
``nova-glance:<victim uuid>`` and a host image.  Whatever the outcome (most
are refused, a few are loaded without their extras), the invariant holds:
no tag on the engine but ``nova-glance:<this image>`` appears or moves,
and a refused boot leaves no container, tag or temp file.
"""

from __future__ import annotations

import json
import os
import random
import tarfile
import tempfile
import uuid

import fixtures
from nova import exception as nova_exception

from nova_docker.engine import naming
from nova_docker.tests import engine_support
from nova_docker.tests import tarcraft
from nova_docker.tests.functional import base

ATTACKER_CMD = ["/bin/sh", "-c", "echo attacker; sleep 1000"]
#: Mutated tarballs the fuzz test boots; fixed seed, so a failure replays.
FUZZ_SEED = 20261130
FUZZ_COUNT = 48


class HostileImageTestCase(base.DriverTestCase):
    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.useFixture(fixtures.MonkeyPatch("tempfile.tempdir", self.tmp))
        self.benign = tarcraft.SavedImage.parse(engine_support.busybox_tarball())
        attacker_ref = engine_support.build_image(self.client, cmd=ATTACKER_CMD)
        self.tracker.images.append(attacker_ref)
        self.attacker = tarcraft.SavedImage.parse(
            engine_support.saved(self.client, attacker_ref)
        )
        self.victim = self.make_image()
        self.driver._fetcher.ensure(self.ctxt, self.victim)
        self.host_tag = f"nova-docker-victim:{uuid.uuid4().hex[:12]}"
        self.client.tag(
            naming.glance_image_ref(self.victim.id), *self.host_tag.split(":")
        )
        self.tracker.images.append(self.host_tag)
        self.before = self.engine_tags()

    # -- helpers ----------------------------------------------------------

    @property
    def victim_tags(self) -> list[str]:
        return [naming.glance_image_ref(self.victim.id), self.host_tag]

    def engine_tags(self) -> dict[str, str]:
        """Every tag on the engine, but the short-lived ones each starting
        nova-compute (a demo cloud's, or another test's) makes and removes
        for its root-disk probe: those come and go on their own."""
        probe = naming.ROOT_DISK_PROBE_REPOSITORY + ":"
        return {
            tag: image["Id"]
            for image in self.client.images()
            for tag in image.get("RepoTags") or ()
            if tag != "<none>:<none>" and not tag.startswith(probe)
        }

    def smuggle(self, prefix: str = "zz") -> tuple[list[bytes], bytes]:
        """The attacker's files, and a manifest tagging them as the victims."""
        return (
            self.attacker.renamed(prefix),
            self.attacker.smuggled_manifest(prefix, self.victim_tags),
        )

    def boot(self, tarball: bytes, refused: bool = True, *fragments: str) -> None:
        image = self.make_image(tarball)
        if refused:
            error = self.assertRaises(
                nova_exception.ImageUnacceptable, self.spawn, image
            )
            for fragment in fragments:
                self.assertIn(fragment, error.format_message())
            self.assertEqual([], self.our_containers())
            self.assert_image_gone(image)
        else:
            instance = self.spawn(image)
            self.driver.destroy(self.ctxt, instance, [])
        self.assert_no_foreign_tag(image)

    def assert_no_foreign_tag(self, image) -> None:
        after = self.engine_tags()
        own = naming.glance_image_ref(image.id)
        changed = {
            tag
            for tag, image_id in after.items()
            if tag != own and self.before.get(tag) != image_id
        }
        self.assertEqual(set(), changed)
        for tag in self.victim_tags:
            self.assertEqual(self.before[tag], after.get(tag), tag)
        self.assertEqual(tempfile.gettempdir(), self.tmp)
        self.assertEqual([], os.listdir(self.tmp))

    # -- the three reported attacks ----------------------------------------

    def test_manifest_under_a_link_to_the_root_is_refused(self):
        files, manifest = self.smuggle()
        tarball = self.benign.pack(
            *files,
            tarcraft.symlink("d", "."),
            tarcraft.member("d/manifest.json", manifest),
        )
        self.boot(tarball, True, "'d/manifest.json' lies under the link 'd'")

    def test_pax_sparse_name_disagreement_is_refused(self):
        files, manifest = self.smuggle()
        sneaky = tarcraft.member(
            "decoy.json",
            manifest,
            pax={"path": "manifest.json", "GNU.sparse.name": "decoy.json"},
        )
        tarball = self.benign.pack(*files, sneaky, without=("manifest.json",))
        self.boot(tarball, True, "PAX key 'GNU.sparse.name'")

    def test_pax_sparse_size_hiding_headers_is_refused(self):
        files, manifest = self.smuggle()
        hidden = tarcraft.member("manifest.json", manifest)
        cover = tarcraft.member(
            "cover.bin",
            hidden,
            pax={"size": "0", "GNU.sparse.realsize": str(len(hidden))},
            size=len(hidden),
        )
        self.boot(self.benign.pack(*files, cover), True, "GNU.sparse.realsize")

    # -- variants -----------------------------------------------------------

    def test_pax_size_zero_shows_us_the_headers_the_engine_would_see(self):
        # Without a sparse key, both readers take PAX size 0 and read the
        # hidden header as a member: then it is a second manifest.json.
        files, manifest = self.smuggle()
        hidden = tarcraft.member("manifest.json", manifest)
        cover = tarcraft.member("cover.bin", hidden, pax={"size": "0"}, size=0)
        self.boot(self.benign.pack(*files, cover), True, "appears twice")

    def test_gnu_long_name_for_a_second_manifest_is_refused(self):
        files, manifest = self.smuggle()
        long_named = tarcraft.member(
            "./" * 60 + "manifest.json", manifest, fmt=tarfile.GNU_FORMAT
        )
        self.boot(self.benign.pack(*files, long_named), True, "appears twice")

    def test_gnu_and_pax_names_on_one_member_are_refused(self):
        long_name = tarcraft.member(
            "x" * 120, b"{}", fmt=tarfile.GNU_FORMAT
        )  # an 'L' header, then the member; prepend a PAX path to it
        pax = tarcraft.member("p", pax={"path": "manifest.json"})[: 2 * 512]
        tarball = self.benign.pack(pax + long_name)
        self.boot(tarball, True, "both a GNU and a PAX header")

    def test_dot_dot_in_a_pax_path_is_refused(self):
        files, manifest = self.smuggle()
        escape = tarcraft.member("ok", manifest, pax={"path": "a/../../manifest.json"})
        self.boot(self.benign.pack(*files, escape), True, "unsafe path")

    def test_dot_dot_in_a_pax_linkpath_is_refused(self):
        link = tarcraft.member(
            "l", kind=tarfile.SYMTYPE, linkname="ok", pax={"linkpath": "../../etc"}
        )
        self.boot(self.benign.pack(link), True, "'l' points outside the archive")

    def test_dot_dot_in_a_gnu_long_name_is_refused(self):
        escape = tarcraft.member("../" * 40 + "etc/x", b"x", fmt=tarfile.GNU_FORMAT)
        self.boot(self.benign.pack(escape), True, "unsafe path")

    def test_hard_link_to_the_manifest_is_refused(self):
        link = tarcraft.member("m2", kind=tarfile.LNKTYPE, linkname="manifest.json")
        self.boot(self.benign.pack(link), True, "'m2' is a hard link")

    def test_link_resolved_through_an_earlier_link_is_refused(self):
        tarball = self.benign.pack(
            tarcraft.symlink("q", "."), tarcraft.symlink("p", "q/..")
        )
        self.boot(tarball, True, "'p' points outside the archive")

    def test_duplicate_manifest_is_refused(self):
        files, manifest = self.smuggle()
        second = tarcraft.member("manifest.json", manifest)
        self.boot(self.benign.pack(*files, second), True, "appears twice")

    def test_manifest_naming_a_layer_outside_the_archive_is_refused(self):
        manifest = dict(self.benign.manifest, Layers=["../../../etc/passwd"])
        tarball = self.benign.pack(
            tarcraft.member("manifest.json", json.dumps([manifest]).encode()),
            without=("manifest.json",),
        )
        self.boot(tarball, True, "points outside the archive")

    def test_config_naming_a_missing_layer_is_refused(self):
        config_name = self.benign.manifest["Config"]
        config = json.loads(self.benign.data(config_name))
        config["rootfs"]["diff_ids"].append("sha256:" + "0" * 64)
        tarball = self.benign.pack(
            tarcraft.member(config_name, json.dumps(config).encode()),
            without=(config_name,),
        )
        self.boot(tarball, True, "config names 2 layers, the manifest 1")

    def test_wrong_layer_digest_is_refused_by_the_engine(self):
        config_name = self.benign.manifest["Config"]
        config = json.loads(self.benign.data(config_name))
        config["rootfs"]["diff_ids"] = ["sha256:" + "0" * 64]
        tarball = self.benign.pack(
            tarcraft.member(config_name, json.dumps(config).encode()),
            without=(config_name,),
        )
        self.boot(tarball, True, "Docker Engine")

    def test_directory_named_manifest_is_refused_cleanly(self):
        tarball = self.benign.pack(
            tarcraft.directory("manifest.json"), without=("manifest.json",)
        )
        self.boot(tarball, True, "no manifest.json")

    def test_fifo_and_devices_are_refused(self):
        for kind, what in (
            (tarfile.FIFOTYPE, "a FIFO"),
            (tarfile.CHRTYPE, "a character device"),
            (tarfile.BLKTYPE, "a block device"),
        ):
            self.boot(self.benign.pack(tarcraft.member("dev", kind=kind)), True, what)

    def test_data_after_the_end_marker_is_refused(self):
        files, manifest = self.smuggle()
        trailer = tarcraft.archive(*files, tarcraft.member("manifest.json", manifest))
        self.boot(self.benign.pack() + trailer, True, "after the end-of-archive")

    def test_a_lone_zero_block_before_more_members_is_refused(self):
        files, manifest = self.smuggle()
        tarball = self.benign.pack(
            bytes(512), *files, tarcraft.member("manifest.json", manifest)
        )
        self.boot(tarball, True, "lone zero block")

    # -- tag files the engine would honour, dropped --------------------------

    def test_repositories_file_naming_the_victims_is_dropped(self):
        image_id = self.attacker.manifest["Config"].split(".")[0]
        repositories = {
            "nova-glance": {self.victim.id: image_id},
            self.host_tag.split(":")[0]: {self.host_tag.split(":")[1]: image_id},
        }
        tarball = self.benign.pack(
            tarcraft.member("repositories", json.dumps(repositories).encode()),
            without=("repositories",),
        )
        self.boot(tarball, False)

    def test_oci_index_naming_the_victims_is_dropped(self):
        annotations = {"io.containerd.image.name": self.victim_tags[0]}
        index = {"schemaVersion": 2, "manifests": [{"annotations": annotations}]}
        tarball = self.benign.pack(
            tarcraft.member("index.json", json.dumps(index).encode()),
            tarcraft.member("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'),
        )
        self.boot(tarball, False)

    def test_index_that_is_a_list_is_dropped_not_a_crash(self):
        self.boot(self.benign.pack(tarcraft.member("index.json", b"[1, 2]")), False)

    # -- image config -------------------------------------------------------

    def test_image_volumes_stay_part_of_the_root_filesystem(self):
        rootfs = engine_support.rootfs_tar({"/data/seed": b"from the image"})
        ref = engine_support.build_image(
            self.client, changes=["VOLUME /data"], rootfs=rootfs
        )
        self.tracker.images.append(ref)
        self.assertIn("/data", self.client.inspect_image(ref)["Config"]["Volumes"])
        instance = self.spawn(self.make_image(engine_support.saved(self.client, ref)))

        self.assertEqual([], self.container(instance)["Mounts"])
        self.assertEqual(b"from the image", self.read_file(instance, "/data/seed"))

    def test_labels_in_the_drivers_namespace_are_stripped_from_images(self):
        forged = {naming.HOST_LABEL: "victim-host", naming.UUID_LABEL: "x"}
        ref = engine_support.build_image(
            self.client,
            changes=[f"LABEL {k}={v}" for k, v in forged.items()] + ["LABEL app=web"],
        )
        self.tracker.images.append(ref)
        image = self.make_image(engine_support.saved(self.client, ref))
        instance = self.spawn(image)

        loaded = self.client.inspect_image(naming.glance_image_ref(image.id))
        labels = dict(loaded["Config"]["Labels"])
        # The one label of ours an image carries is the driver's own count.
        self.assertTrue(labels.pop(naming.EXPANDED_BYTES_LABEL).isdigit())
        self.assertEqual({"app": "web"}, labels)
        labels = self.container(instance)["Config"]["Labels"]
        self.assertEqual(self.host, labels[naming.HOST_LABEL])
        self.assertEqual(instance.uuid, labels[naming.UUID_LABEL])

    # -- fuzz ----------------------------------------------------------------

    def test_mutated_tarballs_never_tag_anything_else(self):
        rng = random.Random(FUZZ_SEED)
        seed_tarball = self.benign.pack(*self.smuggle()[0])
        outcomes = {"refused": 0, "booted": 0}
        for _ in range(FUZZ_COUNT):
            image = self.make_image(_mutate(rng, seed_tarball))
            try:
                instance = self.spawn(image)
            except nova_exception.ImageUnacceptable:
                outcomes["refused"] += 1
                self.assert_image_gone(image)
            else:
                outcomes["booted"] += 1
                self.driver.destroy(self.ctxt, instance, [])
            self.assertEqual([], self.our_containers())
            self.assert_no_foreign_tag(image)
        # The mutations must reach past the first header to mean anything.
        self.assertGreater(outcomes["refused"], FUZZ_COUNT // 2, outcomes)


def _mutate(rng: random.Random, tarball: bytes) -> bytes:
    """One random corruption aimed at the header blocks."""
    data = bytearray(tarball)
    headers = [
        offset
        for offset in range(0, len(data) - 1024, 512)
        if data[offset + 257 : offset + 262] == b"ustar"
    ]
    offset = rng.choice(headers)
    action = rng.randrange(5)
    if action == 0:  # a new type flag
        data[offset + 156] = ord(rng.choice("0125Lxgs S7"))
    elif action == 1:  # a byte of the name
        data[offset + rng.randrange(100)] = rng.choice(b"./\x00a.\xff")
    elif action == 2:  # the size field
        data[offset + 124 : offset + 136] = b"%011o\x00" % rng.choice(
            [0, 1, 511, 513, 1 << 20, 1 << 33]
        )
    elif action == 3:  # a header block repeated
        data[offset:offset] = data[offset : offset + 512]
    else:  # a cut
        del data[rng.randrange(offset, len(data)) :]
    if action < 3 and rng.random() < 0.9:
        # Mostly a valid checksum, or every mutation dies at the first check.
        _fix_checksum(data, offset)
    return bytes(data)


def _fix_checksum(data: bytearray, offset: int) -> None:
    data[offset + 148 : offset + 156] = b" " * 8
    checksum = sum(data[offset : offset + 512])
    data[offset + 148 : offset + 156] = b"%06o\x00 " % checksum
