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

"""The pure parts of root disks: which containers are over, what the start-up
line says, what a container asks of the engine, and the options."""

from __future__ import annotations

import io
import tarfile
import types
from unittest import mock

import pytest
from oslo_config import cfg

from nova_docker import conf
from nova_docker import container
from nova_docker import driver
from nova_docker import rootdisk
from nova_docker.engine import naming
from nova_docker.engine import spec

HOST = "compute-1"
GIB = 1024**3


def entry(size_rw: int | None, state: str = "running", **labels: str) -> dict:
    """One container of the engine's sized listing, ours unless told."""
    base = {
        naming.HOST_LABEL: HOST,
        naming.UUID_LABEL: f"uuid-{size_rw}-{state}",
        naming.ROOT_DISK_BYTES_LABEL: str(GIB),
    }
    base.update(labels)
    found = {"Labels": {k: v for k, v in base.items() if v is not None}}
    found["State"] = state
    if size_rw is not None:
        found["SizeRw"] = size_rw
    return found


def test_a_running_or_paused_instance_past_its_root_disk_is_an_overuse():
    over = rootdisk.overuses(
        [entry(GIB + 1), entry(GIB + 2, state="paused"), entry(GIB)], HOST
    )
    assert over == [
        rootdisk.Overuse("uuid-1073741825-running", GIB + 1, GIB),
        rootdisk.Overuse("uuid-1073741826-paused", GIB + 2, GIB),
    ]


def test_stopped_or_new_containers_are_not_overuses_since_they_write_nothing():
    listing = [entry(2 * GIB, state="exited"), entry(2 * GIB, state="created")]
    assert rootdisk.overuses(listing, HOST) == []


def test_containers_of_other_hosts_or_without_labels_are_never_named():
    listing = [
        entry(2 * GIB, **{naming.HOST_LABEL: "compute-2"}),
        entry(2 * GIB, **{naming.HOST_LABEL: None}),
        entry(2 * GIB, **{naming.UUID_LABEL: None}),
        {"Labels": None, "State": "running", "SizeRw": 2 * GIB},
    ]
    assert rootdisk.overuses(listing, HOST) == []


@pytest.mark.parametrize("limit", [None, "", "0", "-5", "lots"])
def test_a_container_without_a_usable_limit_is_skipped(limit):
    listing = [entry(2 * GIB, **{naming.ROOT_DISK_BYTES_LABEL: limit})]
    assert rootdisk.overuses(listing, HOST) == []


def test_a_listing_without_size_rw_counts_as_nothing_written():
    # The engine leaves SizeRw out when it is 0.
    assert rootdisk.overuses([entry(None)], HOST) == []


def test_storage_names_the_driver_and_the_file_system_under_it():
    info = {
        "Driver": "overlay2",
        "DriverStatus": [["Backing Filesystem", "extfs"], ["Supports d_type", "true"]],
    }
    assert rootdisk.storage_of(info) == "overlay2 on extfs"
    assert rootdisk.storage_of({"Driver": "btrfs", "DriverStatus": []}) == "btrfs"
    assert rootdisk.storage_of({}) == "unknown"


def test_the_start_up_line_says_enforced_or_how_the_audit_acts():
    options = rootdisk.Options(audit_interval=60, overuse_action="log")
    enforced = rootdisk.Mode(True, "overlay2 on xfs")
    refused = rootdisk.Mode(False, "overlay2 on extfs", "no quotas here")
    assert enforced.summary(options) == (
        "enforced by the engine's quota (overlay2 on xfs)"
    )
    assert refused.summary(options) == (
        "the engine cannot enforce root disks (overlay2 on extfs without "
        "project quotas; the engine says: no quotas here); auditing every "
        "60 s, action=log"
    )
    off = rootdisk.Options(audit_interval=0)
    assert refused.summary(off).endswith(
        "; not audited, since root_disk_audit_interval is 0"
    )


def test_a_root_disk_becomes_the_engines_size_option_in_gib():
    def make(**kw) -> spec.ContainerSpec:
        return spec.ContainerSpec(
            name="n", image="i", hostname="h", labels={}, memory_bytes=1,
            vcpus=1, pids_limit=1, **kw,
        )  # fmt: skip

    assert make(root_disk_gb=20).host_config_kwargs()["storage_opt"] == {"size": "20G"}
    assert make().host_config_kwargs()["storage_opt"] is None


def test_the_root_disk_label_holds_bytes_and_is_absent_without_a_root_disk():
    assert naming.root_disk_labels(3 * GIB) == {
        naming.ROOT_DISK_BYTES_LABEL: str(3 * GIB)
    }
    assert naming.root_disk_labels(0) == {}
    # A probe never looks like an instance of the host it belongs to.
    assert naming.HOST_LABEL not in naming.root_disk_probe_selector(HOST)


def test_the_probe_image_is_an_empty_tar_archive():
    with tarfile.open(fileobj=io.BytesIO(rootdisk.EMPTY_TAR)) as archive:
        assert archive.getmembers() == []


def test_options_default_to_a_minutely_audit_that_stops_and_refuse_others():
    config = cfg.ConfigOpts()
    conf.register_opts(config)
    config([])
    assert config.docker.root_disk_audit_interval == 60
    assert config.docker.root_disk_overuse_action == "stop"
    with pytest.raises(ValueError):
        config.set_override("root_disk_overuse_action", "delete", group="docker")
    with pytest.raises(ValueError):
        config.set_override("root_disk_audit_interval", -1, group="docker")


def test_a_flavor_without_a_root_disk_gets_the_largest_image_as_its_root_disk():
    assert spec.root_disk_gb_for(0, 10) == 10
    assert spec.root_disk_gb_for(3, 10) == 3


def flavor_spec(root_gb: int, enforced: bool) -> spec.ContainerSpec:
    """The spec of an instance of a flavor with ``root_gb``, on a host
    whose unsized root disk is 7 GB."""
    options = container.ContainerOptions(spec=spec.SpecOptions(unsized_root_disk_gb=7))
    containers = container.Containers(mock.Mock(), HOST, options)
    containers.use_root_disk_quota(enforced)
    flavor = types.SimpleNamespace(
        root_gb=root_gb, memory_mb=64, vcpus=1, swap=0, extra_specs={}
    )
    instance = types.SimpleNamespace(
        uuid="u", name="instance-1", project_id="p", hostname="h",
        metadata={}, flavor=flavor,
    )  # fmt: skip
    image_meta = types.SimpleNamespace(id="image", properties={})
    image = {"Config": {"Cmd": ["/bin/sh"]}}
    return containers.spec_for(instance, "ref", image_meta, image=image)


@pytest.mark.parametrize("enforced", [True, False])
def test_a_flavor_without_a_root_disk_is_limited_by_quota_or_audit(enforced):
    made = flavor_spec(root_gb=0, enforced=enforced)
    # The audit reads the label; the engine enforces the size option.
    assert made.labels[naming.ROOT_DISK_BYTES_LABEL] == str(7 * GIB)
    assert made.root_disk_gb == (7 if enforced else 0)
    sized = flavor_spec(root_gb=2, enforced=enforced)
    assert sized.labels[naming.ROOT_DISK_BYTES_LABEL] == str(2 * GIB)
    assert sized.root_disk_gb == (2 if enforced else 0)


def test_the_unsized_root_disk_is_max_image_expanded_gb():
    config = cfg.ConfigOpts()
    conf.register_opts(config)
    config([])
    config.set_override("max_image_expanded_gb", 4, group="docker")
    options = driver.container_options(config.docker)
    assert options.spec.unsized_root_disk_gb == 4
