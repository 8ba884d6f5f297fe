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

"""End-to-end: the cloud driven over HTTP exactly as a user drives it.

Only openstacksdk and the ``openstack`` CLI talk to the cloud; the engine is
only looked at, to check what a user's action left on it.
"""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from nova_docker.engine import naming
from nova_docker.tests.e2e.conftest import Cloud
from nova_docker_aio import poll

FLAVOR = "c1.tiny"
TIMEOUT = 180


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def _upload_with_cli(cloud: Cloud, ref: str, name: str) -> None:
    """``docker save REF | openstack image create ...`` as the README says."""
    openstack = str(Path(sys.executable).parent / "openstack")
    env = {
        **os.environ,
        "OS_CLIENT_CONFIG_FILE": str(cloud.clouds_yaml),
        "OS_CLOUD": "aio-demo",
    }
    save = subprocess.Popen(["docker", "save", ref], stdout=subprocess.PIPE)
    create = subprocess.run(
        [
            openstack,
            "image",
            "create",
            "--container-format",
            "docker",
            "--disk-format",
            "raw",
            name,
        ],
        stdin=save.stdout,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    save.stdout.close()
    assert save.wait() == 0
    assert create.returncode == 0, create.stderr


def _settle(conn, server, status: str, timeout: float = TIMEOUT):
    """Wait until the server shows ``status`` with no task in progress."""

    def settled():
        found = conn.compute.get_server(server)
        if found.status == "ERROR" and status != "ERROR":
            pytest.fail(f"server {found.name} went ERROR: {found.fault}")
        return found.status == status and found.task_state is None and found

    return poll.until(settled, f"server {server.name} is {status}, idle", timeout)


def _boot(conn, image_id: str, name: str):
    flavor = conn.compute.find_flavor(FLAVOR, ignore_missing=False)
    return conn.compute.create_server(
        name=name, image_id=image_id, flavor_id=flavor.id, networks="none"
    )


def _console(conn, server, needle: str, timeout: float = 30) -> str:
    """The console log once it contains ``needle`` (containers print late),
    or as it is then."""

    def output() -> str:
        return conn.compute.get_server_console_output(server)["output"]

    def shows() -> str:
        text = output()
        return text if needle in text else ""

    try:
        return poll.until(shows, f"the console shows {needle!r}", timeout)
    except poll.Timeout:
        return output()


def _state(cloud: Cloud, server_id: str) -> dict:
    return cloud.container_of(server_id)["State"]


@pytest.fixture(scope="module")
def image(cloud: Cloud, conn, image_ref: str):
    name = _name("e2e-image")
    _upload_with_cli(cloud, image_ref, name)
    found = conn.image.find_image(name, ignore_missing=False)
    cloud.glance_ids.append(found.id)
    yield conn.image.wait_for_status(found, "active", wait=60)
    conn.image.delete_image(found, ignore_missing=True)


@pytest.fixture(scope="module")
def server(conn, image):
    created = _boot(conn, image.id, _name("e2e-life"))
    yield _settle(conn, created, "ACTIVE")
    conn.compute.delete_server(created, ignore_missing=True)
    conn.compute.wait_for_delete(created, wait=TIMEOUT)


def test_image_uploaded_from_docker_save_is_active(image) -> None:
    assert image.container_format == "docker"
    assert image.disk_format == "raw"
    assert image.size > 0


def test_booted_server_is_listed_and_runs_a_container(
    cloud: Cloud, conn, server
) -> None:
    assert server.id in [s.id for s in conn.compute.servers()]
    assert _state(cloud, server.id)["Running"]


def test_console_log_shows_container_output(conn, server) -> None:
    output = _console(conn, server, "nova-docker demo")
    assert "nova-docker demo: this container is a Nova server" in output


@pytest.mark.parametrize("kind", ["SOFT", "HARD"])
def test_reboot_restarts_the_container(cloud: Cloud, conn, server, kind) -> None:
    before = _state(cloud, server.id)["StartedAt"]
    conn.compute.reboot_server(server, kind)
    _settle(conn, server, "ACTIVE")
    after = _state(cloud, server.id)
    assert after["Running"]
    assert after["StartedAt"] != before


def test_stop_and_start(cloud: Cloud, conn, server) -> None:
    conn.compute.stop_server(server)
    _settle(conn, server, "SHUTOFF")
    assert not _state(cloud, server.id)["Running"]
    conn.compute.start_server(server)
    _settle(conn, server, "ACTIVE")
    assert _state(cloud, server.id)["Running"]


def test_pause_and_unpause(cloud: Cloud, conn, server) -> None:
    conn.compute.pause_server(server)
    _settle(conn, server, "PAUSED")
    assert _state(cloud, server.id)["Paused"]
    conn.compute.unpause_server(server)
    _settle(conn, server, "ACTIVE")
    state = _state(cloud, server.id)
    assert state["Running"] and not state["Paused"]


def test_snapshot_carries_the_first_servers_changes(cloud: Cloud, conn, server) -> None:
    """The image's CMD appends a line to /etc/boot-history at every start and
    prints the file: a server booted from a snapshot prints its ancestor's
    lines above its own."""
    snapshot = conn.compute.create_server_image(
        server, _name("e2e-snap"), wait=True, timeout=TIMEOUT
    )
    cloud.glance_ids.append(snapshot.id)
    second = _boot(conn, snapshot.id, _name("e2e-child"))
    try:
        second = _settle(conn, second, "ACTIVE")
        output = _console(conn, second, f"{second.name} at")
        assert f"{server.name} at" in output
        assert f"{second.name} at" in output
    finally:
        conn.compute.delete_server(second, ignore_missing=True)
        conn.compute.wait_for_delete(second, wait=TIMEOUT)
        conn.image.delete_image(snapshot, ignore_missing=True)


def test_delete_removes_the_container(cloud: Cloud, conn, image) -> None:
    doomed = _settle(conn, _boot(conn, image.id, _name("e2e-doomed")), "ACTIVE")
    assert cloud.containers_of(doomed.id)
    conn.compute.delete_server(doomed)
    conn.compute.wait_for_delete(doomed, wait=TIMEOUT)
    assert cloud.containers_of(doomed.id) == []


def _qcow2_bytes() -> bytes:
    """A well-formed, empty qcow2 (v3) image of 1 MiB virtual size."""
    header = struct.pack(
        ">4sIQIIQIIQQIIQQQQII",
        b"QFI\xfb",
        3,
        0,
        0,
        16,
        1 << 20,
        0,
        1,
        0x30000,
        0x10000,
        1,
        0,
        0,
        0,
        0,
        0,
        4,
        104,
    )
    return header.ljust(0x40000, b"\0")


def _tarball_without_image() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = b"no image in here\n"
        info = tarfile.TarInfo("README.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _truncated_save(cloud: Cloud, ref: str) -> bytes:
    whole = b"".join(cloud.engine.get_image(ref))
    return whole[: len(whole) // 2]


#: name → (container format, disk format, bytes maker, what the fault says)
BAD_IMAGES = {
    "bare-qcow2": (
        "bare",
        "qcow2",
        lambda cloud, ref: _qcow2_bytes(),
        "container_format is 'bare'",
    ),
    "truncated-docker-save": ("docker", "raw", _truncated_save, "truncated"),
    "tarball-without-image": (
        "docker",
        "raw",
        lambda c, r: _tarball_without_image(),
        "no manifest.json",
    ),
}


@pytest.fixture(params=sorted(BAD_IMAGES))
def bad_image(request, cloud: Cloud, conn, image_ref: str) -> Iterator:
    container_format, disk_format, make, _fault = BAD_IMAGES[request.param]
    created = conn.image.create_image(
        name=_name(f"e2e-{request.param}"),
        container_format=container_format,
        disk_format=disk_format,
        data=make(cloud, image_ref),
    )
    cloud.glance_ids.append(created.id)
    yield (
        conn.image.wait_for_status(created, "active", wait=60),
        BAD_IMAGES[request.param][3],
    )
    conn.image.delete_image(created, ignore_missing=True)


def test_bad_image_fails_the_server_cleanly(cloud: Cloud, conn, bad_image) -> None:
    bad_image, expected_fault = bad_image
    server = _settle(conn, _boot(conn, bad_image.id, _name("e2e-bad")), "ERROR")
    try:
        message = (server.fault or {}).get("message", "")
        assert bad_image.id in message, f"fault a user cannot act on: {message!r}"
        assert expected_fault in message
        assert "Traceback" not in message
        assert cloud.containers_of(server.id) == []
        assert cloud.engine.images(name=naming.glance_image_ref(bad_image.id)) == []
    finally:
        conn.compute.delete_server(server, ignore_missing=True)
        conn.compute.wait_for_delete(server, wait=TIMEOUT)
