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

"""8. Cold migration (issue 11): ``openstack server migrate`` until
VERIFY_RESIZE, then ``openstack server resize confirm`` until ACTIVE, of a
server into which ``snapshot_mib`` MiB of random data were written; against
raw Docker moving the same bytes between the same two engines: ``docker
commit`` on the first, ``docker save | docker load`` into the second, and
``docker run`` there.

A move needs two compute hosts, so this benchmark brings up clouds of its
own (``--hosts 2``): one with this driver, one with Nova's fake driver,
whose same migrate + confirm flow is Nova's own cost.  Each host has its own
engine, as separate machines would.  A sample counts only if the data
arrived: its checksum inside the container on the destination equals the
one taken on the source, the source's container is gone, and so is the
transient Glance image that carried it.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from pathlib import Path
from typing import Any

import docker
import docker.errors

from bench import images as bench_images
from bench import servers
from bench.clouds import BenchCloud
from bench.clouds import Clouds
from bench.context import Context
from bench.rss import PeakRss
from bench.stats import Figure
from bench.stats import median
from nova_docker import migration
from nova_docker.engine import naming
from nova_docker_aio import images
from nova_docker_aio import poll

HOSTS = 2
DATA = "/data.bin"
#: PID 1 that exits on SIGTERM.  The driver stops a server before it
#: commits it; busybox ``sleep`` alone ignores SIGTERM as PID 1, and every
#: stop would wait out Nova's clean-shutdown timeout (60 s) instead.
TERM_CMD = ["/bin/sh", "-c", "trap 'exit 0' TERM; sleep 999999 & wait"]
#: Seconds between polls of the server; a move takes seconds.
POLL = 0.05
#: Polls between looks at Nova's migration record, to catch a move that
#: Nova rolled back (the server is ACTIVE again, never VERIFY_RESIZE).
MIGRATION_EVERY = 20
MIB = 1024 * 1024


class MoveFailed(RuntimeError):
    pass


# -- inside containers ------------------------------------------------------


def _client(url: str) -> docker.APIClient:
    return docker.APIClient(base_url=url, version="auto", timeout=900)


def _exec(api: docker.APIClient, container: str, argv: list[str]) -> str:
    """Run ``argv`` in ``container``; its output, or raise if it failed."""
    made = api.exec_create(container, argv)
    output = api.exec_start(made["Id"]).decode(errors="replace")
    code = api.exec_inspect(made["Id"])["ExitCode"]
    if code != 0:
        raise RuntimeError(f"{argv} in {container} exited with {code}: {output}")
    return output


def _checksum(api: docker.APIClient, container: str) -> str:
    """sha256 of the data, as the container itself reads it."""
    return _exec(api, container, ["/bin/busybox", "sha256sum", DATA]).split()[0]


def _write(api: docker.APIClient, container: str, mib: int) -> str:
    """``mib`` MiB of incompressible data into the container's own
    filesystem; its checksum."""
    argv = ["/bin/busybox", "dd", "if=/dev/urandom", f"of={DATA}", "bs=1M"]
    _exec(api, container, [*argv, f"count={mib}"])
    return _checksum(api, container)


def _has_container(api: docker.APIClient, name: str) -> bool:
    try:
        api.inspect_container(name)
    except docker.errors.NotFound:
        return False
    return True


# -- raw Docker ---------------------------------------------------------------


def _cli(url: str, *args: str, **kwargs: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(["docker", "-H", url, *args], **kwargs)


def _save_load(src_url: str, dst_url: str, ref: str) -> None:
    """``docker save REF | docker load``, each CLI on its own engine."""
    save = _cli(src_url, "save", ref, stdout=subprocess.PIPE)
    load = _cli(dst_url, "load", stdin=save.stdout, stdout=subprocess.DEVNULL)
    assert save.stdout is not None
    save.stdout.close()  # load holds the pipe now: save sees it close
    if load.wait() != 0 or save.wait() != 0:
        raise RuntimeError(f"docker save {ref} | docker load failed")


def _timed(work: Any, *args: Any) -> float:
    started = time.monotonic()
    work(*args)
    return time.monotonic() - started


def _raw_move(
    ctx: Context, cloud: BenchCloud, name: str, image_ref: str
) -> dict[str, float]:
    """From host 1's engine to host 2's, the container ``name`` already
    running with its data on host 1.  Each part's seconds."""
    src_url, dst_url = (cloud.engine_url(cloud.host_name(i)) for i in (1, 2))
    src, dst = _client(src_url), _client(dst_url)
    moved = f"nova-docker-bench-moved:{name}"
    try:
        before = _checksum(src, name)
        took = {
            # As the driver does: the container is stopped, then committed.
            "raw_stop_s": _timed(src.stop, name),
            "raw_commit_s": _timed(_cli_ok, src_url, "commit", name, moved),
            "raw_save_load_s": _timed(_save_load, src_url, dst_url, moved),
            "raw_run_s": ctx.engine.create_start(moved, name, client=dst),
        }
        if _checksum(dst, name) != before:
            raise MoveFailed("raw docker: the data changed on the way")
    finally:
        for api in (src, dst):
            _remove(api, name, moved)
            api.close()
    took["raw_s"] = took["raw_commit_s"] + took["raw_save_load_s"] + took["raw_run_s"]
    return took


