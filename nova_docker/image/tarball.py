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

"""Rebuild a ``docker save`` tarball while it streams past (pure).

Glance image bytes are untrusted, and what the engine loads decides which
tags it sets: a tarball whose manifest says ``busybox:latest`` or
``nova-glance:<someone else's image>`` would re-point that tag on the host.
So nothing of the input reaches the engine as it came.  The archive is read
by the strict :mod:`tarstream` reader, every path is checked against the
links before it, and a new archive is written that holds exactly:

* the layers the manifest names, under their resolved paths;
* the image config, with what must not reach a container removed;
* one ``manifest.json`` naming one image, tagged as the caller says.

Layer data passes through in large slices.  Small members are held until the
manifest (which ``docker save`` writes last) says what they are, within a
fixed budget, so memory stays bounded whatever the image's size.  Snapshots
leave through the same rebuild, which strips what the driver put on the
container (:func:`scrub`).
"""

from __future__ import annotations

import hashlib
import json
import posixpath
from collections.abc import Callable
from collections.abc import Iterator
from typing import Any
from typing import BinaryIO

from nova_docker.engine import naming
from nova_docker.image import layers
from nova_docker.image import tarstream
from nova_docker.image.tarstream import Kind
from nova_docker.image.tarstream import refuse

MANIFEST = "manifest.json"
#: Cap of one metadata member (manifest, config) held in memory.
METADATA_MAX_BYTES = 1 << 20
#: Cap of all small members held until the manifest says what they are.
HELD_MAX_BYTES = 16 << 20
#: Members the engine would read besides the manifest: the pre-1.10 tag file
#: and the OCI index re-create the tarball's own tags, so they never pass.
_DROPPED_TOP = frozenset({"repositories", "index.json", "oci-layout"})
#: Per-layer files of the v1 format; the engine ignores them when a
#: manifest is present, and their ``json`` repeats the config's labels.
_DROPPED_PER_LAYER = frozenset({"json", "VERSION"})
#: A chain of links longer than this is refused (as the kernel's ELOOP).
_MAX_LINK_HOPS = 40

ConfigEdit = Callable[[dict[str, Any]], None]


def retag(source: BinaryIO, target: BinaryIO, ref: str, budget: layers.Budget) -> None:
    """Rebuild a Glance image's tarball for the engine, tagged ``ref`` only.

    The layers may expand to ``budget`` at most; what they expand to is
    recorded in the config's :data:`naming.EXPANDED_BYTES_LABEL`, so that a
    later boot from the cache can hold it against its flavor's root disk.
    Raises :class:`InvalidImageTarball` naming the problem; ``target`` then
    holds an unfinished archive that the engine refuses.
    """

    def edit(config: dict[str, Any]) -> None:
        _sanitise_for_engine(config)
        labels = _labels(config)
        labels[naming.EXPANDED_BYTES_LABEL] = str(budget.used)

    _Rebuild(source, target, [ref], edit, budget).run()


def scrub(source: BinaryIO, target: BinaryIO, budget: layers.Budget) -> None:
    """Rebuild a snapshot's tarball for Glance, untagged and without the
    labels and container facts the driver put on the committed image."""
    _Rebuild(source, target, None, _strip_host_facts, budget).run()


def _labels(config: dict[str, Any]) -> dict[str, str]:
    """The image's labels, made present where the config had none."""
    section = config["config"] = config.get("config") or {}
    labels = section["Labels"] = section.get("Labels") or {}
    return labels


def _sanitise_for_engine(config: dict[str, Any]) -> None:
    # Image VOLUMEs would become anonymous host volumes that no disk limit
    # counts and no snapshot keeps; without them the directories stay part
    # of the container's own filesystem, as on a VM's disk.
    container_config = config.get("config") or {}
    container_config.pop("Volumes", None)
    _strip_our_labels(config)


def _strip_host_facts(config: dict[str, Any]) -> None:
    _strip_our_labels(config)
    # The committed container's ID and the engine's version are the host's.
    config.pop("container", None)
    config.pop("docker_version", None)


def _strip_our_labels(config: dict[str, Any]) -> None:
    """The driver's label namespace names hosts and instances; an image must
    neither carry it out nor bring it in."""
    for key in ("config", "container_config"):
        section = config.get(key) or {}
        labels = section.get("Labels") or {}
        for label in [k for k in labels if k.startswith(naming.LABEL_PREFIX + ".")]:
            del labels[label]


