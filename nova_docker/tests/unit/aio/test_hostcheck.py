import socket
from pathlib import Path

import pytest

from nova_docker.aio import hostcheck
from nova_docker.aio.layout import Layout


def test_not_being_root_is_refused_with_the_reason(monkeypatch) -> None:
    monkeypatch.setattr(hostcheck.os, "geteuid", lambda: 1000)
    with pytest.raises(hostcheck.HostError, match="starting dockerd needs root"):
        hostcheck.require_root("starting dockerd")


def test_a_taken_port_is_named_with_its_service() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        layout = Layout(Path("/x"), port - 2)  # glance is base + 2
        with pytest.raises(hostcheck.HostError, match=f"glance \\({port}\\)"):
            hostcheck.check_ports_free(layout, ["glance"])


def test_installing_without_apt_get_says_what_to_install(monkeypatch) -> None:
    monkeypatch.setattr(hostcheck.shutil, "which", lambda name: None)
    with pytest.raises(hostcheck.HostError, match=r"needs docker\.io; install it"):
        hostcheck.apt_install(["docker.io"], why="the Docker engine")
