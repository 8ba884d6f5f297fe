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

"""A compute host's own Docker Engine: a private ``dockerd`` per host index.

Each compute host of a multi-host cloud gets an engine of its own, so that a
container on one host is invisible to the others, as on real machines:

* its data root (images, containers, containerd's content) in the state dir
  (:meth:`~nova_docker_aio.layout.Layout.engine_data_root`), kept from one
  ``up`` to the next as MariaDB's datadir is;
* its exec root in ``/run``
  (:meth:`~nova_docker_aio.layout.Layout.engine_exec_root`), which holds its
  API socket, its pid file and the ``containerd`` that dockerd starts and
  manages there (given no ``--containerd``), with that containerd's sockets:
  a short path, whatever the state dir, for the 108-byte socket limit;
* its own ``daemon.json``, so ``/etc/docker/daemon.json`` (the host engine's
  hosts, mirrors, data root) is never read;
* its own cgroup parent, so each host's containers are accounted apart;
* its own network namespace (``unshare --net``).  Instances use Neutron
  ports that the driver plugs into each container's namespace
  (``network_mode: none`` in :mod:`nova_docker.engine.spec`), so the engine
  needs no network: ``bridge: none``, no iptables.  The namespace is there
  because dockerd given ``bridge: none`` *deletes* ``docker0``, the host
  engine's bridge (measured with 20.10: a ``docker0`` made in the namespace
  was gone once dockerd had started); in its namespace, whatever dockerd
  does to links, routes, sysctls or iptables cannot touch the host or the
  other hosts' engines.

``down`` stops it by PID and leaves no process and no mount behind; ``up``
first clears what a crashed engine left (see :func:`clean_up`).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
from collections.abc import Iterable
from pathlib import Path

from nova_docker_aio import engine
from nova_docker_aio import host
from nova_docker_aio import poll
from nova_docker_aio import procs
from nova_docker_aio.layout import Layout
from nova_docker_aio.services.base import Context
from nova_docker_aio.services.base import Service
from nova_docker_aio.steps import say
from nova_docker_aio.steps import step

#: Seconds dockerd gives a running container to stop on SIGTERM before it
#: kills it; the engine's default is 15.
CONTAINER_STOP_SECONDS = 10
#: Seconds from SIGTERM to SIGKILL: every container's stop, and then some.
STOP_TIMEOUT = CONTAINER_STOP_SECONDS + 20
START_TIMEOUT = 60
#: The driver's ``[docker] log_driver`` default: containers the engine makes
#: without the driver's log settings store their output the same way.
LOG_DRIVER = "local"
#: Backing file systems on which overlay2 is known to work.  There it is
#: asked for by name, so that an engine unable to use it fails at start
#: rather than silently falling back to vfs (a full copy of the image per
#: container).  Elsewhere (btrfs, zfs, an overlay root) dockerd picks.
OVERLAY2_BACKINGS = frozenset({"ext4", "xfs"})
_MNT_DETACH = 2


# -- where it is ------------------------------------------------------------


def api_url(layout: Layout, index: int) -> str:
    """``[docker] api_url`` of compute host ``index``'s nova-compute."""
    return f"unix://{layout.engine_socket(index)}"


def cgroup_parent(layout: Layout, index: int) -> str:
    """Its containers' parent cgroup (cgroupfs driver: a path from each
    hierarchy's root), distinct per cloud and host, so one host's
    containers are counted and cleared apart from the others'."""
    return f"/nova-docker-aio-{layout.tag}-{index}"


def daemon_config(layout: Layout, index: int) -> dict[str, object]:
    """Its whole ``daemon.json`` (pure); see the module's docstring."""
    exec_root = layout.engine_exec_root(index)
    return {
        "data-root": str(layout.engine_data_root(index)),
        "exec-root": str(exec_root),
        "pidfile": str(layout.engine_pidfile(index)),
        "hosts": [api_url(layout, index)],
        "bridge": "none",
        # Several engines must not fight over the DOCKER chains; there are
        # no published ports to forward anyway.
        "iptables": False,
        "ip6tables": False,
        "ip-forward": False,
        "ip-masq": False,
        "userland-proxy": False,
        # Without live-restore dockerd stops its containers on SIGTERM, and
        # `down` leaves no process and no mount (with it, the shims, the
        # containers and their overlay and netns mounts outlive dockerd).
        # The containers stay, stopped, for the next `up`: Nova finds those
        # instances SHUTOFF, as after a host's clean reboot.
        "live-restore": False,
        "shutdown-timeout": CONTAINER_STOP_SECONDS,
        "log-driver": LOG_DRIVER,
        # A path, not a systemd slice, whatever the host runs as init.
        "exec-opts": ["native.cgroupdriver=cgroupfs"],
        "cgroup-parent": cgroup_parent(layout, index),
        # No registry is reachable and none is used: images come from Glance.
        "registry-mirrors": [],
        "insecure-registries": [],
    }


