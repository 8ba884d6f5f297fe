"""Bring one cloud up and down: the order of things, nothing more.

Each service's start is skipped when its recorded PID still runs, and each
one-time step leaves a marker in the state dir, so ``up`` twice is harmless.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from nova_docker.aio import catalog
from nova_docker.aio import configs
from nova_docker.aio import external
from nova_docker.aio import hostcheck
from nova_docker.aio import keystone
from nova_docker.aio import mariadb
from nova_docker.aio import neutron
from nova_docker.aio import neutron_bootstrap
from nova_docker.aio import nova_setup
from nova_docker.aio import ovn
from nova_docker.aio import ovs
from nova_docker.aio import procs
from nova_docker.aio import secret
from nova_docker.aio import tools
from nova_docker.aio import wsgi
from nova_docker.aio.layout import PORT_OFFSETS
from nova_docker.aio.layout import Layout
from nova_docker.aio.steps import say
from nova_docker.aio.steps import skip
from nova_docker.aio.steps import step

#: ``fake`` is Nova's fake driver in the variant with a stable node identity
#: (plain ``fake.FakeDriver`` invents a node UUID per process, so its cloud
#: could not be restarted).
DRIVERS = {"docker": "docker.DockerDriver", "fake": "fake.FakeDriverWithoutFakeNodes"}
#: In start order.
BASE_SERVICES = ("mariadb", "keystone", "glance", "placement", "nova")
#: Started only in a cloud with Neutron.
NETWORK_SERVICES = (*ovn.DAEMONS, "neutron")
SERVICES = (*BASE_SERVICES, *NETWORK_SERVICES)
DOCKER_URL = "unix:///var/run/docker.sock"
#: The operator's own Nova settings, read after the generated nova.conf.
LOCAL_CONF = "local.conf"


def has_neutron(layout: Layout) -> bool:
    record = layout.root / "network"
    return record.exists() and record.read_text().strip() == "neutron"


def services(layout: Layout) -> tuple[str, ...]:
    """This cloud's services, in start order."""
    return SERVICES if has_neutron(layout) else BASE_SERVICES


def running(layout: Layout, service: str) -> bool:
    return procs.read_pid(layout.pidfile(service)) is not None


def _once(
    layout: Layout, service: str, what: str, work: Callable[[], None], log: Path
) -> None:
    """Run ``work`` unless a previous ``up`` completed it."""
    marker = layout.marker(f"{service}-{what.replace(' ', '-')}")
    if marker.exists():
        skip(service, what)
        return
    with step(service, what, log):
        work()
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()


def _write_configs(
    layout: Layout, secrets: Mapping[str, str], driver: str, with_neutron: bool
) -> None:
    switch_db = ovs.Switch().connection if with_neutron else None
    files = {
        keystone.config_file(layout): configs.keystone(layout, secrets),
        layout.etc / "glance" / "glance-api.conf": configs.glance(
            layout, secrets, str(tools.data_file("glance/glance-api-paste.ini"))
        ),
        layout.etc / "placement" / "placement.conf": configs.placement(layout, secrets),
        nova_setup.config_file(layout): configs.nova(
            layout, secrets, DRIVERS[driver], DOCKER_URL, switch_db
        ),
    }
    if with_neutron:
        conf, ml2 = neutron.config_files(layout)
        files[conf] = configs.neutron(layout, secrets, neutron.paste_config())
        files[ml2] = configs.ml2(layout)
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(0o600)
    shutil.copyfile(
        tools.data_file("nova/api-paste.ini"), layout.etc / "nova" / "api-paste.ini"
    )


def _start(layout: Layout, service: str, start: Callable[[], None]) -> None:
    if running(layout, service):
        skip(service, "start")
        return
    with step(
        service, f"start on 127.0.0.1:{layout.port(service)}", layout.log(service)
    ):
        start()


def _database(layout: Layout, secrets: Mapping[str, str], with_neutron: bool) -> None:
    log = layout.log("mariadb")
    _once(
        layout, "mariadb", "initialize datadir", lambda: mariadb.initialize(layout), log
    )
    _start(layout, "mariadb", lambda: mariadb.start(layout))
    with step("mariadb", "databases and users", log):
        for name in (
            "keystone",
            "glance",
            "placement",
            "nova_api",
            "nova_cell0",
            "nova_cell1",
            *(("neutron",) if with_neutron else ()),
        ):
            mariadb.ensure_database(layout, name, secrets[f"db_{name}"])