class _Tree:
    """Every path of the archive so far, for the checks that need them all."""

    def __init__(self) -> None:
        self.kinds: dict[str, Kind] = {}
        #: Directories known only as parents, which may still be listed once.
        self._implied: set[str] = set()
        #: Each link's target, resolved through the links before it.
        self.links: dict[str, str] = {}

    def add(self, member: tarstream.Member) -> str | None:
        """The member's normal name; None for the archive's root itself."""
        name = _normal_name(member)
        if name is None:
            return None
        self._check_parents(name)
        if member.kind is Kind.DIRECTORY and name in self._implied:
            self._implied.discard(name)
            return name
        if name in self.kinds:
            raise refuse(f"{name!r} appears twice")
        if member.kind is Kind.SYMLINK:
            if member.linkname.startswith("/"):
                raise refuse(f"link {member.name!r} has an absolute target")
            target = posixpath.join(posixpath.dirname(name), member.linkname)
            resolved = self.resolve(target, member.name)
            if resolved == name or resolved.startswith(name + "/"):
                raise refuse(f"{member.name!r} is a loop of links")
            self.links[name] = resolved
        self.kinds[name] = member.kind
        return name

    def _check_parents(self, name: str) -> None:
        parts = name.split("/")
        for depth in range(1, len(parts)):
            parent = "/".join(parts[:depth])
            kind = self.kinds.get(parent)
            if kind is None:
                kind = self.kinds[parent] = Kind.DIRECTORY
                self._implied.add(parent)
            if kind is Kind.SYMLINK:
                raise refuse(f"{name!r} lies under the link {parent!r}")
            if kind is Kind.FILE:
                raise refuse(f"{name!r} lies under the file {parent!r}")

    def resolve(self, path: str, member_name: str) -> str:
        """``path`` with every link in it followed; refuses an escape."""
        parts: list[str] = []
        pending = path.split("/")
        hops = 0
        while pending:
            part = pending.pop(0)
            if part in ("", "."):
                continue
            if part == "..":
                if not parts:
                    raise refuse(f"{member_name!r} points outside the archive")
                parts.pop()
                continue
            parts.append(part)
            target = self.links.get("/".join(parts))
            if target is not None:
                hops += 1
                if hops > _MAX_LINK_HOPS:
                    raise refuse(f"{member_name!r} is a loop of links")
                parts, pending = [], [*target.split("/"), *pending]
        return "/".join(parts)


def _normal_name(member: tarstream.Member) -> str | None:
    raw = member.name
    if member.kind is Kind.DIRECTORY:
        raw = raw.rstrip("/")
    components = raw.split("/")
    if raw.startswith("/") or ".." in components:
        raise refuse(f"unsafe path {member.name!r}")
    if raw in ("", "."):
        if member.kind is Kind.DIRECTORY:
            return None
        raise refuse(f"the {member.kind.value} {member.name!r} has no name")
    return posixpath.normpath(raw)


