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

"""The pure parts of serial consoles; the rest runs on the real engine in
``functional/test_serial_console.py``."""

from __future__ import annotations

from nova import exception as nova_exception

from nova_docker.console import serial

STATUS = """Name:\tsh
Tgid:\t4242
Pid:\t4242
PPid:\t4100
NSpid:\t4242\t17
"""


def test_the_command_is_split_as_a_shell_would_split_it():
    options = serial.Options(command="/bin/bash -l -c 'exec login'")
    assert options.argv == ["/bin/bash", "-l", "-c", "exec login"]


def test_a_host_pid_becomes_the_pid_its_container_sees(tmp_path, monkeypatch):
    (tmp_path / "4242").write_text(STATUS)
    monkeypatch.setattr(serial, "PROC_STATUS", str(tmp_path / "{pid}"))
    assert serial._pid_in_container(4242) == 17


def test_a_process_this_host_cannot_see_has_no_pid(tmp_path, monkeypatch):
    monkeypatch.setattr(serial, "PROC_STATUS", str(tmp_path / "{pid}"))
    (tmp_path / "7").write_text("Name:\tsh\nPid:\t7\n")  # a kernel without NSpid
    assert serial._pid_in_container(4242) is None
    assert serial._pid_in_container(7) is None
    assert serial._pid_in_container(0) is None


def test_refusals_are_novas_console_type_unavailable_with_the_reason():
    error = serial._unavailable("the image has no /bin/bash")
    assert isinstance(error, nova_exception.ConsoleTypeUnavailable)
    assert error.format_message() == (
        "Unavailable console type serial: the image has no /bin/bash."
    )
    # What nova-api rebuilds from the RPC reply: the same words.
    rebuilt = nova_exception.ConsoleTypeUnavailable(*error.args, **error.kwargs)
    assert rebuilt.format_message() == error.format_message()
