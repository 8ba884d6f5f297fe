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

"""End-to-end: a server's config drive, and the flavors refused at once.

One server boots on ``private`` with a key pair, user data, a property, an
admin password and ``config_drive=True``, from an image whose command does
what cloud-init's ConfigDrive datasource does with a seed directory, in
little: at every start, user data under the drive that starts with ``#!``
is copied to /tmp and run (its output goes to the console log), then the
shell idles, trapping TERM.  What the drive holds is read inside the
container through the host's engine; the rest goes over the APIs, as a
user (an admin only makes flavors and reads faults).  The drive's tests
run in file order on that one server, as test_cloud's do, and the last of
them deletes it.  Inside it, the same comes from the metadata service at
169.254.169.254 (Neutron's OVN metadata agent in front of Nova's metadata
API, as the all-in-one cloud runs them).  The flavors' tests boot servers
of their own.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import uuid
from collections.abc import Iterator
from typing import Any

import openstack.exceptions
import pytest

from nova_docker.engine import naming
from nova_docker.tests.e2e import support
from nova_docker.tests.e2e.conftest import Cloud

#: Where cloud-init's ConfigDrive datasource looks for a seed directory:
#: written out here, not taken from the driver, since images depend on it.
DRIVE = "/var/lib/cloud/seed/config_drive"
LATEST = f"{DRIVE}/openstack/latest"
#: A valid ed25519 public key (Nova's API checks it); nothing holds its
#: private half.
PUBLIC_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGky0GfjM1z0pDCCelBxzDO9sPA7fIczI2bqsMjORMtR"
    " nova-docker-e2e"
)
ROLE = "frontend"
#: The metadata service's address, as images (cloud-init) have it.
METADATA_URL = "http://169.254.169.254"
#: What both the drive and the metadata service say about the instance.
SHARED_META = (
    "uuid",
    "name",
    "hostname",
    "project_id",
    "availability_zone",
    "launch_index",
    "meta",
    "public_keys",
    "keys",
)
#: Where the user data writes its marker.
RAN_FILE = "/etc/user-data-ran"
RAN = "user data ran:"
NO_USER_DATA = "seed: no user data"
IDLE = "seed: idle"
#: The image's command: a cloud-init of a few lines, with busybox's applets
#: (``cat`` copies; the copy runs under ``sh``), printing when it idles.
SEED_SCRIPT = (
    "trap 'exit 0' TERM; "
    f"ud={LATEST}/user_data; "
    'case "$(cat $ud 2>/dev/null)" in '
    "'#!'*) cat $ud > /tmp/user_data; sh /tmp/user_data;; "
    f"*) echo '{NO_USER_DATA}';; esac; "
    f"echo '{IDLE}'; while :; do sleep 1; done"
)
#: name → (MB of memory, extra specs, what the fault says): below the Docker
#: Engine's smallest memory limit, and a typo in the driver's namespace.
REFUSED_FLAVORS = {
    "memory-4mb": (4, {}, "below the Docker Engine's minimum of 6 MB"),
    "extra-spec-typo": (64, {"docker:pid_limit": "64"}, "docker:pid_limit"),
}


def _user_data(marker: str) -> bytes:
    return f"#!/bin/sh\necho '{RAN} {marker}'\necho {marker} > {RAN_FILE}\n".encode()


@dataclasses.dataclass(frozen=True)
class Configured:
    """The server with a config drive, and what it was given at boot."""

    servers: support.Servers
    server: Any
    keypair: Any
    marker: str
    admin_password: str

    @property
    def user_data(self) -> bytes:
        return _user_data(self.marker)


def _create(servers: support.Servers, flavor: Any = None, **extra: Any) -> Any:
    """Ask for a server on ``private`` as ``servers.boot`` does, with any
    other arguments of ``create_server``; it is deleted with the others.
    Does not wait."""
    compute = servers.conn.compute
    flavor = flavor or compute.find_flavor(support.FLAVOR, ignore_missing=False)
    server = compute.create_server(
        name=support.name("e2e-drive"),
        image_id=servers.image.id,
        flavor_id=flavor.id,
        networks=[{"uuid": servers.network.id}],
        **extra,
    )
    servers.made.append(server)
    return server


def _run(
    cloud: Cloud, server_id: str, command: str, user: str = ""
) -> tuple[int, bytes]:
    """Exit status and standard output of ``command``, run by the shell of
    the server's container (as ``user``, else the image's)."""
    name = naming.container_name(server_id)
    made = cloud.engine.exec_create(name, ["/bin/sh", "-c", command], user=user)
    out, _err = cloud.engine.exec_start(made["Id"], demux=True)
    return cloud.engine.exec_inspect(made["Id"])["ExitCode"], out or b""


def _read(cloud: Cloud, server_id: str, path: str) -> bytes:
    code, out = _run(cloud, server_id, f"cat {path}")
    assert code == 0, f"cannot read {path} in the container"
    return out


def _fetch(cloud: Cloud, server_id: str, path: str) -> bytes:
    """``path`` from the metadata service, fetched inside the container
    with the image's own ``wget``, as a guest would."""

    # The first request may come before the agent has finished the
    # network's proxy: the port is bound while the server boots.
    def answered() -> bytes:
        code, out = _run(cloud, server_id, f"wget -qO- {METADATA_URL}{path}")
        return out if code == 0 else b""

    return support.eventually(answered, f"{METADATA_URL}{path}", support.TIMEOUT)