def command(layout: Layout, index: int) -> list[str]:
    """``unshare --net`` execs dockerd in place: the PID we record is
    dockerd's.  The storage driver depends on the host, so it is chosen
    here, not in the config."""
    dockerd = shutil.which("dockerd") or "dockerd"
    argv = ["unshare", "--net", "--", dockerd]
    argv.append(f"--config-file={layout.engine_config(index)}")
    driver = storage_driver(layout.engine_data_root(index))
    if driver:
        argv.append(f"--storage-driver={driver}")
    return argv


def storage_driver(data_root: Path) -> str | None:
    """overlay2 where its backing file system is known to carry it."""
    return "overlay2" if fs_type(data_root) in OVERLAY2_BACKINGS else None


# -- the service ------------------------------------------------------------


class PrivateEngine(Service):
    """The engine of compute host ``index`` (``dockerd-<index>``)."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.name = f"dockerd-{index}"

    def ensure_installed(self, ctx: Context) -> None:
        if not shutil.which("dockerd"):
            host.apt_install(["docker.io"], why="the compute hosts' engines")
        if not shutil.which("unshare"):
            host.apt_install(["util-linux"], why="the engines' own namespaces")

    def configs(self, ctx: Context) -> dict[Path, str]:
        config = daemon_config(ctx.layout, self.index)
        return {ctx.layout.engine_config(self.index): json.dumps(config, indent=2)}

    def start(self, ctx: Context) -> None:
        layout = ctx.layout
        host.require_root("a private dockerd")
        # A crashed engine's containerd pid file would make the new dockerd
        # wait for that process forever, and its mounts would shadow the new
        # ones.
        clean_up(layout, self.index)
        layout.engine_exec_root(self.index).mkdir(parents=True, exist_ok=True)
        layout.engine_data_root(self.index).mkdir(parents=True, exist_ok=True)
        pidfile = layout.pidfile(self.name)
        procs.spawn(command(layout, self.index), pidfile, layout.log(self.name))
        procs.wait_for(lambda: self.healthy(ctx), pidfile, START_TIMEOUT, self.name)

    def healthy(self, ctx: Context) -> bool:
        """``GET /_ping`` on its socket."""
        socket = ctx.layout.engine_socket(self.index)
        return socket.exists() and engine.answers(api_url(ctx.layout, self.index))

    def stop(self, ctx: Context) -> None:
        """SIGTERM by PID (dockerd stops its containers and its containerd),
        SIGKILL after :data:`STOP_TIMEOUT`; then clear what is left."""
        with step(self.name, "stop", ctx.layout.log(self.name)):
            if not stop_dockerd(ctx.layout.pidfile(self.name)):
                say(f"  [{self.name}] was not running")
            clean_up(ctx.layout, self.index)

    def where(self, ctx: Context) -> str:
        return api_url(ctx.layout, self.index)


def stop_dockerd(pidfile: Path) -> bool:
    """Stop the recorded dockerd and wait until it has exited (also after a
    SIGKILL, which :func:`procs.stop` does not wait for)."""
    pid = procs.read_pid(pidfile)
    started = procs.start_time(pid) if pid else None
    if not procs.stop(pidfile, timeout=STOP_TIMEOUT):
        return False
    _wait_gone({pid: started} if pid and started else {})
    return True


# -- what a stopped or crashed engine leaves --------------------------------


def clean_up(layout: Layout, index: int) -> None:
    """Kill what outlived dockerd, unmount what it left mounted, and remove
    its exec root and cgroups; its data root stays.

    Every step acts only on what this engine's own exec root or cgroup
    parent names, so the host's engine and other hosts' are untouched.
    """
    if procs.read_pid(layout.pidfile(f"dockerd-{index}")) is not None:
        raise procs.ProcessError(f"dockerd-{index} runs: stop it first")
    kill_leftovers(layout, index)
    roots = (layout.engine_data_root(index), layout.engine_exec_root(index))
    unmount_under(roots)
    shutil.rmtree(layout.engine_exec_root(index), ignore_errors=True)
    remove_cgroups(cgroup_parent(layout, index))


def kill_leftovers(layout: Layout, index: int) -> None:
    """SIGKILL, by PID, what a SIGKILLed dockerd leaves running: its
    containerd and shims, and its containers' processes."""
    pids = set(runtime_pids(layout.engine_exec_root(index)))
    pids.update(cgroup_pids(cgroup_parent(layout, index)))
    pids.discard(os.getpid())
    victims = {pid: procs.start_time(pid) for pid in pids}
    for pid, started in victims.items():
        if started is not None and procs.is_running(pid, started):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    _wait_gone({p: s for p, s in victims.items() if s is not None})


