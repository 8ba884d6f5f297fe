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

"""A private RabbitMQ: own Erlang node, epmd, ports on 127.0.0.1, database,
cookie and user under the state dir, started by hand and stopped by PID;
the system broker (if any) is never touched.

Three processes, each under a pid file of ours::

    run/rabbitmq-epmd.pid  epmd on its own port, in the foreground
    run/rabbitmq.pid       Debian's rabbitmq-server script, which stops the
                           broker cleanly on SIGTERM and waits for it
    run/rabbitmq-beam.pid  the broker's Erlang VM, in case the script dies
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
from pathlib import Path

from nova_docker_aio import host
from nova_docker_aio import procs
from nova_docker_aio.layout import Layout
from nova_docker_aio.services.base import Context
from nova_docker_aio.services.base import Service
from nova_docker_aio.steps import say
from nova_docker_aio.steps import step

PACKAGES = ("rabbitmq-server",)
#: The scripts themselves: those in /usr/sbin re-run as user ``rabbitmq``
#: with its /var/lib/rabbitmq as working dir and HOME (cookie included).
SCRIPTS = Path("/usr/lib/rabbitmq/bin")
#: The one broker user of the cloud; ``guest`` is never left in place.
USER = "openstack"
#: Its password's name in the cloud's secrets file.
SECRET = "rabbitmq"  # noqa: S105 - the name of a secret, not one
#: Every Erlang listener of the cloud binds here, as every other service does.
LOOPBACK = "127.0.0.1"
#: Erlang distribution (the broker's and the CLI's) on loopback only; the
#: default is every interface.
DIST_ON_LOOPBACK = "-kernel inet_dist_use_interface {127,0,0,1}"
START_TIMEOUT = 120
#: The script waits for the broker to flush its queues and close its
#: database; past this it is killed.
STOP_TIMEOUT = 60


class RabbitMQ(Service):
    name = "rabbitmq"

    def ports(self, ctx: Context) -> tuple[str, ...]:
        return ("rabbitmq", "rabbitmq-dist", "rabbitmq-epmd")

    def ensure_installed(self, ctx: Context) -> None:
        if not ((SCRIPTS / "rabbitmq-server").exists() and shutil.which("epmd")):
            # The package's init script would start the system broker (and
            # its epmd on the default port) that this cloud does not use.
            with host.no_service_starts():
                host.apt_install(PACKAGES, why="the private message broker")

    def configs(self, ctx: Context) -> dict[Path, str]:
        return configs(ctx.layout, password(ctx))

    def setup(self, ctx: Context) -> None:
        prepare(ctx.layout)

    def start(self, ctx: Context) -> None:
        start(ctx.layout)

    def healthy(self, ctx: Context) -> bool:
        return answers(ctx.layout)

    def bootstrap(self, ctx: Context) -> None:
        with step(self.name, f"user {USER}", ctx.layout.log(self.name)):
            ensure_user(ctx.layout, password(ctx))

    def stop(self, ctx: Context) -> None:
        stop(ctx.layout)

    def running(self, ctx: Context) -> bool:
        return any(
            procs.read_pid(ctx.layout.pidfile(name)) is not None
            for name in ("rabbitmq", "rabbitmq-beam")
        )


def transport_url(layout: Layout, secrets: dict[str, str]) -> str:
    """oslo.messaging's ``transport_url`` for this cloud's broker (vhost /)."""
    return f"rabbit://{USER}:{secrets[SECRET]}@{LOOPBACK}:{layout.port('rabbitmq')}/"


def password(ctx: Context) -> str:
    """The broker user's password from the cloud's secrets (a state dir made
    before the broker existed gets one on its next load)."""
    return ctx.secrets[SECRET]


def configs(layout: Layout, password: str) -> dict[Path, str]:
    """The broker's own files, in place of those in /etc/rabbitmq."""
    etc = layout.config_dir("rabbitmq")
    conf = (
        "# Written by nova-docker-aio on every up.\n"
        # The cloud's user, not guest, is what a fresh database starts
        # with; bootstrap asserts it on older ones.
        f"default_user = {USER}\n"
        f"default_pass = {password}\n"
        "default_vhost = /\n"
    )
    return {
        etc / "rabbitmq.conf": conf,
        # No plugins: nothing more to listen or to start.
        etc / "enabled_plugins": "[].\n",
        # Read instead of /etc/rabbitmq/rabbitmq-env.conf, whose settings
        # are the system broker's.
        etc / "rabbitmq-env.conf": "# Everything is in the environment.\n",
    }


