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

import sys

import pytest

from nova_docker_aio import procs


def test_spawned_process_is_found_by_pid_and_stopped(tmp_path) -> None:
    pidfile, log = tmp_path / "run" / "x.pid", tmp_path / "x.log"
    argv = [
        sys.executable,
        "-c",
        "import time; print('hi', flush=True); time.sleep(60)",
    ]
    pid = procs.spawn(argv, pidfile, log)
    assert procs.read_pid(pidfile) == pid
    assert procs.stop(pidfile, timeout=5)
    assert procs.read_pid(pidfile) is None
    assert not pidfile.exists()


def test_a_pid_file_of_another_process_start_is_ignored(tmp_path) -> None:
    """A PID reused after a crash must never be signalled."""
    pidfile = tmp_path / "x.pid"
    pidfile.write_text("1 0\n")  # PID 1 exists, but did not start at tick 0
    assert procs.read_pid(pidfile) is None
    assert not procs.stop(pidfile)


def test_one_shot_failure_names_the_command(tmp_path) -> None:
    with pytest.raises(procs.ProcessError, match="false exited with status 1"):
        procs.run(["false"], tmp_path / "x.log")
    procs.run(["false"], tmp_path / "x.log", ok=(0, 1))


def test_wait_for_fails_fast_when_the_process_died(tmp_path) -> None:
    pidfile = tmp_path / "x.pid"
    procs.spawn([sys.executable, "-c", "pass"], pidfile, tmp_path / "x.log")
    with pytest.raises(procs.ProcessError, match="exited during start-up"):
        procs.wait_for(lambda: False, pidfile, 30, "thing")