def _idle_console(servers: support.Servers, server: Any) -> str:
    """The console log once the image's command has done with the drive."""

    def idle() -> str:
        text = servers.console(server)
        return text if IDLE in text else ""

    return support.eventually(idle, f"{server.name} idles", support.TIMEOUT)


def _drive_mounts(cloud: Cloud, server_id: str) -> list[dict]:
    mounts = cloud.container_of(server_id)["Mounts"] or []
    return [m for m in mounts if m["Destination"] == DRIVE]


def _volume_names(cloud: Cloud) -> set[str]:
    return {v["Name"] for v in cloud.engine.volumes().get("Volumes") or []}


@pytest.fixture(scope="module")
def seed_image(cloud: Cloud, user_conn) -> Iterator:
    with cloud.script_image(user_conn, "e2e-seed", SEED_SCRIPT) as created:
        yield created


@pytest.fixture(scope="module")
def keypair(user_conn) -> Iterator:
    made = user_conn.compute.create_keypair(
        name=support.name("e2e-key"), public_key=PUBLIC_KEY
    )
    yield made
    user_conn.compute.delete_keypair(made, ignore_missing=True)


@pytest.fixture(scope="module")
def configured(user_conn, seed_image, keypair) -> Iterator[Configured]:
    servers = support.Servers(user_conn, seed_image)
    marker, admin_password = uuid.uuid4().hex, uuid.uuid4().hex
    try:
        server = _create(
            servers,
            key_name=keypair.name,
            user_data=base64.b64encode(_user_data(marker)).decode(),
            metadata={"role": ROLE},
            admin_password=admin_password,
            config_drive=True,
        )
        server = user_conn.compute.wait_for_server(server, wait=support.TIMEOUT)
        yield Configured(servers, server, keypair, marker, admin_password)
    finally:
        servers.delete_all()


def test_the_drive_carries_what_cloud_init_reads(
    cloud: Cloud, configured: Configured
) -> None:
    conn, server = configured.servers.conn, configured.server
    shown = conn.compute.get_server(server)
    meta = json.loads(_read(cloud, server.id, f"{LATEST}/meta_data.json"))

    assert meta["uuid"] == server.id
    assert meta["name"] == server.name
    # Nova's own form: the hostname, then its [api] dhcp_domain.
    assert meta["hostname"].split(".")[0] == server.name
    assert meta["project_id"] == shown.project_id
    assert meta["availability_zone"]
    assert meta["availability_zone"] == shown.availability_zone
    assert meta["meta"] == {"role": ROLE}
    name, key = configured.keypair.name, PUBLIC_KEY
    assert meta["public_keys"] == {name: key}
    assert [(k["name"], k["data"]) for k in meta["keys"]] == [(name, key)]
    assert meta["admin_pass"] == configured.admin_password
    assert _read(cloud, server.id, f"{LATEST}/user_data") == configured.user_data

    # The network as Neutron made it, for cloud-init's network config.
    network = json.loads(_read(cloud, server.id, f"{LATEST}/network_data.json"))
    macs = {link.get("ethernet_mac_address") for link in network["links"]}
    ports = list(conn.network.ports(device_id=server.id))
    assert ports
    assert {port.mac_address for port in ports} <= macs, network["links"]
    for path in (
        f"{LATEST}/vendor_data.json",
        f"{LATEST}/vendor_data2.json",
        f"{DRIVE}/ec2/latest/meta-data.json",
    ):
        _read(cloud, server.id, path)


