"""The streaming check-and-retag of docker save tarballs, on synthetic tars."""

from __future__ import annotations

import io
import json
import tarfile

import pytest

from nova_docker.exception import InvalidImageTarball
from nova_docker.image import tarball

REF = "nova-glance:abc"


def build(entries: list[tuple[str, bytes | None, str | None]]) -> bytes:
    """entries: (name, data or None for a dir, symlink target or None)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data, link in entries:
            info = tarfile.TarInfo(name)
            if link is not None:
                info.type, info.linkname = tarfile.SYMTYPE, link
                tar.addfile(info)
            elif data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def manifest(config="c.json", layers=("l1/layer.tar",), tags=("busybox:latest",)):
    return json.dumps(
        [{"Config": config, "RepoTags": list(tags), "Layers": list(layers)}]
    ).encode()


def good_image(**kw) -> list:
    return [
        ("l1", None, None),
        ("l1/layer.tar", b"layer-bytes" * 100, None),
        ("c.json", b"{}", None),
        ("manifest.json", manifest(**kw), None),
        ("repositories", b'{"busybox": {"latest": "x"}}', None),
    ]


def retag(data: bytes) -> dict[str, bytes | None]:
    out = io.BytesIO()
    tarball.retag(io.BytesIO(data), out, REF)
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tar:
        return {m.name: tar.extractfile(m).read() if m.isfile() else None for m in tar}


def test_manifest_names_only_our_ref_and_legacy_tags_are_dropped():
    result = retag(build(good_image()))
    assert json.loads(result["manifest.json"])[0]["RepoTags"] == [REF]
    assert "repositories" not in result
    assert result["l1/layer.tar"] == b"layer-bytes" * 100


def test_oci_index_loses_its_name_annotations():
    index = {
        "manifests": [
            {
                "digest": "sha256:1",
                "annotations": {
                    "io.containerd.image.name": "docker.io/library/busybox:latest",
                    "org.opencontainers.image.ref.name": "latest",
                    "other": "kept",
                },
            }
        ]
    }
    entries = [*good_image(), ("index.json", json.dumps(index).encode(), None)]
    result = json.loads(retag(build(entries))["index.json"])
    assert result["manifests"][0]["annotations"] == {"other": "kept"}


def test_symlinks_inside_the_archive_are_fine():
    entries = [
        ("blobs", None, None),
        ("blobs/sha256", None, None),
        ("blobs/sha256/aa", b"layer", None),
        ("l1", None, None),
        ("l1/layer.tar", None, "../blobs/sha256/aa"),
        ("c.json", b"{}", None),
        ("manifest.json", manifest(), None),
    ]
    assert "l1/layer.tar" in retag(build(entries))


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([("a.txt", b"x", None)], "no manifest.json"),
        ([("manifest.json", b"[]", None)], "contains no image"),
        ([("manifest.json", b"{}", None)], "contains no image"),
        ([("manifest.json", b"[1, 2]", None)], "contains 2 images"),
        ([("manifest.json", b"[{}]", None)], "does not describe an image"),
        ([("manifest.json", b"nope", None)], "not JSON"),
        ([("../x", b"x", None)], "unsafe path '../x'"),
        ([("/abs", b"x", None)], "unsafe path '/abs'"),
        ([("a/../../x", b"x", None)], "unsafe path"),
        ([("link", None, "../../etc/passwd")], "unsafe path 'link'"),
        ([("link", None, "/etc/passwd")], "unsafe path 'link'"),
        ([("index.json", b"{", None)], "index.json is not JSON"),
    ],
)
def test_bad_archives_are_refused_with_the_reason(entries, message):
    with pytest.raises(InvalidImageTarball, match=message):
        retag(build(entries))


def test_missing_layer_is_named():
    entries = [e for e in good_image() if e[0] != "l1/layer.tar"]
    with pytest.raises(InvalidImageTarball, match=r"'l1/layer\.tar'.*missing"):
        retag(build(entries))


def test_special_files_are_refused():
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        fifo = tarfile.TarInfo("pipe")
        fifo.type = tarfile.FIFOTYPE
        tar.addfile(fifo)
    with pytest.raises(InvalidImageTarball, match="special file 'pipe'"):
        retag(buffer.getvalue())


def test_truncation_anywhere_is_reported_as_truncated():
    data = build(good_image())
    assert len(data) % tarfile.RECORDSIZE == 0
    # Mid-header, at a header boundary, mid-file, inside the end marker.
    for cut in (100, 512, 1024, len(data) // 2, len(data) - 9000, len(data) - 10000):
        with pytest.raises(InvalidImageTarball, match="truncated"):
            retag(data[:cut])


def test_oversized_metadata_is_refused_before_it_is_read():
    header = tarfile.TarInfo("manifest.json")
    header.size = tarball.METADATA_MAX_BYTES + 1
    with pytest.raises(InvalidImageTarball, match="implausibly large"):
        retag(header.tobuf())
