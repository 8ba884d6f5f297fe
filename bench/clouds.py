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

"""The two clouds a run compares: this driver, and Nova's fake driver.

Each is a :class:`~nova_docker_aio.private.PrivateCloud` (own state dir
under /tmp, own loopback ports, own compute host name), the same the
end-to-end tests bring up; then its Nova process is swapped for
:mod:`bench.probe`, which is the same Nova plus measuring hooks.  Bringing it
down stops it by PID and removes its containers and its Glance images'
copies.

A benchmark that moves servers between hosts asks for clouds of two compute
hosts (``Clouds([...], hosts=2)``): Nova then runs as its own services over
RabbitMQ, each host with its own engine, and no probe is swapped in.
"""

from __future__ import annotations

import dataclasses
import json
import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from nova_docker_aio.clouds_yaml import ADMIN_CLOUD
from nova_docker_aio.clouds_yaml import DEMO_CLOUD
from nova_docker_aio.layout import PORT_SPAN
from nova_docker_aio.private import PrivateCloud
from nova_docker_aio.services import engine_host
from nova_docker_aio.services import nova
from nova_docker_aio.services import nova_hosts

FIRST_PORT_BASE = 25300
#: Clouds of several hosts look for ports from here, clear of the others'.
FIRST_HOSTS_PORT_BASE = 25400
UP_TIMEOUT = 900
#: Memory for busybox ``sleep``; Nova refuses 0 disk for image-backed servers.
FLAVOR = {"name": "bench.nano", "ram": 64, "vcpus": 1, "disk": 1}
REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclasses.dataclass
class BenchCloud:
    driver: str
    private: PrivateCloud
    conn: Any = None
    flavor_id: str = ""
    #: Glance image ID of the busybox base image, once uploaded.
    base_image_id: str = ""
    #: Compute hosts; with more than one, Nova runs as separate services.
    hosts: int = 1
    #: The admin, at a microversion that shows a server's host (2.74).
    admin: Any = None

    @property
    def host(self) -> str:
        return self.private.compute_host

    def host_name(self, index: int) -> str:
        return self.private.layout.host_name(index)

    def host_index(self, host: str) -> int:
        names = [self.host_name(i) for i in range(1, self.hosts + 1)]
        return names.index(host) + 1

    def engine_url(self, host: str) -> str:
        """The API of ``host``'s own engine (clouds of several hosts)."""
        return engine_host.api_url(self.private.layout, self.host_index(host))

    def compute_pid(self, host: str) -> int:
        """``host``'s nova-compute (clouds of several hosts)."""
        index = self.host_index(host)
        pid = self.private.pid(nova_hosts.compute_name(index))
        if pid is None:
            raise RuntimeError(f"the {self.driver} cloud's {host} is not running")
        return pid

    @property
    def control_socket(self) -> Path:
        return self.private.layout.socket("bench-probe")

    def nova_pid(self) -> int:
        pid = self.private.pid("nova")
        if pid is None:
            raise RuntimeError(f"the {self.driver} cloud's Nova is not running")
        return pid

    def probe(self, op: str, timeout: float = 600) -> dict[str, Any]:
        """Ask the Nova process to do ``op`` (see :class:`bench.probe.Probe`)."""
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(timeout)
            sock.connect(str(self.control_socket))
            sock.sendall(json.dumps({"op": op}).encode() + b"\n")
            answer = json.loads(sock.makefile("rb").readline())
        if "error" in answer:
            raise RuntimeError(f"probe {op}: {answer['error']}")
        return answer


def _swap_in_probe(cloud: BenchCloud) -> None:
    """Replace the launcher's Nova process by :mod:`bench.probe`, under the
    same pid file, so ``nova-docker-aio down`` still stops it."""
    layout = cloud.private.layout
    nova.stop_process(layout)
    nova.start_process(
        layout,
        with_neutron=False,
        runner="bench.probe",
        extra_args=["--control-socket", str(cloud.control_socket)],
        extra_env={"PYTHONPATH": str(REPO_ROOT)},
        timeout=180,
    )


def _prepare(cloud: BenchCloud) -> None:
    """As admin: no quotas in the way, and the benchmark flavor."""
    admin = cloud.private.connect(ADMIN_CLOUD)
    admin.set_compute_quotas("demo", instances=-1, cores=-1, ram=-1)
    flavor = admin.compute.find_flavor(FLAVOR["name"])
    cloud.flavor_id = (flavor or admin.compute.create_flavor(**FLAVOR)).id
    admin.close()
    cloud.conn = cloud.private.connect(DEMO_CLOUD)
    if cloud.hosts > 1:
        # Moving servers is the admin's; 2.74 shows where each one is.
        cloud.admin = cloud.private.connect(ADMIN_CLOUD, compute_api_version="2.74")


def _up(cloud: BenchCloud) -> None:
    cloud.private.up()
    # The probe stands in for the one process of a cloud of one host; a
    # cloud of several runs Nova's own services and is measured from outside.
    if cloud.hosts == 1:
        _swap_in_probe(cloud)
    _prepare(cloud)


def _down(cloud: BenchCloud) -> None:
    for conn in (cloud.conn, cloud.admin):
        if conn is not None:
            conn.close()
    cloud.private.close()


class Clouds:
    """``with Clouds(["docker", "fake"]) as clouds:`` — both up at once,
    both down at the end, also when anything fails."""

    def __init__(
        self, drivers: list[str], keep_logs: Path | None = None, hosts: int = 1
    ) -> None:
        """``keep_logs``: where each cloud's log dir is copied before its
        state dir goes (``<keep_logs>/<driver>/``, or ``<driver>-hosts``).
        ``hosts``: compute hosts of each cloud."""
        self.by_driver: dict[str, BenchCloud] = {}
        #: For the clouds a benchmark brings up for itself.
        self.keep_logs = keep_logs
        base = FIRST_PORT_BASE if hosts == 1 else FIRST_HOSTS_PORT_BASE
        label = "" if hosts == 1 else "-hosts"
        for driver in drivers:
            private = PrivateCloud.create(
                f"nova-docker-bench-{driver}{label}-",
                base,
                # No Neutron in either cloud: servers boot with --nic none,
                # and Nova's floor is measured on the same kind of cloud.
                up_args=(
                    "--driver",
                    driver,
                    "--no-neutron",
                    "--no-dashboard",
                    "--hosts",
                    str(hosts),
                ),
                up_timeout=UP_TIMEOUT,
                keep_logs=keep_logs / f"{driver}{label}" if keep_logs else None,
            )
            self.by_driver[driver] = BenchCloud(driver, private, hosts=hosts)
            base = private.layout.port_base + PORT_SPAN

    def __enter__(self) -> Clouds:
        try:
            self._each(_up)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._each(_down)

    def _each(self, work: Any) -> None:
        clouds = list(self.by_driver.values())
        with ThreadPoolExecutor(max_workers=max(1, len(clouds))) as pool:
            futures = [pool.submit(work, cloud) for cloud in clouds]
        errors = [f.exception() for f in futures if f.exception() is not None]
        if errors:
            raise errors[0]  # type: ignore[misc]

    def get(self, driver: str) -> BenchCloud | None:
        return self.by_driver.get(driver)