def test_the_user_data_ran_at_the_first_start(
    cloud: Cloud, configured: Configured
) -> None:
    console = _idle_console(configured.servers, configured.server)
    assert f"{RAN} {configured.marker}" in console
    assert NO_USER_DATA not in console
    ran = _read(cloud, configured.server.id, RAN_FILE)
    assert ran.decode().strip() == configured.marker


def test_the_metadata_service_answers_what_the_drive_holds(
    cloud: Cloud, configured: Configured
) -> None:
    server = configured.server
    served = json.loads(_fetch(cloud, server.id, "/openstack/latest/meta_data.json"))
    drive = json.loads(_read(cloud, server.id, f"{LATEST}/meta_data.json"))

    assert served["uuid"] == server.id
    assert {k: served[k] for k in SHARED_META} == {k: drive[k] for k in SHARED_META}
    # As for any guest: the boot's admin password is on the drive only.
    assert "admin_pass" not in served
    user_data = _fetch(cloud, server.id, "/openstack/latest/user_data")
    assert user_data == configured.user_data
    for path in ("vendor_data.json", "vendor_data2.json", "network_data.json"):
        json.loads(_fetch(cloud, server.id, f"/openstack/latest/{path}"))


def test_the_metadata_service_answers_the_ec2_paths(
    cloud: Cloud, configured: Configured
) -> None:
    conn, server = configured.servers.conn, configured.server
    (port,) = conn.network.ports(device_id=server.id)
    v4 = [ip["ip_address"] for ip in port.fixed_ips if "." in ip["ip_address"]]

    def ec2(path: str) -> str:
        return _fetch(cloud, server.id, f"/2009-04-04/{path}").decode()

    assert ec2("meta-data/instance-id").startswith("i-")
    assert ec2("meta-data/local-ipv4") in v4
    assert ec2("meta-data/hostname").split(".")[0] == server.name
    assert ec2("meta-data/public-keys/0/openssh-key").strip() == PUBLIC_KEY
    assert ec2("user-data").encode() == configured.user_data


def test_the_drive_is_read_only_on_a_volume_of_its_own(
    cloud: Cloud, configured: Configured
) -> None:
    server_id = configured.server.id
    files = (f"{LATEST}/meta_data.json", f"{LATEST}/user_data")
    directories = (f"{DRIVE}/openstack", LATEST)
    modes = {**dict.fromkeys(files, "444"), **dict.fromkeys(directories, "555")}
    # No ``stat`` link in the image: Debian's static busybox shell runs its
    # applets by name all the same.
    code, out = _run(cloud, server_id, f"stat -c '%n %a' {' '.join(modes)}")
    assert code == 0, out
    assert dict(line.split() for line in out.decode().splitlines()) == modes

    # Neither an unprivileged process nor the container's root can change
    # a file or add one: the volume is mounted read-only, so nothing
    # written there escapes the writable layer the disk limits count.
    for user in ("65534:65534", ""):
        for attempt in (f"echo x >> {files[1]}", f"touch {LATEST}/added"):
            code, _out = _run(cloud, server_id, attempt, user=user)
            assert code != 0, f"{attempt!r} worked as {user or 'root'}"
    assert _read(cloud, server_id, files[1]) == configured.user_data

    (mount,) = _drive_mounts(cloud, server_id)
    assert (mount["Type"], mount["RW"]) == ("volume", False)
    assert mount["Name"] == naming.config_drive_volume(server_id)
    assert mount["Name"] in _volume_names(cloud)


