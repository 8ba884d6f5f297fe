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

"""The dashboard: its place in the table, its settings for Horizon, the
one-time static files, and what ``up``, ``down`` and the CLI make of
``--no-dashboard``."""

from pathlib import Path
from unittest import mock

import pytest

from nova_docker_aio import cli
from nova_docker_aio import cloud
from nova_docker_aio import services
from nova_docker_aio.layout import PORT_OFFSETS
from nova_docker_aio.layout import PORT_SPAN
from nova_docker_aio.layout import Layout
from nova_docker_aio.services import dashboard
from nova_docker_aio.services import nova
from nova_docker_aio.services.base import Context
from nova_docker_aio.tests.conf_support import LAYOUT
from nova_docker_aio.tests.conf_support import SECRETS
from nova_docker_aio.tests.conf_support import parse


def _settings(layout: Layout = LAYOUT) -> dict[str, object]:
    """The rendered local_settings.py, run as Horizon's star import would."""
    text = dashboard.settings(layout, SECRETS["dashboard"], "27.0.0")
    found: dict[str, object] = {}
    exec(compile(text, "local_settings.py", "exec"), found)  # noqa: S102
    return {k: v for k, v in found.items() if not k.startswith("__")}


@pytest.mark.parametrize(("with_neutron", "hosts"), [(True, 1), (False, 1), (True, 2)])
def test_the_dashboard_is_in_the_table_only_when_asked(
    with_neutron: bool, hosts: int
) -> None:
    on = [s.name for s in services.table(with_neutron, hosts, dashboard=True)]
    off = [s.name for s in services.table(with_neutron, hosts, dashboard=False)]
    assert on == [*off, "dashboard"]
    assert "keystone" in dashboard.Dashboard.start_after


def test_its_port_is_inside_the_clouds_span() -> None:
    assert PORT_OFFSETS["dashboard"] == 12
    assert len(set(PORT_OFFSETS.values())) == len(PORT_OFFSETS)
    assert max(PORT_OFFSETS.values()) < PORT_SPAN
    assert dashboard.url(LAYOUT) == "http://127.0.0.1:30012/"


def test_the_settings_point_horizon_at_this_cloud() -> None:
    found = _settings()
    assert found["OPENSTACK_KEYSTONE_URL"] == "http://127.0.0.1:30001/v3"
    assert found["SECRET_KEY"] == SECRETS["dashboard"]
    assert found["DEBUG"] is False
    assert found["ALLOWED_HOSTS"] == ["127.0.0.1", "localhost"]
    # Static files live in the cloud's state dir, one tree per version.
    assert found["STATIC_ROOT"] == "/state/dashboard/static-27.0.0"
    assert found["COMPRESS_OFFLINE"] is True
    # No memcached runs: sessions in signed cookies, a cache in memory.
    assert found["SESSION_ENGINE"].endswith("signed_cookies")
    assert "locmem" in found["CACHES"]["default"]["BACKEND"]


def test_the_console_tab_is_the_serial_console_in_a_frame_of_its_own() -> None:
    found = _settings()
    assert found["CONSOLE_TYPE"] == "SERIAL"
    # Django's default, DENY, leaves the Console tab's frame blank.
    assert found["X_FRAME_OPTIONS"] == "SAMEORIGIN"
    # And Nova's proxy lets a page opened as localhost or 127.0.0.1 in.
    conf = parse(nova.config(LAYOUT, SECRETS, "docker.DockerDriver"))
    origins = conf["console"]["allowed_origins"].split(",")
    assert {"localhost", "127.0.0.1"} <= set(origins)


def test_launching_needs_no_volume_password_or_key_pair() -> None:
    found = _settings()
    assert found["LAUNCH_INSTANCE_DEFAULTS"]["create_volume"] is False
    features = found["OPENSTACK_HYPERVISOR_FEATURES"]
    assert features["can_set_password"] is False
    assert features["requires_keypair"] is False