class _Rebuild:
    def __init__(
        self,
        source: BinaryIO,
        target: BinaryIO,
        repo_tags: list[str] | None,
        edit: ConfigEdit,
        budget: layers.Budget,
    ) -> None:
        self._reader = tarstream.TarReader(source)
        self._writer = tarstream.TarWriter(target)
        self._repo_tags = repo_tags
        self._edit = edit
        self._budget = budget
        self._tree = _Tree()
        self._held: dict[str, bytes] = {}
        self._held_bytes = 0
        #: Layers written out, and the bytes each expands to.
        self._passed: dict[str, int] = {}
        self._not_tar: set[str] = set()
        self._directories: set[str] = set()
        self._manifest: dict[str, Any] | None = None

    def run(self) -> None:
        for member in self._reader.members():
            name = self._tree.add(member)
            if name is not None and member.kind is Kind.FILE:
                self._take_file(name, member)
        # Read to the very end before finishing the copy: the producer may
        # still fail (Glance verifies signatures after the last byte).
        self._reader.drain_trailer()
        self._finish()

    def _take_file(self, name: str, member: tarstream.Member) -> None:
        if name == MANIFEST:
            data = self._reader.read_small(METADATA_MAX_BYTES, name)
            self._manifest = _parse_manifest(data)
        elif _is_dropped(name):
            self._reader.read_small(METADATA_MAX_BYTES, name)
        elif member.size <= METADATA_MAX_BYTES:
            self._make_room(member.size)
            self._held[name] = self._reader.read_small(METADATA_MAX_BYTES, name)
            self._held_bytes += member.size
        else:
            self._pass(name, member.size, self._reader.data())

    def _make_room(self, size: int) -> None:
        """Pass on the largest held members until ``size`` more fits.

        Configs are a few kilobytes and small layers far more, so the config
        the manifest will name is the last to go.
        """
        while self._held_bytes + size > HELD_MAX_BYTES:
            name = max(self._held, key=lambda held: len(self._held[held]))
            data = self._held.pop(name)
            self._held_bytes -= len(data)
            self._pass(name, len(data), iter((data,)))

    def _pass(self, name: str, size: int, chunks: Iterator[bytes]) -> None:
        """Write ``name`` out, counting what it expands to as a layer (only
        layers are ever passed; anything else is refused at the end)."""
        self._parents(name)
        before = self._budget.used
        meter = layers.LayerMeter(name, self._budget)
        self._writer.file(name, size, meter.metered(chunks))
        self._passed[name] = self._budget.used - before
        if not meter.is_tar:
            self._not_tar.add(name)

    def _finish(self) -> None:
        if self._manifest is None:
            raise refuse("it is not a docker save tarball: it has no manifest.json")
        layer_names = [self._image_file(p) for p in self._manifest["Layers"]]
        config_name = self._image_file(self._manifest["Config"])
        if config_name not in self._held:
            raise refuse(f"the image config {config_name!r} is too large")
        if config_name in layer_names:
            raise refuse(
                f"manifest.json names {config_name!r} as config and as a layer"
            )
        config = _parse_config(self._held.pop(config_name), len(layer_names))
        for layer in dict.fromkeys(layer_names):
            if layer in self._held:
                data = self._held.pop(layer)
                self._pass(layer, len(data), iter((data,)))
        unused = sorted(set(self._passed) - set(layer_names))
        if unused:
            raise refuse(f"{unused[0]!r} is not a layer the manifest names")
        not_tar = sorted(self._not_tar & set(layer_names))
        if not_tar:
            raise refuse(f"layer {not_tar[0]!r} is not a tar archive")
        self._charge_repeats(layer_names)
        # Only now, with every layer counted.
        self._edit(config)
        data = _dump(config)
        config_out = hashlib.sha256(data).hexdigest() + ".json"
        if config_out in self._passed or config_out in self._directories:
            # The rebuilt config's name is known in advance, so a layer can
            # take it; two members of one name are read differently.
            raise refuse(f"{config_out!r} takes the name of the image config")
        self._writer.file_bytes(config_out, data)
        entry = {
            "Config": config_out,
            "RepoTags": self._repo_tags,
            "Layers": layer_names,
        }
        self._writer.file_bytes(MANIFEST, _dump([entry]))
        self._writer.close()

    def _charge_repeats(self, layer_names: list[str]) -> None:
        """A layer the manifest lists twice is unpacked twice."""
        seen: set[str] = set()
        for name in layer_names:
            if name in seen:
                self._budget.charge(self._passed[name], name)
            seen.add(name)

    def _image_file(self, path: str) -> str:
        """The regular file that a manifest path names, links followed."""
        found = self._tree.resolve(path, path) if not path.startswith("/") else ""
        if self._tree.kinds.get(found) is not Kind.FILE or not (
            found in self._held or found in self._passed
        ):
            raise refuse(
                f"manifest.json refers to {path!r}, which is missing from the tarball"
            )
        return found

    def _parents(self, name: str) -> None:
        parts = name.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            directory = "/".join(parts[:depth])
            if directory not in self._directories:
                self._directories.add(directory)
                self._writer.directory(directory)


def _is_dropped(name: str) -> bool:
    parts = name.split("/")
    if len(parts) == 1:
        return name in _DROPPED_TOP
    return len(parts) == 2 and parts[1] in _DROPPED_PER_LAYER


def _load_json(data: bytes, what: str) -> Any:
    """``data`` parsed; a refusal naming ``what`` if it is not JSON or nests
    deeper than the parser's recursion allows."""
    try:
        return json.loads(data)
    except ValueError as e:
        raise refuse(f"{what} is not JSON: {e}") from e
    except RecursionError as e:
        raise refuse(f"{what} nests too deeply to be read") from e


def _parse_manifest(data: bytes) -> dict[str, Any]:
    entries = _load_json(data, "manifest.json")
    if not isinstance(entries, list) or not entries:
        raise refuse("the tarball contains no image (manifest.json lists none)")
    if len(entries) != 1:
        raise refuse(
            f"the tarball contains {len(entries)} images; "
            "a Glance image must hold exactly one"
        )
    entry = entries[0]
    if (
        not isinstance(entry, dict)
        or not isinstance(entry.get("Config"), str)
        or not isinstance(entry.get("Layers"), list)
        or not all(isinstance(layer, str) for layer in entry["Layers"])
    ):
        raise refuse("manifest.json does not describe an image (no Config/Layers)")
    return entry


def _parse_config(data: bytes, layer_count: int) -> dict[str, Any]:
    config = _load_json(data, "the image config")
    rootfs = config.get("rootfs") if isinstance(config, dict) else None
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(diff_ids, list):
        raise refuse("the image config lists no layers (rootfs.diff_ids)")
    if len(diff_ids) != layer_count:
        raise refuse(
            f"the image config names {len(diff_ids)} layers, the manifest {layer_count}"
        )
    for key in ("config", "container_config"):
        section = config.get(key)
        if section is None:
            continue
        if not isinstance(section, dict):
            raise refuse(f"the image config's {key!r} is not an object")
        labels = section.get("Labels")
        if labels is not None and not isinstance(labels, dict):
            raise refuse(f"the image config's {key} labels are not an object")
    return config


def _dump(document: Any) -> bytes:
    try:
        return json.dumps(document, separators=(",", ":")).encode()
    except RecursionError as e:
        # Parsed a little above the limit, written a little below it.
        raise refuse("the image config nests too deeply to be written") from e
