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

"""Engine events as Nova's lifecycle events: the pure mapping, the resync's
states, and the watcher's error paths against a scripted engine (the real
engine's events are in the functional tests)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest
from nova.virt import event as virtevent
from oslo_config import cfg

from nova_docker import conf
from nova_docker import events
from nova_docker import exception
from nova_docker.engine import naming
from nova_docker.tests import waiting

HOST = "compute-1"
UUID = "9a6c9d36-6f1f-4a55-9f4e-2f7b6c1d0e11"
STARTED = virtevent.EVENT_LIFECYCLE_STARTED
STOPPED = virtevent.EVENT_LIFECYCLE_STOPPED
PAUSED = virtevent.EVENT_LIFECYCLE_PAUSED
RESUMED = virtevent.EVENT_LIFECYCLE_RESUMED


def labels(instance_uuid: str = UUID, host: str = HOST) -> dict[str, str]:
    return naming.container_labels(instance_uuid, "instance-1", "project-1", host)


def engine_event(
    action: str,
    attributes: dict[str, str] | None = None,
    kind: str = "container",
    time_nano: int = 1_700_000_000_000_000_000,
) -> dict:
    """An event as the engine sends it: the container's labels are its
    actor's attributes, next to its name and image."""
    found = {"name": "nova-x", "image": "nova-glance:x"}
    found.update(labels() if attributes is None else attributes)
    return {
        "Type": kind,
        "Action": action,
        "Actor": {"ID": "c0ffee", "Attributes": found},
        "time": time_nano // 10**9,
        "timeNano": time_nano,
    }


def transition(event: virtevent.LifecycleEvent | None) -> tuple[str, int] | None:
    if event is None:
        return None
    return event.get_instance_uuid(), event.get_transition()


def test_lifecycle_events_are_on_unless_turned_off():
    config = cfg.ConfigOpts()
    conf.register_opts(config)
    config([])
    assert config.docker.lifecycle_events is True


# -- the mapping ------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "expected"),
    [("start", STARTED), ("die", STOPPED), ("pause", PAUSED), ("unpause", RESUMED)],
)
def test_power_changes_become_lifecycle_events(action, expected):
    got = events.lifecycle_event(engine_event(action), HOST)
    assert transition(got) == (UUID, expected)


@pytest.mark.parametrize(
    "action",
    ["kill", "stop", "oom", "create", "destroy", "exec_start: sh", "rename", ""],
)
def test_actions_that_are_no_power_change_are_no_event(action):
    # kill is a signal the process may survive; a stop's die comes first.
    assert events.lifecycle_event(engine_event(action), HOST) is None


def test_another_hosts_instance_is_no_event():
    foreign = engine_event("die", labels(host="compute-2"))
    assert events.lifecycle_event(foreign, HOST) is None


def test_a_container_without_our_labels_is_no_event():
    assert events.lifecycle_event(engine_event("die", {}), HOST) is None


def test_a_host_container_without_an_instance_uuid_is_no_event():
    assert (
        events.lifecycle_event(engine_event("die", {naming.HOST_LABEL: HOST}), HOST)
        is None
    )


def test_a_network_sandbox_is_no_event_even_with_a_host_label():
    sandbox = {**naming.sandbox_labels(UUID, HOST), **labels()}
    assert events.lifecycle_event(engine_event("die", sandbox), HOST) is None


def test_events_of_other_kinds_are_no_event():
    assert events.lifecycle_event(engine_event("die", kind="network"), HOST) is None


def test_an_event_without_an_actor_is_no_event():
    assert events.lifecycle_event({"Type": "container", "Action": "die"}, HOST) is None


def test_the_engine_is_asked_only_for_this_hosts_containers_and_used_actions():
    assert events.event_filters(HOST) == {
        "type": ["container"],
        "label": [f"{naming.HOST_LABEL}={HOST}"],
        "event": ["die", "oom", "pause", "start", "unpause"],
    }


def test_a_stream_resumes_one_nanosecond_after_the_last_event():
    event = engine_event("die", time_nano=1_700_000_000_123_456_789)
    assert events.resume_point(event) == "1700000000.123456790"
    at_a_second = engine_event("die", time_nano=1_700_000_000_999_999_999)
    assert events.resume_point(at_a_second) == "1700000001.000000000"


def test_an_event_without_a_time_gives_no_resume_point():
    assert events.resume_point({"Action": "die"}) is None


# -- the resync's states -----------------------------------------------------


def listed(state: str, instance_uuid: str = UUID, **extra: str) -> dict:
    return {"Labels": {**labels(instance_uuid), **extra}, "State": state}


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("running", STARTED),
        ("restarting", STARTED),
        ("paused", PAUSED),
        ("exited", STOPPED),
        ("created", STOPPED),
        ("dead", STOPPED),
    ],
)
def test_each_listed_state_becomes_the_event_that_leads_to_it(state, expected):
    got = events.current_state_events([listed(state)], HOST)
    assert [transition(e) for e in got] == [(UUID, expected)]


def test_the_resync_names_every_instance_and_only_this_hosts():
    listing = [
        listed("running", "a"),
        listed("exited", "b"),
        {"Labels": labels("c", host="compute-2"), "State": "running"},
        listed("running", "d", **{naming.SANDBOX_OF_LABEL: "d"}),
        {"Labels": {}, "State": "running"},
        listed("no-such-state", "e"),
        {"State": "running"},
    ]
    got = events.current_state_events(listing, HOST)
    assert [transition(e) for e in got] == [("a", STARTED), ("b", STOPPED)]


# -- the watcher, against a scripted engine ----------------------------------


