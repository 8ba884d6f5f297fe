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

"""``nova-docker-aio demo``: build an image locally, upload it the way a
user would (``docker save | openstack image create``), boot it and show what
came of it.  With Neutron the server boots on ``private``, gets a floating
IP, and the host fetches the page its busybox httpd serves there; without,
it boots with ``--nic none``."""

from __future__ import annotations

import os
import shlex
import subprocess
import urllib.error
import urllib.request

from nova_docker.engine import naming
from nova_docker_aio import cloud
from nova_docker_aio import engine
from nova_docker_aio import images
from nova_docker_aio import poll
from nova_docker_aio import tools
from nova_docker_aio.clouds_yaml import ADMIN_CLOUD
from nova_docker_aio.clouds_yaml import DEMO_CLOUD
from nova_docker_aio.layout import Layout
from nova_docker_aio.services import engine_host
from nova_docker_aio.steps import say
from nova_docker_aio.steps import step

REPOSITORY = "nova-docker-demo"
IMAGE = "nova-docker-demo"
SERVER = "demo"
FLAVOR = "c1.tiny"
NETWORK = "private"
EXTERNAL = "public"
#: Each start appends a line to a file in the rootfs and prints the file, so
#: a snapshot's second-generation server shows its ancestor's boot too.
#: busybox httpd (it daemonizes) serves a page on port 80 that names the
#: server, for the floating IP part of the demo.
DEMO_SCRIPT = (
    # PID 1 has no default signal handlers: without the trap, every stop
    # would wait out the engine's stop timeout.
    "trap 'echo stopping; exit 0' TERM; "
    "n=$(cat /etc/boot-history 2>/dev/null | wc -l); "
    'echo "boot $((n+1)): $(hostname) at $(date)" >> /etc/boot-history; '
    "echo 'nova-docker demo: this container is a Nova server'; "
    "mkdir -p /www; "
    'echo "Hello from $(hostname), a container booted by Nova" > /www/index.html; '
    "httpd -p 80 -h /www; "
    "cat /etc/boot-history; s=0; "
    'while :; do sleep 1; s=$((s+1)); [ $((s % 5)) = 0 ] && echo "up ${s}s"; done'
)
DEMO_CMD = ["/bin/sh", "-c", DEMO_SCRIPT]


def _env(layout: Layout, cloud_name: str = DEMO_CLOUD) -> dict[str, str]:
    return {
        **os.environ,
        "OS_CLIENT_CONFIG_FILE": str(layout.clouds_yaml),
        "OS_CLOUD": cloud_name,
    }


def _openstack(
    layout: Layout, *args: str, show: bool = False, admin: bool = False
) -> str:
    """``openstack ARGS`` as the demo user (or the admin, who sees hosts)."""
    argv = [tools.bin_path("openstack"), *args]
    if show:
        say(f"$ openstack {shlex.join(args)}")
    env = _env(layout, ADMIN_CLOUD if admin else DEMO_CLOUD)
    result = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"openstack {shlex.join(args)}: {result.stderr.strip()}")
    return result.stdout


def _exists(layout: Layout, kind: str, name: str) -> bool:
    names = _openstack(layout, kind, "list", "-f", "value", "-c", "Name")
    return name in names.split()


def _upload(layout: Layout, ref: str) -> None:
    """``docker save REF | openstack image create ...``, streamed."""
    create = [
        tools.bin_path("openstack"),
        "image",
        "create",
        "--container-format",
        "docker",
        "--disk-format",
        "raw",
        IMAGE,
    ]
    say(
        f"$ docker save {ref} | openstack image create --container-format docker "
        f"--disk-format raw {IMAGE}"
    )
    with subprocess.Popen(
        create,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=_env(layout),
    ) as upload:
        try:
            for chunk in engine.save(ref):
                upload.stdin.write(chunk)  # type: ignore[union-attr]
        finally:
            upload.stdin.close()  # type: ignore[union-attr]
        errors = upload.stderr.read().decode(errors="replace")  # type: ignore[union-attr]
    if upload.returncode != 0:
        raise RuntimeError(f"image upload failed: {errors.strip()}")


def _console(layout: Layout, timeout: float = 30) -> str:
    """The first console lines, once the container has printed some."""

    def printed() -> str:
        return _openstack(layout, "console", "log", "show", SERVER).strip()

    try:
        text = poll.until(printed, f"{SERVER} prints something", timeout)
    except poll.Timeout:
        text = ""
    return "\n".join(text.splitlines()[:8])


def _engine_of(layout: Layout, server_id: str) -> str:
    """The API URL of the engine that holds the server: the host's one, or
    in a cloud of several hosts the private engine of the server's host."""
    count = cloud.hosts(layout)
    if count == 1:
        return engine.DEFAULT_URL
    shown = _openstack(
        layout, "server", "show", server_id, "-f", "value",
        "-c", "OS-EXT-SRV-ATTR:host", admin=True,
    ).strip()  # fmt: skip
    for index in range(1, count + 1):
        if layout.host_name(index) == shown:
            return engine_host.api_url(layout, index)
    return engine.DEFAULT_URL


