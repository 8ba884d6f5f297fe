"""The two clouds a run compares: this driver, and Nova's fake driver.

Each is a :class:`~nova_docker_aio.private.PrivateCloud` (own state dir
under /tmp, own loopback ports, own compute host name), the same the
end-to-end tests bring up; then its Nova process is swapped for
:mod:`bench.probe`, which is the same Nova plus measuring hooks.  Bringing it
down stops it by PID and removes its containers and its Glance images'
copies.
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
from nova_docker_aio.private import PrivateCloud
from nova_docker_aio.services import nova

FIRST_PORT_BASE = 25300
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

    @property
    def host(self) -> str:
        return self.private.compute_host

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


def _up(cloud: BenchCloud) -> None:
    cloud.private.up()
    _swap_in_probe(cloud)
    _prepare(cloud)


def _down(cloud: BenchCloud) -> None:
    if cloud.conn is not None:
        cloud.conn.close()
    cloud.private.close()


class Clouds:
    """``with Clouds(["docker", "fake"]) as clouds:`` — both up at once,
    both down at the end, also when anything fails."""

    def __init__(self, drivers: list[str], keep_logs: Path | None = None) -> None:
        """``keep_logs``: where each cloud's log dir is copied before its
        state dir goes (``<keep_logs>/<driver>/``)."""
        self.by_driver: dict[str, BenchCloud] = {}
        base = FIRST_PORT_BASE
        for driver in drivers:
            private = PrivateCloud.create(
                f"nova-docker-bench-{driver}-",
                base,
                # No Neutron in either cloud: servers boot with --nic none,
                # and Nova's floor is measured on the same kind of cloud.
                up_args=("--driver", driver, "--no-neutron"),
                up_timeout=UP_TIMEOUT,
                keep_logs=keep_logs / driver if keep_logs else None,
            )
            self.by_driver[driver] = BenchCloud(driver, private)
            base = private.layout.port_base + 10

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
