"""The one exception type of the network service.

Whatever fails while plugging or unplugging a VIF (os-vif, netlink, OVSDB,
iptables, a vanished container process) surfaces as :class:`VifPlugError`
with the original error chained, so the driver maps one type to Nova's own
(``VirtualInterfacePlugException``, ``InterfaceAttachFailed``, …).
"""

from nova import exception
from nova.i18n import _


class VifPlugError(exception.NovaException):
    msg_fmt = _("Could not %(action)s VIF %(vif_id)s: %(reason)s")
