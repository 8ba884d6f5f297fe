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

"""Interactive serial consoles on the real engine: a plain TCP client in
the place of nova-serialproxy, which relays raw bytes and nothing else."""

from __future__ import annotations

import re
import socket

import nova.conf
from nova import exception as nova_exception
from nova.compute import vm_states
from nova.console import serial as serial_ports

from nova_docker.engine import naming
from nova_docker.tests import waiting
from nova_docker.tests.functional import base

CONF = nova.conf.CONF
HELLO = b"echo hello-$((6*7))\n"


class SerialConsoleTestCase(base.DriverTestCase):
    def setUp(self):
        super().setUp()
        self.flags(enabled=True, group="serial_console")
        self.image = self.make_image()
        self.instance = self.spawn(self.image)

    def reconfigure(self, **docker_options) -> None:
        """A driver built with ``docker_options`` in place of the first."""
        self.flags(group="docker", **docker_options)
        self.driver = self.make_driver()

    def connect(self, console=None) -> socket.socket:
        console = console or self.driver.get_serial_console(self.ctxt, self.instance)
        sock = socket.create_connection((console.host, console.port))
        sock.settimeout(waiting.SAFETY_LIMIT_SECONDS)
        self.addCleanup(sock.close)
        return sock

    def read_until(self, sock: socket.socket, marker: bytes) -> bytes:
        """What ``sock`` says up to ``marker``; fails if it closes first."""
        seen = b""
        while marker not in seen:
            chunk = sock.recv(4096)
            self.assertNotEqual(b"", chunk, f"closed before {marker!r}: {seen!r}")
            seen += chunk
        return seen

    def read_to_end(self, sock: socket.socket) -> bytes:
        seen = b""
        while chunk := sock.recv(4096):
            seen += chunk
        return seen

    def shell_pid(self, sock: socket.socket) -> int:
        """The PID, in the container, of the shell behind ``sock``."""
        sock.sendall(b"echo pid-$$-end\n")
        # The echoed command line says "pid-$$-end"; the answer a number.
        seen = b""
        while not (found := re.search(rb"pid-(\d+)-end", seen)):
            chunk = sock.recv(4096)
            self.assertNotEqual(b"", chunk, f"closed before the PID: {seen!r}")
            seen += chunk
        return int(found.group(1))

    def running_in_container(self, pid: int) -> bool:
        name = naming.container_name(self.instance.uuid)
        run = self.client.exec_create(name, ["/bin/sh", "-c", f"kill -0 {pid}"])
        self.client.exec_start(run["Id"])
        return self.client.exec_inspect(run["Id"])["ExitCode"] == 0

    def assert_released(self, console) -> None:
        waiting.until(
            lambda: (console.host, console.port) not in serial_ports.ALLOCATED_PORTS,
            "the console's port to go back to Nova",
        )
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection((console.host, console.port)).close()

    # -- the console ------------------------------------------------------

    def test_what_is_typed_runs_in_a_shell_in_the_container(self):
        console = self.driver.get_serial_console(self.ctxt, self.instance)

        self.assertEqual("127.0.0.1", console.host)
        start, stop = map(int, CONF.serial_console.port_range.split(":"))
        self.assertTrue(start <= console.port < stop)
        sock = self.connect(console)
        sock.sendall(HELLO)
        # The echoed line reads "hello-$((6*7))": only the shell says 42.
        self.read_until(sock, b"hello-42")
        sock.sendall(b"hostname\n")
        self.read_until(sock, b"test-server")

    def test_asking_again_gives_the_port_nova_serialproxy_checks_against(self):
        # The proxy connects only if nova-compute, asked again, names the
        # port of the token (validate_console_port).
        first = self.driver.get_serial_console(self.ctxt, self.instance)
        again = self.driver.get_serial_console(self.ctxt, self.instance)
        self.assertEqual(first.port, again.port)
        self.read_until(self.connect(again), b"# ")

    def test_two_connections_are_two_independent_shells(self):
        one, two = self.connect(), self.connect()
        one.sendall(b"cd /tmp && export WHO=one\n")
        pid_one, pid_two = self.shell_pid(one), self.shell_pid(two)

        self.assertNotEqual(pid_one, pid_two)
        # What one shell set is not in the other.
        two.sendall(b"echo who-$WHO-in-$(pwd)-end\n")
        self.read_until(two, b"who--in-/-end")
        one.sendall(b"echo who-$WHO-in-$(pwd)-end\n")
        self.read_until(one, b"who-one-in-/tmp-end")

    def test_closing_the_connection_hangs_up_its_shell(self):
        sock = self.connect()
        pid = self.shell_pid(sock)
        other = self.connect()
        other_pid = self.shell_pid(other)
        self.assertTrue(self.running_in_container(pid))

        sock.close()

        waiting.until(lambda: not self.running_in_container(pid), "the hang-up")
        self.assertTrue(self.running_in_container(other_pid))
        other.sendall(HELLO)
        self.read_until(other, b"hello-42")

    def test_a_shell_that_exits_closes_the_connection(self):
        sock = self.connect()
        sock.sendall(b"exit\n")
        self.read_to_end(sock)
        self.assertEqual(0, self.driver._consoles._relay.sessions())

    # -- expiry and limits ------------------------------------------------

    def test_a_port_never_connected_to_expires_and_goes_back_to_nova(self):
        self.reconfigure(serial_console_listen_timeout=1)
        console = self.driver.get_serial_console(self.ctxt, self.instance)
        self.assertIn((console.host, console.port), serial_ports.ALLOCATED_PORTS)

        self.assert_released(console)
        # Asked again, the instance gets a console anew.
        self.read_until(self.connect(), b"# ")

    def test_an_idle_session_is_closed_and_hung_up(self):
        self.reconfigure(serial_console_idle_timeout=1)
        sock = self.connect()
        pid = self.shell_pid(sock)

        self.read_to_end(sock)
        waiting.until(lambda: not self.running_in_container(pid), "the hang-up")

    def test_sessions_beyond_the_limit_are_refused_saying_why(self):
        self.reconfigure(serial_console_max_sessions=1)
        console = self.driver.get_serial_console(self.ctxt, self.instance)
        first = self.connect(console)
        self.shell_pid(first)

        refused = self.read_to_end(self.connect(console))
        self.assertIn(b"all 1 serial console sessions of this host are in use", refused)
        other = self.spawn(self.image)
        error = self.assertRaises(
            nova_exception.ConsoleTypeUnavailable,
            self.driver.get_serial_console,
            self.ctxt,
            other,
        )
        self.assertIn("sessions of this host are in use", error.format_message())
        # The first one is untouched.
        first.sendall(HELLO)
        self.read_until(first, b"hello-42")

    # -- what cannot have a console ---------------------------------------

    def test_an_image_without_the_command_is_refused_naming_it(self):
        self.reconfigure(console_command="/bin/bash -l")
        error = self.assertRaises(
            nova_exception.ConsoleTypeUnavailable,
            self.driver.get_serial_console,
            self.ctxt,
            self.instance,
        )
        self.assertIn("the image has no /bin/bash", error.format_message())
        self.assertIn("/bin/bash", self.stdlog.logger.output)
        self.assertEqual(0, len(self.driver._consoles._relay._listeners))

    def test_a_command_not_on_the_path_tells_the_client_and_the_log(self):
        # A bare name can be found only by running it.
        self.reconfigure(console_command="bash")
        said = self.read_to_end(self.connect())

        self.assertIn(b'"bash": executable file not found', said)
        self.assertEqual(1, said.count(b"\n"))
        waiting.until(
            lambda: "bash did not run in the container" in self.stdlog.logger.output,
            "the warning",
        )
        self.assertIn(self.instance.uuid, self.stdlog.logger.output)

    def test_a_stopped_or_paused_server_is_not_ready(self):
        self.driver.pause(self.instance)
        self.assertRaises(
            nova_exception.InstanceNotReady,
            self.driver.get_serial_console,
            self.ctxt,
            self.instance,
        )
        self.driver.unpause(self.instance)
        self.driver.power_off(self.instance, timeout=5)
        self.assertRaises(
            nova_exception.InstanceNotReady,
            self.driver.get_serial_console,
            self.ctxt,
            self.instance,
        )

    def test_a_rescued_servers_console_is_the_rescue_shell(self):
        """What Nova does: rescue, then the state RESCUED; the console runs
        in the rescue container, on the server's own files, and after
        unrescue in the server's container again."""
        # The rescue shell ignores SIGTERM: unrescue waits this long.
        self.reconfigure(stop_timeout=1)
        # Rescued from its own image: the rescue boots the server's files.
        own = self.make_instance(image_ref=self.image.id)
        self.instance = self.spawn(self.image, own)
        self.read_until(self.connect(), b"# ")
        self.driver.rescue(self.ctxt, self.instance, None, self.image, None, None, None)
        self.instance.vm_state = vm_states.RESCUED

        sock = self.connect()
        sock.sendall(b"echo rescued > /rescue-mark; cat /rescue-mark\n")
        self.read_until(sock, b"rescued\r\n")
        rescue = naming.rescue_name(self.instance.uuid)
        self.assertEqual(self.driver._consoles._targets[self.instance.uuid], rescue)

        self.driver.unrescue(self.ctxt, self.instance)
        self.instance.vm_state = vm_states.ACTIVE
        sock = self.connect()
        sock.sendall(b"cat /rescue-mark\n")
        # The file written in the rescue, read in the server's own shell.
        self.read_until(sock, b"rescued\r\n")
        self.assertEqual(
            naming.container_name(self.instance.uuid),
            self.driver._consoles._targets[self.instance.uuid],
        )

    def test_a_disabled_serial_console_is_unavailable(self):
        self.flags(enabled=False, group="serial_console")
        self.assertRaises(
            nova_exception.ConsoleTypeUnavailable,
            self.driver.get_serial_console,
            self.ctxt,
            self.instance,
        )

    # -- what closes consoles ---------------------------------------------

    def test_destroy_closes_the_port_and_its_sessions(self):
        console = self.driver.get_serial_console(self.ctxt, self.instance)
        sock = self.connect(console)
        self.shell_pid(sock)

        self.driver.destroy(self.ctxt, self.instance, [])

        self.read_to_end(sock)
        self.assert_released(console)
        self.assertEqual(0, self.driver._consoles._relay.sessions())

    def test_pausing_hangs_up_the_shell_before_the_freeze(self):
        sock = self.connect()
        pid = self.shell_pid(sock)

        self.driver.pause(self.instance)
        self.read_to_end(sock)
        self.driver.unpause(self.instance)

        self.assertFalse(self.running_in_container(pid))

    def test_stopping_the_host_closes_every_console(self):
        console = self.driver.get_serial_console(self.ctxt, self.instance)
        sock = self.connect(console)
        self.shell_pid(sock)

        self.driver.cleanup_host(self.host)

        self.read_to_end(sock)
        self.assert_released(console)
