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

"""The engine's container events reach Nova as lifecycle events.

Containers are made here directly, labelled as a test host's instances, and
changed behind Nova's back as an operator or the kernel would: ``docker
stop``, ``docker kill``, pause, unpause, the OOM killer.  Other hosts'
containers and network sandboxes must produce nothing.  The watcher must
also outlive a broken stream: a cut connection (events replayed from where
it broke), an engine restarted under it (a private engine), and a remote
engine whose network vanished without closing the connection.
"""

from __future__ import annotations

import threading
import uuid

from nova import test
from nova.virt import event as virtevent

from nova_docker import events
from nova_docker.engine import client as engine_client
from nova_docker.engine import naming
from nova_docker.tests import engine_support
from nova_docker.tests import waiting
from nova_docker.tests.functional import base
from nova_docker.tests.functional import netns_relay
from nova_docker.tests.functional import private_engine

HOST_ENGINE_URL = "unix:///var/run/docker.sock"
STARTED = virtevent.EVENT_LIFECYCLE_STARTED
STOPPED = virtevent.EVENT_LIFECYCLE_STOPPED
PAUSED = virtevent.EVENT_LIFECYCLE_PAUSED
RESUMED = virtevent.EVENT_LIFECYCLE_RESUMED
#: What the OOM container gets, and its shell outgrows by doubling a string.
OOM_MEMORY_BYTES = 8 * 1024 * 1024
OOM_CMD = ["/bin/sh", "-c", "x=a; while :; do x=$x$x; done"]


class Seen:
    """What the watcher handed to Nova, in order, and how often it resynced."""

    def __init__(self) -> None:
        self.events: list[tuple[str, int]] = []
        self.resyncs = 0

    def emit(self, event: virtevent.LifecycleEvent) -> None:
        self.events.append((event.get_instance_uuid(), event.get_transition()))

    def resync(self) -> None:
        self.resyncs += 1

    def wait_for(self, instance_uuid: str, transition: int, after: int = 0) -> None:
        """Until the event arrives, at or after position ``after``."""
        waiting.until(
            lambda: (instance_uuid, transition) in self.events[after:],
            f"lifecycle event {transition} of {instance_uuid}",
        )


class GatedEngine(engine_client.Engine):
    """An engine whose event stream the test can cut, and whose next
    subscription can be held until the test lets it through."""

    def __init__(self, url: str, **settings) -> None:
        super().__init__(engine_client.EngineSettings(url=url, **settings))
        self.gate = threading.Event()
        self.gate.set()
        self.cut = lambda: None

    def event_stream(self, filters, since=None, on_open=None):
        self.gate.wait(waiting.SAFETY_LIMIT_SECONDS)

        def opened(close):
            self.cut = close
            on_open(close)

        return super().event_stream(filters, since, on_open=opened)


class _WatcherMixin:
    """A watcher of ``self.host`` on the engine at ``url``, stopped at the
    end; containers labelled as that host's instances."""

    def start_watcher(self, url: str, resync=None, **settings) -> events.EngineEvents:
        """``settings``: more of the engine's :class:`EngineSettings`."""
        self.seen = Seen()
        self.events_engine = GatedEngine(url, **settings)
        self.events_engine.connect()
        watcher = events.EngineEvents(
            self.events_engine, self.host, self.seen.emit, resync or self.seen.resync
        )
        watcher.start()
        self.addCleanup(watcher.stop)
        # Before stop: a held subscription must be let through to end.
        self.addCleanup(self.events_engine.gate.set)
        waiting.until(lambda: watcher.following, "the watcher follows the events")
        return watcher

    def make_container(self, image: str, labels: dict[str, str], **host_config) -> str:
        created = self.client.create_container(
            image,
            labels=labels,
            host_config=self.client.create_host_config(**host_config),
        )
        return created["Id"]

    def make_instance(self, image: str, **host_config) -> tuple[str, str]:
        """A container of one of the host's instances: (its UUID, its ID)."""
        instance_uuid = str(uuid.uuid4())
        labels = naming.container_labels(
            instance_uuid, "instance-1", "project-1", self.host
        )
        return instance_uuid, self.make_container(image, labels, **host_config)

    def log(self) -> str:
        return self.stdlog.logger.output


