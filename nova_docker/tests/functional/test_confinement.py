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

"""The start-up line about confinement tells what instances really get.

Each fact of the line is checked against a container the driver made: the
engine's view (``AppArmorProfile``) and the kernel's (``Seccomp`` in
``/proc/self/status``).
"""

from __future__ import annotations

import pathlib

from nova_docker.engine import confinement
from nova_docker.tests import waiting
from nova_docker.tests.functional import base
from nova_docker.tests.functional import private_engine

LINE = "Instance confinement on this host: "
STATUS_COMMAND = "/bin/sh -c 'cat /proc/self/status; echo status-done; sleep 600'"


def kernel_has_apparmor() -> bool:
    # pathlib, since Nova's test fixture forbids builtins.open on /sys.
    enabled = pathlib.Path("/sys/module/apparmor/parameters/enabled")
    try:
        return enabled.read_text().startswith("Y")
    except OSError:
        return False


class ConfinementLineMixin:
    def confinement_facts(self) -> dict[str, str]:
        """The facts of the confinement line the newest driver logged."""
        lines = [
            line.split(LINE, 1)[1]
            for line in self.stdlog.logger.output.splitlines()
            if LINE in line
        ]
        self.assertTrue(lines, "no confinement line was logged")
        return dict(pair.split("=", 1) for pair in lines[-1].split(", "))


class ConfinementTestCase(ConfinementLineMixin, base.DriverTestCase):
    def test_the_line_is_what_the_engines_info_says(self):
        expected = confinement.from_info(self.client.info()).summary()
        self.assertIn(LINE + expected, self.stdlog.logger.output)

    def test_the_line_holds_for_a_container_of_this_host(self):
        facts = self.confinement_facts()
        image = self.make_image(properties={"os_command_line": STATUS_COMMAND})
        instance = self.spawn(image)

        profile = self.container(instance)["AppArmorProfile"]
        self.assertEqual(facts["apparmor"], profile or "off")
        if not kernel_has_apparmor():
            self.assertEqual("off", facts["apparmor"])

        def output() -> str:
            return self.driver.get_console_output(self.ctxt, instance)

        waiting.until(lambda: "status-done" in output(), "the status dump")
        seccomp_mode = [
            line.split(":")[1].strip()
            for line in output().splitlines()
            if line.startswith("Seccomp:")
        ]
        # 2 is a seccomp filter, 0 none.
        self.assertEqual(["0" if facts["seccomp"] == "off" else "2"], seccomp_mode)
        self.assertEqual("on", facts["no-new-privileges"])

    def test_seccomp_turned_off_by_security_opt_is_said_and_warned(self):
        self.flags(security_opt=["seccomp=unconfined"], group="docker")
        self.driver = self.make_driver()
        self.assertEqual("off", self.confinement_facts()["seccomp"])
        self.assertIn(
            "WARNING [nova_docker.driver] Instance confinement: containers run "
            "without a seccomp filter",
            self.stdlog.logger.output,
        )


class RemappedConfinementTestCase(
    ConfinementLineMixin, private_engine.PrivateEngineTestCase
):
    userns_remap = True

    def test_userns_remap_is_said_on(self):
        self.assertEqual("on", self.confinement_facts()["userns-remap"])
