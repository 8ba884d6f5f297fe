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

"""Names and labels that mark what nova-docker owns on an engine.

Everything we create carries these, so that listing "our" containers is one
label-filtered call and other people's containers are never touched.
"""

LABEL_PREFIX = "org.openstack.nova"
UUID_LABEL = f"{LABEL_PREFIX}.instance-uuid"
NAME_LABEL = f"{LABEL_PREFIX}.instance-name"
PROJECT_LABEL = f"{LABEL_PREFIX}.project-id"
HOST_LABEL = f"{LABEL_PREFIX}.host"
#: On an instance's network sandbox: the instance it holds the namespace
#: of.  Sandboxes carry none of the instance labels above, so that every
#: listing of instances (power sync, audits, inventory) leaves them out.
SANDBOX_OF_LABEL = f"{LABEL_PREFIX}.sandbox-of"
#: On an instance's network sandbox: the compute host that made it.
SANDBOX_HOST_LABEL = f"{LABEL_PREFIX}.sandbox-host"
#: On an instance's config drive volume: the instance it belongs to.
CONFIG_DRIVE_OF_LABEL = f"{LABEL_PREFIX}.config-drive-of"
#: On an instance's rescue container and its tools volume: the instance it
#: rescues.  The rescue container's instance labels (which its image hands
#: down) are blanked, so that every listing of instances leaves it out.
RESCUE_OF_LABEL = f"{LABEL_PREFIX}.rescue-of"
#: On an instance's rescue container: the compute host that made it.
RESCUE_HOST_LABEL = f"{LABEL_PREFIX}.rescue-host"
#: On a loaded image: the bytes its layers expand to on the engine's disk,
#: counted while it streamed in (labels of this namespace in a tenant's
#: image are removed at load, so this one is always ours).
EXPANDED_BYTES_LABEL = f"{LABEL_PREFIX}.image-expanded-bytes"
#: On an instance's container: its flavor's root disk in bytes, the limit
#: the root-disk audit holds its writable layer to.  Containers made before
#: this label existed carry none and are not audited.
ROOT_DISK_BYTES_LABEL = f"{LABEL_PREFIX}.root-disk-bytes"
#: On the container and image of the start-up probe of the engine's quotas:
#: the compute host that made them, so that each host sweeps only its own.
ROOT_DISK_PROBE_LABEL = f"{LABEL_PREFIX}.root-disk-probe"

#: Repository of images loaded from Glance; the tag is the Glance image UUID,
#: so the Glance image name never has to match anything on the engine.
GLANCE_REPOSITORY = "nova-glance"
#: Repository of snapshots being committed and uploaded; a tag left here is
#: an upload that was cut short, and is swept away.
SNAPSHOT_REPOSITORY = "nova-snapshot"
#: Repository of images that carried an instance's filesystem here in a
#: cold migration or resize, or that an unrescue kept; the tag is the
#: instance UUID, and the image goes with the instance's container.
MIGRATION_REPOSITORY = "nova-migration"
#: Repository of the images a rescue commits: ``<uuid>`` holds the rescued
#: filesystem while the rescue container runs from it, ``<uuid>-unrescue``
#: what unrescue keeps until the instance's new container runs from it.
#: Both go with the rescue; what the instance keeps is then tagged in
#: ``MIGRATION_REPOSITORY``, whose image goes with the instance's container.
RESCUE_REPOSITORY = "nova-rescue"
#: Repository of the empty image the root-disk probe creates its container
#: from; removed at once, and swept at the next start if that was cut short.
ROOT_DISK_PROBE_REPOSITORY = "nova-root-disk-probe"
#: Repository of the driver's own sandbox image; the tag is a digest of
#: what it is built from, so a new busybox makes a new image.
SANDBOX_REPOSITORY = "nova-sandbox"


def container_name(instance_uuid: str) -> str:
    return f"nova-{instance_uuid}"


def sandbox_name(instance_uuid: str) -> str:
    """The instance's network sandbox: its container's name, prefixed."""
    return f"nova-sandbox-{instance_uuid}"