def _keystone(layout: Layout, secrets: Mapping[str, str]) -> None:
    log = layout.log("keystone-manage")
    _once(layout, "keystone", "db sync", lambda: keystone.db_sync(layout), log)
    with step("keystone", "fernet and credential keys", log):
        keystone.setup_keys(layout)
    env = {"OS_KEYSTONE_CONFIG_FILES": str(keystone.config_file(layout))}
    _start(layout, "keystone", lambda: wsgi.start(layout, "keystone", env))
    _once(
        layout,
        "keystone",
        "bootstrap",
        lambda: keystone.bootstrap(layout, secrets["admin"]),
        log,
    )
    _once(
        layout,
        "keystone",
        "users and catalog",
        lambda: catalog.bootstrap_identity(layout, secrets),
        layout.log("keystone"),
    )


def _glance(layout: Layout) -> None:
    conf = layout.etc / "glance" / "glance-api.conf"
    manage = [tools.bin_path("glance-manage"), "--config-file", str(conf), "db_sync"]
    log = layout.log("glance-manage")
    _once(layout, "glance", "db sync", lambda: procs.run(manage, log), log)
    env = {"OS_GLANCE_CONFIG_DIR": str(conf.parent)}
    _start(layout, "glance", lambda: wsgi.start(layout, "glance", env))


def _placement(layout: Layout) -> None:
    conf = layout.etc / "placement" / "placement.conf"
    manage = [
        tools.bin_path("placement-manage"),
        "--config-file",
        str(conf),
        "db",
        "sync",
    ]
    log = layout.log("placement-manage")
    _once(layout, "placement", "db sync", lambda: procs.run(manage, log), log)
    env = {"OS_PLACEMENT_CONFIG_DIR": str(conf.parent)}
    _start(layout, "placement", lambda: wsgi.start(layout, "placement", env, 4))


def nova_config_files(layout: Layout) -> str:
    """The files Nova reads from its config dir, in order (its
    ``OS_NOVA_CONFIG_FILES``): the generated ``nova.conf``, then the
    operator's ``local.conf`` when there is one, so its settings win and
    survive every ``up``."""
    files = ["api-paste.ini", "nova.conf"]
    if (layout.etc / "nova" / LOCAL_CONF).exists():
        files.append(LOCAL_CONF)
    return ";".join(files)


def start_nova(
    layout: Layout,
    with_neutron: bool,
    runner: str = "nova_docker.aio.nova_runner",
    extra_args: Sequence[str] = (),
    extra_env: Mapping[str, str] | None = None,
    timeout: float = 120,
) -> None:
    """Start the Nova process and wait until it is ready.

    ``runner`` is the module to run: :mod:`.nova_runner`, or one that takes
    the same arguments (the benchmarks' probe) plus ``extra_args``.
    """
    ready = layout.run / "nova.ready"
    argv = [
        sys.executable,
        "-m",
        runner,
        "--config-dir",
        str(layout.etc / "nova"),
        "--api-port",
        str(layout.port("nova")),
        "--ready-file",
        str(ready),
        *extra_args,
    ]
    if not with_neutron:
        argv += ["--null-network-port", str(layout.port("null-network"))]
    pidfile = layout.pidfile("nova")
    # A temp dir of its own: whatever Nova or the driver leaves there after
    # a crash is this cloud's, and visible (the fault tests look).
    tmp = layout.root / "nova" / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    env = {
        "OS_NOVA_CONFIG_FILES": nova_config_files(layout),
        "TMPDIR": str(tmp),
        **(extra_env or {}),
    }
    procs.spawn(argv, pidfile, layout.log("nova"), env)
    what = f"nova (api, conductor, scheduler, compute) under {runner}"
    procs.wait_for(ready.exists, pidfile, timeout, what)


def _parallel(*chains: Callable[[], None]) -> None:
    """Run independent chains at once; re-raise the first failure."""
    with ThreadPoolExecutor(max_workers=len(chains)) as pool:
        futures = [pool.submit(chain) for chain in chains]
    for future in futures:
        future.result()


def _host(layout: Layout, driver: str, with_neutron: bool) -> None:
    hostcheck.require_root("nova-docker-aio up")
    with step("host", "packages and engine"):
        mariadb.ensure_installed()
        if with_neutron:
            ovn.ensure_installed()
        if driver == "docker":
            hostcheck.ensure_engine(layout.log("dockerd"))
    ours = {name for name in SERVICES if running(layout, name)}
    unused = {"null-network"} if with_neutron else {"neutron"}
    if "nova" in ours:
        ours.add("null-network")
    hostcheck.check_ports_free(layout, set(PORT_OFFSETS) - ours - unused)


