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
