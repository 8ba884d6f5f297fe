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
