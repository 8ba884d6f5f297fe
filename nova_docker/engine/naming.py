"""Names and labels that mark what nova-docker owns on an engine.

Everything we create carries these, so that listing "our" containers is one
label-filtered call and other people's containers are never touched.
"""

LABEL_PREFIX = "org.openstack.nova"
UUID_LABEL = f"{LABEL_PREFIX}.instance-uuid"
NAME_LABEL = f"{LABEL_PREFIX}.instance-name"
PROJECT_LABEL = f"{LABEL_PREFIX}.project-id"
HOST_LABEL = f"{LABEL_PREFIX}.host"
#: On a loaded image: the bytes its layers expand to on the engine's disk,
#: counted while it streamed in (labels of this namespace in a tenant's
#: image are removed at load, so this one is always ours).
EXPANDED_BYTES_LABEL = f"{LABEL_PREFIX}.image-expanded-bytes"

#: Repository of images loaded from Glance; the tag is the Glance image UUID,
#: so the Glance image name never has to match anything on the engine.
GLANCE_REPOSITORY = "nova-glance"
#: Repository of snapshots being committed and uploaded; a tag left here is
#: an upload that was cut short, and is swept away.
SNAPSHOT_REPOSITORY = "nova-snapshot"


def container_name(instance_uuid: str) -> str:
    return f"nova-{instance_uuid}"


def glance_image_ref(image_id: str) -> str:
    return f"{GLANCE_REPOSITORY}:{image_id}"


def snapshot_ref(image_id: str) -> str:
    return f"{SNAPSHOT_REPOSITORY}:{image_id}"


def container_labels(
    instance_uuid: str, instance_name: str, project_id: str, host: str
) -> dict[str, str]:
    return {
        UUID_LABEL: instance_uuid,
        NAME_LABEL: instance_name,
        PROJECT_LABEL: project_id,
        HOST_LABEL: host,
    }


def host_selector(host: str) -> dict[str, str]:
    """Labels that select every container this compute host owns."""
    return {HOST_LABEL: host}
