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

"""The engine's container events, told to Nova as lifecycle events.

Without them Nova learns that an instance stopped behind its back (its
process exited, the kernel's OOM killer ended it, someone ran ``docker
stop``) only at its next power-state sync, every
``sync_power_state_interval`` seconds.  The libvirt driver emits lifecycle
events instead, and Nova syncs that one instance at once; so does this
module, from the engine's event stream.

One daemon thread holds one subscription, which the engine filters to this
host's instance containers.  When the stream breaks it subscribes again,
backing off, from the last event it saw (an engine that stayed up replays
what it sent meanwhile), and then calls ``resync``: an engine that
restarted replays nothing, so the driver reports every instance's current
state (:func:`current_state_events`).  Nova compares each event with the
driver's state before it acts, so a late or repeated event does no harm.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from typing import Any

from nova.compute import power_state
from nova.virt import event as virtevent
from oslo_log import log as logging
from oslo_utils import units

from nova_docker import exception
from nova_docker.engine import client as engine_client
from nova_docker.engine import naming
from nova_docker.engine import state

LOG = logging.getLogger(__name__)

#: Engine actions that change an instance's power state.  Every way a
#: container stops (``docker stop``, ``docker kill``, its process exiting,
#: the OOM killer) ends in ``die``; ``kill`` alone is only a signal sent,
#: which the process may survive, and ``stop`` follows ``die``.
TRANSITIONS = {
    "start": virtevent.EVENT_LIFECYCLE_STARTED,
    "die": virtevent.EVENT_LIFECYCLE_STOPPED,
    "pause": virtevent.EVENT_LIFECYCLE_PAUSED,
    "unpause": virtevent.EVENT_LIFECYCLE_RESUMED,
}
#: The kernel killed a process of the container for its memory; a ``die``
#: follows if that process was the container's own.
OOM_ACTION = "oom"
#: A listed container's power state, as the event that leads to it.
_STATE_TRANSITIONS = {
    power_state.RUNNING: virtevent.EVENT_LIFECYCLE_STARTED,
    power_state.PAUSED: virtevent.EVENT_LIFECYCLE_PAUSED,
    power_state.SHUTDOWN: virtevent.EVENT_LIFECYCLE_STOPPED,
    power_state.CRASHED: virtevent.EVENT_LIFECYCLE_STOPPED,
}
RETRY_FIRST_SECONDS = 1.0
RETRY_MAX_SECONDS = 30.0
#: How long ``stop`` waits for an event being handed to Nova.
STOP_WAIT_SECONDS = 10.0
THREAD_NAME = "nova-docker-lifecycle-events"

Emit = Callable[[virtevent.LifecycleEvent], None]


# -- pure parts -----------------------------------------------------------


def event_filters(host: str) -> dict[str, list[str]]:
    """What the engine sends: only ``host``'s containers (never network
    sandboxes, which carry no host label), only the actions we use."""
    return {
        "type": ["container"],
        "label": naming.label_filters(naming.host_selector(host)),
        "event": sorted([*TRANSITIONS, OOM_ACTION]),
    }


def _instance_uuid(labels: Mapping[str, str], host: str) -> str | None:
    """The instance whose container carries ``labels``, if it is ``host``'s."""
    if labels.get(naming.HOST_LABEL) != host or naming.SANDBOX_OF_LABEL in labels:
        return None
    return labels.get(naming.UUID_LABEL) or None


def instance_of(event: Mapping[str, Any], host: str) -> str | None:
    """The instance of ``host`` an engine event is about; None for anything
    else.  The engine sends a container's labels as the actor's attributes.
    """
    if event.get("Type") != "container":
        return None
    attributes = (event.get("Actor") or {}).get("Attributes") or {}
    return _instance_uuid(attributes, host)


def lifecycle_event(
    event: Mapping[str, Any], host: str
) -> virtevent.LifecycleEvent | None:
    """Nova's lifecycle event for an engine event; None when it is not
    about an instance of ``host`` or changes no power state."""
    transition = TRANSITIONS.get(event.get("Action"))
    instance_uuid = instance_of(event, host)
    if transition is None or instance_uuid is None:
        return None
    return virtevent.LifecycleEvent(instance_uuid, transition)


def resume_point(event: Mapping[str, Any]) -> str | None:
    """The ``since`` that resumes a stream just after ``event``.

    One nanosecond after it, so the event is not delivered twice; the
    engine stamps each event under a lock, so no other shares its time.
    """
    nanoseconds = event.get("timeNano")
    if not isinstance(nanoseconds, int):
        return None
    seconds, rest = divmod(nanoseconds + 1, 10**9)
    return f"{seconds}.{rest:09d}"


def current_state_events(
    listing: Iterable[Mapping[str, Any]], host: str
) -> list[virtevent.LifecycleEvent]:
    """The events that lead to each listed instance's current state, from
    the engine's listing of ``host``'s containers (``Labels`` and
    ``State`` of each): what a resync emits."""
    found = []
    for entry in listing:
        instance_uuid = _instance_uuid(entry.get("Labels") or {}, host)
        power = state.power_state_of({"Status": entry.get("State")})
        transition = _STATE_TRANSITIONS.get(power)
        if instance_uuid is not None and transition is not None:
            found.append(virtevent.LifecycleEvent(instance_uuid, transition))
    return found


# -- the watcher ----------------------------------------------------------


