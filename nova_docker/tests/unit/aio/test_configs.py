import configparser
from pathlib import Path

from nova_docker.aio import cloud
from nova_docker.aio import configs
from nova_docker.aio import secret
from nova_docker.aio.layout import Layout

LAYOUT = Layout(Path("/state"), 30000)
SECRETS = {name: f"pw-{name}" for name in secret.NAMES}


def _parse(text: str) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser()
    parser.read_string(text)
    return parser


def test_nova_runs_the_chosen_driver_on_its_own_host_over_fake_transport() -> None:
    conf = _parse(configs.nova(LAYOUT, SECRETS, "docker.DockerDriver", "unix:///s"))
    assert conf["DEFAULT"]["compute_driver"] == "docker.DockerDriver"
    assert conf["DEFAULT"]["host"] == LAYOUT.compute_host
    assert conf["DEFAULT"]["transport_url"] == "fake://"
    assert conf["docker"]["api_url"] == "unix:///s"


def test_nova_reaches_the_null_network_not_the_catalog() -> None:
    conf = _parse(configs.nova(LAYOUT, SECRETS, "fake.FakeDriver", "unix:///s"))
    assert conf["neutron"]["endpoint_override"] == LAYOUT.url("null-network")


def test_databases_are_reached_over_the_private_socket() -> None:
    conf = _parse(configs.keystone(LAYOUT, SECRETS))
    url = conf["database"]["connection"]
    assert url.startswith("mysql+pymysql://keystone:pw-db_keystone@localhost/")
    assert f"unix_socket={LAYOUT.mysql_socket}" in url


def test_glance_accepts_docker_images_into_the_state_dir() -> None:
    conf = _parse(configs.glance(LAYOUT, SECRETS, "/paste.ini"))
    assert "docker" in conf["image_format"]["container_formats"].split(",")
    assert conf["fs"]["filesystem_store_datadir"].startswith("/state/")


def test_every_file_path_stays_under_the_state_dir() -> None:
    texts = [
        configs.keystone(LAYOUT, SECRETS),
        configs.glance(LAYOUT, SECRETS, "/paste.ini"),
        configs.placement(LAYOUT, SECRETS),
        configs.nova(LAYOUT, SECRETS, "fake.FakeDriver", "unix:///s"),
    ]
    for text in texts:
        for section in _parse(text).values():
            for key, value in section.items():
                if key.endswith(("_path", "_datadir", "key_repository")):
                    assert value.startswith("/state/"), (key, value)


def test_nova_brings_back_running_servers_after_a_host_reboot() -> None:
    conf = _parse(configs.nova(LAYOUT, SECRETS, "docker.DockerDriver", "unix:///s"))
    assert conf["DEFAULT"]["resume_guests_state_on_host_boot"] == "true"


def test_nova_reads_the_operators_local_conf_after_its_own(tmp_path: Path) -> None:
    layout = Layout(tmp_path, 30000)
    assert cloud.nova_config_files(layout) == "api-paste.ini;nova.conf"
    (tmp_path / "etc" / "nova").mkdir(parents=True)
    (tmp_path / "etc" / "nova" / cloud.LOCAL_CONF).write_text("[DEFAULT]\n")
    assert cloud.nova_config_files(layout) == "api-paste.ini;nova.conf;local.conf"
