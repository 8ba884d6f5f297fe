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

"""Bring one cloud up and down by running its table of services
(:mod:`nova_docker_aio.services`): the order of things, nothing more.

Each service's phases run in a thread of their own and wait only for what
they need, so independent chains (Keystone, Glance, Placement, OVN) come up
at once.  Each start is skipped when the recorded PID still runs, and each
one-time step leaves a marker in the state dir, so ``up`` twice is harmless.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from collections.abc import Iterable
from pathlib import Path

from nova_docker_aio import clouds_yaml
from nova_docker_aio import host
from nova_docker_aio import services
from nova_docker_aio.layout import PORT_OFFSETS
from nova_docker_aio.layout import Layout
from nova_docker_aio.services import nova
from nova_docker_aio.services.base import Context
from nova_docker_aio.services.base import Service
from nova_docker_aio.services.dashboard import Dashboard
from nova_docker_aio.steps import skip
from nova_docker_aio.steps import step

DRIVERS = nova.DRIVERS


def has_neutron(layout: Layout) -> bool:
    record = layout.network_record
    return record.exists() and record.read_text().strip() == "neutron"


def hosts(layout: Layout) -> int:
    """How many compute hosts the cloud was made with."""
    try:
        return int(layout.hosts_record.read_text())
    except (OSError, ValueError):
        return 1


def has_dashboard(layout: Layout) -> bool:
    """Whether the last ``up`` started the dashboard."""
    record = layout.dashboard_record
    return record.exists() and record.read_text().strip() == "on"


def _context(
    layout: Layout, driver: str, with_neutron: bool, count: int, dashboard: bool
) -> Context:
    table = services.table(with_neutron, count, dashboard)
    return Context(layout, driver, with_neutron, table, hosts=count)


def context(layout: Layout) -> Context:
    """The cloud in ``layout`` as it was made."""
    record = layout.driver_record
    driver = record.read_text().strip() if record.exists() else "docker"
    return _context(
        layout, driver, has_neutron(layout), hosts(layout), has_dashboard(layout)
    )


def service(ctx: Context, name: str) -> Service:
    (found,) = [s for s in ctx.services if s.name == name]
    return found


def up(
    layout: Layout,
    driver: str = "docker",
    with_neutron: bool | None = None,
    count: int | None = None,
    dashboard: bool = True,
) -> float:
    """Bring the cloud up, with ``count`` compute hosts (default: as it was
    made, one for a new cloud) and the dashboard unless told otherwise;
    return the seconds it took."""
    started = time.monotonic()
    with_neutron = _pin_network(layout, driver, with_neutron)
    count = _pin_hosts(layout, count)
    _leave_dashboard(layout, dashboard)
    ctx = _context(layout, driver, with_neutron, count, dashboard)
    computes = ", ".join(layout.host_name(i) for i in range(1, count + 1))
    print(
        f"nova-docker-aio: bringing up the cloud in {layout.root} "
        f"(ports {layout.port_base}-{layout.port_base + len(PORT_OFFSETS) - 1}, "
        f"compute host{'s' if count > 1 else ''} {computes}, driver {driver}, "
        f"network {'neutron (ML2/OVN)' if with_neutron else 'none'})"
    )
    _host(ctx)
    _pin_driver(layout, driver)
    for sub in (layout.logs, layout.run, layout.etc):
        sub.mkdir(parents=True, exist_ok=True)
    with step("config", "render service configuration"):
        _write_configs(ctx)
    order = _Order(ctx.services)
    order.run(lambda s: _bring_up(ctx, s, order))
    return time.monotonic() - started


def restart(layout: Layout, name: str) -> float:
    """Stop service ``name`` by its PID and start it again with freshly
    rendered configuration; return the seconds it took.

    What a compute-service restart does to the instances is up to Nova's
    ``init_host`` and the driver: containers keep running meanwhile.
    """
    ctx = context(layout)
    if not service(ctx, "mariadb").running(ctx):
        raise host.HostError(f"the cloud in {layout.root} is not up")
    restartable = [
        s.name
        for s in ctx.services
        if s.name.startswith("nova") or s is _dashboard(ctx)
    ]
    if name not in restartable:
        raise host.HostError(
            f"{name} is not a Nova process or the dashboard of this cloud: "
            f"{', '.join(restartable)}"
        )
    started = time.monotonic()
    with step("config", "render service configuration"):
        # As `up` would: this launcher's settings, then local.conf's.
        _write_configs(ctx)
    restarted = service(ctx, name)
    restarted.stop(ctx)
    _start(ctx, restarted)
    return time.monotonic() - started


def _dashboard(ctx: Context) -> Service | None:
    found = [s for s in ctx.services if s.name == Dashboard.name]
    return found[0] if found else None


def down(layout: Layout) -> None:
    """Stop every service this cloud started, by its recorded PID, each
    after the services that need it (Nova first, the database last); then
    give back the shared switch."""
    ctx = context(layout)
    _Order(ctx.services, reverse=True).run(lambda s: s.stop(ctx), keep_going=True)


def _bring_up(ctx: Context, service: Service, order: _Order) -> None:
    order.wait(service.setup_after)
    service.setup(ctx)
    order.wait(service.start_after)
    _start(ctx, service)
    order.wait(service.bootstrap_after)
    service.bootstrap(ctx)


def _start(ctx: Context, service: Service) -> None:
    """A daemon is started unless it runs; what is not a daemon of this
    cloud (its share of the host's switch) reports its own steps."""
    if not service.daemon:
        service.start(ctx)
        return
    if service.running(ctx):
        skip(service.name, "start")
        return
    ports = service.ports(ctx)
    where = f" on 127.0.0.1:{ctx.layout.port(ports[0])}" if ports else ""
    with step(service.name, f"start{where}", ctx.layout.log(service.name)):
        service.start(ctx)


class _GaveUp(Exception):
    """Another service failed: this one stops waiting for it."""


class _Order:
    """One thread per service; each waits for the services it names.

    With ``reverse`` (``down``), a service waits instead for every service
    that needs it to run (``setup_after`` and ``start_after``) to finish.
    """

    def __init__(self, table: Iterable[Service], reverse: bool = False) -> None:
        self._table = tuple(table)
        self._done = {s.name: threading.Event() for s in self._table}
        self._failed = threading.Event()
        self._reverse = reverse

    def wait(self, names: Iterable[str]) -> None:
        for name in names:
            event = self._done.get(name)
            while event is not None and not event.wait(0.1):
                if self._failed.is_set():
                    raise _GaveUp

    def _needed_by(self, service: Service) -> tuple[str, ...]:
        return tuple(
            s.name
            for s in self._table
            if service.name in (*s.setup_after, *s.start_after)
        )

    def run(self, work: Callable[[Service], None], keep_going: bool = False) -> None:
        """Run ``work`` for every service; re-raise the first failure once
        all threads ended.  ``keep_going``: a failure does not stop the
        services that wait for the failed one."""
        errors: list[BaseException] = []

        def one(service: Service) -> None:
            try:
                if self._reverse:
                    self.wait(self._needed_by(service))
                work(service)
            except _GaveUp:
                return
            except BaseException as exc:
                errors.append(exc)
                if not keep_going:
                    self._failed.set()
                    return
            self._done[service.name].set()

        threads = [
            threading.Thread(target=one, args=(s,), name=s.name, daemon=True)
            for s in self._table
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]


def _write_configs(ctx: Context) -> None:
    files: dict[Path, str] = {}
    for svc in ctx.services:
        files.update(svc.configs(ctx))
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(0o600)
    clouds_yaml.write(ctx.layout, ctx.secrets)


def _host(ctx: Context) -> None:
    host.require_root("nova-docker-aio up")
    with step("host", "packages and engine"):
        for svc in ctx.services:
            svc.ensure_installed(ctx)
    ours = {
        port
        for svc in ctx.services
        if svc.daemon and svc.running(ctx)
        for port in svc.ports(ctx)
    }
    wanted = {port for svc in ctx.services for port in svc.ports(ctx)}
    host.check_ports_free(ctx.layout, wanted - ours)


def _leave_dashboard(layout: Layout, dashboard: bool) -> None:
    """Record whether this ``up`` runs the dashboard; one that an earlier
    ``up`` started and this one leaves out is stopped, so ``down`` (which
    stops what the record names) never loses track of it."""
    previous = context(layout) if layout.root.exists() else None
    if not dashboard and previous and has_dashboard(layout):
        ran = service(previous, Dashboard.name)
        if ran.running(previous):
            ran.stop(previous)
    layout.root.mkdir(parents=True, exist_ok=True)
    layout.dashboard_record.write_text("on\n" if dashboard else "off\n")


def _pin_driver(layout: Layout, driver: str) -> None:
    """Refuse to switch a state dir's driver: Nova's compute node identity
    (``state_path/compute_id``) and the database would disagree."""
    record = layout.driver_record
    previous = record.read_text().strip() if record.exists() else driver
    if previous != driver:
        raise host.HostError(
            f"{layout.root} holds a cloud made with --driver {previous}; use "
            f"--driver {previous}, or another --state-dir (and --port-base)"
        )
    layout.root.mkdir(parents=True, exist_ok=True)
    record.write_text(f"{driver}\n")


def _pin_network(layout: Layout, driver: str, with_neutron: bool | None) -> bool:
    """Whether this cloud runs Neutron: as asked, else as first made, else
    yes for the Docker driver (Nova's fake driver plugs nothing)."""
    record = layout.network_record
    previous = record.read_text().strip() if record.exists() else None
    wanted = {True: "neutron", False: "none", None: previous}[with_neutron]
    wanted = wanted or ("neutron" if driver == "docker" else "none")
    if previous not in (None, wanted):
        flag = "--no-neutron" if previous == "none" else "no --no-neutron"
        raise host.HostError(
            f"{layout.root} holds a cloud made with network {previous}; use "
            f"{flag}, or another --state-dir (and --port-base)"
        )
    layout.root.mkdir(parents=True, exist_ok=True)
    record.write_text(f"{wanted}\n")
    return wanted == "neutron"


def _pin_hosts(layout: Layout, count: int | None) -> int:
    """How many compute hosts: as asked, else as first made, else one.  A
    cloud keeps its count: the services, names and engines differ."""
    previous = hosts(layout) if layout.hosts_record.exists() else None
    wanted = count or previous or 1
    if wanted < 1:
        raise host.HostError(f"--hosts must be at least 1, not {wanted}")
    if previous not in (None, wanted):
        raise host.HostError(
            f"{layout.root} holds a cloud made with --hosts {previous}; use "
            f"that, or another --state-dir (and --port-base)"
        )
    layout.root.mkdir(parents=True, exist_ok=True)
    layout.hosts_record.write_text(f"{wanted}\n")
    return wanted