def test_a_snapshot_leaves_the_drive_behind(
    cloud: Cloud, user_conn, configured: Configured
) -> None:
    """A server booted without a drive from the snapshot has the first
    server's files (the user data's marker) but not one file of its drive,
    nor a drive of its own."""
    snapshot = user_conn.compute.create_server_image(
        configured.server,
        support.name("e2e-drive-snap"),
        wait=True,
        timeout=support.TIMEOUT,
    )
    cloud.glance_ids.append(snapshot.id)
    children = support.Servers(user_conn, snapshot)
    try:
        child = children.boot()
        console = _idle_console(children, child)
        assert NO_USER_DATA in console
        assert configured.marker not in console
        ran = _read(cloud, child.id, RAN_FILE)
        assert ran.decode().strip() == configured.marker, "not the first's files"
        # Empty or absent, and no meta_data.json under any version.
        _code, out = _run(cloud, child.id, f"ls -A {DRIVE} 2>/dev/null; true")
        assert out.strip() == b"", out
        assert _drive_mounts(cloud, child.id) == []
    finally:
        children.delete_all()
        user_conn.image.delete_image(snapshot, ignore_missing=True)


def test_delete_removes_the_drive_with_the_container(
    cloud: Cloud, configured: Configured
) -> None:
    conn, server = configured.servers.conn, configured.server
    (mount,) = _drive_mounts(cloud, server.id)
    conn.compute.delete_server(server)
    conn.compute.wait_for_delete(server, wait=support.TIMEOUT)
    assert cloud.containers_of(server.id) == []
    assert mount["Name"] not in _volume_names(cloud)


@pytest.fixture(params=sorted(REFUSED_FLAVORS))
def refused_flavor(request, admin_conn, user_conn, seed_image) -> Iterator:
    """A public flavor no container can run, the servers booted with it,
    and what their fault must say.  Its disk is 1 GB, not 0: Nova lets
    only admins boot an image on a flavor of zero disk."""
    ram, extra_specs, fault = REFUSED_FLAVORS[request.param]
    flavor = admin_conn.compute.create_flavor(
        name=support.name(f"e2e-{request.param}"), ram=ram, vcpus=1, disk=1
    )
    servers = support.Servers(user_conn, seed_image)
    try:
        if extra_specs:
            admin_conn.compute.create_flavor_extra_specs(flavor, extra_specs)
        yield servers, flavor, fault
    finally:
        servers.delete_all()
        admin_conn.compute.delete_flavor(flavor, ignore_missing=True)


def test_a_flavor_no_container_can_run_fails_the_build_with_why(
    cloud: Cloud, admin_conn, refused_flavor
) -> None:
    servers, flavor, expected = refused_flavor
    server = _create(servers, flavor)
    servers.conn.compute.wait_for_server(
        server, status="ERROR", failures=["ACTIVE"], wait=support.TIMEOUT
    )

    def fault() -> str:
        found = admin_conn.compute.get_server(server.id).fault or {}
        return found.get("message", "")

    message = support.eventually(fault, f"{server.name} has a fault")
    assert expected in message, message
    # Aborted on the first host, not rescheduled until none was left.
    for retried in ("No valid host", "Exhausted all hosts", "Exceeded maximum"):
        assert retried not in message, message
    assert "Traceback" not in message
    assert cloud.containers_of(server.id) == []


@pytest.mark.parametrize(
    ("what", "extra"),
    [
        # Nova's API takes at most 65535 bytes of base64 user data.
        ("user data", {"user_data": base64.b64encode(b"#" * 65536).decode()}),
        # A property's value is at most 255 characters.
        ("a property", {"metadata": {"big": "x" * 256}}),
    ],
)
def test_oversized_configuration_is_refused_by_novas_own_limits(
    user_conn, seed_image, what: str, extra: dict
) -> None:
    """Refused by Nova's API with its own message, before any server
    exists: nothing the driver does loosens the API's limits."""
    servers = support.Servers(user_conn, seed_image)
    before = {s.id for s in user_conn.compute.servers()}
    try:
        with pytest.raises(openstack.exceptions.BadRequestException) as refused:
            _create(servers, **extra)
        assert "Invalid input" in str(refused.value), (what, refused.value)
        assert {s.id for s in user_conn.compute.servers()} == before
    finally:
        servers.delete_all()
