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

"""A private cloud of its own for the end-to-end tests and the benchmarks.

``with PrivateCloud.create("nova-docker-e2e-", 25100) as cloud:`` makes a
state dir under /tmp, finds free ports from 25100 on, brings the cloud up
through the launcher's command line, and at the end brings it down and
removes the state dir, also when anything failed.  Its compute host name,
ports, switch bridges and address ranges are its own, so it runs next to the
demo cloud and to other private clouds.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING
from typing import Any

from nova_docker_aio import clouds_yaml
from nova_docker_aio import procs
from nova_docker_aio.layout import PORT_OFFSETS
from nova_docker_aio.layout import PORT_SPAN
from nova_docker_aio.layout import Layout
from nova_docker_aio.services import ovn_metadata

if TYPE_CHECKING:
    from openstack.connection import Connection

UP_TIMEOUT = 600
DOWN_TIMEOUT = 300
#: Where the host's network devices are listed.
NET_DEVICES = Path("/sys/class/net")


def free_port_base(first: int) -> int:
    """The first base from ``first`` (steps of :data:`PORT_SPAN`) whose
    ports are all free."""
    for base in range(first, first + 50 * PORT_SPAN, PORT_SPAN):
        if not any(procs.port_in_use(base + off) for off in PORT_OFFSETS.values()):
            return base
    raise RuntimeError(f"no free port range from {first}")


class PrivateCloud:
    """One cloud, by its layout; :meth:`create` makes a new one."""

    def __init__(
        self,
        layout: Layout,
        owned: bool = True,
        up_args: Sequence[str] = (),
        up_timeout: float = UP_TIMEOUT,
        keep_logs: Path | None = None,
    ) -> None:
        """``owned``: brought up on enter, down and removed on exit (else it
        is a cloud someone else runs, and is left as it is).  ``up_args``:
        more arguments of ``up`` (``--driver fake``, ``--no-neutron``).
        ``keep_logs``: where its log dir is copied before the state dir
        goes."""
        self.layout = layout
        self.owned = owned
        self.up_args = tuple(up_args)
        self.up_timeout = up_timeout
        self.keep_logs = keep_logs

    @classmethod
    def create(cls, prefix: str, first_port: int, **kwargs: Any) -> PrivateCloud:
        """A new state dir under /tmp and the first free port range."""
        root = Path(tempfile.mkdtemp(prefix=prefix)).resolve()
        return cls(Layout(root, free_port_base(first_port)), **kwargs)

    @classmethod
    def existing(cls, state_dir: Path, port_base: int, **kwargs: Any) -> PrivateCloud:
        """A cloud that is up already, and stays up."""
        return cls(Layout(state_dir.resolve(), port_base), owned=False, **kwargs)

    def __enter__(self) -> PrivateCloud:
        if self.owned:
            try:
                self.up()
            except BaseException:
                self.close()
                raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.owned:
            self.close()

    # -- lifecycle ---------------------------------------------------------

    def cli(self, *args: str, timeout: float) -> str:
        """``nova-docker-aio --state-dir STATE --port-base BASE ARGS``; its
        output, or RuntimeError with all of it."""
        argv = [
            sys.executable,
            "-m",
            "nova_docker_aio.cli",
            "--state-dir",
            str(self.layout.root),
            "--port-base",
            str(self.layout.port_base),
            *args,
        ]
        result = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"nova-docker-aio {' '.join(args)} failed:\n{result.stdout}\n"
                f"{result.stderr}"
            )
        return result.stdout

    def up(self) -> str:
        return self.cli("up", *self.up_args, timeout=self.up_timeout)

    def down(self) -> str:
        return self.cli("down", timeout=DOWN_TIMEOUT)

    def remove(self) -> None:
        """Delete the state dir, after copying its logs to ``keep_logs``."""
        logs = self.layout.logs
        if self.keep_logs is not None and logs.is_dir():
            shutil.rmtree(self.keep_logs, ignore_errors=True)
            shutil.copytree(logs, self.keep_logs)
        shutil.rmtree(self.layout.root, ignore_errors=True)

    def close(self) -> None:
        """Down, then remove, whatever happens to the first."""
        try:
            self.down()
        finally:
            self.remove()

    def restart_nova(self) -> str:
        """``nova-docker-aio restart nova``: stop by PID, start again."""
        return self.cli("restart", "nova", timeout=DOWN_TIMEOUT)

    def write_local_conf(self, text: str) -> None:
        """Nova's ``local.conf``: read at its next (re)start."""
        path = self.layout.nova_local_conf
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    # -- looking at it -----------------------------------------------------

    @property
    def compute_host(self) -> str:
        return self.layout.compute_host

    def connect(
        self, cloud: str = clouds_yaml.DEMO_CLOUD, **options: Any
    ) -> Connection:
        return clouds_yaml.connect(self.layout, cloud, **options)

    def pid(self, service: str) -> int | None:
        return procs.read_pid(self.layout.pidfile(service))

    def kill(self, service: str) -> int:
        """SIGKILL a service's process, as a crash would; its PID."""
        return procs.kill(self.layout.pidfile(service))

    def log_text(self, service: str) -> str:
        return self.layout.log(service).read_text(errors="replace")

    def host_devices(self) -> list[str]:
        """Host network devices named after this cloud (its bridges' taps),
        and the metadata namespaces its agent made (one per network whose
        proxy config it wrote)."""
        tag = self.layout.tag
        devices = [p.name for p in NET_DEVICES.iterdir() if tag in p.name]
        return sorted(devices + ovn_metadata.namespaces_left(self.layout))
