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

"""Wait for a condition that becomes true asynchronously (a container's
output appearing, a state settling).  The limit is a safety net against a
hung test, not an assertion about speed."""

from __future__ import annotations

from collections.abc import Callable

from nova_docker_aio import poll

SAFETY_LIMIT_SECONDS = 60


def until(condition: Callable[[], bool], what: str = "condition") -> None:
    """The launcher's one poll helper, polling briskly: what the driver's
    tests wait for (a line of output, a state) comes within moments."""
    poll.until(condition, what, SAFETY_LIMIT_SECONDS, interval=0.1)
