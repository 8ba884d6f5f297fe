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

"""A remote engine on TCP with TLS: verified both ways, refused otherwise.

The engine listens on loopback with ``--tlsverify``, so it checks the
driver's client certificate too.  The CA, server and client certificates are
made by the test.
"""

from __future__ import annotations

import subprocess

import fixtures
import nova.conf
from nova.compute import power_state

from nova_docker import events
from nova_docker import exception
from nova_docker.conf import docker as docker_conf
from nova_docker.engine import client as engine_client
from nova_docker.tests import waiting
from nova_docker.tests.functional import private_engine
from nova_docker.tests.functional import tls_certs

CONF = nova.conf.CONF
CA_BUNDLE_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


class RemoteTlsTestCase(private_engine.PrivateEngineTestCase):
    def setUp(self):
        # Cleared so each test controls them; one test sets one on purpose.
        for name in CA_BUNDLE_VARIABLES:
            self.useFixture(fixtures.EnvironmentVariable(name))
        super().setUp()

    def make_engine(self) -> private_engine.PrivateEngine:
        certs = self.useFixture(fixtures.TempDir()).path
        self.pki = tls_certs.make_pki(certs)
        self.other_pki = tls_certs.make_pki(certs, prefix="other-")
        server = private_engine.ServerTls(
            ca_cert=self.pki.ca_cert,
            cert=self.pki.server_cert,
            key=self.pki.server_key,
        )
        return private_engine.PrivateEngine(tls=server)

    def use_tls(
        self,
        ca_cert: str | None,
        cert: str | None,
        key: str | None,
        **options: object,
    ) -> None:
        self.use_engine(
            self.engine.tcp_url,
            tls_ca_cert=ca_cert,
            tls_cert=cert,
            tls_key=key,
            **options,
        )

    def assert_refused(self, ca_cert, cert, key, reason: str) -> None:
        error = self.assertRaises(
            exception.EngineUnavailable, self.use_tls, ca_cert, cert, key
        )
        message = error.format_message()
        self.assertIn(self.engine.tcp_url, message)
        self.assertIn(reason, message)

    def test_the_right_ca_and_client_certificate_run_instances(self):
        self.use_tls(self.pki.ca_cert, self.pki.client_cert, self.pki.client_key)
        instance = self.spawn(self.make_image())
        self.assertEqual(power_state.RUNNING, self.driver.get_info(instance).state)
        self.assertEqual([instance.uuid], self.driver.list_instance_uuids())

    def test_an_engine_certificate_from_another_ca_is_refused(self):
        self.assert_refused(
            self.other_pki.ca_cert,
            self.pki.client_cert,
            self.pki.client_key,
            "CERTIFICATE_VERIFY_FAILED",
        )

    def test_verification_is_on_by_default_against_the_system_bundle(self):
        options = {opt.name: opt for opt in docker_conf.ALL_OPTS}
        self.assertIs(True, options["tls_verify"].default)
        self.assertIs(True, CONF.docker.tls_verify)
        self.assert_refused(
            None, self.pki.client_cert, self.pki.client_key, "CERTIFICATE_VERIFY_FAILED"
        )

    def test_the_engine_refuses_a_client_without_a_certificate_it_trusts(self):
        self.assert_refused(self.pki.ca_cert, None, None, "SSL")
        self.assert_refused(
            self.pki.ca_cert,
            self.other_pki.client_cert,
            self.other_pki.client_key,
            "SSL",
        )

    def test_tls_verify_false_trusts_any_engine(self):
        """What the default protects against: with verification off, an
        engine whose certificate no configured CA signed is accepted."""
        self.use_tls(None, self.pki.client_cert, self.pki.client_key, tls_verify=False)
        self.assertEqual([], self.driver.list_instance_uuids())

    def test_the_configured_ca_wins_over_a_ca_bundle_in_the_environment(self):
        self.useFixture(
            fixtures.EnvironmentVariable("REQUESTS_CA_BUNDLE", SYSTEM_CA_BUNDLE)
        )
        self.use_tls(self.pki.ca_cert, self.pki.client_cert, self.pki.client_key)
        self.assertEqual([], self.driver.list_instance_uuids())

    def test_the_event_stream_over_tls_alone_is_probed_with_keepalives(self):
        """The stream's socket is found under TLS too: the kernel shows a
        keepalive timer on that connection, and on no other."""
        engine = engine_client.Engine(
            engine_client.EngineSettings(
                url=self.engine.tcp_url,
                tls_ca_cert=self.pki.ca_cert,
                tls_cert=self.pki.client_cert,
                tls_key=self.pki.client_key,
            )
        )
        engine.connect()
        watcher = events.EngineEvents(engine, "tls-host", lambda _: None, lambda: None)
        watcher.start()
        self.addCleanup(watcher.stop)
        waiting.until(lambda: watcher.following, "the watcher follows the events")
        # A call of its own, whose pooled connection stays open, unprobed.
        self.assertEqual([], engine.list_containers({}))

        connections = self._connections_to_the_engine()
        probed = [line for line in connections if "timer:(keepalive" in line]
        self.assertGreater(len(connections), 1, connections)
        self.assertEqual(1, len(probed), connections)

    def _connections_to_the_engine(self) -> list[str]:
        to_the_engine = f"dport = :{self.engine.tcp_port}"
        listed = subprocess.run(
            ["ss", "-Htno", "state", "established", to_the_engine],
            check=True,
            capture_output=True,
            text=True,
        )
        return listed.stdout.splitlines()