def _service_dirs(layout: Layout) -> tuple[Path, ...]:
    """Directories the services write to but do not create themselves."""
    glance, nova = layout.root / "glance", layout.root / "nova"
    return (
        glance / "images",
        glance / "staging",
        glance / "tasks",
        glance / "lock",
        nova / "instances",
        nova / "lock",
    )


def _pin_driver(layout: Layout, driver: str) -> None:
    """Refuse to switch a state dir's driver: Nova's compute node identity
    (``state_path/compute_id``) and the database would disagree."""
    record = layout.root / "driver"
    previous = record.read_text().strip() if record.exists() else driver
    if previous != driver:
        raise hostcheck.HostError(
            f"{layout.root} holds a cloud made with --driver {previous}; use "
            f"--driver {previous}, or another --state-dir (and --port-base)"
        )
    layout.root.mkdir(parents=True, exist_ok=True)
    record.write_text(f"{driver}\n")


def _pin_network(layout: Layout, driver: str, with_neutron: bool | None) -> bool:
    """Whether this cloud runs Neutron: as asked, else as first made, else
    yes for the Docker driver (Nova's fake driver plugs nothing)."""
    record = layout.root / "network"
    previous = record.read_text().strip() if record.exists() else None
    wanted = {True: "neutron", False: "none", None: previous}[with_neutron]
    wanted = wanted or ("neutron" if driver == "docker" else "none")
    if previous not in (None, wanted):
        flag = "--no-neutron" if previous == "none" else "no --no-neutron"
        raise hostcheck.HostError(
            f"{layout.root} holds a cloud made with network {previous}; use "
            f"{flag}, or another --state-dir (and --port-base)"
        )
    layout.root.mkdir(parents=True, exist_ok=True)
    record.write_text(f"{wanted}\n")
    return wanted == "neutron"


def up(
    layout: Layout, driver: str = "docker", with_neutron: bool | None = None
) -> float:
    """Bring the cloud up; return the seconds it took."""
    started = time.monotonic()
    with_neutron = _pin_network(layout, driver, with_neutron)
    print(
        f"nova-docker-aio: bringing up the cloud in {layout.root} "
        f"(ports {layout.port_base}-{layout.port_base + len(PORT_OFFSETS) - 1}, "
        f"compute host {layout.compute_host}, driver {driver}, "
        f"network {'neutron (ML2/OVN)' if with_neutron else 'none'})"
    )
    _host(layout, driver, with_neutron)
    _pin_driver(layout, driver)
    for sub in (layout.logs, layout.run, layout.etc, *_service_dirs(layout)):
        sub.mkdir(parents=True, exist_ok=True)
    secrets = secret.load_or_create(layout)
    with step("config", "render service configuration"):
        _write_configs(layout, secrets, driver, with_neutron)
    _database(layout, secrets, with_neutron)
    network = (lambda: _network(layout)) if with_neutron else (lambda: None)
    _parallel(
        network,
        lambda: _keystone(layout, secrets),
        lambda: _glance(layout),
        lambda: _placement(layout),
        lambda: _once(
            layout,
            "nova",
            "databases and cells",
            lambda: nova_setup.sync_databases(layout, secrets),
            layout.log("nova-manage"),
        ),
    )
    if with_neutron:
        _once(
            layout,
            "neutron",
            "user and catalog",
            lambda: catalog.bootstrap_network_service(layout, secrets),
            layout.log("keystone"),
        )
    _start(layout, "nova", lambda: start_nova(layout, with_neutron))
    with step("nova", "container flavors", layout.log("nova")):
        catalog.ensure_flavors(layout, secrets)
    catalog.write_clouds_yaml(layout, secrets)
    if with_neutron:
        _default_networks(layout, secrets)
    return time.monotonic() - started


def restart_nova(layout: Layout) -> float:
    """Stop Nova (API, conductor, scheduler, compute) by its PID and start
    it again with freshly rendered configuration; return the seconds it
    took.

    What a compute-service restart does to the instances is up to Nova's
    ``init_host`` and the driver: containers keep running meanwhile.
    """
    if not running(layout, "mariadb"):
        raise hostcheck.HostError(f"the cloud in {layout.root} is not up")
    started = time.monotonic()
    driver = (layout.root / "driver").read_text().strip()
    with step("config", "render service configuration"):
        # As `up` would: this launcher's settings, then local.conf's.
        _write_configs(
            layout, secret.load_or_create(layout), driver, has_neutron(layout)
        )
    _stop(layout, "nova")
    (layout.run / "nova.ready").unlink(missing_ok=True)
    _start(layout, "nova", lambda: start_nova(layout, has_neutron(layout)))
    return time.monotonic() - started


