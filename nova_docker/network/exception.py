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
