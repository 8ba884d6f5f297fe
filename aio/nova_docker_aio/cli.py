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

"""``nova-docker-aio up | down | restart nova | status | logs [service] | demo``."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys

from nova_docker_aio import cloud
from nova_docker_aio import clouds_yaml
from nova_docker_aio import engine
from nova_docker_aio import host
from nova_docker_aio import procs
from nova_docker_aio import secret
from nova_docker_aio import steps
from nova_docker_aio import tools
from nova_docker_aio.clouds_yaml import ADMIN_CLOUD
from nova_docker_aio.clouds_yaml import DEMO_CLOUD
from nova_docker_aio.layout import DEFAULT_PORT_BASE
from nova_docker_aio.layout import DEFAULT_STATE_DIR
from nova_docker_aio.layout import PORT_BASE_ENV
from nova_docker_aio.layout import PORT_OFFSETS
from nova_docker_aio.layout import STATE_ENV
from nova_docker_aio.layout import Layout
from nova_docker_aio.layout import resolve
from nova_docker_aio.services import dashboard
from nova_docker_aio.services import engine_host


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nova-docker-aio",
        description="An all-in-one OpenStack (Keystone, Glance, Placement, "
        "Nova with the Docker driver, Neutron and the dashboard) on loopback "
        "ports.",
    )
    parser.add_argument(
        "--state-dir",
        help=f"where everything of this cloud lives (env {STATE_ENV}, "
        f"default {DEFAULT_STATE_DIR})",
    )
    parser.add_argument(
        "--port-base",
        type=int,
        help=f"first of the cloud's {len(PORT_OFFSETS)} loopback ports (env "
        f"{PORT_BASE_ENV}, "
        f"default {DEFAULT_PORT_BASE})",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("up", "bring the cloud up"),
        ("demo", "up, then boot a container from a locally built image"),
    ):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument(
            "--driver",
            choices=sorted(cloud.DRIVERS),
            default="docker",
            help="compute driver: docker, or Nova's fake driver as a baseline",
        )
        cmd.add_argument(
            "--no-neutron",
            dest="with_neutron",
            action="store_const",
            const=False,
            help="the lightest cloud: no Neutron, OVN or Open vSwitch; servers "
            "boot with --nic none (default: as the cloud was first made; new "
            "clouds with the fake driver have no Neutron)",
        )
        cmd.add_argument(
            "--no-dashboard",
            dest="with_dashboard",
            action="store_false",
            help="do not run the OpenStack dashboard (Horizon); an up "
            "without this flag runs it again",
        )
        cmd.add_argument(
            "--hosts",
            type=int,
            help="compute hosts, each with its own Docker Engine and OVN "
            "chassis; 2 or more run Nova as separate services over RabbitMQ "
            "(default: as the cloud was first made, else 1)",
        )
    down = sub.add_parser("down", help="stop the cloud and remove its containers")
    down.add_argument("--keep-containers", action="store_true")
    restart = sub.add_parser(
        "restart",
        help="restart a Nova process, e.g. after editing etc/nova/local.conf: "
        "nova (API, conductor, scheduler and compute share one process), or in "
        "a cloud of several hosts nova-api, nova-conductor, nova-scheduler, "
        "nova-compute-<i>; or the dashboard",
    )
    restart.add_argument("service")
    sub.add_parser("status", help="which services run, where, and their logs")
    logs = sub.add_parser("logs", help="list the logs, or show one")
    logs.add_argument("service", nargs="?")
    logs.add_argument("-n", "--lines", type=int, default=50)
    logs.add_argument("-f", "--follow", action="store_true")
    return parser


def _use_hint(layout: Layout) -> str:
    """How to use and stop this cloud, with this venv's commands."""
    bindir = os.path.dirname(tools.bin_path("openstack"))
    on_path = bindir in os.environ.get("PATH", "").split(os.pathsep)
    flags = ""
    if layout != resolve(None, None):
        flags = f" --state-dir {layout.root} --port-base {layout.port_base}"
    return "".join(
        [
            "" if on_path else f"  source {bindir}/activate\n",
            f"  export OS_CLIENT_CONFIG_FILE={layout.clouds_yaml}\n",
            f"  export OS_CLOUD={DEMO_CLOUD}    # or {ADMIN_CLOUD}\n",
            "  openstack server list\n",
            f"Stop it with: nova-docker-aio{flags} down",
        ]
    )


def _dashboard_hint(layout: Layout) -> str:
    """Where the dashboard is and how to log in, when it runs."""
    if not cloud.has_dashboard(layout):
        return ""
    password = secret.load_or_create(layout)["demo"]
    return (
        f"Dashboard: {dashboard.url(layout)}  (user demo, password "
        f"{password}, domain Default; the admin's is in {layout.clouds_yaml})\n"
    )


def _up(layout: Layout, args: argparse.Namespace) -> float:
    return cloud.up(
        layout, args.driver, args.with_neutron, args.hosts, args.with_dashboard
    )


def cmd_up(layout: Layout, args: argparse.Namespace) -> int:
    seconds = _up(layout, args)
    print(f"The cloud is up in {seconds:.1f}s.")
    print(f"{_dashboard_hint(layout)}Use it with:\n{_use_hint(layout)}")
    return 0


