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

"""Engine container state → Nova power state (pure)."""

from typing import Any

from nova.compute import power_state

_STATUS_TO_POWER_STATE = {
    "running": power_state.RUNNING,
    "restarting": power_state.RUNNING,
    "paused": power_state.PAUSED,
    "created": power_state.SHUTDOWN,
    "exited": power_state.SHUTDOWN,
    "removing": power_state.SHUTDOWN,
    "dead": power_state.CRASHED,
}


def power_state_of(container_state: dict[str, Any]) -> int:
    """Map ``inspect``'s ``State`` object to a Nova power state.

    ``Status`` is authoritative; the booleans are kept for engines that
    predate it.  A paused container also reports ``Running: true``, which is
    why the 2016 driver called paused containers running.
    """
    status = container_state.get("Status")
    if status in _STATUS_TO_POWER_STATE:
        return _STATUS_TO_POWER_STATE[status]
    if container_state.get("Paused"):
        return power_state.PAUSED
    if container_state.get("Running"):
        return power_state.RUNNING
    return power_state.NOSTATE