def runtime_pids(exec_root: Path) -> list[int]:
    """PIDs of its containerd and shims: a ``containerd*`` program whose
    arguments name ``exec_root`` (containerd's config and socket, which
    each shim is given, are there).  containerd 1.6 keeps no pid file for a
    shim, and a shim is in containerd's cgroup, not the container's; a
    container's own processes are found by cgroup instead."""
    marker = str(exec_root)
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().decode(errors="replace")
            program, *args = argv.split("\0")
            if os.path.basename(program).startswith("containerd") and any(
                marker in arg for arg in args
            ):
                found.append(int(entry))
    return found


def _wait_gone(pids: dict[int, str]) -> None:
    """Until each process has exited (a zombie has: its mounts and
    namespaces are released; its parent or init collects it)."""

    def gone() -> bool:
        for pid in pids:
            procs.reap(pid)
        return not any(alive(pid, started) for pid, started in pids.items())

    poll.until(gone, f"{sorted(pids)} have exited", STOP_TIMEOUT, interval=0.05)


def alive(pid: int, started: str) -> bool:
    """Whether ``pid`` is still the process that started at ``started``
    and has not exited (a zombie, not yet collected, has)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    fields = stat.rsplit(")", 1)[1].split()
    return fields[0] != "Z" and fields[19] == started


# -- mounts -----------------------------------------------------------------


def mounts() -> list[tuple[Path, str]]:
    """Every mount point of this mount namespace and its type, in mount
    order (``/proc/self/mountinfo``)."""
    found = []
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            fields, _, rest = line.partition(" - ")
            found.append((Path(_unescape(fields.split()[4])), rest.split()[0]))
    return found


def _unescape(field: str) -> str:
    r"""mountinfo writes space, tab, newline and backslash as ``\ooo``."""
    for code in ("040", "011", "012", "134"):
        field = field.replace(f"\\{code}", chr(int(code, 8)))
    return field


def mounts_under(roots: Iterable[Path]) -> list[Path]:
    """Mount points at or under any of ``roots``."""
    roots = tuple(roots)
    return [
        point
        for point, _ in mounts()
        if any(point == root or root in point.parents for root in roots)
    ]


def fs_type(path: Path) -> str:
    """The type of the file system that holds ``path`` (or would, once
    made): the last mount on its longest mounted ancestor."""
    path = Path(os.path.abspath(path))
    best, kind = -1, ""
    for point, fstype in mounts():
        if (point == path or point in path.parents) and len(point.parts) >= best:
            best, kind = len(point.parts), fstype
    return kind


def unmount_under(roots: Iterable[Path]) -> None:
    """Detach every mount under ``roots``, deepest first.  Lazy (detach),
    so a mount still held open cannot make ``down``, or deleting the state
    dir, fail: the kernel frees it when the last user lets go.  dockerd
    itself leaves its data root bind-mounted on itself after it exits."""
    libc = ctypes.CDLL(None, use_errno=True)
    for point in sorted(set(mounts_under(roots)), key=lambda p: -len(p.parts)):
        # A mount stacked on another is listed twice: detach until neither.
        while point in mounts_under([point]):
            if libc.umount2(str(point).encode(), _MNT_DETACH) != 0:
                errno = ctypes.get_errno()
                raise OSError(errno, f"umount {point}: {os.strerror(errno)}")


# -- cgroups ----------------------------------------------------------------


def cgroup_dirs(parent: str) -> list[Path]:
    """The directory of cgroup ``parent`` in every mounted hierarchy (v1
    controllers and the v2 unified one) where it exists."""
    dirs = []
    for point, fstype in mounts():
        if fstype in ("cgroup", "cgroup2"):
            candidate = point / parent.lstrip("/")
            if candidate.is_dir() and candidate not in dirs:
                dirs.append(candidate)
    return dirs


def cgroup_pids(parent: str) -> list[int]:
    """Every process in ``parent`` and the cgroups below it."""
    pids: set[int] = set()
    for top in cgroup_dirs(parent):
        for procs_file in top.rglob("cgroup.procs"):
            with contextlib.suppress(OSError):
                pids.update(int(line) for line in procs_file.read_text().split())
    return sorted(pids)


def remove_cgroups(parent: str) -> None:
    """Remove ``parent`` and the (empty) cgroups below it, deepest first;
    the kernel refuses to remove one that still holds a process."""
    for top in cgroup_dirs(parent):
        below = sorted(
            (d for d in top.rglob("*") if d.is_dir()), key=lambda d: -len(d.parts)
        )
        for directory in (*below, top):
            with contextlib.suppress(FileNotFoundError):
                directory.rmdir()
