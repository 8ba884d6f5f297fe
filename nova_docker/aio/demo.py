"""``nova-docker-aio demo``: build an image locally, upload it the way a
user would (``docker save | openstack image create``), boot it with
``--nic none`` and show what came of it."""

from __future__ import annotations

import os
import shlex
import subprocess
import time

from nova_docker.aio import demo_image
from nova_docker.aio import tools
from nova_docker.aio.catalog import DEMO_CLOUD
from nova_docker.aio.layout import Layout
from nova_docker.aio.steps import say
from nova_docker.aio.steps import step

REPOSITORY = "nova-docker-demo"
IMAGE = "nova-docker-demo"
SERVER = "demo"
FLAVOR = "c1.tiny"
#: The label the driver puts on each container (aio is an island: not imported).
UUID_LABEL = "org.openstack.nova.instance-uuid"


def _env(layout: Layout) -> dict[str, str]:
    return {
        **os.environ,
        "OS_CLIENT_CONFIG_FILE": str(layout.clouds_yaml),
        "OS_CLOUD": DEMO_CLOUD,
    }


def _openstack(layout: Layout, *args: str, show: bool = False) -> str:
    argv = [tools.bin_path("openstack"), *args]
    if show:
        say(f"$ openstack {shlex.join(args)}")
    result = subprocess.run(
        argv, env=_env(layout), capture_output=True, text=True, check=False
    )
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
    save = subprocess.Popen(["docker", "save", ref], stdout=subprocess.PIPE)
    result = subprocess.run(
        create,
        stdin=save.stdout,
        env=_env(layout),
        capture_output=True,
        text=True,
        check=False,
    )
    save.stdout.close()  # type: ignore[union-attr]
    if save.wait() != 0 or result.returncode != 0:
        raise RuntimeError(f"image upload failed: {result.stderr.strip()}")


def _console(layout: Layout, timeout: float = 30) -> str:
    """The first console lines, once the container has printed some."""
    deadline = time.monotonic() + timeout
    while True:
        text = _openstack(layout, "console", "log", "show", SERVER)
        if text.strip() or time.monotonic() > deadline:
            return "\n".join(text.splitlines()[:8])
        time.sleep(1)


def _docker_ps(selector: str) -> str:
    fmt = "{{.ID}}  {{.Image}}  {{.Status}}  {{.Names}}"
    result = subprocess.run(
        ["docker", "ps", "--filter", selector, "--format", fmt],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip() or "(no running container found)"


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
    selector = f"label={UUID_LABEL}={server_id}"
    say(f"\n$ docker ps --filter {selector}")
    print(_docker_ps(selector))
    print()


def _running(layout: Layout, server_id: str | None) -> bool:
    """ACTIVE in Nova and its container running: ``down`` removes the
    containers, and Nova notices only at its next power-state sync."""
    if server_id is None:
        return False
    status = _openstack(layout, "server", "show", SERVER, "-f", "value", "-c", "status")
    container = _docker_ps(f"label={UUID_LABEL}={server_id}")
    return status.strip() == "ACTIVE" and not container.startswith("(no ")


def _boot(layout: Layout) -> None:
    """Boot with ``--nic none``, replacing a server left from an earlier run
    (e.g. its container went with ``down``); on failure, say what Nova says
    went wrong."""
    if _server_id(layout) is not None:
        _openstack(layout, "server", "delete", "--wait", SERVER, show=True)
    try:
        _openstack(
            layout, "server", "create", "--flavor", FLAVOR, "--image", IMAGE,
            "--nic", "none", "--wait", SERVER, show=True,
        )  # fmt: skip
    except RuntimeError as exc:
        fault = _openstack(
            layout, "server", "show", SERVER, "-f", "value", "-c", "fault"
        )
        raise RuntimeError(f"{exc}; the server's fault: {fault.strip()}") from exc


def run(layout: Layout) -> None:
    print("Demo: a container booted through Nova")
    with step("demo", f"build image {REPOSITORY} locally (busybox, docker import)"):
        ref = demo_image.build(REPOSITORY)
    if _exists(layout, "image", IMAGE):
        say(f"  [demo] image {IMAGE} is in Glance already")
    else:
        with step("demo", "upload to Glance"):
            _upload(layout, ref)
    if _running(layout, _server_id(layout)):
        say(f"  [demo] server {SERVER} is ACTIVE already")
    else:
        with step("demo", "boot server and wait for ACTIVE", layout.log("nova")):
            _boot(layout)
    with step("demo", "show the server"):
        server_id = _server_id(layout) or "?"
    _show(layout, server_id)
