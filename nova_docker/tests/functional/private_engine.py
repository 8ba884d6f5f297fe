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

"""A Docker Engine of the test's own, to stop, kill, freeze and reconfigure.

Fault tests cannot touch the host's engine: a demo cloud may be using it.
:class:`PrivateEngine` runs a second ``dockerd`` whose every path is under one
temporary directory: its data root, its exec root (where dockerd 20.10 starts
its own ``containerd``, socket and state, since no ``--containerd`` is given),
its pid file, its config file (so ``/etc/docker/daemon.json`` is never read)
and its API socket.  It makes no iptables rules.  Its default bridge is one
the fixture makes for it (``ndtpe…``): with ``--bridge=none`` dockerd
deletes the host's ``docker0``, the host engine's own bridge.

Teardown always runs, whatever the test did: the engine is started again if
it was down so that it removes its own containers, then stopped; anything
still alive that belongs to it (its containerd, runc containers, shims) is
killed by PID, found through its own state under the temporary directory; its
mounts are unmounted; the loop device of a data root on a file system of its
own (``data_root_fs``) is detached; the directory, with the file system's
image file, is removed; a ``dockremap`` user that ``--userns-remap=default``
created is deleted again.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import functools
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import unittest
import uuid

import docker
import fixtures
from pyroute2 import IPRoute

from nova_docker.conf import docker as docker_conf
from nova_docker.tests import engine_support
from nova_docker.tests import waiting
from nova_docker.tests.functional import base
from nova_docker_aio import poll

SAFETY_LIMIT_SECONDS = 60
# Not the test's own temporary directory: Nova's test base makes that 0700,
# which a userns-remapped root cannot traverse, and it lengthens socket paths.
BASE_DIR = "/tmp"
REMAP_USER = "dockremap"
_PR_SET_PDEATHSIG = 1


@dataclasses.dataclass(frozen=True)
class DataRootFs:
    """A file system for the engine's data root, made in a sparse file and
    loop-mounted: one on which the engine can enforce quotas, as ext4
    cannot."""

    kind: str
    mkfs: tuple[str, ...]
    mount_options: str = ""
    size_bytes: int = 3 * 1024**3


#: overlay2's quotas need XFS mounted with project quotas.
XFS_PQUOTA = DataRootFs("xfs", ("mkfs.xfs", "-q"), "pquota")
#: The btrfs storage driver sets its quotas itself (qgroups).
BTRFS = DataRootFs("btrfs", ("mkfs.btrfs", "-q"))


class MountRefused(Exception):
    """The kernel would not mount the file system; the text says why."""


@dataclasses.dataclass(frozen=True)
class ServerTls:
    """The engine's side of TLS on its TCP listener."""

    ca_cert: str
    cert: str
    key: str


def require_prerequisites(userns_remap: bool = False) -> None:
    engine_support.require(
        shutil.which("dockerd") is not None, "no dockerd binary is installed"
    )
    engine_support.require(os.geteuid() == 0, "a private dockerd needs root")
    if userns_remap:
        engine_support.require(
            shutil.which("useradd") is not None,
            "--userns-remap=default needs useradd to create dockremap",
        )


