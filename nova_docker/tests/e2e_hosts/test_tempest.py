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

"""OpenStack's own compute API tests (tempest) against the two-host cloud.

Tempest, from the test venv, runs with a ``tempest.conf`` rendered for this
cloud (:mod:`.tempest_conf`): dynamic credentials made from the cloud's
admin (a project, user and network of its own per test class), two busybox
images whose command never exits, two flavors that differ in RAM, two
compute nodes.  Every test of :data:`TESTS` must pass; a skip is a failure,
since each was chosen because the driver implements what it tests.

The selection is every tempest compute API test of resize, cold migration,
shelve, multi-node scheduling and rescue, except the ones that need what
the cloud deliberately lacks:

- ``test_server_actions...test_resize_volume_backed_server_confirm``,
  ``...test_resize_server_revert_with_volume_attached``,
  ``volumes.test_attach_volume...test_resize_server_with_multiattached_volume``,
  ``...test_attach_volume_shelved_or_offload_server`` and
  ``...test_detach_volume_shelved_or_offload_server``: volumes (no Cinder;
  the driver has no block devices to attach).
- ``admin.test_live_migration`` (all of it, although it is multi-node):
  live migration is refused in Nova's pre-check, by design.
- ``admin.test_volume_swap``: volumes again.
- ``test_server_rescue_negative...test_rescued_vm_attach_volume`` and
  ``...test_rescued_vm_detach_volume``: volumes again.
- ``test_server_rescue``'s stable device rescue classes
  (``ServerStableDeviceRescueTest*``, ``ServerBootFromVolumeStableRescueTest``):
  they boot a rescue image with the server's disk, or a volume, attached
  as a block device (``hw_rescue_bus``), and a container has none.

Nova's scheduler does not apply the ``same_host``/``different_host`` hints
unless ``SameHostFilter`` and ``DifferentHostFilter`` are enabled: the
two-host cloud enables them (``SCHEDULER_FILTERS`` in the conftest), and
tempest is told so.
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import subunit
import testtools

from nova_docker.tests.e2e_hosts import tempest_conf
from nova_docker.tests.e2e_hosts.conftest import say
from nova_docker_aio import clouds_yaml
from nova_docker_aio import engine
from nova_docker_aio import images
from nova_docker_aio.clouds_yaml import ADMIN_CLOUD
from nova_docker_aio.ini import REGION

_API = "tempest.api.compute."
_ACTIONS = _API + "servers.test_server_actions."
_NEGATIVE = _API + "servers.test_servers_negative.ServersNegativeTestJSON."
_ADMIN_NEGATIVE = _API + "admin.test_servers_negative.ServersAdminNegativeTestJSON."
_MIGRATIONS = _API + "admin.test_migrations.MigrationsAdminTest."
_DISK_CONFIG = _API + "servers.test_disk_config.ServerDiskConfigTestJSON."
_DELETE = _API + "servers.test_delete_server.DeleteServersTestJSON."
_MULTINODE = _API + "admin.test_servers_on_multinodes."
_RESCUE = _API + "servers.test_server_rescue."
_RESCUE_NEGATIVE = (
    _API + "servers.test_server_rescue_negative.ServerRescueNegativeTestJSON."
)

#: The tempest tests that must pass, by area (ids without their attributes).
TESTS: dict[str, tuple[str, ...]] = {
    # The 13 the issue counts as skipped for want of resize.
    "resize": (
        _ACTIONS + "ServerActionsTestJSON.test_resize_server_confirm",
        _ACTIONS + "ServerActionsTestJSON.test_resize_server_revert",
        _ACTIONS + "ServerActionsTestOtherB.test_resize_server_confirm_from_stopped",
        _MIGRATIONS + "test_list_migrations_in_flavor_resize_situation",
        _MIGRATIONS + "test_resize_server_revert_deleted_flavor",
        _ADMIN_NEGATIVE + "test_resize_server_using_overlimit_ram",
        _ADMIN_NEGATIVE + "test_resize_server_using_overlimit_vcpus",
        _DELETE + "test_delete_server_while_in_verify_resize_state",
        _DISK_CONFIG + "test_resize_server_from_manual_to_auto",
        _DISK_CONFIG + "test_resize_server_from_auto_to_manual",
        _NEGATIVE + "test_resize_nonexistent_server",
        _NEGATIVE + "test_resize_server_with_non_existent_flavor",
        _NEGATIVE + "test_resize_server_with_null_flavor",
    ),
    # The 4, and the migration list and refusal that frame them.
    "cold migration": (
        _MIGRATIONS + "test_cold_migration",
        _MIGRATIONS + "test_revert_cold_migration",
        _MIGRATIONS + "test_cold_migration_with_swap",
        _ADMIN_NEGATIVE + "test_migrate_server_invalid_state",
        _MIGRATIONS + "test_list_migrations",
        _ADMIN_NEGATIVE + "test_migrate_non_existent_server",
    ),
    # The 2: both classes of the module, every test of each.
    "multi-node": (
        _MULTINODE + "ServersOnMultiNodesTest.test_create_servers_on_same_host",
        _MULTINODE + "ServersOnMultiNodesTest.test_create_servers_on_different_hosts",
        _MULTINODE + "ServersOnMultiNodesTest."
        "test_create_servers_on_different_hosts_with_list_of_servers",
        _MULTINODE + "ServersOnMultiNodesTest."
        "test_create_server_with_scheduler_hint_group_anti_affinity",
        _MULTINODE + "ServersOnMultiNodesTest."
        "test_create_server_with_scheduler_hint_group_affinity",
        _MULTINODE + "UnshelveToHostMultiNodesTest.test_unshelve_to_specific_host",
    ),
    "shelve": (
        _ACTIONS + "ServerActionsTestOtherB.test_shelve_unshelve_server",
        _ACTIONS + "ServerActionsTestOtherB.test_shelve_paused_server",
        _DELETE + "test_delete_server_while_in_shelved_state",
        _NEGATIVE + "test_shelve_non_existent_server",
        _NEGATIVE + "test_shelve_shelved_server",
        _NEGATIVE + "test_unshelve_non_existent_server",
        _NEGATIVE + "test_unshelve_server_invalid_state",
    ),
    # Issue 14's: a shell on the server's own filesystem, in its sandbox.
    "rescue": (
        _RESCUE + "ServerRescueTestJSON.test_rescue_unrescue_instance",
        _RESCUE + "ServerRescueTestJSONUnderV235."
        "test_rescued_vm_associate_dissociate_floating_ip",
        _RESCUE + "ServerRescueTestJSONUnderV235."
        "test_rescued_vm_add_remove_security_group",
        _RESCUE_NEGATIVE + "test_rescue_paused_instance",
        _RESCUE_NEGATIVE + "test_rescued_vm_reboot",
        _RESCUE_NEGATIVE + "test_rescue_non_existent_server",
        _RESCUE_NEGATIVE + "test_rescued_vm_rebuild",
    ),
}
SELECTED = tuple(test for tests in TESTS.values() for test in tests)

#: Two cores run tempest and the whole cloud: two workers keep both busy
#: without starving the services of CPU.
CONCURRENCY = 2
RUN_TIMEOUT = 5400
#: PID 1 exits on TERM (a stop is quick) and otherwise never: a container
#: whose process ended would be a SHUTOFF server.
SLEEPER = "trap 'exit 0' TERM; echo {name} up; while :; do sleep 1; done"
#: flavor_ref and flavor_ref_alt: a resize needs another flavor.
FLAVORS = (("tempest-64", 64), ("tempest-128", 128))


@dataclasses.dataclass
class Results:
    """One tempest run: each test's subunit record by id, how long it took,
    and what tempest and stestr wrote besides the results."""

    tests: dict[str, dict[str, Any]]
    seconds: float
    returncode: int
    output: str

    def of(self, test: str) -> dict[str, Any] | None:
        """The record of ``test`` (an id without its ``[attributes]``)."""
        for test_id, record in self.tests.items():
            if test_id.split("[", 1)[0] == test:
                return record
        return None

    def class_failures(self, test: str) -> list[str]:
        """Failures of the fixtures (``setUpClass (Class)``) of ``test``'s
        class: why a test may not have run at all."""
        klass = test.rsplit(".", 1)[0]
        return [
            describe(test_id, record)
            for test_id, record in self.tests.items()
            if klass in test_id and "(" in test_id and record["status"] == "fail"
        ]

    def strays(self) -> list[str]:
        """Failures outside the selection (a class fixture, a cleanup)."""
        return [
            describe(test_id, record)
            for test_id, record in self.tests.items()
            if test_id.split("[", 1)[0] not in SELECTED
            and record["status"] not in ("success", "skip", "exists")
        ]


def describe(test_id: str, record: dict[str, Any]) -> str:
    """``id: status`` and the traceback or skip reason subunit carried."""
    details = record.get("details", {})
    texts = [
        f"--- {name} ---\n{content.as_text()}"
        for name, content in details.items()
        if name in ("traceback", "reason")
    ]
    return "\n".join([f"{test_id}: {record['status']}", *texts])


def include_list() -> str:
    """One regex per line, each matching one test exactly (the ``[`` stops
    ``test_cold_migration`` from also selecting ``..._with_swap``)."""
    return "".join(f"^{re.escape(test)}\\[\n" for test in SELECTED)


class _Loose(testtools.StreamResult):
    """Collects the bytes of a stream that belong to no test: stestr's own
    words, such as its discovery's import errors."""

    def __init__(self) -> None:
        super().__init__()
        self.chunks: list[bytes] = []

    def status(self, test_id=None, file_bytes=None, **kwargs) -> None:
        if test_id is None and file_bytes:
            self.chunks.append(bytes(file_bytes))


def parse_subunit(stream) -> tuple[dict[str, dict[str, Any]], str]:
    """Subunit v2 from ``stream``: testtools' per-test dicts by id, and the
    text that was no test's."""
    tests: dict[str, dict[str, Any]] = {}
    loose = _Loose()
    result = testtools.CopyStreamResult(
        [
            testtools.StreamToDict(lambda test: tests.__setitem__(test["id"], test)),
            loose,
        ]
    )
    result.startTestRun()
    try:
        subunit.ByteStreamToStreamResult(stream, non_subunit_name="stdout").run(result)
    finally:
        result.stopTestRun()
    return tests, b"".join(loose.chunks).decode(errors="replace")


# -- the cloud as tempest needs it ------------------------------------------


@pytest.fixture(scope="module")
def tempest_images(hosts_cloud, hosts_admin) -> Iterator[list[str]]:
    """image_ref and image_ref_alt: two public images (tempest's projects
    are new), different so that a rebuild changes the image."""
    made = []
    refs = []
    try:
        for name in ("tempest-image", "tempest-image-alt"):
            cmd = ["/bin/sh", "-c", SLEEPER.format(name=name)]
            refs.append(images.build(f"nova-docker-{name}", cmd))
            made.append(hosts_cloud.upload(hosts_admin, refs[-1], name))
            hosts_admin.image.update_image(made[-1], visibility="public")
        yield [image.id for image in made]
    finally:
        for image in made:
            hosts_admin.image.delete_image(image, ignore_missing=True)
        for ref in refs:
            engine.remove_image(ref)


@pytest.fixture(scope="module")
def tempest_flavors(hosts_admin) -> Iterator[list[str]]:
    """flavor_ref and flavor_ref_alt: 1 vCPU and 1 GB each, RAM differs."""
    made = []
    try:
        for name, ram in FLAVORS:
            made.append(
                hosts_admin.compute.create_flavor(
                    name=f"{name}-{os.getpid()}", ram=ram, vcpus=1, disk=1
                )
            )
        yield [flavor.id for flavor in made]
    finally:
        for flavor in made:
            hosts_admin.compute.delete_flavor(flavor, ignore_missing=True)


def compute_microversions(conn) -> tuple[str, str]:
    """The compute API's lowest and highest microversion, from its version
    document."""
    version = conn.compute.get("/").json()["version"]
    return version["min_version"], version["version"]


def describe_cloud(cloud, admin, images_: list[str], flavors: list[str]):
    """The :class:`tempest_conf.Cloud` of the running ``cloud``."""
    auth = clouds_yaml.settings(cloud.layout, ADMIN_CLOUD)["auth"]
    public = admin.network.find_network("public", ignore_missing=False)
    return tempest_conf.Cloud(
        keystone_url=cloud.layout.url("keystone"),
        region=REGION,
        admin={key: auth[key] for key in ("username", "password", "project_name")},
        images=images_,
        flavors=flavors,
        public_network_id=public.id,
        public_network_name=public.name,
        microversions=compute_microversions(admin),
        compute_nodes=len(cloud.hosts),
    )


# -- running tempest ----------------------------------------------------------


def run_tempest(workspace: Path, conf_text: str) -> Results:
    """``tempest run`` of :data:`SELECTED` in ``workspace``; its results."""
    conf = workspace / "etc" / "tempest.conf"
    for directory in ("etc", "logs", "locks"):
        (workspace / directory).mkdir(parents=True, exist_ok=True)
    conf.write_text(conf_text)
    (workspace / "include-list.txt").write_text(include_list())
    bindir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}"}
    subunit_path = workspace / "results.subunit"
    argv = [
        str(bindir / "tempest"),
        "run",
        "--config-file",
        str(conf),
        "--include-list",
        "include-list.txt",
        "--concurrency",
        str(CONCURRENCY),
        "--subunit",
    ]
    started = time.monotonic()
    with subunit_path.open("wb") as out:
        # No check: a failed test exits non-zero; the results say which.
        done = subprocess.run(
            argv,
            cwd=workspace,
            env=env,
            stdout=out,
            stderr=subprocess.PIPE,
            timeout=RUN_TIMEOUT,
            check=False,
        )
    seconds = time.monotonic() - started
    with subunit_path.open("rb") as stream:
        tests, loose = parse_subunit(stream)
    stderr = done.stderr.decode(errors="replace")
    return Results(tests, seconds, done.returncode, f"{loose}\n{stderr}")