def cmd_demo(layout: Layout, args: argparse.Namespace) -> int:
    from nova_docker_aio import demo  # noqa: PLC0415 - demo-only imports

    seconds = _up(layout, args)
    print(f"The cloud is up in {seconds:.1f}s.")
    try:
        demo.run(layout, cloud.has_neutron(layout))
    except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
        raise steps.StepFailed("demo", "show", layout.log("nova"), str(exc)) from exc
    print(f"{_dashboard_hint(layout)}Use the cloud with:\n{_use_hint(layout)}")
    return 0


def _glance_images(layout: Layout) -> list[str]:
    """The cloud's Glance image IDs (as admin: all projects), while Glance
    still answers."""
    ctx = cloud.context(layout)
    if not (cloud.service(ctx, "glance").running(ctx) and layout.clouds_yaml.exists()):
        return []
    try:
        conn = clouds_yaml.connect(layout, ADMIN_CLOUD)
        return [image.id for image in conn.image.images()]
    except Exception as exc:  # cleanup is best effort
        print(f"  (could not list Glance images: {exc})")
        return []


def cmd_down(layout: Layout, args: argparse.Namespace) -> int:
    host.require_root("nova-docker-aio down")
    images = [] if args.keep_containers else _glance_images(layout)
    if not args.keep_containers:
        _remove_private_engines_containers(layout)
    cloud.down(layout)
    if not args.keep_containers and engine.answers():
        with steps.step("docker", f"remove containers of {layout.compute_host}"):
            removed = engine.remove_containers_of(layout.compute_host)
            removed += engine.remove_glance_copies(images)
        print(f"  removed {', '.join(removed) or 'nothing'}")
    print(f"The cloud is down; its state stays in {layout.root}.")
    return 0


def _remove_private_engines_containers(layout: Layout) -> None:
    """In a cloud of several hosts, each host's containers live in its own
    engine, which ``down`` stops: remove them while it still answers."""
    count = cloud.hosts(layout)
    if count == 1:
        return
    for index in range(1, count + 1):
        url = engine_host.api_url(layout, index)
        if engine.answers(url):
            name = layout.host_name(index)
            with steps.step("docker", f"remove containers of {name}"):
                removed = engine.remove_containers_of(name, url)
            print(f"  removed {', '.join(removed) or 'nothing'}")


def cmd_restart(layout: Layout, args: argparse.Namespace) -> int:
    host.require_root("nova-docker-aio restart")
    seconds = cloud.restart(layout, args.service)
    print(f"{args.service.capitalize()} is back in {seconds:.1f}s.")
    return 0


def cmd_status(layout: Layout, args: argparse.Namespace) -> int:
    ctx = cloud.context(layout)
    computes = ", ".join(layout.host_name(i) for i in range(1, ctx.hosts + 1))
    print(f"cloud in {layout.root} (compute hosts: {computes})")
    daemons = [s for s in ctx.services if s.daemon]
    rows = []
    for service in daemons:
        pid = procs.read_pid(layout.pidfile(service.name))
        state = "stopped"
        if pid:
            answers = service.healthy(ctx)
            state = f"running (pid {pid})" + ("" if answers else ", not answering")
        rows.append((service.name, state, service.where(ctx), layout.log(service.name)))
    up = sum(1 for _, state, _, _ in rows if state != "stopped")
    # Columns as wide as their widest entry: names and addresses vary.
    widths = [max(len(str(row[i])) for row in rows) for i in range(3)]
    for name, state, where, log in rows:
        print(
            f"  {name:<{widths[0]}}  {state:<{widths[1]}}  {where:<{widths[2]}}  {log}"
        )
    if up and layout.clouds_yaml.exists():
        print(f"{_dashboard_hint(layout)}Use it with:\n{_use_hint(layout)}")
    return 0 if up == len(daemons) else 3


def cmd_logs(layout: Layout, args: argparse.Namespace) -> int:
    if not args.service:
        for log in sorted(layout.logs.glob("*.log")):
            print(log)
        return 0
    log = layout.log(args.service)
    if not log.exists():
        print(f"no log {log}", file=sys.stderr)
        return 1
    argv = ["tail", "-n", str(args.lines)] + (["-F"] if args.follow else [])
    os.execvp("tail", [*argv, str(log)])  # noqa: S606 - fixed argv, no shell
    return 0


COMMANDS = {
    "up": cmd_up,
    "demo": cmd_demo,
    "down": cmd_down,
    "restart": cmd_restart,
    "status": cmd_status,
    "logs": cmd_logs,
}


def main(argv: list[str] | None = None) -> int:
    # `nova-docker-aio status | head` should end quietly, like any tool.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    args = _parser().parse_args(argv)
    layout = resolve(args.state_dir, args.port_base)
    try:
        return COMMANDS[args.command](layout, args)
    except steps.StepFailed as exc:
        steps.tail(exc.log)
        print(f"nova-docker-aio: {exc}", file=sys.stderr)
        print(
            "What started keeps running for inspection; "
            "`nova-docker-aio down` stops it.",
            file=sys.stderr,
        )
        return 1
    except (host.HostError, procs.ProcessError) as exc:
        print(f"nova-docker-aio: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
