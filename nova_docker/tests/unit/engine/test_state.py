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

import pytest
from nova.compute import power_state

from nova_docker.engine import state


@pytest.mark.parametrize(
    ("docker_state", "expected"),
    [
        ({"Status": "running", "Running": True}, power_state.RUNNING),
        # A paused container also says Running: the 2016 driver's mistake.
        ({"Status": "paused", "Running": True, "Paused": True}, power_state.PAUSED),
        ({"Status": "exited"}, power_state.SHUTDOWN),
        ({"Status": "created"}, power_state.SHUTDOWN),
        ({"Status": "dead"}, power_state.CRASHED),
        ({"Running": True, "Paused": True}, power_state.PAUSED),
        ({"Running": True}, power_state.RUNNING),
        ({}, power_state.NOSTATE),
    ],
)
def test_engine_state_maps_to_nova_power_state(docker_state, expected):
    assert state.power_state_of(docker_state) == expected