@pytest.fixture(scope="module")
def tempest_results(
    hosts_cloud,
    hosts_admin,
    tempest_images,
    tempest_flavors,
    tmp_path_factory,
    request,
) -> Results:
    workspace = tmp_path_factory.mktemp("tempest")
    cloud = describe_cloud(hosts_cloud, hosts_admin, tempest_images, tempest_flavors)
    results = run_tempest(workspace, tempest_conf.render(cloud, workspace))
    report(request.config, results, workspace)
    return results


def report(config, results: Results, workspace: Path) -> None:
    """How tempest's run went and how long it took, on the terminal even
    when output is captured (a figure to read, never to assert on)."""
    counts: dict[str, int] = {}
    for record in results.tests.values():
        counts[record["status"]] = counts.get(record["status"], 0) + 1
    line = (
        f"tempest: {len(SELECTED)} selected, results {counts}, "
        f"exit {results.returncode}, run {results.seconds:.0f} s, "
        f"workspace {workspace}"
    )
    say(config, line)


# -- the tests -----------------------------------------------------------------


@pytest.mark.parametrize(
    "test", SELECTED, ids=lambda test: ".".join(test.rsplit(".", 2)[-2:])
)
def test_tempest_test_passes(tempest_results: Results, test: str) -> None:
    record = tempest_results.of(test)
    if record is None:
        why = tempest_results.class_failures(test) or [tempest_results.output[-4000:]]
        pytest.fail(f"{test} did not run:\n" + "\n".join(why))
    assert record["status"] == "success", describe(test, record)


def test_tempest_nothing_else_failed(tempest_results: Results) -> None:
    """No class fixture or cleanup around the selected tests failed."""
    assert tempest_results.strays() == []
