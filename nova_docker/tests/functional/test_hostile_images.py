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

"Appears" is checked three ways, since no one of them sees everything: the
engine's tags before and after, what the engine reported setting as it
loaded each archive (a load sets its tags without an event), and the
engine's image events (tag, untag, load, delete) for the whole test.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import hashlib
import io
import json
import os
import random
import re
import shutil
import tarfile
import tempfile
import uuid
from collections.abc import Iterable
from collections.abc import Iterator

import fixtures
from nova import exception as nova_exception

from nova_docker.engine import client as engine_client
from nova_docker.engine import naming
from nova_docker.tests import engine_support
from nova_docker.tests import tarcraft
from nova_docker.tests.functional import base

ATTACKER_CMD = ["/bin/sh", "-c", "echo attacker; sleep 1000"]
#: Mutated tarballs the fuzz test boots; fixed seed, so a failure replays.
FUZZ_SEED = 20261130
FUZZ_COUNT = 48
#: Members a load could take tags from besides manifest.json.
TAG_FILES = frozenset({"repositories", "index.json", "oci-layout"})


@dataclasses.dataclass
class Load:
    """One archive the driver sent the engine, and what the engine said it
    loaded (None when the load failed)."""

    sent: list[bytes] = dataclasses.field(default_factory=list)
    reported: list[str] | None = None

    def tee(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            self.sent.append(chunk)
            yield chunk

    def tags(self) -> set[str]:
        """Tags the engine reported setting; an untagged load is an ID."""
        return {n for n in self.reported or () if not n.startswith("sha256:")}

    def file_digests(self) -> set[str]:
        """The digest of every file in what was sent, as far as it reads:
        among them the ID of every image the engine could make of it."""
        digests = set()
        try:
            with tarfile.open(
                fileobj=io.BytesIO(b"".join(self.sent)), mode="r|"
            ) as tar:
                for member in tar:
                    if member.isfile():
                        data = tar.extractfile(member).read()
                        digests.add(_image_id(data))
        except (tarfile.TarError, EOFError):
            pass  # a load the rebuild broke off: the engine made nothing
        return digests


class HostileImageTestCase(base.DriverTestCase):
    def setUp(self):
        #: The nova-glance refs of every image the test made (not the victim).
        self.own_refs: set[str] = set()
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
        self.own_refs.clear()
        self.loads: list[Load] = []
        #: Images a load of this test could make or tag (others may share
        #: the engine, a demo cloud or another test run, and tag their own).
        self.suspect_ids = {
            _image_id(saved.data(saved.manifest["Config"]))
            for saved in (self.benign, self.attacker)
        }
        self.suspect_ids.add(
            self.client.inspect_image(naming.glance_image_ref(self.victim.id))["Id"]
        )
        self.useFixture(
            fixtures.MonkeyPatch(
                "nova_docker.engine.client.Engine.load_image", self._recording_load()
            )
        )
        self.before = self.engine_tags()
        self.since = self.engine_clock()

    # -- helpers ----------------------------------------------------------

    def make_image(self, *args, **kwargs):
        image = super().make_image(*args, **kwargs)
        self.own_refs.add(naming.glance_image_ref(image.id))
        return image

    def _recording_load(self):
        load_image = engine_client.Engine.load_image

        def recording(engine, chunks):
            load = Load()
            self.loads.append(load)
            try:
                load.reported = load_image(engine, load.tee(chunks))
            finally:
                self.suspect_ids |= load.file_digests()
            return load.reported

        return recording

    def engine_clock(self) -> int:
        """The engine's time in nanoseconds, as its events are stamped."""
        return _nanoseconds(self.client.info()["SystemTime"])

    def image_events(self) -> list[dict]:
        """The engine's image events since the test's setUp ended."""
        until = self.engine_clock()
        events = self.client.events(
            since=_timestamp(self.since),
            until=_timestamp(until),
            filters={"type": "image"},
            decode=True,
        )
        return [e for e in events if self.since <= e.get("timeNano", 0) <= until]

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
            self.assert_engine_was_sent_only(image)
        self.assert_no_foreign_tag()

    def assert_engine_was_sent_only(self, image) -> None:
        """The archive of the image's load holds one manifest naming only
        its own tag, and no file a load could take other tags from."""
        own = naming.glance_image_ref(image.id)
        load = self.loads[-1]
        self.assertEqual([own], load.reported)
        sent = io.BytesIO(b"".join(load.sent))
        with tarfile.open(fileobj=sent) as tar:
            names = tar.getnames()
            manifest = json.load(tar.extractfile("manifest.json"))
        self.assertEqual(len(names), len(set(names)), names)
        self.assertEqual(set(), TAG_FILES & set(names))
        self.assertEqual([[own]], [entry["RepoTags"] for entry in manifest])

    def is_foreign(self, tag: str, image_id: str) -> bool:
        """A tag not the test's own, on an image the test's loads could
        have made or tagged, or a victim's tag.  (Tags others set on the
        engine meanwhile, on their own images, are not the test's doing.)"""
        if tag in self.own_refs or tag.startswith("sha256:"):
            return False
        return tag in self.victim_tags or image_id in self.suspect_ids

    def assert_tags_unchanged(self) -> None:
        """No tag but the test's own is on the engine that was not there,
        on the same image, when the test began; the victims' are intact."""
        after = self.engine_tags()
        changed = {
            tag
            for tag, image_id in after.items()
            if self.before.get(tag) != image_id and self.is_foreign(tag, image_id)
        }
        self.assertEqual(set(), changed)
        for tag in self.victim_tags:
            self.assertEqual(self.before[tag], after.get(tag), tag)

    def assert_no_foreign_tag(self) -> None:
        """No tag but the test's own ``nova-glance:<uuid>`` ever appeared:
        none now, none that a load reported setting, none in an event."""
        self.assert_tags_unchanged()
        reported = set().union(*(load.tags() for load in self.loads))
        self.assertEqual(set(), reported - self.own_refs)
        named = set()
        for event in self.image_events():
            actor = event.get("Actor") or {}
            name = (actor.get("Attributes") or {}).get("name") or ""
            if name and self.is_foreign(name, actor.get("ID", "")):
                named.add((event.get("Action"), name))
        self.assertEqual(set(), named)
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

    def test_dot_dot_in_a_gnu_long_link_is_refused(self):
        # A target of more than 100 bytes travels in a 'K' header.
        target = "./" * 50 + "../../etc"
        long_link = tarcraft.member(
            "l", kind=tarfile.SYMTYPE, linkname=target, fmt=tarfile.GNU_FORMAT
        )
        self.assertEqual(b"K", long_link[156:157])
        self.boot(self.benign.pack(long_link), True, "'l' points outside the archive")

    def test_global_pax_header_is_refused(self):
        # Python's tarfile would name every later member manifest.json;
        # Go's reader applies none of it.
        files, manifest = self.smuggle()
        tarball = self.benign.pack(
            *files,
            tarcraft.global_pax({"path": "manifest.json"}),
            tarcraft.member("decoy.json", manifest),
        )
        self.boot(tarball, True, "a global PAX header")

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
    #
    # This engine reads neither file beside a manifest.json, so the load
    # alone would pass even if they went through: boot() also checks the
    # archive the engine was sent (assert_engine_was_sent_only).

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
        self.assertNotIn(self.victim.id.encode(), b"".join(self.loads[-1].sent))

    def test_oci_index_naming_the_victims_is_dropped(self):
        annotations = {"io.containerd.image.name": self.victim_tags[0]}
        index = {"schemaVersion": 2, "manifests": [{"annotations": annotations}]}
        tarball = self.benign.pack(
            tarcraft.member("index.json", json.dumps(index).encode()),
            tarcraft.member("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'),
        )
        self.boot(tarball, False)
        self.assertNotIn(self.victim.id.encode(), b"".join(self.loads[-1].sent))

    def test_index_that_is_a_list_is_dropped_not_a_crash(self):
        self.boot(self.benign.pack(tarcraft.member("index.json", b"[1, 2]")), False)

    # -- the check after the load ----------------------------------------------

    def test_a_tag_the_rebuild_let_through_is_removed_and_the_boot_fails(self):
        # The rebuild is replaced by a plain copy, as if it had a hole: the
        # engine then sets the tarball's own tag, and the check after the
        # load must take it off again at once.
        planted = f"nova-docker-planted:{uuid.uuid4().hex[:12]}"
        self.tracker.images.append(planted)
        manifest = dict(self.benign.manifest, RepoTags=[planted])
        tarball = self.benign.pack(
            tarcraft.member("manifest.json", json.dumps([manifest]).encode()),
            without=("manifest.json",),
        )
        self.useFixture(
            fixtures.MonkeyPatch("nova_docker.image.tarball.retag", _copy_unchanged)
        )
        image = self.make_image(tarball)
        own = naming.glance_image_ref(image.id)

        error = self.assertRaises(nova_exception.ImageUnacceptable, self.spawn, image)
        self.assertIn(f"images other than {own} ({planted})", error.format_message())
        self.assertEqual([[planted]], [load.reported for load in self.loads])
        self.assertEqual([], self.client.images(name=planted))
        self.assert_image_gone(image)
        self.assertEqual([], self.our_containers())
        self.assert_tags_unchanged()

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

    def hostile_seed(self) -> tuple[bytes, list[int]]:
        """A tarball that is accepted, yet asks for every tag it should not
        get; and the offsets of the headers worth mutating.

        It is the attacker's image alone, its manifest asking for the
        victims' tags, with the reported tricks left in where they are
        inert: a link ``d -> .``, a member whose data hides headers of a
        ``manifest.json`` and a ``d/manifest.json``, a PAX-named and a
        GNU-long-named member, and a ``repositories`` naming the victims.
        The rebuild drops all of them, so the engine loads the image under
        ``nova-glance:<uuid>`` alone; mutations then turn them live.
        """
        manifest = dict(self.attacker.manifest, RepoTags=self.victim_tags)
        through_d = dict(
            manifest,
            Config="d/" + manifest["Config"],
            Layers=["d/" + layer for layer in manifest["Layers"]],
        )
        cover = tarcraft.member(
            "manifest.json", json.dumps([manifest]).encode()
        ) + tarcraft.member("d/manifest.json", json.dumps([through_d]).encode())
        repositories = {
            tag.split(":")[0]: {tag.split(":")[1]: manifest["Config"][:-5]}
            for tag in self.victim_tags
        }
        layers = set(manifest["Layers"])
        parts = [
            (tarcraft.symlink("d", "."), False),
            (tarcraft.member("notes", b"pax", pax={"path": "notes.txt"}), False),
            (tarcraft.member("n" * 120, b"gnu", fmt=tarfile.GNU_FORMAT), False),
            *(
                (raw, name in layers)
                for name, raw in self.attacker.members
                if name not in ("manifest.json", "repositories")
            ),
            (tarcraft.member("cover.bin", cover), False),
            (tarcraft.member("manifest.json", json.dumps([manifest]).encode()), False),
            (tarcraft.member("repositories", json.dumps(repositories).encode()), False),
        ]
        return _with_header_offsets(parts)

    def test_mutated_tarballs_never_tag_anything_else(self):
        seed, headers = self.hostile_seed()
        image = self.make_image(seed)
        self.driver.destroy(self.ctxt, self.spawn(image), [])
        self.assert_engine_was_sent_only(image)
        self.assert_no_foreign_tag()

        rng = random.Random(FUZZ_SEED)
        outcomes: collections.Counter[str] = collections.Counter()
        for _ in range(FUZZ_COUNT):
            self.loads = []  # what this boot sent, not every boot's
            image = self.make_image(_mutate(rng, seed, headers))
            try:
                instance = self.spawn(image)
            except nova_exception.ImageUnacceptable as e:
                engine = "Docker Engine" in e.format_message()
                outcomes["refused by the engine" if engine else "refused"] += 1
                self.assert_image_gone(image)
            else:
                outcomes["booted"] += 1
                self.driver.destroy(self.ctxt, instance, [])
                self.assert_engine_was_sent_only(image)
            own = {naming.glance_image_ref(image.id)}
            for load in self.loads:
                self.assertLessEqual(load.tags(), own)
            self.assertEqual([], self.our_containers())
            self.assert_no_foreign_tag()
        # Enough mutations must be loaded, and enough refused, to mean
        # anything: the seed is hostile, so a loaded one is a hostile
        # archive that the rebuild made safe.
        self.assertGreaterEqual(outcomes["booted"], FUZZ_COUNT // 10, outcomes)
        refused = outcomes["refused"] + outcomes["refused by the engine"]
        self.assertGreaterEqual(refused, FUZZ_COUNT // 10, outcomes)


def _copy_unchanged(source, target, ref, budget) -> None:
    """A stand-in for tarball.retag that passes the tarball on as it is."""
    shutil.copyfileobj(source, target)


def _image_id(config: bytes) -> str:
    return "sha256:" + hashlib.sha256(config).hexdigest()


def _nanoseconds(rfc3339: str) -> int:
    """Nanoseconds since the epoch of the engine's RFC 3339 time."""
    found = re.fullmatch(r"([^.]+?)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", rfc3339)
    assert found, rfc3339
    seconds, fraction, zone = found.groups()
    when = datetime.datetime.fromisoformat(seconds + zone.replace("Z", "+00:00"))
    return int(when.timestamp()) * 10**9 + int((fraction or "0").ljust(9, "0")[:9])


def _timestamp(nanoseconds: int) -> str:
    """The engine's ``since``/``until`` form: seconds.nanoseconds."""
    return f"{nanoseconds // 10**9}.{nanoseconds % 10**9:09d}"


def _with_header_offsets(parts: list[tuple[bytes, bool]]) -> tuple[bytes, list[int]]:
    """The archive of ``parts`` and the offsets of its header blocks: every
    header of a member and those hidden in its data, but only the first of
    an opaque one (a layer, whose inner headers the engine checks by its
    digest)."""
    offsets, at = [], 0
    for raw, opaque in parts:
        blocks = [0] if opaque else range(0, len(raw), tarcraft.BLOCK)
        offsets += [at + b for b in blocks if raw[b + 257 : b + 262] == b"ustar"]
        at += len(raw)
    return tarcraft.archive(*(raw for raw, _ in parts)), offsets


def _field_length(data: bytearray, start: int, width: int) -> int:
    end = data.find(0, start, start + width)
    return width if end < 0 else end - start


def _mutate(rng: random.Random, seed: bytes, headers: list[int]) -> bytes:
    """One random corruption of one header block of ``seed``."""
    data = bytearray(seed)
    offset = rng.choice(headers)
    action = rng.choice(
        ["type", "name", "name", "link", "prefix", "size", "repeat", "extension", "cut"]
    )
    if action == "extension" and data[offset + 156 : offset + 157] not in b"xgLK":
        action = "name"
    if action == "type":
        data[offset + 156] = rng.choice(b"0125xgLKS7D\x00")
    elif action in ("name", "link"):
        start, width = (0, 100) if action == "name" else (157, 100)
        length = _field_length(data, offset + start, width)
        position = offset + start + rng.randrange(min(length + 1, width))
        data[position] = rng.choice(b"./\x00a\xff")
    elif action == "prefix":
        data[offset + 345 + rng.randrange(4)] = rng.choice(b"./ad")
    elif action == "size":
        size = rng.choice([0, 1, 511, 512, 513, 1 << 20, 1 << 33])
        data[offset + 124 : offset + 136] = b"%011o\x00" % size
    elif action == "repeat":
        data[offset:offset] = data[offset : offset + tarcraft.BLOCK]
    elif action == "extension":
        # A byte of the PAX records or long name that follow the header.
        position = offset + tarcraft.BLOCK + rng.randrange(24)
        data[position] = rng.choice(b"./=\n 0a\x00")
    else:
        del data[rng.randrange(offset, len(data)) :]
    if action in ("type", "name", "link", "prefix", "size") and rng.random() < 0.9:
        # Mostly a valid checksum, or every mutation dies at the first check.
        _fix_checksum(data, offset)
    return bytes(data)


def _fix_checksum(data: bytearray, offset: int) -> None:
    data[offset + 148 : offset + 156] = b" " * 8
    checksum = sum(data[offset : offset + 512])
    data[offset + 148 : offset + 156] = b"%06o\x00 " % checksum
