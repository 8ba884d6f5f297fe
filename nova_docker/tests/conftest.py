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

"""Run every test in Nova's native threading mode.

Nova 34 deprecates eventlet; nova-compute of the all-in-one cloud runs with
native threads, and in-process privsep (pyroute2's asyncio netlink) cannot
work under eventlet's monkey patching.  The mode must be chosen before
anything imports eventlet (``nova.context`` does, through futurist), so it
is chosen here, where pytest loads first.
"""

import os

os.environ.setdefault("OS_NOVA_DISABLE_EVENTLET_PATCHING", "true")

from nova import monkey_patch

monkey_patch.patch()
