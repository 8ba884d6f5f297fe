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

"""The run's chart: where it goes, and no run without matplotlib."""

import sys
from pathlib import Path
from typing import Any

import pytest

from bench import run


def _must_not_run(*_: Any, **__: Any) -> None:
    raise AssertionError("the run went on without matplotlib")


def test_chart_is_written_beside_the_json_by_default() -> None:
    args = run.parse(["--out", "bench/results/smoke.json"])

    assert run.chart_path(args) == Path("bench/results/smoke.png")


def test_chart_option_chooses_another_path() -> None:
    args = run.parse(["--out", "r.json", "--chart", "charts/elsewhere.png"])

    assert run.chart_path(args) == Path("charts/elsewhere.png")


def test_run_without_matplotlib_stops_before_measuring(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A missing package cannot be produced on demand: an entry of None in
    # sys.modules makes ``import matplotlib`` fail as if it were absent.
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setattr(run.report, "machine", _must_not_run)
    monkeypatch.setattr(run, "RawEngine", _must_not_run)
    monkeypatch.setattr(run, "_with_clouds", _must_not_run)
    out = tmp_path / "latest.json"

    with pytest.raises(SystemExit, match=r"matplotlib.*pip install '\.\[bench\]'"):
        run.main(["--only", "layer_parse", "--out", str(out)])

    assert not out.exists()
    assert not out.with_suffix(".png").exists()
