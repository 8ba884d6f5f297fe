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

"""Start daemons detached, remember them by PID, stop them by PID only.

A pid file holds the PID and the process start time (from /proc), so a PID
reused by an unrelated process after a reboot or crash is never signalled.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from pathlib import Path

from nova_docker_aio import poll


class ProcessError(RuntimeError):
    """A daemon could not be started or did not become ready."""


def start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces; fields after it do not.
    return stat.rsplit(")", 1)[1].split()[19]


def read_pid(pidfile: Path) -> int | None:
    """Return the PID recorded in ``pidfile`` if that process still runs."""
    try:
        pid_text, started = pidfile.read_text().split()
    except (OSError, ValueError):
        return None
    pid = int(pid_text)
    return pid if is_running(pid, started) else None


def is_running(pid: int, started: str) -> bool:
    """Whether ``pid`` is still the process that started at ``started``."""
    return start_time(pid) == started


def spawn(
    argv: Sequence[str],
    pidfile: Path,
    logfile: Path,
    env: Mapping[str, str] | None = None,
) -> int:
    """Start ``argv`` in its own session, output appended to ``logfile``."""
    logfile.parent.mkdir(parents=True, exist_ok=True)
    pidfile.parent.mkdir(parents=True, exist_ok=True)
    with open(logfile, "ab") as log, open(os.devnull, "rb") as devnull:
        proc = subprocess.Popen(
            list(argv),
            stdin=devnull,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            # Not the caller's cwd: `python -m` would import from it.
            cwd=pidfile.parent,
            start_new_session=True,
        )
    pidfile.write_text(f"{proc.pid} {start_time(proc.pid)}\n")
    return proc.pid


def stop(pidfile: Path, timeout: float = 20.0) -> bool:
    """SIGTERM the recorded process, SIGKILL it after ``timeout``.

    Returns whether a process was running.
    """
    pid = read_pid(pidfile)
    if pid is None:
        pidfile.unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    with contextlib.suppress(poll.Timeout):
        _wait_gone(pidfile, pid, timeout)
    if read_pid(pidfile) == pid:
        os.kill(pid, signal.SIGKILL)
    pidfile.unlink(missing_ok=True)
    return True


def kill(pidfile: Path, timeout: float = 30.0) -> int:
    """SIGKILL the recorded process, as a crash or the OOM killer would, and
    wait until it is gone; the pid file stays.  Returns the PID."""
    pid = read_pid(pidfile)
    if pid is None:
        raise ProcessError(f"nothing recorded in {pidfile} runs")
    os.kill(pid, signal.SIGKILL)
    _wait_gone(pidfile, pid, timeout)
    return pid


def _wait_gone(pidfile: Path, pid: int, timeout: float) -> None:
    def gone() -> bool:
        reap(pid)
        return read_pid(pidfile) != pid

    poll.until(gone, f"pid {pid} has exited", timeout, interval=0.1)


def reap(pid: int) -> None:
    """Collect a child that exited so it does not linger as a zombie."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def wait_for(
    ready: Callable[[], bool],
    pidfile: Path,
    timeout: float,
    what: str,
) -> None:
    """Poll ``ready`` until true; fail early if the process died."""

    def check() -> bool:
        if ready():
            return True
        pid = read_pid(pidfile)
        if pid is None:
            raise ProcessError(f"{what} exited during start-up")
        reap(pid)
        return False

    try:
        poll.until(check, f"{what} is ready", timeout, interval=0.2)
    except poll.Timeout as exc:
        raise ProcessError(f"{what} not ready after {timeout:.0f}s") from exc


def run(
    argv: Sequence[str],
    logfile: Path,
    env: Mapping[str, str] | None = None,
    ok: tuple[int, ...] = (0,),
) -> None:
    """Run a one-shot command, output appended to ``logfile``; raise unless
    its exit status is in ``ok``."""
    logfile.parent.mkdir(parents=True, exist_ok=True)
    with open(logfile, "ab") as log:
        log.write(f"+ {' '.join(argv)}\n".encode())
        log.flush()
        result = subprocess.run(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            check=False,
        )
    if result.returncode not in ok:
        raise ProcessError(f"{argv[0]} exited with status {result.returncode}")