class ScriptedEngine:
    """Answers each subscription with the next of ``rounds``: an exception
    it raises, or events it sends before the stream ends; the last round's
    stream stays open until it is closed, as a quiet engine's does."""

    def __init__(self, *rounds: list[dict] | Exception) -> None:
        self.rounds = list(rounds)
        self.since: list[str | None] = []
        self.memory = 0
        self.closed = threading.Event()

    def event_stream(self, filters, since=None, on_open=None) -> Iterator[dict]:
        self.since.append(since)
        step = self.rounds.pop(0) if self.rounds else []
        if isinstance(step, Exception):
            raise step
        on_open(self.closed.set)
        yield from step
        if not self.rounds:
            self.closed.wait()

    def inspect_container(self, name: str) -> dict:
        if not self.memory:
            raise exception.ContainerNotFound(name=name)
        return {"HostConfig": {"Memory": self.memory}}


class Recorder:
    def __init__(self, fail_first: bool = False) -> None:
        self.seen: list[tuple[str, int] | None] = []
        self.resyncs = 0
        self.fail_first = fail_first

    def emit(self, event: virtevent.LifecycleEvent) -> None:
        self.seen.append(transition(event))
        if self.fail_first and len(self.seen) == 1:
            raise RuntimeError("the conductor went away")

    def resync(self) -> None:
        self.resyncs += 1


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch):
    monkeypatch.setattr(events, "RETRY_FIRST_SECONDS", 0.01)
    monkeypatch.setattr(events, "RETRY_MAX_SECONDS", 0.02)


def watch(engine: ScriptedEngine, recorder: Recorder) -> events.EngineEvents:
    watcher = events.EngineEvents(engine, HOST, recorder.emit, recorder.resync)
    watcher.start()
    return watcher


def test_an_emit_that_raises_is_logged_and_later_events_still_arrive(caplog):
    engine = ScriptedEngine([engine_event("die"), engine_event("start")])
    recorder = Recorder(fail_first=True)
    watcher = watch(engine, recorder)
    waiting.until(lambda: len(recorder.seen) == 2, "both events were emitted")
    watcher.stop()
    assert recorder.seen == [(UUID, STOPPED), (UUID, STARTED)]
    assert "Could not hand Nova the event" in caplog.text


def test_after_an_outage_the_watcher_warns_once_resyncs_once_and_resumes(caplog):
    caplog.set_level(logging.INFO, logger="nova_docker.events")
    down = exception.EngineUnavailable(url="unix:///x.sock", reason="refused")
    last = engine_event("pause", time_nano=1_700_000_000_000_000_041)
    engine = ScriptedEngine([last], down, down, down, [engine_event("unpause")])
    recorder = Recorder()
    watcher = watch(engine, recorder)
    waiting.until(lambda: len(recorder.seen) == 2, "the event after the outage")
    watcher.stop()
    assert recorder.seen == [(UUID, PAUSED), (UUID, RESUMED)]
    assert recorder.resyncs == 1
    # The first subscription starts now; the others resume after "pause".
    assert engine.since == [None] + ["1700000000.000000042"] * 4
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "Lost the engine's container events" in warnings[0].getMessage()
    assert caplog.text.count("Following the engine's container events again") == 1


def test_a_resync_that_raises_is_logged_and_the_stream_still_follows(caplog):
    engine = ScriptedEngine([], [engine_event("start")])
    recorder = Recorder()
    recorder.resync = lambda: 1 / 0
    watcher = watch(engine, recorder)
    waiting.until(lambda: recorder.seen == [(UUID, STARTED)], "the event")
    watcher.stop()
    assert "Could not report the instances' states" in caplog.text


def test_an_oom_names_the_instance_and_its_memory_and_emits_nothing(caplog):
    engine = ScriptedEngine([engine_event("oom"), engine_event("die")])
    engine.memory = 512 * 1024**2
    recorder = Recorder()
    watcher = watch(engine, recorder)
    waiting.until(lambda: recorder.seen, "the die after the oom")
    watcher.stop()
    assert recorder.seen == [(UUID, STOPPED)]
    assert (
        f"Instance {UUID}: a process was killed by the kernel for exceeding "
        "its flavor's memory of 512 MiB"
    ) in caplog.text


def test_an_oom_of_a_container_already_gone_is_logged_without_its_memory(caplog):
    engine = ScriptedEngine([engine_event("oom"), engine_event("die")])
    recorder = Recorder()
    watcher = watch(engine, recorder)
    waiting.until(lambda: recorder.seen, "the die after the oom")
    watcher.stop()
    [warning] = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warning.endswith(
        f"{UUID}: a process was killed by the kernel for exceeding its flavor's memory"
    )


def test_an_oom_of_another_host_is_not_logged(caplog):
    foreign = engine_event("oom", labels(host="compute-2"))
    engine = ScriptedEngine([foreign, engine_event("start")])
    recorder = Recorder()
    watcher = watch(engine, recorder)
    waiting.until(lambda: recorder.seen, "the start")
    watcher.stop()
    assert "killed by the kernel" not in caplog.text


def test_stop_closes_the_stream_ends_the_thread_and_may_be_repeated():
    engine = ScriptedEngine([])
    watcher = watch(engine, Recorder())
    waiting.until(lambda: engine.since, "the subscription")
    thread = watcher._thread
    watcher.stop()
    watcher.stop()
    assert engine.closed.is_set()
    assert not thread.is_alive()


def test_stop_before_start_does_nothing():
    events.EngineEvents(ScriptedEngine(), HOST, Recorder().emit, lambda: None).stop()
