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

from pathlib import Path

import pytest

from nova_docker_aio import steps


def test_a_failing_step_names_service_step_and_log(capsys) -> None:
    log = Path("/state/log/glance.log")
    with (
        pytest.raises(steps.StepFailed) as failed,
        steps.step("glance", "db sync", log),
    ):
        raise RuntimeError("boom")
    assert str(failed.value) == f"glance: db sync failed: boom; see {log}"
    assert "[glance] db sync  FAILED" in capsys.readouterr().out


def test_a_step_prints_its_duration(capsys) -> None:
    with steps.step("nova", "start"):
        pass
    assert capsys.readouterr().out.strip().startswith("[nova] start  0.")
