from pathlib import Path

import pytest

from nova_docker.aio import steps


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
