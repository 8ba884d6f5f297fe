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

"""What an image's own config may ask of the host: its health check.

The engine validates a health check's interval only in the create request,
so an image can carry one of 1 ns: execs without pause, whose CPU is the
host's.  Such images are hand-made here, as the engine's builder refuses
intervals under 1 ms.
"""

from __future__ import annotations

import datetime
import re

from nova_docker.engine import naming
from nova_docker.tests import engine_support
from nova_docker.tests import waiting
from nova_docker.tests.functional import base

SECOND = 1_000_000_000
NANOSECOND_CHECK = {
    "Test": ["CMD", "/bin/true"],
    "Interval": 1,
    "Timeout": 1,
    "StartPeriod": 1,
    "Retries": 7,
}


def _seconds(timestamp: str) -> float:
    """An engine timestamp (RFC 3339, in ns) as POSIX seconds."""
    micro = re.sub(r"(\.\d{1,6})\d*", r"\1", timestamp)
    return datetime.datetime.fromisoformat(micro).timestamp()


def started(run: dict) -> float:
    return _seconds(run["Start"])


def ended(run: dict) -> float:
    return _seconds(run["End"])


class ImageHealthcheckTestCase(base.DriverTestCase):
    def image_with_healthcheck(self, healthcheck: dict):
        tarball = engine_support.with_config(
            engine_support.busybox_tarball(), Healthcheck=healthcheck
        )
        return self.make_image(tarball)

    def healthcheck_of(self, instance) -> dict:
        return self.container(instance)["Config"]["Healthcheck"]

    def test_a_nanosecond_healthcheck_is_turned_off_by_default(self):
        image = self.image_with_healthcheck(NANOSECOND_CHECK)
        instance = self.spawn(image)

        # The image reached the engine with its 1 ns interval ...
        loaded = self.client.inspect_image(naming.glance_image_ref(image.id))
        self.assertEqual(1, loaded["Config"]["Healthcheck"]["Interval"])
        # ... and its container runs no check at all.
        self.assertEqual(["NONE"], self.healthcheck_of(instance)["Test"])
        self.assertIsNone(self.container(instance)["State"].get("Health"))

    def test_an_allowed_healthcheck_runs_no_more_often_than_the_floor(self):
        self.flags(allow_image_healthcheck=True, group="docker")
        self.driver = self.make_driver()
        instance = self.spawn(self.image_with_healthcheck(NANOSECOND_CHECK))

        check = self.healthcheck_of(instance)
        self.assertEqual(["CMD", "/bin/true"], check["Test"])
        self.assertEqual(30 * SECOND, check["Interval"])
        self.assertEqual(30 * SECOND, check["Timeout"])
        self.assertEqual(30 * SECOND, check["StartPeriod"])
        self.assertEqual(7, check["Retries"])

    def test_an_allowed_healthcheck_runs_at_the_operators_floor(self):
        self.flags(
            allow_image_healthcheck=True, healthcheck_min_interval=1, group="docker"
        )
        self.driver = self.make_driver()
        instance = self.spawn(self.image_with_healthcheck(NANOSECOND_CHECK))

        self.assertEqual(1 * SECOND, self.healthcheck_of(instance)["Interval"])

        def runs() -> list[dict]:
            health = self.container(instance)["State"].get("Health") or {}
            return health.get("Log") or []

        waiting.until(lambda: len(runs()) >= 2, "two health check runs")
        first, second = runs()[:2]
        self.assertEqual(0, first["ExitCode"])
        # One ends, the interval passes, the next starts.
        self.assertGreaterEqual(started(second) - ended(first), 0.9)

    def test_an_image_without_a_healthcheck_gets_none_even_when_allowed(self):
        self.flags(allow_image_healthcheck=True, group="docker")
        self.driver = self.make_driver()
        instance = self.spawn(self.make_image())

        self.assertEqual(["NONE"], self.healthcheck_of(instance)["Test"])
