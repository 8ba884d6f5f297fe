"""What a cloud's compute host left on the engine: containers, and the
images it loaded from this cloud's Glance."""

from __future__ import annotations

#: The label the driver puts on every container it creates (see
#: nova_docker.engine.naming; repeated here because aio is an island).
HOST_LABEL = "org.openstack.nova.host"
#: The repository the driver loads Glance images into, tagged by image UUID.
GLANCE_REPOSITORY = "nova-glance"


def remove_all(host: str, api_url: str) -> list[str]:
    """Force-remove every container labelled with ``host``; return names."""
    import docker  # noqa: PLC0415 - only `down` needs the engine

    client = docker.DockerClient(base_url=api_url, timeout=60)
    removed = []
    for container in client.containers.list(
        all=True, filters={"label": f"{HOST_LABEL}={host}"}
    ):
        container.remove(force=True)
        removed.append(container.name)
    return removed


def remove_images(image_ids: list[str], api_url: str) -> list[str]:
    """Remove the engine's copies of these Glance images; return the refs.

    An image still used by a container (kept with --keep-containers) stays.
    """
    import docker  # noqa: PLC0415

    client = docker.DockerClient(base_url=api_url, timeout=60)
    removed = []
    for image_id in image_ids:
        ref = f"{GLANCE_REPOSITORY}:{image_id}"
        try:
            client.images.remove(ref)
        except docker.errors.APIError:
            continue
        removed.append(ref)
    return removed