def _cli_ok(url: str, *args: str) -> None:
    if _cli(url, *args, stdout=subprocess.DEVNULL).wait() != 0:
        raise RuntimeError(f"docker {' '.join(args)} failed")


def _remove(api: docker.APIClient, container: str, *refs: str) -> None:
    with contextlib.suppress(docker.errors.NotFound):
        api.remove_container(container, force=True, v=True)
    for ref in refs:
        with contextlib.suppress(docker.errors.NotFound):
            api.remove_image(ref, force=True)


def _raw(ctx: Context, cloud: BenchCloud, tarball: Path, ref: str) -> dict:
    """The same image and the same amount of data as the server's, in a
    container on host 1's engine; then moved to host 2's."""
    url = cloud.engine_url(cloud.host_name(1))
    name = ctx.name("raw-move")
    api = _client(url)
    try:
        with open(tarball, "rb") as data:
            api.load_image(data)
        ctx.engine.create_start(ref, name, client=api)
        _write(api, name, ctx.options.snapshot_mib)
        return _raw_move(ctx, cloud, name, ref)
    finally:
        _remove(api, name, ref)
        api.close()


# -- through Nova -------------------------------------------------------------


def _server(cloud: BenchCloud, server_id: str) -> Any:
    return cloud.admin.compute.get_server(server_id)


def _rolled_back(cloud: BenchCloud, server_id: str) -> str:
    """The status of the server's move if Nova gave up on it, else ''."""
    for found in cloud.admin.compute.migrations(instance_uuid=server_id):
        if found.status in ("error", "failed"):
            return str(found.status)
    return ""


def _wait_status(cloud: BenchCloud, server_id: str, wanted: str) -> None:
    polls = 0

    def reached() -> bool:
        nonlocal polls
        server = _server(cloud, server_id)
        if server.status == "ERROR":
            fault = (server.fault or {}).get("message", "no fault recorded")
            raise MoveFailed(f"server {server_id} went to ERROR: {fault}")
        polls += 1
        if polls % MIGRATION_EVERY == 0 and _rolled_back(cloud, server_id):
            raise MoveFailed(f"the move of {server_id} failed; see nova-compute")
        return server.status == wanted

    poll.until(reached, f"server {server_id} is {wanted}", servers.TIMEOUT, POLL)


def _migrate_confirm(cloud: BenchCloud, server_id: str) -> dict[str, float]:
    """``server migrate`` → VERIFY_RESIZE, then confirm → ACTIVE; Nova sets
    ACTIVE only once the source host has removed what it kept."""
    started = time.monotonic()
    cloud.admin.compute.migrate_server(server_id)
    _wait_status(cloud, server_id, "VERIFY_RESIZE")
    migrated = time.monotonic()
    cloud.admin.compute.confirm_server_resize(server_id)
    _wait_status(cloud, server_id, "ACTIVE")
    done = time.monotonic()
    return {"migrate_s": migrated - started, "confirm_s": done - migrated}


def _moved(cloud: BenchCloud, server_id: str, source: str) -> str:
    """The host the server is on now, which must not be ``source``."""
    dest = _server(cloud, server_id).compute_host
    if dest == source:
        raise MoveFailed(f"server {server_id} stayed on {source}")
    return dest


def _other(cloud: BenchCloud, host: str) -> str:
    names = [cloud.host_name(i) for i in range(1, HOSTS + 1)]
    return next(name for name in names if name != host)


def _transient_left(cloud: BenchCloud, server_id: str) -> int:
    """Glance images still carrying the server's filesystem: the one whose
    ID the driver derives from the move, and any hidden one naming it."""
    moves = cloud.admin.compute.migrations(instance_uuid=server_id)
    ids = {migration.transient_image_id(server_id, m.uuid) for m in moves}
    left = {i for i in ids if cloud.admin.image.find_image(i) is not None}
    for image in cloud.admin.image.images(os_hidden=True):
        props = image.properties or {}
        if props.get(migration.INSTANCE_PROPERTY) == server_id:
            left.add(image.id)
    return len(left)


def _driver(ctx: Context, cloud: BenchCloud) -> dict[str, float]:
    server_id, _ = servers.boot_timed(cloud, ctx.name("move"))
    container = naming.container_name(server_id)
    try:
        source = _server(cloud, server_id).compute_host
        src = _client(cloud.engine_url(source))
        before = _write(src, container, ctx.options.snapshot_mib)
        pids = (cloud.compute_pid(source), cloud.compute_pid(_other(cloud, source)))
        with PeakRss(pids[0]) as src_peak, PeakRss(pids[1]) as dst_peak:
            took = _migrate_confirm(cloud, server_id)
        dst = _client(cloud.engine_url(_moved(cloud, server_id, source)))
        if _checksum(dst, container) != before:
            raise MoveFailed(f"server {server_id}: the data changed on the way")
        if _has_container(src, container):
            raise MoveFailed(f"server {server_id}: its source container is left")
        src.close()
        dst.close()
        return {
            **{f"driver_{k}": v for k, v in took.items()},
            "driver_s": took["migrate_s"] + took["confirm_s"],
            "source_rss_growth_mib": src_peak.growth_mib,
            "dest_rss_growth_mib": dst_peak.growth_mib,
            "transient_images_left": float(_transient_left(cloud, server_id)),
        }
    finally:
        servers.remove(cloud, [server_id])


