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


class ContainerNotFound(exception.NotFound):
    msg_fmt = _("No container named %(name)s")


class ImageNotCached(exception.NotFound):
    msg_fmt = _("No engine image %(ref)s")


class InvalidImageTarball(exception.NovaException):
    """A Glance image's bytes are not a usable ``docker save`` tarball."""

    msg_fmt = _("%(reason)s")