def loop_mount(fs: DataRootFs, image: str, mount_point: str) -> str:
    """Make ``fs`` in the file ``image`` and mount it; returns the loop
    device.  A refused mount leaves the device detached."""
    with open(image, "wb") as sparse:
        sparse.truncate(fs.size_bytes)
    subprocess.run([*fs.mkfs, image], check=True, capture_output=True)
    device = subprocess.run(
        ["losetup", "--find", "--show", image],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    options = ["-o", fs.mount_options] if fs.mount_options else []
    mounted = subprocess.run(
        ["mount", "-t", fs.kind, *options, device, mount_point],
        check=False,
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        kernel = _kernel_says(device)
        loop_unmount(device, None)
        raise MountRefused(
            f"mount -t {fs.kind} {' '.join(options)} refused: "
            f"{' '.join(mounted.stderr.split())}; the kernel said: {kernel}"
        )
    return device


def loop_unmount(device: str | None, mount_point: str | None) -> None:
    if mount_point and os.path.ismount(mount_point):
        subprocess.run(["umount", mount_point], check=False, capture_output=True)
    if device:
        # If something still holds the mount, the kernel frees the device
        # when it lets go (autoclear).
        subprocess.run(["losetup", "--detach", device], check=False)


def _kernel_says(device: str) -> str:
    """The kernel's last log line about ``device`` (``XFS (loop0): ...``)."""
    marker = f"({os.path.basename(device)})"
    log = subprocess.run(["dmesg"], check=False, capture_output=True, text=True)
    lines = [line for line in log.stdout.splitlines() if marker in line]
    return lines[-1].split("] ", 1)[-1] if lines else "(nothing)"


@functools.cache
def data_root_refusal(fs: DataRootFs) -> str | None:
    """Why this kernel cannot mount ``fs`` as a data root; None if it can."""
    with tempfile.TemporaryDirectory(prefix="nova-docker-fs-", dir=BASE_DIR) as tmp:
        mount_point = os.path.join(tmp, "mnt")
        os.mkdir(mount_point)
        try:
            device = loop_mount(fs, os.path.join(tmp, "fs.img"), mount_point)
        except MountRefused as e:
            return str(e)
        loop_unmount(device, mount_point)
    return None


def require_data_root_fs(fs: DataRootFs) -> None:
    """Its tools are a missing install (a failure under CI); a kernel that
    refuses the file system is this host's fact, so a plain skip."""
    engine_support.require(
        shutil.which(fs.mkfs[0]) is not None,
        f"{fs.mkfs[0]} is not installed (tools/ensure-engine.sh installs it)",
    )
    refusal = data_root_refusal(fs)
    if refusal is not None:
        raise unittest.SkipTest(refusal)


def free_tcp_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PrivateEngine(fixtures.Fixture):
    """A ``dockerd`` under a temporary directory, started by ``setUp``."""

    def __init__(
        self,
        live_restore: bool = False,
        userns_remap: bool = False,
        tls: ServerTls | None = None,
        data_root_fs: DataRootFs | None = None,
    ) -> None:
        super().__init__()
        self.live_restore = live_restore
        self.userns_remap = userns_remap
        self.tls = tls
        self.data_root_fs = data_root_fs
        self.data_device: str | None = None
        self.tcp_port: int | None = None
        self.root = ""
        self.bridge = ""
        self._process: subprocess.Popen | None = None
        self._frozen = False

    # -- paths and addresses ----------------------------------------------

    def path(self, *parts: str) -> str:
        return os.path.join(self.root, *parts)

    @property
    def url(self) -> str:
        return f"unix://{self.path('docker.sock')}"

    @property
    def tcp_url(self) -> str:
        return f"tcp://127.0.0.1:{self.tcp_port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def client(self, timeout: int = SAFETY_LIMIT_SECONDS) -> docker.APIClient:
        # A fixed version: "auto" would ask the engine before it answers.
        return docker.APIClient(
            base_url=self.url, version=docker_conf.MIN_API_VERSION, timeout=timeout
        )

    # -- fixture ----------------------------------------------------------

    def _setUp(self) -> None:  # noqa: N802 (the fixtures API)
        require_prerequisites(self.userns_remap)
        self.root = tempfile.mkdtemp(prefix="nova-docker-engine-", dir=BASE_DIR)
        # The remapped root of a userns engine must be able to traverse it.
        os.chmod(self.root, 0o711)  # noqa: S103 (traverse only, no listing)
        self.addCleanup(shutil.rmtree, self.root, ignore_errors=True)
        self.addCleanup(self._detach_data_root)
        self.addCleanup(self._unmount_all)
        self.addCleanup(self._reap_leftovers)
        if self.userns_remap and not _user_exists(REMAP_USER):
            self.addCleanup(_delete_user, REMAP_USER)
        self.addCleanup(self._shut_down)
        self.bridge = f"ndtpe{uuid.uuid4().hex[:6]}"
        _add_bridge(self.bridge)
        self.addCleanup(_delete_bridge, self.bridge)
        if self.tls is not None:
            self.tcp_port = free_tcp_port()
        if self.data_root_fs is not None:
            os.mkdir(self.path("data"))
            self.data_device = loop_mount(
                self.data_root_fs, self.path("data.img"), self.path("data")
            )
        self._write_config()
        self.start()

    def _write_config(self) -> None:
        with open(self.path("daemon.json"), "w") as config:
            json.dump({}, config)

    def command(self) -> list[str]:
        args = [
            "dockerd",
            f"--config-file={self.path('daemon.json')}",
            f"--data-root={self.path('data')}",
            f"--exec-root={self.path('exec')}",
            f"--pidfile={self.path('docker.pid')}",
            f"--host={self.url}",
            f"--bridge={self.bridge}",
            "--iptables=false",
            "--ip6tables=false",
        ]
        if self.live_restore:
            args.append("--live-restore")
        if self.userns_remap:
            args.append("--userns-remap=default")
        if self.tls is not None:
            args += [
                f"--host={self.tcp_url}",
                "--tlsverify",
                f"--tlscacert={self.tls.ca_cert}",
                f"--tlscert={self.tls.cert}",
                f"--tlskey={self.tls.key}",
            ]
        return args

    # -- control ----------------------------------------------------------

    def start(self) -> None:
        """Start dockerd on the same data root and wait until it answers."""
        assert not self.running, "the private engine is already running"
        self._forget_dead_containerd()
        with open(self.path("dockerd.log"), "ab") as log:
            self._process = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                # Only a prctl() between fork and exec: no lock to deadlock on.
                preexec_fn=_die_with_this_thread(),  # noqa: PLW1509
            )
        self._wait_until_it_answers()

    def _wait_until_it_answers(self) -> None:
        client = self.client(timeout=5)

        def answers() -> bool:
            if not self.running:
                raise RuntimeError(f"dockerd exited: {self.log_tail()}")
            with contextlib.suppress(Exception):
                return bool(client.ping())
            return False

        try:
            waiting.until(answers, "the private dockerd answers")
        except poll.Timeout as exc:
            # Its log says why, and a failed test should show it.
            raise RuntimeError(f"dockerd never answered: {self.log_tail()}") from exc

    def stop(self) -> None:
        """SIGTERM, as an init system stops it; wait until it has exited."""
        self.thaw()
        self._signal_and_wait(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL: a crash.  Its containerd dies with it; shims do not."""
        containerd = self._containerd_pid()
        self._signal_and_wait(signal.SIGKILL)
        self._frozen = False
        if containerd is not None:
            # Until it is reaped, a new dockerd would wait for it forever.
            _wait_until_gone(containerd)

    def _forget_dead_containerd(self) -> None:
        """dockerd waits forever for a containerd its pid file names, even
        when that PID is a zombie or was reused by another process."""
        pid = self._containerd_pid()
        if pid is not None and pid not in self._own_processes():
            os.unlink(self.path("exec", "containerd", "containerd.pid"))

    def _containerd_pid(self) -> int | None:
        try:
            with open(self.path("exec", "containerd", "containerd.pid")) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def freeze(self) -> None:
        """SIGSTOP: a hung engine that still accepts connections."""
        if self.running:
            self._process.send_signal(signal.SIGSTOP)
            self._frozen = True

    def thaw(self) -> None:
        if self._frozen and self.running:
            self._process.send_signal(signal.SIGCONT)
        self._frozen = False

    def _signal_and_wait(self, signum: int) -> None:
        if not self.running:
            return
        self._process.send_signal(signum)
        try:
            self._process.wait(timeout=SAFETY_LIMIT_SECONDS)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def log_tail(self, lines: int = 20) -> str:
        try:
            with open(self.path("dockerd.log"), errors="replace") as log:
                return "".join(log.readlines()[-lines:])
        except OSError as e:
            return str(e)

    # -- teardown ---------------------------------------------------------

    def _shut_down(self) -> None:
        """Let the engine remove its own containers, then stop it."""
        self.thaw()
        with contextlib.suppress(Exception):
            if not self.running:
                self.start()
            client = self.client()
            for found in client.containers(all=True):
                client.remove_container(found["Id"], force=True, v=True)
        self.stop()

    def _reap_leftovers(self) -> None:
        """Kill what a failed shutdown left, found by its state under root."""
        runc_root = self.path("exec", "runtime-runc", "moby")
        for container_id in _listdir(runc_root):
            subprocess.run(
                ["runc", "--root", runc_root, "delete", "--force", container_id],
                check=False,
                capture_output=True,
            )
        for pid in self._own_processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def _own_processes(self) -> list[int]:
        """containerd and shims whose command line names our exec root."""
        marker = self.path("exec").encode()
        found = []
        for entry in _listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                    if marker in cmdline.read():
                        found.append(int(entry))
            except OSError:
                continue
        return found

    def _unmount_all(self) -> None:
        """dockerd leaves its data root bind-mounted on itself after exit."""
        for mount_point in sorted(self.mounts(), key=len, reverse=True):
            subprocess.run(
                ["umount", "--lazy", mount_point], check=False, capture_output=True
            )

    def _detach_data_root(self) -> None:
        """After every mount is gone: free the loop device (rmtree then
        removes its image file)."""
        loop_unmount(self.data_device, self.path("data"))
        self.data_device = None

    def mounts(self) -> list[str]:
        """Mount points at or under the engine's directory."""
        with open("/proc/self/mountinfo") as mountinfo:
            points = [line.split()[4] for line in mountinfo]
        return [p for p in points if p == self.root or p.startswith(self.root + "/")]


def _add_bridge(name: str) -> None:
    """An empty Linux bridge for a private engine's default network."""
    with IPRoute() as ipr:
        ipr.link("add", ifname=name, kind="bridge")


def _delete_bridge(name: str) -> None:
    with IPRoute() as ipr:
        found = ipr.link_lookup(ifname=name)
        if found:
            ipr.link("del", index=found[0])


def _die_with_this_thread():
    """A preexec_fn so that dockerd gets SIGTERM if the test process dies.

    The kernel sends it when the *thread* that forked exits, so it is only
    set up from the main thread.
    """
    if threading.current_thread() is not threading.main_thread():
        return None
    libc = ctypes.CDLL(None, use_errno=True)

    def set_parent_death_signal() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

    return set_parent_death_signal


def _wait_until_gone(pid: int) -> None:
    waiting.until(
        lambda: not os.path.exists(f"/proc/{pid}"), f"process {pid} is reaped"
    )


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []


def _user_exists(name: str) -> bool:
    return (
        subprocess.run(
            ["getent", "passwd", name], check=False, capture_output=True
        ).returncode
        == 0
    )


def _delete_user(name: str) -> None:
    """Remove a user dockerd created, with its /etc/sub[ug]id ranges."""
    subprocess.run(["userdel", name], check=False, capture_output=True)


class PrivateEngineTestCase(base.DriverTestCase):
    """A DriverTestCase whose driver talks to a private engine.

    Images still come from Nova's Glance fixture.  Their bytes are built once
    per run on the host's engine by :mod:`engine_support`, under a unique tag
    removed at once; nothing else of the test touches the host's engine.
    """

    live_restore = False
    userns_remap = False
    data_root_fs: DataRootFs | None = None
    api_timeout = 5

    def setUp(self):
        super().setUp()
        require_prerequisites(self.userns_remap)
        if self.data_root_fs is not None:
            require_data_root_fs(self.data_root_fs)
        self.engine = self.useFixture(self.make_engine())
        self.client = self.engine.client()
        self.use_engine(self.engine.url)

    def make_engine(self) -> PrivateEngine:
        return PrivateEngine(
            live_restore=self.live_restore,
            userns_remap=self.userns_remap,
            data_root_fs=self.data_root_fs,
        )

    def use_engine(self, url: str, **tls_options: object) -> None:
        """Point a fresh driver at ``url`` (the test's ``self.driver``)."""
        self.flags(
            api_url=url, api_timeout=self.api_timeout, group="docker", **tls_options
        )
        self.driver = self.make_driver()
