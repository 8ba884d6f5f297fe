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

"""Engine stats → Nova's diagnostics (pure).

Only the pre-2.48 form: the versioned ``Diagnostics`` object types its
``driver`` field as an enum of Nova's in-tree drivers, so an out-of-tree
driver cannot fill it truthfully.
"""

from __future__ import annotations

from typing import Any


def legacy_diagnostics(stats: dict[str, Any]) -> dict[str, int]:
    """The flat dict of the pre-2.48 diagnostics API."""
    cpu = (stats.get("cpu_stats") or {}).get("cpu_usage") or {}
    memory = stats.get("memory_stats") or {}
    flat = {
        f"cpu{index}_time": nanoseconds
        for index, nanoseconds in enumerate(cpu.get("percpu_usage") or ())
    }
    flat["memory"] = memory.get("limit", 0)
    flat["memory-actual"] = memory.get("usage", 0)
    flat["pids"] = (stats.get("pids_stats") or {}).get("current", 0)
    return flat
