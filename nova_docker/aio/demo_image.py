"""Build a tiny image locally, with no registry: Debian's static busybox in
an otherwise empty rootfs, ``docker import``-ed with a CMD that keeps running
and prints something."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import tarfile
from pathlib import Path

from nova_docker.aio import hostcheck

BUSYBOX = Path("/bin/busybox")
APPLETS = (
    "sh", "echo", "cat", "date", "sleep", "hostname", "ls", "wc", "[", "test",
    "mkdir", "httpd", "nc", "tail", "ping", "ip",
)  # fmt: skip
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


def ensure_busybox() -> None:
    result = subprocess.run(
        ["file", "-L", str(BUSYBOX)], capture_output=True, text=True, check=False
    )
    if BUSYBOX.exists() and "static" in result.stdout:
        return
    packages = ["busybox-static"] + ([] if shutil.which("file") else ["file"])
    hostcheck.apt_install(packages, why="the demo image's rootfs")


def rootfs_tar() -> bytes:
    """A tar of ``/bin/busybox``, its applet links and ``/etc``, ``/tmp``."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for directory, mode in (("bin", 0o755), ("etc", 0o755), ("tmp", 0o1777)):
            info = tarfile.TarInfo(directory)
            info.type, info.mode = tarfile.DIRTYPE, mode
            tar.addfile(info)
        tar.add(str(BUSYBOX), arcname="bin/busybox")
        for applet in APPLETS:
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
    return buf.getvalue()


def build(repository: str, cmd: list[str] | None = None) -> str:
    """``docker import`` the rootfs unless an identical image is there
    already (the tag is a digest of what goes in); return the ref."""
    ensure_busybox()
    change = f"CMD {json.dumps(cmd or DEMO_CMD)}"
    recipe = json.dumps([change, APPLETS, BUSYBOX.stat().st_size]).encode()
    ref = f"{repository}:{hashlib.sha256(recipe).hexdigest()[:12]}"
    exists = subprocess.run(
        ["docker", "image", "inspect", ref], capture_output=True, check=False
    )
    if exists.returncode == 0:
        return ref
    subprocess.run(
        ["docker", "import", "--change", change, "-", ref],
        input=rootfs_tar(),
        check=True,
        capture_output=True,
    )
    return ref
