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

"""Serial consoles of instances: what the driver's ``get_serial_console``
hands to Nova, and the engine exec behind each connection.

Nova's ``nova-serialproxy`` checks a token, then asks nova-compute again for
the console (``validate_console_port``) and connects only if the port is the
same.  So an instance has one listening port while its consoles are wanted,
every request for the console answers that port (and keeps it open
``listen_timeout`` more seconds), and each connection to it is a session of
its own: a fresh exec of the console command, on a terminal of its own.
Closing the connection hangs that command up; an exec that never started
(no such command in the image) sends the engine's one-line reason to the
client before its connection closes.
"""

from __future__ import annotations

import dataclasses
import shlex
import socket
import threading
from collections.abc import Callable
from typing import Any

from nova import exception as nova_exception
from nova.console import serial as serial_ports
from nova.console import type as console_type
from nova.i18n import _
from oslo_log import log as logging

from nova_docker import exception
from nova_docker.console import relay
from nova_docker.engine import client as engine_client
from nova_docker.engine import naming

LOG = logging.getLogger(__name__)

#: The process that runs a session's command, as the host sees it.
PROC_STATUS = "/proc/{pid}/status"
#: What sends SIGHUP to a console's command, run in its container: the
#: shell's builtin (any image with a shell), else a ``kill`` program.
HANG_UP_COMMANDS = (
    ("/bin/sh", "-c", "kill -HUP {pid}"),
    ("kill", "-HUP", "{pid}"),
)


@dataclasses.dataclass(frozen=True)
class Options:
    """``[docker]`` console options, passed in by the driver."""

    command: str = "/bin/sh"
    listen_timeout: int = 600
    idle_timeout: int = 1800
    max_sessions: int = 32

    @property
    def argv(self) -> list[str]:
        return shlex.split(self.command)