def _containers(server_id: str, api_url: str) -> str:
    return (
        engine.describe_instance(server_id, api_url) or "(no running container found)"
    )


def _server_id(layout: Layout) -> str | None:
    if not _exists(layout, "server", SERVER):
        return None
    return _openstack(
        layout, "server", "show", SERVER, "-f", "value", "-c", "id"
    ).strip()


def _show(layout: Layout, server_id: str) -> None:
    """What a newcomer wants to see: the server, its output, its container."""
    print()
    print(_openstack(layout, "server", "list", show=True))
    say(f"$ openstack console log show {SERVER} | head")
    print(_console(layout))
    api_url = _engine_of(layout, server_id)
    where = "" if api_url == engine.DEFAULT_URL else f" -H {api_url}"
    say(f"\n$ docker{where} ps --filter label={naming.UUID_LABEL}={server_id}")
    print(_containers(server_id, api_url))
    print()


def _running(layout: Layout, server_id: str | None) -> bool:
    """ACTIVE in Nova and its container running: ``down`` removes the
    containers, and Nova notices only at its next power-state sync."""
    if server_id is None:
        return False
    status = _openstack(layout, "server", "show", SERVER, "-f", "value", "-c", "status")
    api_url = _engine_of(layout, server_id)
    return status.strip() == "ACTIVE" and bool(
        engine.describe_instance(server_id, api_url)
    )


def _boot(layout: Layout, with_neutron: bool) -> None:
    """Boot on ``private`` (or with ``--nic none``), replacing a server left
    from an earlier run (e.g. its container went with ``down``); on failure,
    say what Nova says went wrong."""
    if _server_id(layout) is not None:
        _openstack(layout, "server", "delete", "--wait", SERVER, show=True)
    nic = ["--network", NETWORK] if with_neutron else ["--nic", "none"]
    try:
        _openstack(
            layout, "server", "create", "--flavor", FLAVOR, "--image", IMAGE,
            *nic, "--wait", SERVER, show=True,
        )  # fmt: skip
    except RuntimeError as exc:
        fault = _openstack(
            layout, "server", "show", SERVER, "-f", "value", "-c", "fault"
        )
        raise RuntimeError(f"{exc}; the server's fault: {fault.strip()}") from exc


def _floating_ip(layout: Layout) -> str:
    """The server's floating IP: the one it has, else a free one of the
    project (a replaced server leaves its address behind), else a new one."""
    port = _openstack(
        layout, "port", "list", "--server", SERVER, "-f", "value", "-c", "ID"
    ).split()[0]
    listed = _openstack(
        layout, "floating", "ip", "list",
        "-f", "value", "-c", "Floating IP Address", "-c", "Port",
    ).split("\n")  # fmt: skip
    pairs = [line.split() for line in listed if line.strip()]
    mine = [address for address, bound in pairs if bound == port]
    if mine:
        return mine[0]
    free = [address for address, bound in pairs if bound == "None"]
    if free:
        address = free[0]
    else:
        address = _openstack(
            layout, "floating", "ip", "create", EXTERNAL,
            "-f", "value", "-c", "floating_ip_address", show=True,
        ).strip()  # fmt: skip
    _openstack(layout, "server", "add", "floating", "ip", SERVER, address, show=True)
    return address


def fetch(url: str, timeout: float = 60) -> str:
    """GET ``url`` until it answers: the floating IP's NAT and the
    container's interface appear a moment after ACTIVE."""

    def page() -> str | None:
        try:
            with urllib.request.urlopen(url, timeout=3) as reply:  # noqa: S310
                return reply.read().decode(errors="replace").strip()
        except (urllib.error.URLError, OSError):
            return None

    return poll.until(page, f"{url} answers", timeout)


def _answer(layout: Layout) -> None:
    with step("demo", "floating IP"):
        address = _floating_ip(layout)
    say(f"$ curl http://{address}/")
    with step("demo", f"fetch http://{address}/ from the host"):
        answer = fetch(f"http://{address}/")
    print(answer)
    print(f"\nThe demo server answers on its floating IP {address}: {answer}\n")


def run(layout: Layout, with_neutron: bool = False) -> None:
    print("Demo: a container booted through Nova")
    with step("demo", f"build image {REPOSITORY} locally (busybox, docker import)"):
        ref = images.build(REPOSITORY, DEMO_CMD)
    if _exists(layout, "image", IMAGE):
        say(f"  [demo] image {IMAGE} is in Glance already")
    else:
        with step("demo", "upload to Glance"):
            _upload(layout, ref)
    if _running(layout, _server_id(layout)):
        say(f"  [demo] server {SERVER} is ACTIVE already")
    else:
        with step("demo", "boot server and wait for ACTIVE", layout.log("nova")):
            _boot(layout, with_neutron)
    with step("demo", "show the server"):
        server_id = _server_id(layout) or "?"
    _show(layout, server_id)
    if with_neutron:
        _answer(layout)
