"""The ``[docker]`` option group.

Options are registered on Nova's ``CONF`` by :func:`register_opts`, which the
driver calls when it is constructed; nothing here reads ``CONF`` at import.
"""

from oslo_config import cfg

from nova_docker.conf import docker as docker_conf

GROUP = docker_conf.docker_group
MIN_API_VERSION = docker_conf.MIN_API_VERSION


def register_opts(conf: cfg.ConfigOpts) -> None:
    docker_conf.register_opts(conf)


def list_opts() -> list[tuple[cfg.OptGroup, list[cfg.Opt]]]:
    """Entry point for oslo-config-generator (namespace ``nova_docker``)."""
    return docker_conf.list_opts()