class SerialConsoles:
    """The consoles of one compute host, on ``address`` (Nova's
    ``[serial_console] proxyclient_address``)."""

    def __init__(
        self,
        engine: engine_client.Engine,
        target_of: Callable[[Any], tuple[str, bool]],
        address: str,
        options: Options,
    ) -> None:
        """``target_of`` names the container an instance's console reaches
        (its own, or its rescue container while rescued) and says whether
        it runs."""
        self._engine = engine
        self._target_of = target_of
        #: Instance UUID → the container its sessions exec into; set when
        #: its port opens (a rescue and an unrescue close the port first).
        self._targets: dict[str, str] = {}
        self._address = address
        self._options = options
        self._relay = relay.Relay(
            self._open_session, options.max_sessions, options.idle_timeout
        )
        # One listener per instance even when two requests race.
        self._lock = threading.Lock()

    def get(self, instance: Any) -> console_type.ConsoleSerial:
        """The instance's console port, opened if it has none.

        Raises InstanceNotFound without a container, InstanceNotReady unless
        it runs, and ConsoleTypeUnavailable (saying why) when the image has
        no console command or every session of the host is in use.
        """
        name, running = self._target_of(instance)
        if not running:
            raise nova_exception.InstanceNotReady(instance_id=instance.uuid)
        with self._lock:
            port = self._relay.extend(instance.uuid, self._options.listen_timeout)
            if port is None:
                self._refuse_unusable(instance, name)
                self._targets[instance.uuid] = name
                port = self._listen(instance.uuid)
        return console_type.ConsoleSerial(host=self._address, port=port)

    def close(self, instance: Any) -> None:
        """Close the instance's port and sessions (their commands hung up)."""
        self._relay.close_owner(instance.uuid)
        self._targets.pop(instance.uuid, None)

    def stop(self) -> None:
        self._relay.stop()

    def _refuse_unusable(self, instance: Any, name: str) -> None:
        if self._relay.sessions() >= self._options.max_sessions:
            raise _unavailable(
                _("all %d serial console sessions of this host are in use")
                % self._options.max_sessions
            )
        command = self._options.argv[0]
        # A bare name is looked up in the container's PATH when it runs:
        # only an absolute path can be checked before.
        if command.startswith("/") and not self._engine.path_exists(name, command):
            LOG.warning(
                "No serial console: the image has no %s ([docker] console_command)",
                command,
                instance=instance,
            )
            raise _unavailable(
                _("the image has no %s to run as the serial console") % command
            )

    def _listen(self, instance_uuid: str) -> int:
        address = self._address
        port = serial_ports.acquire_port(address)
        sock = socket.socket(_family(address), socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            # The management address only: nova-serialproxy's token is the
            # gate, and only the proxy should reach this port.
            sock.bind((address, port))
            self._relay.listen(
                instance_uuid,
                sock,
                self._options.listen_timeout,
                lambda: serial_ports.release_port(address, port),
            )
        except Exception:
            sock.close()
            serial_ports.release_port(address, port)
            raise
        LOG.info(
            "Serial console listening on %s:%d", address, port,
            instance_uuid=instance_uuid,
        )  # fmt: skip
        return port

    # -- run by the relay's workers ---------------------------------------

    def _open_session(self, instance_uuid: str) -> ExecSession:
        name = self._targets.get(instance_uuid) or naming.container_name(instance_uuid)
        argv = self._options.argv
        try:
            exec_id = self._engine.exec_create(name, argv, tty=True)
            stream = self._engine.exec_attach(exec_id)
        except exception.ContainerNotFound as e:
            raise relay.Refused("the server is gone") from e
        except (exception.EngineError, exception.EngineUnavailable) as e:
            LOG.warning(
                "Serial console session not opened: %s",
                e.format_message(),
                instance_uuid=instance_uuid,
            )
            raise relay.Refused(e.format_message()) from e
        LOG.info("Serial console session opened", instance_uuid=instance_uuid)
        return ExecSession(self._engine, instance_uuid, name, argv, exec_id, stream)


class ExecSession:
    """One connection's exec: its terminal stream, and how it ends."""

    def __init__(
        self,
        engine: engine_client.Engine,
        instance_uuid: str,
        container: str,
        argv: list[str],
        exec_id: str,
        stream: engine_client.ExecStream,
    ) -> None:
        self._engine = engine
        self._instance_uuid = instance_uuid
        self._container = container
        self._argv = argv
        self.exec_id = exec_id
        self._stream = stream
        self.sock = stream.sock

    def close(self) -> None:
        """Close the stream and hang the command up.

        The engine keeps a terminal's command running when its stream
        closes (it holds the terminal's other end), so the command is sent
        SIGHUP, as a terminal that goes away sends it, by an exec of the
        shell's ``kill`` in the container, which holds the right to signal
        it (nova-compute may not)."""
        self._stream.close()
        found = self._engine.exec_inspect(self.exec_id)
        if not found.get("Running"):
            self._say_if_never_started(found)
            LOG.info("Serial console session closed",
                     instance_uuid=self._instance_uuid)  # fmt: skip
            return
        pid = _pid_in_container(int(found.get("Pid") or 0))
        if pid is None:
            LOG.warning(
                "Serial console closed; its command (host PID %s) keeps "
                "running until it exits, as its PID in the container is "
                "unknown here",
                found.get("Pid"),
                instance_uuid=self._instance_uuid,
            )
            return
        self._hang_up(pid)

    def _hang_up(self, pid: int) -> None:
        name = self._container
        try:
            for argv in HANG_UP_COMMANDS:
                code, output = self._engine.exec_run(
                    name, [part.format(pid=pid) for part in argv]
                )
                if code not in (126, 127):  # that one could run
                    break
        except (exception.ContainerNotFound, exception.EngineError) as e:
            # A container that stopped or went ended the command too.
            LOG.debug("No hang-up sent: %s", e.format_message(),
                      instance_uuid=self._instance_uuid)  # fmt: skip
            return
        if code != 0:
            LOG.warning(
                "Serial console closed, but its command could not be hung up "
                "(status %d): %s",
                code,
                output.decode("utf-8", "replace").strip(),
                instance_uuid=self._instance_uuid,
            )
            return
        LOG.info("Serial console session closed; its command hung up",
                 instance_uuid=self._instance_uuid)  # fmt: skip

    def _say_if_never_started(self, found: dict[str, Any]) -> None:
        # An exec that ended with no process never ran: the engine has
        # already told the client why.
        if found.get("Pid") or found.get("ExitCode") is None:
            return
        LOG.warning(
            "Serial console: %s did not run in the container (status %s); "
            "check [docker] console_command against the image",
            shlex.join(self._argv),
            found.get("ExitCode"),
            instance_uuid=self._instance_uuid,
        )


def _pid_in_container(host_pid: int) -> int | None:
    """``host_pid`` as its container's PID namespace numbers it (the last
    field of ``NSpid``); None when this host cannot see the process (an
    engine on another host)."""
    if host_pid <= 0:
        return None
    try:
        with open(PROC_STATUS.format(pid=host_pid), encoding="ascii") as status:
            for line in status:
                if line.startswith("NSpid:"):
                    return int(line.split()[-1])
    except (OSError, ValueError):
        return None
    return None


def _unavailable(reason: str) -> nova_exception.ConsoleTypeUnavailable:
    """Nova's own exception (which its API answers with 400 and this
    message), since nova-api cannot rebuild ours from an RPC reply."""
    return nova_exception.ConsoleTypeUnavailable(
        _("Unavailable console type serial: %s.") % reason, console_type="serial"
    )


def _family(address: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in address else socket.AF_INET
