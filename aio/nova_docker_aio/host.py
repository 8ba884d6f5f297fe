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

"""Honest checks about the host, each failing with a message to act on,
and Debian packages installed where they are missing."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterable
from collections.abc import Iterator
from pathlib import Path

from nova_docker_aio import procs
from nova_docker_aio.layout import Layout


class HostError(RuntimeError):
    """The host cannot run the cloud as it is; the message says why."""


def require_root(why: str) -> None:
    if os.geteuid() != 0:
        raise HostError(f"{why} needs root; run nova-docker-aio as root")


_apt_updated = False


def apt_install(packages: Iterable[str], why: str) -> None:
    """Install Debian packages, refusing clearly where that is impossible."""
    global _apt_updated  # noqa: PLW0603 - one update per launcher run
    names = list(packages)
    if not shutil.which("apt-get"):
        raise HostError(f"{why} needs {' '.join(names)}; install it yourself")
    require_root(f"installing {' '.join(names)} for {why}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    print(f"  installing {' '.join(names)} ({why}) ...", flush=True)
    if not _apt_updated:
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=False)
        _apt_updated = True
    result = subprocess.run(
        ["apt-get", "install", "-y", "-qq", *names],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise HostError(
            f"could not install {' '.join(names)}: {result.stderr.strip()[-400:]}"
        )


POLICY_RC_D = Path("/usr/sbin/policy-rc.d")


@contextlib.contextmanager
def no_service_starts() -> Iterator[None]:
    """Keep packages' init scripts from starting their system-wide daemons
    (Debian's ``policy-rc.d`` protocol: exit status 101 means "do not").

    The launcher runs its own instances, under the state dir; a system
    ovsdb-server or ovn-controller would only get in their way.  An existing
    policy is left as it is.
    """
    if POLICY_RC_D.exists():
        yield
        return
    POLICY_RC_D.write_text("#!/bin/sh\n# nova-docker-aio: installing\nexit 101\n")
    POLICY_RC_D.chmod(0o755)
    try:
        yield
    finally:
        POLICY_RC_D.unlink(missing_ok=True)


def check_ports_free(layout: Layout, names: Iterable[str]) -> None:
    """Refuse to start when another program holds one of these ports."""
    taken = [
        f"{name} ({layout.port(name)})"
        for name in sorted(names, key=layout.port)
        if procs.port_in_use(layout.port(name))
    ]
    if taken:
        raise HostError(
            "ports already in use: "
            + ", ".join(taken)
            + "; stop what holds them or pick another --port-base"
        )