class EngineEvents:
    """Follows the engine's events of ``host``'s instances in a thread and
    hands each power-state change to ``emit``.

    ``resync`` is called once after every reconnection, to report what
    changed while the stream was down.  Neither callback may end the thread:
    what they raise is logged.
    """

    def __init__(
        self,
        engine: engine_client.Engine,
        host: str,
        emit: Emit,
        resync: Callable[[], None],
    ) -> None:
        self._engine = engine
        self._host = host
        self._emit = emit
        self._resync = resync
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        #: Ends the open stream; None while there is none.
        self._close_stream: Callable[[], None] | None = None
        #: Where a new subscription resumes: after the last event seen.
        self._since: str | None = None
        #: The last subscription broke, and no new one has opened yet.
        self._lost = False
        #: The engine accepted the current subscription.
        self._opened = False

    def start(self) -> None:
        """Follow in a daemon thread; returns at once, since even the
        first subscription is made there."""
        self.stop()
        self._stopping.clear()
        self._thread = threading.Thread(
            target=self._follow_forever, name=THREAD_NAME, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """End the thread: the stream is closed, so the blocking read
        returns at once; an event being handed to Nova is let finish."""
        with self._lock:
            self._stopping.set()
            close, self._close_stream = self._close_stream, None
        if close is not None:
            close()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(STOP_WAIT_SECONDS)

    @property
    def following(self) -> bool:
        """Whether the engine has a subscription of ours open now."""
        with self._lock:
            return self._close_stream is not None

    # -- the thread -------------------------------------------------------

    def _follow_forever(self) -> None:
        delay = RETRY_FIRST_SECONDS
        while not self._stopping.is_set():
            opened = self._follow_once()
            if opened:
                delay = RETRY_FIRST_SECONDS
            if self._stopping.wait(delay):
                return
            delay = min(delay * 2, RETRY_MAX_SECONDS)

    def _follow_once(self) -> bool:
        """One subscription, to its end; whether the engine accepted it.
        Nothing it raises ends the thread."""
        self._opened = False
        try:
            stream = self._engine.event_stream(
                event_filters(self._host), self._since, on_open=self._on_open
            )
            for event in stream:
                self._handle(event)
            reason = "the engine ended the stream"
        except (exception.EngineUnavailable, exception.EngineError) as e:
            reason = e.format_message()
        except Exception as e:
            LOG.exception("Unexpected failure following the engine's events")
            reason = str(e) or type(e).__name__
        with self._lock:
            self._close_stream = None
        if not self._stopping.is_set():
            self._lose(reason)
        return self._opened

    def _on_open(self, close: Callable[[], None]) -> None:
        """The engine accepted a subscription: keep its closer, and after an
        outage say so and resync."""
        with self._lock:
            stopping = self._stopping.is_set()
            if not stopping:
                self._close_stream = close
        if stopping:  # stop() came before there was a stream to close
            close()
            return
        self._opened = True
        if self._lost:
            self._lost = False
            LOG.info("Following the engine's container events again; resyncing")
            self._call_resync()
        else:
            LOG.debug("Following the engine's events of host %s", self._host)

    def _lose(self, reason: str) -> None:
        """Warn once per outage; each further failed attempt is a debug line."""
        if self._lost:
            LOG.debug("The engine's events are still unavailable: %s", reason)
            return
        self._lost = True
        LOG.warning(
            "Lost the engine's container events (%s); reconnecting. Until "
            "then Nova sees instances' power changes only at its periodic "
            "power-state sync.",
            reason,
        )

    # -- one event --------------------------------------------------------

    def _handle(self, event: Mapping[str, Any]) -> None:
        self._since = resume_point(event) or self._since
        if event.get("Action") == OOM_ACTION:
            self._warn_oom(event)
            return
        lifecycle = lifecycle_event(event, self._host)
        if lifecycle is not None:
            self._call_emit(lifecycle)

    def _call_emit(self, lifecycle: virtevent.LifecycleEvent) -> None:
        try:
            self._emit(lifecycle)
        except Exception:
            LOG.exception("Could not hand Nova the event %s", lifecycle)

    def _call_resync(self) -> None:
        try:
            self._resync()
        except Exception:
            # The stream is open again: whatever changes from now on is
            # seen; the periodic sync covers what this missed.
            LOG.exception("Could not report the instances' states after an outage")

    def _warn_oom(self, event: Mapping[str, Any]) -> None:
        instance_uuid = instance_of(event, self._host)
        if instance_uuid is None:
            return
        mib = self._memory_mib((event.get("Actor") or {}).get("ID") or "")
        # Outside any request: the message names the instance itself.
        LOG.warning(
            "Instance %(uuid)s: a process was killed by the kernel for "
            "exceeding its flavor's memory%(limit)s",
            {"uuid": instance_uuid, "limit": f" of {mib} MiB" if mib else ""},
        )

    def _memory_mib(self, container_id: str) -> int | None:
        """The container's memory limit in MiB; None if it cannot be read
        (the container is gone already, or the engine is)."""
        if not container_id:
            return None
        try:
            found = self._engine.inspect_container(container_id)
        except (
            exception.ContainerNotFound,
            exception.EngineError,
            exception.EngineUnavailable,
        ) as e:
            LOG.debug("Cannot read the memory of %s: %s", container_id, e)
            return None
        memory = (found.get("HostConfig") or {}).get("Memory") or 0
        return memory // units.Mi or None
