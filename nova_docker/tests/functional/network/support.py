"""Helpers for plugging real containers into a real userspace Open vSwitch.

Everything the tests create is named or tracked so teardown removes exactly it:
containers and the image carry the ``ndt`` prefix, VIF ids start with
``0dd7`` (so host devices are ``tap0dd7…``, ``qbr0dd7…``), OVS runs from its
own directory and is stopped by the PIDs we started.  With ``CI=true`` a
missing engine, OVS or root is a failure, not a skip.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import subprocess
import sys
import time
import uuid

import docker
import pytest

from nova_docker.tests import engine_support

APPLETS = ("sh", "sleep", "nc", "ping", "ping6", "ip", "cat", "echo")
BRIDGE = "ndtbrint"
OVS_BINARIES = ("ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl")
SCHEMA = "/usr/share/openvswitch/vswitch.ovsschema"
#: Host devices of test VIFs all contain this, right after their prefix.
VIF_ID_PREFIX = "0dd7"
#: PID 1 has no default signal handlers: trap TERM so restarts are quick.
COMMAND = ["/bin/sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"]


def unavailable(reason: str) -> None:
    """Skip, or fail when CI promises the environment is complete."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


def new_vif_id() -> str:
    return str(uuid.UUID(VIF_ID_PREFIX + uuid.uuid4().hex[4:]))


class Ovs:
    """An ovsdb-server and ovs-vswitchd of our own, in ``rundir``."""

    def __init__(self, rundir: pathlib.Path) -> None:
        self.rundir = rundir
        self.db_sock = rundir / "db.sock"
        self.procs: list[subprocess.Popen[bytes]] = []
        self.env = dict(
            os.environ,
            OVS_RUNDIR=str(rundir),
            OVS_LOGDIR=str(rundir),
            OVS_DBDIR=str(rundir),
        )

    @property
    def connection(self) -> str:
        return f"unix:{self.db_sock}"

    def vsctl(self, *args: str) -> str:
        argv = ["ovs-vsctl", f"--db={self.connection}", "--timeout=10", *args]
        return subprocess.run(
            argv, check=True, capture_output=True, text=True, env=self.env
        ).stdout

    def start(self) -> None:
        db = self.rundir / "conf.db"
        subprocess.run(["ovsdb-tool", "create", str(db), SCHEMA], check=True)
        self._spawn(
            "ovsdb-server",
            str(db),
            f"--remote=punix:{self.db_sock}",
            f"--unixctl={self.rundir / 'ovsdb-server.ctl'}",
        )
        self._wait_for(self.db_sock)
        self.vsctl("--no-wait", "init")
        self._spawn(
            "ovs-vswitchd",
            self.connection,
            f"--unixctl={self.rundir / 'ovs-vswitchd.ctl'}",
        )
        self._wait_for(self.rundir / "ovs-vswitchd.ctl")

    def _spawn(self, binary: str, *args: str) -> None:
        with open(self.rundir / f"{binary}.log", "ab") as log:
            proc = subprocess.Popen(
                [binary, *args, "--no-chdir"],
                stdout=log,
                stderr=log,
                env=self.env,
                start_new_session=True,
            )
        self.procs.append(proc)

    @staticmethod
    def _wait_for(path: pathlib.Path, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not path.exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{path} did not appear")
            time.sleep(0.1)

    def stop(self) -> None:
        if len(self.procs) == 2:
            # Bridges of the netdev datapath are kernel tap devices: remove
            # them while ovs-vswitchd still runs so it deletes them.
            with contextlib.suppress(subprocess.SubprocessError):
                for bridge in self.vsctl("list-br").split():
                    self.vsctl("--if-exists", "del-br", bridge)
        for proc in reversed(self.procs):
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def rootfs() -> bytes:
    """Debian's static busybox and the applets the tests use, as a tar."""
    return engine_support.rootfs_tar(applets=APPLETS)


class ContainerFactory:
    """Creates ``ndt`` busybox containers without a network; removes them."""

    def __init__(self, client: docker.DockerClient, image: str) -> None:
        self.client = client
        self.image = image
        self.made: list[str] = []

    def __call__(self) -> docker.models.containers.Container:
        name = f"ndt-{uuid.uuid4().hex[:10]}"
        # create(), unlike run(), never falls back to pulling.
        container = self.client.containers.create(
            self.image,
            COMMAND,
            name=name,
            network_mode="none",
            # Docker disables IPv6 in containers it gives no network.
            sysctls={
                "net.ipv6.conf.all.disable_ipv6": "0",
                "net.ipv6.conf.default.disable_ipv6": "0",
            },
        )
        self.made.append(container.id)
        container.start()
        return container

    def cleanup(self) -> None:
        for ident in self.made:
            try:
                self.client.containers.get(ident).remove(force=True)
            except docker.errors.NotFound:
                pass


def privsep_helper() -> str:
    """The ``privsep-helper`` next to this interpreter, run without sudo."""
    return str(pathlib.Path(sys.executable).parent / "privsep-helper")


def forward_rules() -> str:
    """The FORWARD chains of iptables and ip6tables, as rule specs."""
    return "".join(
        subprocess.run(
            [binary, "-w", "-S", "FORWARD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for binary in ("iptables", "ip6tables")
    )