def test_horizon_imports_the_settings_from_the_clouds_own_path() -> None:
    env = dashboard.environment(LAYOUT)
    assert env["PYTHONPATH"] == "/state/etc/dashboard"
    assert env["DJANGO_SETTINGS_MODULE"] == "openstack_dashboard.settings"
    assert LAYOUT.dashboard_settings == Path(
        "/state/etc/dashboard/local/local_settings.py"
    )


def test_configs_write_the_package_and_its_settings(tmp_path: Path) -> None:
    layout = Layout(tmp_path, 30000)
    ctx = Context(layout, "docker", True, ())
    with mock.patch.object(dashboard, "version", return_value="27.0.0"):
        written = dashboard.Dashboard().configs(ctx)
    assert set(written) == {
        tmp_path / "etc/dashboard/local/__init__.py",
        tmp_path / "etc/dashboard/local/local_settings.py",
    }
    assert "CONSOLE_TYPE = 'SERIAL'" in written[layout.dashboard_settings]


def test_static_files_are_collected_once_per_version_and_settings(
    tmp_path: Path,
) -> None:
    layout = Layout(tmp_path, 30000)
    ctx = Context(layout, "docker", True, ())
    layout.dashboard_settings.parent.mkdir(parents=True)
    layout.dashboard_settings.write_text("A = 1\n")
    stale = layout.dashboard_static("26.0.0")
    stale.mkdir(parents=True)
    runs: list[list[str]] = []
    with (
        mock.patch.object(dashboard, "version", return_value="27.0.0"),
        mock.patch.object(dashboard.procs, "run", lambda argv, *a: runs.append(argv)),
    ):
        dashboard.Dashboard().setup(ctx)
        dashboard.Dashboard().setup(ctx)
        assert [argv[3] for argv in runs] == ["collectstatic", "compress"]
        # Other settings: collected and compressed again.
        layout.dashboard_settings.write_text("A = 2\n")
        dashboard.Dashboard().setup(ctx)
    assert [argv[3] for argv in runs] == ["collectstatic", "compress"] * 2
    assert not stale.exists()


def test_without_horizon_up_says_what_to_install() -> None:
    missing = dashboard.metadata.PackageNotFoundError("horizon")
    with mock.patch.object(dashboard.metadata, "version", side_effect=missing):
        with pytest.raises(dashboard.procs.ProcessError, match="--no-dashboard"):
            dashboard.Dashboard().ensure_installed(mock.Mock())


def test_up_without_the_dashboard_stops_the_one_that_ran(tmp_path: Path) -> None:
    layout = Layout(tmp_path, 30000)
    layout.dashboard_record.write_text("on\n")
    with (
        mock.patch.object(dashboard.Dashboard, "running", return_value=True),
        mock.patch.object(dashboard.Dashboard, "stop") as stop,
    ):
        cloud._leave_dashboard(layout, dashboard=False)
    stop.assert_called_once()
    assert not cloud.has_dashboard(layout)
    assert "dashboard" not in [s.name for s in cloud.context(layout).services]


def test_up_with_the_dashboard_records_it_for_down(tmp_path: Path) -> None:
    layout = Layout(tmp_path, 30000)
    with mock.patch.object(dashboard.Dashboard, "stop") as stop:
        cloud._leave_dashboard(layout, dashboard=True)
    stop.assert_not_called()
    assert cloud.has_dashboard(layout)
    assert "dashboard" in [s.name for s in cloud.context(layout).services]


def test_the_cli_runs_the_dashboard_unless_told_not_to() -> None:
    parser = cli._parser()
    assert parser.parse_args(["up"]).with_dashboard is True
    assert parser.parse_args(["demo", "--no-dashboard"]).with_dashboard is False


def test_the_hint_names_the_url_and_the_demo_login(tmp_path: Path) -> None:
    layout = Layout(tmp_path, 30000)
    assert cli._dashboard_hint(layout) == ""
    layout.dashboard_record.write_text("on\n")
    hint = cli._dashboard_hint(layout)
    password = (layout.etc / "secrets.json").read_text()
    assert "http://127.0.0.1:30012/" in hint
    assert "user demo" in hint
    assert hint.split("password ")[1].split(",")[0] in password
