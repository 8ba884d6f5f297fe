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

"""The private database's datadir: made once, and once more from empty
after a failed first try (a failure the real installer gives only now and
then, so its runs are stood in for)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nova_docker_aio import procs
from nova_docker_aio.layout import Layout
from nova_docker_aio.services import mariadb


def _installer(outcomes: list[bool], seen: list[list[str]]):
    def run(argv, logfile, env=None, ok=(0,)):
        datadir = Path(
            next(a for a in argv if a.startswith("--datadir=")).split("=")[1]
        )
        seen.append(sorted(p.name for p in datadir.iterdir()))
        (datadir / "half-made").write_text("x")
        if not outcomes.pop(0):
            raise procs.ProcessError("mariadb-install-db exited with status 1")
        (datadir / "mysql").mkdir()

    return run


def test_a_failed_first_install_is_retried_from_an_empty_datadir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    layout, seen = Layout(tmp_path, 30000), []
    monkeypatch.setattr(procs, "run", _installer([False, True], seen))
    assert mariadb.initialize(layout)
    assert seen == [[], []]
    assert not mariadb.initialize(layout)


def test_a_second_failure_stands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(procs, "run", _installer([False, False], []))
    with pytest.raises(procs.ProcessError):
        mariadb.initialize(Layout(tmp_path, 30000))
