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

"""The rebuild of docker save tarballs, on synthetic archives."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile

import pytest

from nova_docker.engine import naming
from nova_docker.exception import InvalidImageTarball
from nova_docker.image import layers
from nova_docker.image import tarball
from nova_docker.tests import tarcraft

REF = "nova-glance:abc"
LAYER = tarcraft.archive(tarcraft.member("etc/motd", b"hello" * 200))
LAYER_EXPANDS_TO = layers.ENTRY_OVERHEAD + 1000


def layer_of(size: int, fill: bytes = b"L") -> bytes:
    """A layer tar of one file of ``size`` bytes."""
    return tarcraft.archive(tarcraft.member("f", fill * size))


OUR_LABEL = naming.HOST_LABEL


def config(layers=1, **container_config) -> bytes:
    return json.dumps(
        {
            "config": {"Cmd": ["sh"], **container_config},
            "container_config": {"Labels": {OUR_LABEL: "h"}},
            "container": "c0ffee",
            "docker_version": "20.10.24",
            "rootfs": {"type": "layers", "diff_ids": ["sha256:0"] * layers},
        }
    ).encode()


def manifest(cfg="c.json", layers=("l1/layer.tar",), tags=("busybox:latest",)):
    return json.dumps(
        [{"Config": cfg, "RepoTags": list(tags), "Layers": list(layers)}]
    ).encode()


def image(*extra: bytes, cfg: bytes | None = None, mf: bytes | None = None) -> bytes:
    """A docker save layout: layer dir, v1 files, config, manifest, tags."""
    return tarcraft.archive(
        tarcraft.directory("l1"),
        tarcraft.member("l1/VERSION", b"1.0"),
        tarcraft.member("l1/json", b'{"config": {"Labels": {"x": "y"}}}'),
        tarcraft.member("l1/layer.tar", LAYER),
        tarcraft.member("c.json", config() if cfg is None else cfg),
        *extra,
        tarcraft.member("manifest.json", manifest() if mf is None else mf),
        tarcraft.member("repositories", b'{"busybox": {"latest": "x"}}'),
    )


def rebuild(
    data: bytes, scrub: bool = False, limit: int = 1 << 40
) -> dict[str, bytes | None]:
    out = io.BytesIO()
    budget = layers.Budget(limit, "the test's limit")
    if scrub:
        tarball.scrub(io.BytesIO(data), out, budget)
    else:
        tarball.retag(io.BytesIO(data), out, REF, budget)
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tar:
        assert all(not m.issym() and not m.pax_headers for m in tar.getmembers())
        return {m.name: tar.extractfile(m).read() if m.isfile() else None for m in tar}


def written_manifest(result) -> dict:
    entries = json.loads(result["manifest.json"])
    assert len(entries) == 1
    return entries[0]


def test_only_layers_config_and_one_manifest_reach_the_engine():
    result = rebuild(image())
    entry = written_manifest(result)
    assert entry["RepoTags"] == [REF]
    assert entry["Layers"] == ["l1/layer.tar"]
    assert set(result) == {"l1", "l1/layer.tar", entry["Config"], "manifest.json"}
    assert result["l1/layer.tar"] == LAYER


def test_config_is_written_under_its_new_digest():
    result = rebuild(image())
    name = written_manifest(result)["Config"]
    assert name == hashlib.sha256(result[name]).hexdigest() + ".json"


def test_image_volumes_and_our_labels_do_not_reach_the_engine():
    cfg = config(Volumes={"/data": {}}, Labels={OUR_LABEL: "victim", "app": "web"})
    result = rebuild(image(cfg=cfg))
    written = json.loads(result[written_manifest(result)["Config"]])
    assert "Volumes" not in written["config"]
    assert written["config"]["Labels"] == {
        "app": "web",
        naming.EXPANDED_BYTES_LABEL: str(LAYER_EXPANDS_TO),
    }
    assert written["container_config"]["Labels"] == {}
    assert written["config"]["Cmd"] == ["sh"]


def test_a_snapshot_leaves_untagged_and_without_host_facts():
    cfg = config(Labels={OUR_LABEL: "compute-1", naming.UUID_LABEL: "u", "a": "b"})
    result = rebuild(image(cfg=cfg), scrub=True)
    entry = written_manifest(result)
    assert entry["RepoTags"] is None
    written = json.loads(result[entry["Config"]])
    assert written["config"]["Labels"] == {"a": "b"}
    assert "container" not in written and "docker_version" not in written
    assert b"compute-1" not in b"".join(v or b"" for v in result.values())


def test_a_shared_layer_behind_a_link_is_named_by_its_real_path():
    mf = manifest(layers=("l1/layer.tar", "l2/layer.tar"))
    data = image(
        tarcraft.directory("l2"),
        tarcraft.symlink("l2/layer.tar", "../l1/layer.tar"),
        cfg=config(layers=2),
        mf=mf,
    )
    entry = written_manifest(rebuild(data))
    assert entry["Layers"] == ["l1/layer.tar", "l1/layer.tar"]


def test_tag_files_naming_other_images_never_reach_the_engine():
    # The engine ignores these beside a manifest.json today; what keeps them
    # harmless whatever it does tomorrow is that the rebuild never writes
    # them.
    repositories = {"nova-glance": {"victim": "sha256:" + "1" * 64}}
    index = {
        "schemaVersion": 2,
        "manifests": [{"annotations": {"io.containerd.image.name": "busybox:x"}}],
    }
    data = tarcraft.archive(
        tarcraft.member("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'),
        tarcraft.member("index.json", json.dumps(index).encode()),
        tarcraft.directory("l1"),
        tarcraft.member("l1/layer.tar", LAYER),
        tarcraft.member("c.json", config()),
        tarcraft.member("manifest.json", manifest()),
        tarcraft.member("repositories", json.dumps(repositories).encode()),
    )
    result = rebuild(data)
    assert set(result) == {
        "l1",
        "l1/layer.tar",
        written_manifest(result)["Config"],
        "manifest.json",
    }
    assert b"victim" not in b"".join(v or b"" for v in result.values())
    assert b"busybox" not in b"".join(v or b"" for v in result.values())


def test_oci_files_and_v1_metadata_are_dropped():
    result = rebuild(
        image(
            tarcraft.member("index.json", b"[not, an, index]"),
            tarcraft.member("oci-layout", b"{}"),
        )
    )
    assert not {"index.json", "oci-layout", "repositories", "l1/json"} & set(result)


def test_large_layers_stream_and_many_small_ones_still_fit():
    big = layer_of(3 << 20)
    smalls = [f"s{i}/layer.tar" for i in range(20)]
    small_layers = [layer_of((1 << 20) - 2048, bytes([65 + i])) for i in range(20)]
    members = [tarcraft.member(n, d) for n, d in zip(smalls, small_layers, strict=True)]
    mf = manifest(layers=("big/layer.tar", *smalls))
    data = tarcraft.archive(
        tarcraft.member("big/layer.tar", big),
        *members,
        tarcraft.member("c.json", config(layers=21)),
        tarcraft.member("manifest.json", mf),
    )
    result = rebuild(data)
    assert result["big/layer.tar"] == big
    assert [result[name] for name in smalls] == small_layers


def test_a_root_directory_entry_is_accepted():
    assert "manifest.json" in rebuild(image(tarcraft.directory("./")))


def test_an_explicit_directory_after_its_files_is_accepted():
    data = image(tarcraft.member("x/f", b"unused"), tarcraft.directory("x/"))
    assert "manifest.json" in rebuild(data)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([tarcraft.member("../x", b"x")], "unsafe path '../x'"),
        ([tarcraft.member("/abs", b"x")], "unsafe path '/abs'"),
        ([tarcraft.member("a/../b", b"x")], "unsafe path 'a/../b'"),
        ([tarcraft.symlink("link", "../../etc/passwd")], "'link' points outside"),
        ([tarcraft.symlink("link", "/etc/passwd")], "'link' has an absolute target"),
        (
            # The target travels in a GNU 'K' header.
            [
                tarcraft.member(
                    "link",
                    kind=tarfile.SYMTYPE,
                    linkname="./" * 50 + "../../etc",
                    fmt=tarfile.GNU_FORMAT,
                )
            ],
            "'link' points outside",
        ),
        ([tarcraft.global_pax({"path": "manifest.json"})], "a global PAX header"),
        (
            [tarcraft.symlink("q", "."), tarcraft.symlink("p", "q/..")],
            "'p' points outside",
        ),
        (
            [tarcraft.symlink("d", "."), tarcraft.member("d/manifest.json", b"[]")],
            "'d/manifest.json' lies under the link 'd'",
        ),
        (
            [tarcraft.symlink("a", "b"), tarcraft.symlink("b", "a")],
            "'b' is a loop of links",
        ),
        (
            [tarcraft.member("f", b"x"), tarcraft.member("f/g", b"y")],
            "'f/g' lies under the file 'f'",
        ),
        ([tarcraft.member("c.json", b"{}")], "'c.json' appears twice"),
        ([tarcraft.member("./c.json", b"{}")], "'c.json' appears twice"),
        ([tarcraft.member("x/", b"")], "has a directory's name"),
        ([tarcraft.member("n", kind=tarfile.LNKTYPE, linkname="c.json")], "hard link"),
        ([tarcraft.member("big", layer_of(2 << 20))], "'big' is not a layer"),
    ],
)
def test_unsafe_archives_are_refused_with_the_member_named(extra, message):
    with pytest.raises(InvalidImageTarball, match=message):
        rebuild(image(*extra))


@pytest.mark.parametrize(
    ("mf", "message"),
    [
        (b"[]", "contains no image"),
        (b"{}", "contains no image"),
        (b"[1, 2]", "contains 2 images"),
        (b"[{}]", "does not describe an image"),
        (b"[[]]", "does not describe an image"),
        (b'[{"Config": "c.json", "Layers": [1]}]', "does not describe an image"),
        (b"nope", "manifest.json is not JSON"),
        (manifest(layers=("missing/layer.tar",)), "'missing/layer.tar'.*missing"),
        (manifest(layers=("../../etc/passwd",)), "points outside"),
        (manifest(layers=("/etc/passwd",)), "'/etc/passwd'.*missing"),
        (manifest(layers=("l1",)), "'l1'.*missing"),
        (manifest(layers=("repositories",)), "'repositories'.*missing"),
        (manifest(cfg="nope.json"), "'nope.json'.*missing"),
        (b"[" * 200_000, "manifest.json nests too deeply"),
        (b'[{"Config": ' + b"[" * 200_000, "manifest.json nests too deeply"),
        (manifest(cfg="l1/layer.tar"), "'l1/layer.tar' as config and as a layer"),
    ],
)
def test_bad_manifests_are_refused_with_the_reason(mf, message):
    with pytest.raises(InvalidImageTarball, match=message):
        rebuild(image(mf=mf))


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        (b"{", "config is not JSON"),
        (b"[]", "lists no layers"),
        (b'{"rootfs": {}}', "lists no layers"),
        (config(layers=2), "config names 2 layers, the manifest 1"),
        (
            json.dumps({"config": [], "rootfs": {"diff_ids": ["x"]}}).encode(),
            "'config' is not an object",
        ),
        (
            json.dumps(
                {"config": {"Labels": []}, "rootfs": {"diff_ids": ["x"]}}
            ).encode(),
            "config labels are not an object",
        ),
        (b'{"rootfs": ' + b"[" * 200_000, "config nests too deeply to be read"),
        (b"[" * 200_000, "config nests too deeply to be read"),
    ],
)
def test_bad_configs_are_refused_with_the_reason(cfg, message):
    with pytest.raises(InvalidImageTarball, match=message):
        rebuild(image(cfg=cfg))


def test_a_config_too_large_to_rewrite_is_refused():
    cfg = config(Env=["X=" + "x" * (2 << 20)])
    with pytest.raises(InvalidImageTarball, match=r"'c\.json' is too large"):
        rebuild(image(cfg=cfg))


def test_oversized_metadata_is_refused_before_it_is_read():
    data = tarcraft.member("manifest.json", size=tarball.METADATA_MAX_BYTES + 1)
    with pytest.raises(InvalidImageTarball, match="implausibly large"):
        rebuild(data)


def test_no_manifest_is_refused():
    data = tarcraft.archive(tarcraft.member("hello.txt", b"hi"))
    with pytest.raises(InvalidImageTarball, match=r"no manifest\.json"):
        rebuild(data)


def test_a_directory_named_manifest_is_no_manifest():
    data = tarcraft.archive(tarcraft.directory("manifest.json"))
    with pytest.raises(InvalidImageTarball, match=r"no manifest\.json"):
        rebuild(data)


def test_truncation_anywhere_is_reported_as_truncated():
    data = image()
    for cut in range(0, len(data) - 1, 700):
        with pytest.raises(InvalidImageTarball, match="truncated"):
            rebuild(data[:cut])


def test_the_expanded_size_is_recorded_on_the_image():
    result = rebuild(image())
    labels = json.loads(result[written_manifest(result)["Config"]])["config"]["Labels"]
    assert labels == {naming.EXPANDED_BYTES_LABEL: str(LAYER_EXPANDS_TO)}


def test_a_forged_expanded_size_label_is_replaced():
    cfg = config(Labels={naming.EXPANDED_BYTES_LABEL: "1"})
    result = rebuild(image(cfg=cfg))
    labels = json.loads(result[written_manifest(result)["Config"]])["config"]["Labels"]
    assert labels[naming.EXPANDED_BYTES_LABEL] == str(LAYER_EXPANDS_TO)


def test_a_layer_listed_twice_is_counted_twice():
    mf = manifest(layers=("l1/layer.tar", "l1/layer.tar"))
    result = rebuild(image(cfg=config(layers=2), mf=mf))
    labels = json.loads(result[written_manifest(result)["Config"]])["config"]["Labels"]
    assert labels[naming.EXPANDED_BYTES_LABEL] == str(2 * LAYER_EXPANDS_TO)
    with pytest.raises(InvalidImageTarball, match="more than"):
        rebuild(image(cfg=config(layers=2), mf=mf), limit=LAYER_EXPANDS_TO + 1)


def test_an_image_past_the_limit_is_refused_naming_the_limit():
    with pytest.raises(InvalidImageTarball, match="the test's limit"):
        rebuild(image(), limit=LAYER_EXPANDS_TO - 1)


def test_a_snapshot_past_the_limit_is_refused():
    with pytest.raises(InvalidImageTarball, match="more than"):
        rebuild(image(), scrub=True, limit=100)


def test_a_snapshot_carries_no_expanded_size_label():
    cfg = config(Labels={naming.EXPANDED_BYTES_LABEL: "5"})
    result = rebuild(image(cfg=cfg), scrub=True)
    labels = json.loads(result[written_manifest(result)["Config"]])["config"]["Labels"]
    assert labels == {}


@pytest.mark.parametrize("taken_as", ["{}", "{}/layer.tar"])
def test_a_layer_cannot_take_the_rebuilt_configs_name(taken_as):
    # The rebuilt config's name is its digest, which an attacker can work
    # out ahead: the output must still never hold two members of one name.
    honest = rebuild(image())
    config_out = written_manifest(honest)["Config"]
    layer_name = taken_as.format(config_out)
    data = tarcraft.archive(
        tarcraft.member(layer_name, LAYER),
        tarcraft.member("c.json", config()),
        tarcraft.member("manifest.json", manifest(layers=(layer_name,))),
    )
    with pytest.raises(InvalidImageTarball, match="takes the name of the image"):
        rebuild(data)