class HostEngineEventsTestCase(_WatcherMixin, base.DockerHostMixin, test.NoDBTestCase):
    def setUp(self):
        super().setUp()
        self.image = self.build_image(engine_support.DEFAULT_CMD)
        self.watcher = self.start_watcher(HOST_ENGINE_URL)

    def build_image(self, cmd: list[str]) -> str:
        ref = engine_support.build_image(self.client, cmd=cmd)
        self.tracker.images.append(ref)
        return ref

    def test_start_and_docker_stop_arrive_as_started_and_stopped(self):
        instance_uuid, container = self.make_instance(self.image)

        self.client.start(container)
        self.seen.wait_for(instance_uuid, STARTED)
        self.client.stop(container, timeout=5)
        self.seen.wait_for(instance_uuid, STOPPED)

        self.assertEqual(
            [(instance_uuid, STARTED), (instance_uuid, STOPPED)], self.seen.events
        )

    def test_docker_kill_arrives_as_stopped_once(self):
        instance_uuid, container = self.make_instance(self.image)
        self.client.start(container)
        self.seen.wait_for(instance_uuid, STARTED)

        self.client.kill(container)

        self.seen.wait_for(instance_uuid, STOPPED)
        self.assertEqual(1, self.seen.events.count((instance_uuid, STOPPED)))

    def test_pause_and_unpause_arrive_as_paused_and_resumed(self):
        instance_uuid, container = self.make_instance(self.image)
        self.client.start(container)

        self.client.pause(container)
        self.seen.wait_for(instance_uuid, PAUSED)
        self.client.unpause(container)
        self.seen.wait_for(instance_uuid, RESUMED)

        self.assertEqual(
            [(instance_uuid, s) for s in (STARTED, PAUSED, RESUMED)],
            self.seen.events,
        )

    def test_a_container_killed_for_its_memory_is_logged_and_stopped(self):
        hog = self.build_image(OOM_CMD)
        instance_uuid, container = self.make_instance(
            hog, mem_limit=OOM_MEMORY_BYTES, memswap_limit=OOM_MEMORY_BYTES
        )

        self.client.start(container)

        self.seen.wait_for(instance_uuid, STOPPED)
        self.assertTrue(self.client.inspect_container(container)["State"]["OOMKilled"])
        # The oom event comes before the die, so it was logged by now.
        self.assertIn(
            f"Instance {instance_uuid}: a process was killed by the kernel for "
            "exceeding its flavor's memory of 8 MiB",
            self.log(),
        )

    def test_other_hosts_containers_and_sandboxes_produce_nothing(self):
        other_host = f"{self.host}-other"
        self.tracker.host_labels.append(other_host)
        foreign_uuid = str(uuid.uuid4())
        foreign = self.make_container(
            self.image, naming.container_labels(foreign_uuid, "x", "p", other_host)
        )
        unlabelled = self.make_container(self.image, {})
        self.addCleanup(self.client.remove_container, unlabelled, force=True)
        sandbox_of = str(uuid.uuid4())
        sandbox = self.make_container(
            self.image, naming.sandbox_labels(sandbox_of, self.host)
        )
        for container in (foreign, unlabelled, sandbox):
            self.client.start(container)
            self.client.kill(container)

        # Events come in order: once ours is here, theirs would have been.
        instance_uuid, marker = self.make_instance(self.image)
        self.client.start(marker)
        self.seen.wait_for(instance_uuid, STARTED)

        self.assertEqual([(instance_uuid, STARTED)], self.seen.events)

    def test_a_cut_stream_resumes_where_it_broke_and_resyncs_once(self):
        instance_uuid, container = self.make_instance(self.image)
        self.client.start(container)
        self.seen.wait_for(instance_uuid, STARTED)

        self.events_engine.gate.clear()
        self.events_engine.cut()
        waiting.until(lambda: not self.watcher.following, "the stream is cut")
        # While the watcher cannot subscribe, behind its back:
        self.client.stop(container, timeout=5)
        self.events_engine.gate.set()

        # This resync emits nothing: the stop can only have been replayed.
        self.seen.wait_for(instance_uuid, STOPPED)
        self.assertEqual(1, self.seen.resyncs)
        self.assertEqual(1, self.log().count("Lost the engine's container events"))
        self.assertEqual(
            1, self.log().count("Following the engine's container events again")
        )
        self.assertEqual(
            [(instance_uuid, STARTED), (instance_uuid, STOPPED)], self.seen.events
        )

    def test_stop_ends_the_thread_while_the_stream_is_quiet(self):
        thread = self.watcher._thread
        self.assertEqual(events.THREAD_NAME, thread.name)

        self.watcher.stop()

        self.assertFalse(thread.is_alive())
        self.assertFalse(self.watcher.following)


