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

"""Each compute host's own Docker Engine: its configuration, and two real
private engines that do not see each other's containers and leave nothing
behind when stopped."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from pathlib import Path

import docker
import docker.errors
import pytest

from nova_docker.conf import docker as docker_conf
from nova_docker_aio import engine
from nova_docker_aio import images
from nova_docker_aio import procs
from nova_docker_aio.layout import Layout
from nova_docker_aio.services import engine_host
from nova_docker_aio.services.base import Context
from nova_docker_aio.services.engine_host import PrivateEngine

LAYOUT = Layout(Path("/var/lib/" + "x" * 200), 30000)
IMAGE = "nda-engine-host-test:1"


def unavailable(reason: str) -> None:
    """Skip, or fail when CI promises the environment is complete."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


# -- configuration (pure) ---------------------------------------------------


def test_each_host_has_its_own_paths_socket_and_cgroup() -> None:
    one, two = (engine_host.daemon_config(LAYOUT, i) for i in (1, 2))
    for key in ("data-root", "exec-root", "pidfile", "hosts", "cgroup-parent"):
        assert one[key] != two[key], key
    assert one["data-root"] == str(LAYOUT.root / "dockerd-1")
    assert engine_host.api_url(LAYOUT, 1) == one["hosts"][0]


def test_sockets_fit_the_kernels_limit_whatever_the_state_dir() -> None:
    exec_root = LAYOUT.engine_exec_root(12)
    longest = exec_root / "containerd" / "containerd.sock.ttrpc"
    assert len(str(longest).encode()) < 108
    assert LAYOUT.engine_socket(12).parent == exec_root


def test_the_engine_touches_no_host_network_and_uses_no_registry() -> None:
    config = engine_host.daemon_config(LAYOUT, 1)
    assert config["bridge"] == "none"
    assert config["iptables"] is False and config["ip6tables"] is False
    assert config["registry-mirrors"] == []
    assert engine_host.command(LAYOUT, 1)[:3] == ["unshare", "--net", "--"]


def test_its_log_driver_is_the_drivers_default() -> None:
    (opt,) = [o for o in docker_conf.ALL_OPTS if o.name == "log_driver"]
    assert engine_host.daemon_config(LAYOUT, 1)["log-driver"] == opt.default


def test_names_follow_the_host_index() -> None:
    assert PrivateEngine(3).name == "dockerd-3"
    assert PrivateEngine(3).where(Context(LAYOUT, "docker", False)) == (
        f"unix://{LAYOUT.engine_socket(3)}"
    )


# -- two real engines -------------------------------------------------------


@pytest.fixture
def ctx(tmp_path: Path):
    if shutil.which("dockerd") is None:
        unavailable("no dockerd binary is installed")
    if os.geteuid() != 0:
        unavailable("a private dockerd needs root")
    layout = Layout(tmp_path / "state", 30000)
    ctx = Context(layout, "docker", False, (PrivateEngine(1), PrivateEngine(2)))
    for service in ctx.services:
        for path, content in service.configs(ctx).items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
    yield ctx
    # Whatever the test did: nothing of it may stay on the host.
    for service in ctx.services:
        with contextlib.suppress(Exception):
            service.stop(ctx)


def _client(ctx: Context, index: int) -> docker.APIClient:
    url = engine_host.api_url(ctx.layout, index)
    return docker.APIClient(base_url=url, version="auto", timeout=60)


def _start(ctx: Context, service: PrivateEngine) -> float:
    started = time.monotonic()
    service.start(ctx)
    elapsed = time.monotonic() - started
    print(f"{service.name} answered /_ping {elapsed:.2f}s after spawn")
    return elapsed


def _run_sleeper(client: docker.APIClient) -> dict:
    client.import_image_from_data(
        images.rootfs_tar(), repository=IMAGE.split(":", maxsplit=1)[0], tag="1"
    )
    created = client.create_container(
        IMAGE,
        command=["sleep", "600"],
        host_config=client.create_host_config(network_mode="none"),
    )
    client.start(created["Id"])
    return client.inspect_container(created["Id"])


def _processes_of(ctx: Context, index: int) -> dict[int, str]:
    """dockerd, containerd, shims and container processes, with start
    times (so a reused PID is not taken for a survivor)."""
    layout = ctx.layout
    pids = {procs.read_pid(layout.pidfile(f"dockerd-{index}"))}
    pids.update(engine_host.runtime_pids(layout.engine_exec_root(index)))
    pids.update(engine_host.cgroup_pids(engine_host.cgroup_parent(layout, index)))
    return {pid: procs.start_time(pid) for pid in pids if pid}