def _stop(layout: Layout, service: str) -> None:
    with step(service, "stop"):
        if not procs.stop(layout.pidfile(service), timeout=30):
            say(f"  [{service}] was not running")


def down(layout: Layout) -> None:
    """Stop every service this cloud started, by its recorded PID: Nova
    first, the database last; then give back the shared switch."""
    with_neutron = has_neutron(layout)
    _stop(layout, "nova")
    apis = ("keystone", "glance", "placement", *(("neutron",) if with_neutron else ()))
    _parallel(*(lambda s=s: _stop(layout, s) for s in apis))
    for daemon in reversed(ovn.DAEMONS if with_neutron else ()):
        _stop(layout, daemon)
    _stop(layout, "mariadb")
    (layout.run / "nova.ready").unlink(missing_ok=True)
    _release_switch(layout)


def _switch_claim(layout: Layout) -> str:
    """This cloud's claim on the shared switch (see :mod:`.ovs`)."""
    return f"cloud-{layout.compute_host}"


def _network(layout: Layout) -> None:
    """The shared switch with this cloud's bridges, its OVN, then Neutron."""
    log = layout.log("ovn-controller")
    with step("ovs", "shared switch and bridges", ovs.Switch().log("ovs-vswitchd")):
        switch = ovs.acquire(_switch_claim(layout), f"state {layout.root}")
        # Two clouds coming up at once must not pick the same range.
        with ovs.locked(switch):
            ranges = external.choose(layout, switch)
            ovs.add_bridge(switch, layout.bridge("int"))
            ovs.add_bridge(switch, layout.bridge("ext"))
            external.configure_host_side(layout, ranges)
    _once(layout, "ovn", "create databases", lambda: ovn.initialize(layout), log)
    for db in ("nb", "sb"):
        _start_daemon(layout, f"ovn-{db}", lambda db=db: ovn.start_db(layout, db))
    _start_daemon(layout, "ovn-northd", lambda: ovn.start_northd(layout))
    with step("ovn-controller", "chassis settings", log):
        ovn.configure_chassis(layout, switch)
    _start_daemon(
        layout, "ovn-controller", lambda: ovn.start_controller(layout, switch)
    )
    with step("ovn-controller", f"chassis {layout.compute_host} registered", log):
        procs.wait_for(
            lambda: ovn.chassis_registered(layout),
            layout.pidfile("ovn-controller"),
            60,
            "ovn-controller",
        )
        ovn.announce_bridge(layout)
    manage = layout.log("neutron-manage")
    _once(layout, "neutron", "db sync", lambda: neutron.db_sync(layout), manage)
    _start(layout, "neutron", lambda: neutron.start(layout))


def _start_daemon(layout: Layout, name: str, start: Callable[[], None]) -> None:
    """Like :func:`_start`, for daemons that listen on no TCP port."""
    if running(layout, name):
        skip(name, "start")
        return
    with step(name, "start", layout.log(name)):
        start()


def _default_networks(layout: Layout, secrets: Mapping[str, str]) -> None:
    ranges = external.choose(layout, ovs.Switch())
    _once(
        layout,
        "neutron",
        "default networks",
        lambda: neutron_bootstrap.bootstrap(layout, secrets, ranges),
        layout.log("neutron"),
    )
    say(
        f"  [neutron] public {ranges.public} (host {ranges.host_address} on "
        f"{layout.bridge('ext')}), private {ranges.private} and {ranges.private6}"
    )


def _release_switch(layout: Layout) -> None:
    """Remove this cloud's bridges and chassis settings; the last cloud to
    leave stops the shared switch."""
    switch = ovs.Switch()
    if not (switch.users / _switch_claim(layout)).exists():
        return
    with step("ovs", f"remove bridges {layout.bridge('int')}, {layout.bridge('ext')}"):
        if ovs.running(switch):
            for role in ("int", "ext"):
                ovs.del_bridge(switch, layout.bridge(role))
            ovn.unconfigure_chassis(layout, switch)
        stopped = ovs.release(_switch_claim(layout), switch)
    if stopped:
        say("  [ovs] no cloud uses the shared switch any more: stopped it")