class RestartedEngineEventsTestCase(_WatcherMixin, test.NoDBTestCase):
    """A private engine stopped and started under the watcher."""

    def _clear_attrs(self):
        # As DockerHostMixin: pytest keeps the test method as an attribute.
        pass

    def setUp(self):
        super().setUp()
        self.host = f"nova-docker-test-{uuid.uuid4().hex[:8]}"
        self.engine = self.useFixture(private_engine.PrivateEngine())
        self.client = self.engine.client()
        # What the driver will pass: every instance's current state.
        self.resyncs = 0
        self.watcher = self.start_watcher(self.engine.url, resync=self.resync)
        self.image = engine_support.build_image(self.client)

    def resync(self) -> None:
        listing = self.events_engine.list_containers(naming.host_selector(self.host))
        for event in events.current_state_events(listing, self.host):
            self.seen.emit(event)
        self.resyncs += 1

    def test_after_a_restart_events_flow_again_and_the_resync_reports_states(self):
        instance_uuid, container = self.make_instance(self.image)
        self.client.start(container)
        self.seen.wait_for(instance_uuid, STARTED)

        self.engine.stop()
        waiting.until(lambda: not self.watcher.following, "the stream is lost")
        self.engine.start()
        waiting.until(lambda: self.resyncs == 1, "the watcher resynced")

        # The engine stopped the container as it went down; the resync says
        # so, whether or not its die event made it out first.
        after_resync = len(self.seen.events) - 1
        self.assertEqual((instance_uuid, STOPPED), self.seen.events[after_resync])
        self.client.start(container)
        self.seen.wait_for(instance_uuid, STARTED, after=after_resync)
        self.assertEqual(1, self.resyncs)
        self.assertEqual(1, self.log().count("Lost the engine's container events"))
        self.assertEqual(
            1, self.log().count("Following the engine's container events again")
        )


class VanishedRemoteEngineEventsTestCase(
    _WatcherMixin, base.DockerHostMixin, test.NoDBTestCase
):
    """The host's engine over TCP, from a namespace whose link the test cuts."""

    #: Probes after 2 silent seconds, a second apart: given up after ~7 s.
    KEEPALIVE = 2
    #: A connection attempt while the link is cut waits this long.
    TIMEOUT = 3

    def setUp(self):
        super().setUp()
        self.image = engine_support.build_image(self.client)
        self.remote = self.useFixture(netns_relay.CuttableEngine())
        self.watcher = self.start_watcher(
            self.remote.url, events_keepalive=self.KEEPALIVE, timeout=self.TIMEOUT
        )

    def test_a_silent_stream_to_a_vanished_engine_is_given_up_then_resumed(self):
        instance_uuid, container = self.make_instance(self.image)
        self.client.start(container)
        self.seen.wait_for(instance_uuid, STARTED)

        self.remote.cut()
        # Nothing closes the connection: only the keepalive probes end it.
        waiting.until(lambda: not self.watcher.following, "the stream is given up")
        self.assertEqual(1, self.log().count("Lost the engine's container events"))
        self.assertIn("no answer to 5 keepalive probes after 2 s", self.log())
        self.assertNotIn("Unexpected failure", self.log())
        # Behind the watcher's back while it cannot reach the engine:
        self.client.stop(container, timeout=5)
        self.remote.mend()

        waiting.until(lambda: self.seen.resyncs == 1, "the watcher resynced")
        self.seen.wait_for(instance_uuid, STOPPED)
        self.assertEqual(
            1, self.log().count("Following the engine's container events again")
        )
