"""The two clouds a run compares: this driver, and Nova's fake driver.

Each is a private all-in-one cloud (own state dir under /tmp, own loopback
ports, own compute host name), started with the launcher exactly as the
end-to-end tests start theirs; then its Nova process is swapped for
:mod:`bench.probe`, which is the same Nova plus measuring hooks.  ``down``
stops it by PID and removes its containers and its Glance images' copies.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import socket
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import openstack
import yaml

from nova_docker.aio import cloud as aio_cloud
from nova_docker.aio import procs
from nova_docker.aio.launch import free_port_base
from nova_docker.aio.launch import run_cli
from nova_docker.aio.layout import Layout

FIRST_PORT_BASE = 25300
UP_TIMEOUT = 900
#: Memory for busybox ``sleep``; Nova refuses 0 disk for image-backed servers.
FLAVOR = {"name": "bench.nano", "ram": 64, "vcpus": 1, "disk": 1}
REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclasses.dataclass
class BenchCloud:
    driver: str
    layout: Layout
    conn: Any = None
    flavor_id: str = ""
    #: Glance image ID of the busybox base image, once uploaded.
    base_image_id: str = ""

    @property
    def host(self) -> str:
        return self.layout.compute_host

    @property
    def control_socket(self) -> Path:
        return self.layout.run / "bench-probe.sock"

    def nova_pid(self) -> int:
        pid = procs.read_pid(self.layout.pidfile("nova"))
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

    def connect(self, name: str) -> Any:
        settings = yaml.safe_load(self.layout.clouds_yaml.read_text())["clouds"][name]
        return openstack.connect(load_yaml_config=False, load_envvars=False, **settings)


def _swap_in_probe(layout: Layout) -> None:
    """Replace the launcher's Nova process by :mod:`bench.probe`, under the
    same pid file, so ``nova-docker-aio down`` still stops it."""
    procs.stop(layout.pidfile("nova"), timeout=30)
    aio_cloud.start_nova(
        layout,
        with_neutron=False,
        runner="bench.probe",
        extra_args=["--control-socket", str(layout.run / "bench-probe.sock")],
        extra_env={"PYTHONPATH": str(REPO_ROOT)},
        timeout=180,
    )


def _prepare(cloud: BenchCloud) -> None:
    """As admin: no quotas in the way, and the benchmark flavor."""
    admin = cloud.connect("aio-admin")
    admin.set_compute_quotas("demo", instances=-1, cores=-1, ram=-1)
    flavor = admin.compute.find_flavor(FLAVOR["name"])
    cloud.flavor_id = (flavor or admin.compute.create_flavor(**FLAVOR)).id
    admin.close()
    cloud.conn = cloud.connect("aio-demo")


def _up(cloud: BenchCloud) -> None:
    # No Neutron in either cloud: servers boot with --nic none, and Nova's
    # floor is measured on the same kind of cloud.
    args = ["up", "--driver", cloud.driver, "--no-neutron"]
    run_cli(cloud.layout.root, cloud.layout.port_base, *args, timeout=UP_TIMEOUT)
    _swap_in_probe(cloud.layout)
    _prepare(cloud)


def _down(cloud: BenchCloud, keep_logs: Path | None) -> None:
    try:
        if cloud.conn is not None:
            cloud.conn.close()
        run_cli(cloud.layout.root, cloud.layout.port_base, "down", timeout=300)
    finally:
        if keep_logs is not None and cloud.layout.logs.is_dir():
            target = keep_logs / cloud.driver
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(cloud.layout.logs, target)
        shutil.rmtree(cloud.layout.root, ignore_errors=True)


class Clouds:
    """``with Clouds(["docker", "fake"]) as clouds:`` — both up at once,
    both down at the end, also when anything fails."""

    def __init__(self, drivers: list[str], keep_logs: Path | None = None) -> None:
        """``keep_logs``: where each cloud's log dir is copied before its
        state dir goes (``<keep_logs>/<driver>/``)."""
        self.keep_logs = keep_logs
        self.by_driver: dict[str, BenchCloud] = {}
        base = FIRST_PORT_BASE
        for driver in drivers:
            base = free_port_base(base)
            root = Path(tempfile.mkdtemp(prefix=f"nova-docker-bench-{driver}-"))
            self.by_driver[driver] = BenchCloud(driver, Layout(root, base))
            base += 10

    def __enter__(self) -> Clouds:
        try:
            self._each(_up)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._each(lambda cloud: _down(cloud, self.keep_logs))

    def _each(self, work: Any) -> None:
        clouds = list(self.by_driver.values())
        with ThreadPoolExecutor(max_workers=max(1, len(clouds))) as pool:
            futures = [pool.submit(work, cloud) for cloud in clouds]
        errors = [f.exception() for f in futures if f.exception() is not None]
        if errors:
            raise errors[0]  # type: ignore[misc]

    def get(self, driver: str) -> BenchCloud | None:
        return self.by_driver.get(driver)
