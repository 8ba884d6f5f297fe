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

"""The run's PNG, drawn from hand-made figures."""

import sys
from pathlib import Path

import pytest

from bench import chart
from bench.stats import Figure

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _figures() -> list[Figure]:
    return [
        Figure(
            name="boot.overhead",
            formula="(docker - fake) / raw",
            ratio=1.5,
            target="<= 1.2",
            samples={"docker_s": [1.2, 1.3, 1.1], "raw_s": [0.2, 0.25, 0.3]},
        ),
        Figure(
            name="import.rss_growth_mib",
            formula="peak RSS growth, MiB",
            ratio=44.0,
            target="< 64",
            samples={"rss_growth_mib": [43.0, 44.0, 44.5]},
        ),
        Figure(
            name="delete.throughput",
            formula="raw / driver",
            ratio=0.4,
            samples={"calls_at_3": [2.0], "seconds_at_3": [0.1]},
        ),
    ]


def _assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > 10_000


def test_draw_writes_a_png_of_targets_and_samples(tmp_path: Path) -> None:
    path = tmp_path / "results" / "latest.png"

    assert chart.draw(_figures(), path) == path

    _assert_png(path)


def test_draw_of_a_run_that_measured_nothing_still_writes_a_png(
    tmp_path: Path,
) -> None:
    path = tmp_path / "empty.png"

    chart.draw([], path)

    assert path.read_bytes()[:8] == PNG_MAGIC


def test_draw_without_matplotlib_raises_naming_the_bench_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An entry of None in sys.modules makes ``import matplotlib`` fail.
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    path = tmp_path / "latest.png"

    with pytest.raises(chart.ChartUnavailable, match=r"pip install '\.\[bench\]'"):
        chart.draw(_figures(), path)

    assert not path.exists()


@pytest.mark.parametrize(
    ("key", "unit"),
    [
        ("docker_s", "s"),
        ("seconds_at_250", "s"),
        ("rss_growth_mib", "MiB"),
        ("after_cpu_s_per_gib", "CPU s/GiB"),
        ("calls_at_10", "engine calls"),
        ("before_cores", "cores"),
        ("transient_images_left", "count"),
    ],
)
def test_sample_units_follow_the_benchmarks_naming(key: str, unit: str) -> None:
    assert chart.sample_unit(key) == unit