def config_drive_volume(instance_uuid: str) -> str:
    """The named volume that holds the instance's config drive."""
    return f"nova-config-drive-{instance_uuid}"


def config_drive_loader(instance_uuid: str) -> str:
    """The never-started container the drive is copied in through."""
    return f"nova-config-drive-loader-{instance_uuid}"


def rescue_name(instance_uuid: str) -> str:
    """The container that runs a rescue shell on the instance's filesystem
    (or a rescue image) in its sandbox, while the instance's is stopped."""
    return f"nova-rescue-{instance_uuid}"


def rescued_name(instance_uuid: str) -> str:
    """The instance's stopped container, renamed aside while unrescue makes
    its successor (removed once that exists)."""
    return f"nova-rescued-{instance_uuid}"


def rescue_tools_volume(instance_uuid: str) -> str:
    """The named volume that brings the driver's static busybox into the
    rescue container (a volume, so that no commit keeps it)."""
    return f"nova-rescue-tools-{instance_uuid}"


def rescue_labels(instance_uuid: str, host: str) -> dict[str, str]:
    return {RESCUE_OF_LABEL: instance_uuid, RESCUE_HOST_LABEL: host}


def rescue_selector(host: str) -> dict[str, str]:
    """Labels that select every rescue container this compute host made."""
    return {RESCUE_HOST_LABEL: host}


def rescue_image_ref(instance_uuid: str) -> str:
    return f"{RESCUE_REPOSITORY}:{instance_uuid}"


def unrescue_image_ref(instance_uuid: str) -> str:
    return f"{RESCUE_REPOSITORY}:{instance_uuid}-unrescue"


def rescue_image_refs(instance_uuid: str) -> tuple[str, str]:
    """Every image a rescue of the instance may leave until it is done."""
    return rescue_image_ref(instance_uuid), unrescue_image_ref(instance_uuid)


def config_drive_labels(instance_uuid: str, host: str) -> dict[str, str]:
    return {CONFIG_DRIVE_OF_LABEL: instance_uuid, HOST_LABEL: host}


def sandbox_labels(instance_uuid: str, host: str) -> dict[str, str]:
    return {SANDBOX_OF_LABEL: instance_uuid, SANDBOX_HOST_LABEL: host}


def sandbox_image_ref(digest: str) -> str:
    return f"{SANDBOX_REPOSITORY}:{digest}"


def glance_image_ref(image_id: str) -> str:
    return f"{GLANCE_REPOSITORY}:{image_id}"


def snapshot_ref(image_id: str) -> str:
    return f"{SNAPSHOT_REPOSITORY}:{image_id}"


def migration_image_ref(instance_uuid: str) -> str:
    return f"{MIGRATION_REPOSITORY}:{instance_uuid}"


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


def sandbox_selector(host: str) -> dict[str, str]:
    """Labels that select every network sandbox this compute host made."""
    return {SANDBOX_HOST_LABEL: host}


def label_filters(selector: dict[str, str]) -> list[str]:
    """The engine's ``label`` filter for containers, images or volumes that
    carry every one of ``selector``'s labels: ``["key=value", ...]``."""
    return [f"{key}={value}" for key, value in selector.items()]


def root_disk_labels(root_disk_bytes: int) -> dict[str, str]:
    """The label recording a container's root disk, which the audit reads;
    none for a size of 0 (the caller gives a flavor's ``root_gb`` of 0 the
    ``[docker] max_image_expanded_gb`` limit, so every instance has one)."""
    if root_disk_bytes <= 0:
        return {}
    return {ROOT_DISK_BYTES_LABEL: str(root_disk_bytes)}


def root_disk_probe_selector(host: str) -> dict[str, str]:
    """Labels that select this compute host's root-disk probe leftovers."""
    return {ROOT_DISK_PROBE_LABEL: host}


def root_disk_probe_ref(token: str) -> str:
    return f"{ROOT_DISK_PROBE_REPOSITORY}:{token}"


def root_disk_probe_name(token: str) -> str:
    return f"{ROOT_DISK_PROBE_REPOSITORY}-{token}"