def test_two_hosts_engines_are_isolated_and_leave_nothing(ctx, tmp_path) -> None:
    images.ensure_busybox()
    host_answered = engine.answers()
    # dockerd given `bridge: none` deletes docker0: in its own namespace.
    host_bridge = Path("/sys/class/net/docker0").exists()
    one, two = ctx.services
    times = [_start(ctx, one), _start(ctx, two)]
    assert all(s.healthy(ctx) for s in (one, two))
    # overlay2 by name on ext4 and XFS; elsewhere whatever dockerd picks.
    expected = engine_host.storage_driver(ctx.layout.engine_data_root(1))
    driver = _client(ctx, 1).info()["Driver"]
    assert driver == expected or (expected is None and driver != "vfs")

    container = _run_sleeper(_client(ctx, 1))
    _client(ctx, 2).import_image_from_data(
        images.rootfs_tar(), repository=IMAGE.split(":", maxsplit=1)[0], tag="1"
    )
    assert _client(ctx, 2).containers(all=True) == []
    if host_answered:
        with pytest.raises(docker.errors.NotFound):
            _client_of_host().inspect_container(container["Id"])
    cgroups = Path(f"/proc/{container['State']['Pid']}/cgroup").read_text()
    assert engine_host.cgroup_parent(ctx.layout, 1) in cgroups

    survivors = {**_processes_of(ctx, 1), **_processes_of(ctx, 2)}
    # dockerd and containerd of each, a shim and the sleeper in engine 1.
    assert len(survivors) >= 6, survivors
    for service in (one, two):
        service.stop(ctx)
    _assert_nothing_left(ctx, tmp_path, survivors)
    if host_answered:
        assert engine.answers()
    assert Path("/sys/class/net/docker0").exists() == host_bridge

    # `down` keeps the data root: the next `up` finds its containers.
    times.append(_start(ctx, one))
    kept = _client(ctx, 1).inspect_container(container["Id"])
    assert kept["State"]["Running"] is False
    survivors = _processes_of(ctx, 1)
    one.stop(ctx)
    _assert_nothing_left(ctx, tmp_path, survivors)
    shutil.rmtree(ctx.layout.root)
    print(f"start times: {', '.join(f'{t:.2f}s' for t in times)}")


def _client_of_host() -> docker.APIClient:
    return docker.APIClient(base_url=engine.DEFAULT_URL, version="auto")


def _assert_nothing_left(ctx: Context, tmp_path: Path, pids: dict) -> None:
    # A zombie counts as gone: its parent, or init, collects it in its time.
    alive = [p for p, started in pids.items() if engine_host.alive(p, started)]
    assert alive == []
    roots = [tmp_path, *(ctx.layout.engine_exec_root(i) for i in (1, 2))]
    assert engine_host.mounts_under(roots) == []
    for index in (1, 2):
        assert not ctx.layout.engine_exec_root(index).exists()
        assert (
            engine_host.cgroup_dirs(engine_host.cgroup_parent(ctx.layout, index)) == []
        )
        assert procs.read_pid(ctx.layout.pidfile(f"dockerd-{index}")) is None


def test_what_a_crashed_engine_left_is_cleared(ctx, tmp_path) -> None:
    """A SIGKILLed dockerd leaves its shim, its container and their mounts;
    `down` clears them, and the next `up` starts on the same data root."""
    images.ensure_busybox()
    one = ctx.services[0]
    _start(ctx, one)
    container = _run_sleeper(_client(ctx, 1))
    survivors = _processes_of(ctx, 1)
    procs.kill(ctx.layout.pidfile(one.name))
    left = [p for p, started in survivors.items() if engine_host.alive(p, started)]
    assert container["State"]["Pid"] in left
    assert engine_host.mounts_under([tmp_path])

    one.stop(ctx)
    _assert_nothing_left(ctx, tmp_path, survivors)

    _start(ctx, one)
    kept = _client(ctx, 1).inspect_container(container["Id"])
    assert kept["State"]["Running"] is False
    survivors = _processes_of(ctx, 1)
    one.stop(ctx)
    _assert_nothing_left(ctx, tmp_path, survivors)