def environment(layout: Layout) -> dict[str, str]:
    """What points the broker, and the CLI at it, at this cloud only."""
    etc = layout.config_dir("rabbitmq")
    return {
        # The Erlang cookie is $HOME/.erlang.cookie: the broker and CLI must
        # share it, and the caller's own must stay untouched.
        "HOME": str(layout.rabbitmq_dir("home")),
        "RABBITMQ_CONF_ENV_FILE": str(etc / "rabbitmq-env.conf"),
        "RABBITMQ_CONFIG_FILE": str(etc / "rabbitmq.conf"),
        "RABBITMQ_ADVANCED_CONFIG_FILE": str(etc / "advanced.config"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(etc / "enabled_plugins"),
        "RABBITMQ_NODENAME": layout.rabbitmq_node,
        "RABBITMQ_NODE_IP_ADDRESS": LOOPBACK,
        "RABBITMQ_NODE_PORT": str(layout.port("rabbitmq")),
        "RABBITMQ_DIST_PORT": str(layout.port("rabbitmq-dist")),
        "ERL_EPMD_PORT": str(layout.port("rabbitmq-epmd")),
        "ERL_EPMD_ADDRESS": LOOPBACK,
        # Without our epmd, fail: Erlang would otherwise start a daemonized
        # one on our port that no pid file of ours records.
        "ERL_FLAGS": "-start_epmd false",
        "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": DIST_ON_LOOPBACK,
        "RABBITMQ_CTL_ERL_ARGS": DIST_ON_LOOPBACK,
        # A CLI call's node listens on a port the kernel picks, not on one
        # of a fixed range every cloud's CLI calls would share.
        "RABBITMQ_CTL_DIST_PORT_MIN": "0",
        "RABBITMQ_CTL_DIST_PORT_MAX": "0",
        "RABBITMQ_MNESIA_BASE": str(layout.rabbitmq_dir("mnesia")),
        "RABBITMQ_LOG_BASE": str(layout.rabbitmq_dir("log")),
        # Its log is its output, in log/rabbitmq.log like every process's.
        "RABBITMQ_LOGS": "-",
        "RABBITMQ_PID_FILE": str(layout.rabbitmq_own_pidfile),
    }


def prepare(layout: Layout) -> None:
    """Its dirs, and a cookie of its own (Erlang insists on mode 0400)."""
    for kind in ("home", "mnesia", "log"):
        layout.rabbitmq_dir(kind).mkdir(parents=True, exist_ok=True)
    cookie = layout.rabbitmq_cookie
    if not cookie.exists():
        fd = os.open(cookie, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(20))


def start(layout: Layout) -> None:
    """epmd first, then the broker; return once it is fully booted."""
    prepare(layout)
    start_epmd(layout)
    pidfile = layout.pidfile("rabbitmq")
    procs.spawn(
        [str(SCRIPTS / "rabbitmq-server")],
        pidfile,
        layout.log("rabbitmq"),
        environment(layout),
    )
    port = layout.port("rabbitmq")
    # The AMQP listener opens late in the boot: a cheap check until then,
    # so the CLI (an Erlang VM per call) runs only near the end.
    procs.wait_for(
        lambda: procs.port_in_use(port) and answers(layout),
        pidfile,
        START_TIMEOUT,
        "rabbitmq-server",
    )
    _record_beam(layout)


def start_epmd(layout: Layout) -> None:
    """This cloud's epmd in the foreground, so its PID is ours to stop."""
    pidfile = layout.pidfile("rabbitmq-epmd")
    port = layout.port("rabbitmq-epmd")
    if procs.read_pid(pidfile) is None:
        argv = ["epmd", "-port", str(port), "-address", LOOPBACK]
        procs.spawn(argv, pidfile, layout.log("rabbitmq-epmd"))
    procs.wait_for(lambda: procs.port_in_use(port), pidfile, 10, "epmd")


def _record_beam(layout: Layout) -> None:
    """The VM's PID, written by the broker, in our pid file format."""
    pid = int(layout.rabbitmq_own_pidfile.read_text().split()[0])
    started = procs.start_time(pid)
    if started is None:
        raise procs.ProcessError(f"the broker's pid {pid} does not run")
    layout.pidfile("rabbitmq-beam").write_text(f"{pid} {started}\n")


def answers(layout: Layout) -> bool:
    """The health check: the CLI finds the broker fully booted."""
    if procs.read_pid(layout.pidfile("rabbitmq-epmd")) is None:
        return False
    try:
        result = subprocess.run(
            _ctl(layout, "rabbitmq-diagnostics", "check_running"),
            env={**os.environ, **environment(layout)},
            capture_output=True,
            check=False,
            timeout=30,
        )
    except subprocess.TimeoutExpired:
        return False
    return result.returncode == 0


def _ctl(layout: Layout, tool: str, *args: str) -> list[str]:
    return [str(SCRIPTS / tool), "-q", "-n", layout.rabbitmq_node, *args]


def users(layout: Layout) -> set[str]:
    output = subprocess.run(
        _ctl(layout, "rabbitmqctl", "list_users", "--formatter", "json"),
        env={**os.environ, **environment(layout)},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return {entry["user"] for entry in json.loads(output)}


def ensure_user(layout: Layout, password: str) -> None:
    """The cloud's user with this password and every right on vhost /;
    no ``guest`` (idempotent)."""
    found = users(layout)
    verb = "change_password" if USER in found else "add_user"
    _ctl_quietly(layout, verb, USER, password)
    _run(layout, "set_permissions", "-p", "/", USER, ".*", ".*", ".*")
    if "guest" in found:
        _run(layout, "delete_user", "guest")


def _run(layout: Layout, *args: str) -> None:
    argv = _ctl(layout, "rabbitmqctl", *args)
    procs.run(argv, layout.log("rabbitmq"), env=environment(layout))


def _ctl_quietly(layout: Layout, *args: str) -> None:
    """Like :func:`_run`, but the command line (with a password) is not
    written to the log."""
    with open(layout.log("rabbitmq"), "ab") as log:
        result = subprocess.run(
            _ctl(layout, "rabbitmqctl", *args),
            env={**os.environ, **environment(layout)},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if result.returncode != 0:
        raise procs.ProcessError(f"rabbitmqctl {args[0]} exited {result.returncode}")


def stop(layout: Layout) -> None:
    """Stop the broker, then its epmd, by their recorded PIDs (idempotent)."""
    with step("rabbitmq", "stop"):
        # SIGTERM has the script stop the broker cleanly and wait for it.
        was = procs.stop(layout.pidfile("rabbitmq"), timeout=STOP_TIMEOUT)
        # Only still there when the script died or was killed.
        was = procs.stop(layout.pidfile("rabbitmq-beam"), timeout=30) or was
        # Last: the broker unregisters from it as it stops.
        procs.stop(layout.pidfile("rabbitmq-epmd"), timeout=10)
        layout.rabbitmq_own_pidfile.unlink(missing_ok=True)
        if not was:
            say("  [rabbitmq] was not running")