def _fake(ctx: Context, cloud: BenchCloud) -> dict[str, float]:
    """The same API flow on Nova's fake driver: what Nova alone costs."""
    server_id, _ = servers.boot_timed(cloud, ctx.name("move"))
    try:
        source = _server(cloud, server_id).compute_host
        took = _migrate_confirm(cloud, server_id)
        _moved(cloud, server_id, source)
    finally:
        servers.remove(cloud, [server_id])
    return {
        **{f"fake_{k}": v for k, v in took.items()},
        "fake_s": took["migrate_s"] + took["confirm_s"],
    }


# -- the benchmark ------------------------------------------------------------


def _image(ctx: Context) -> tuple[str, Path]:
    """The servers' image, built here and saved once for both Glances and
    for the raw baseline's engine."""
    ref = images.build("nova-docker-bench-move", TERM_CMD, tag=ctx.engine.run_id)
    ctx.engine.track_image(ref)
    tarball = ctx.workdir / "move-image.tar"
    bench_images.save(ctx.engine, ref, tarball)
    return ref, tarball


def _measure(ctx: Context, clouds: Clouds, ref: str, tarball: Path) -> dict:
    samples: dict[str, list[float]] = {}
    for i in range(ctx.options.heavy_iterations):
        sample = {
            **_raw(ctx, clouds.by_driver["docker"], tarball, ref),
            **_driver(ctx, clouds.by_driver["docker"]),
            **_fake(ctx, clouds.by_driver["fake"]),
        }
        for key, value in sample.items():
            samples.setdefault(key, []).append(value)
        ctx.say(
            f"cold migration {i + 1}: driver {sample['driver_s']:.2f}s "
            f"(migrate {sample['driver_migrate_s']:.2f}s + confirm "
            f"{sample['driver_confirm_s']:.2f}s) vs commit+save|load+run "
            f"{sample['raw_s']:.2f}s; fake driver {sample['fake_s']:.2f}s; RSS +"
            f"{sample['source_rss_growth_mib']:.1f}/"
            f"{sample['dest_rss_growth_mib']:.1f} MiB (source/dest)"
        )
    return samples


def _figures(ctx: Context, samples: dict[str, list[float]]) -> None:
    medians = {k: median(v) for k, v in samples.items()}
    mib = float(ctx.options.snapshot_mib)
    medians["changes_mib"] = mib
    ctx.figures.append(
        Figure(
            name="cold_migration.ratio",
            formula="(migrate → VERIFY_RESIZE + confirm → ACTIVE) / "
            "(docker commit + docker save | docker load + create+start)",
            ratio=medians["driver_s"] / medians["raw_s"],
            medians=medians,
            samples=samples,
        )
    )
    ctx.figures.append(
        Figure(
            name="cold_migration.overhead",
            formula="(migrate+confirm with this driver - the same with the fake "
            "driver) / raw commit + save|load + run",
            ratio=(medians["driver_s"] - medians["fake_s"]) / medians["raw_s"],
            medians={k: medians[k] for k in ("driver_s", "fake_s", "raw_s")},
        )
    )
    growth = samples["source_rss_growth_mib"] + samples["dest_rss_growth_mib"]
    ctx.figures.append(
        Figure(
            name="cold_migration.rss_growth_mib",
            formula="peak RSS growth of the source and destination nova-compute, "
            "MiB (absolute, the larger)",
            ratio=max(growth),
            target="< 64",
            medians={
                "source_mib": medians["source_rss_growth_mib"],
                "dest_mib": medians["dest_rss_growth_mib"],
                "changes_mib": mib,
            },
        )
    )
    ctx.figures.append(
        Figure(
            name="cold_migration.transient_images_left",
            formula="transient Glance images left after confirm (count, all runs)",
            ratio=sum(samples["transient_images_left"]),
            target="== 0",
        )
    )


def run(ctx: Context) -> None:
    ref, tarball = _image(ctx)
    ctx.say(f"clouds: docker and fake, {HOSTS} hosts each, up at once")
    keep_logs = ctx.clouds.keep_logs
    with Clouds(["docker", "fake"], keep_logs, hosts=HOSTS) as clouds:
        for cloud in clouds.by_driver.values():
            cloud.base_image_id = bench_images.upload(
                cloud.conn, ctx.name("move-image"), tarball
            )
        samples = _measure(ctx, clouds, ref, tarball)
        ctx.say("clouds: down (removes their containers and engines)")
    _figures(ctx, samples)
