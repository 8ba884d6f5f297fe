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

"""Exceptions the driver raises to Nova.

Engine errors become these (or Nova's own exceptions) in exactly one place,
:mod:`nova_docker.engine.client`; nothing above the engine sees ``docker``.
"""

from nova import exception
from nova.i18n import _


class EngineUnavailable(exception.HypervisorUnavailable):
    msg_fmt = _("The Docker Engine at %(url)s is unavailable: %(reason)s")


class EngineTooOld(exception.NovaException):
    msg_fmt = _(
        "The Docker Engine at %(url)s speaks API %(version)s; "
        "nova-docker needs at least %(minimum)s"
    )


class EngineError(exception.NovaException):
    """The engine answered, but refused or failed the request."""

    msg_fmt = _("The Docker Engine failed to %(action)s: %(reason)s")


class ContainerNameInUse(EngineError):
    """A create found a container of that name (the engine's 409)."""

    msg_fmt = _("The Docker Engine failed to %(action)s: %(reason)s")


class ContainerNotFound(exception.NotFound):
    msg_fmt = _("No container named %(name)s")


class VolumeNotFound(exception.NotFound):
    msg_fmt = _("No engine volume named %(name)s")


class ImageNotCached(exception.NotFound):
    msg_fmt = _("No engine image %(ref)s")


class InvalidImageTarball(exception.NovaException):
    """A Glance image's bytes are not a usable ``docker save`` tarball."""

    msg_fmt = _("%(reason)s")


class SnapshotNotRead(exception.NovaException):
    """Glance's upload returned with the snapshot's stream still unread."""

    msg_fmt = _(
        "The image service returned before it had read all of image "
        "%(image_id)s; the upload is incomplete"
    )


class RootDiskExceeded(exception.NovaException):
    """The fault the root-disk audit records on an instance it stopped."""

    msg_fmt = _(
        "The instance's writable layer holds %(used)d bytes, more than its "
        "root disk of %(limit)d bytes (the flavor's root_gb); nova-compute "
        "stopped it"
    )


class SandboxUnavailable(exception.NovaException):
    """No image for network sandboxes: this host cannot boot instances."""

    msg_fmt = _("No network sandbox image on this host: %(reason)s")
