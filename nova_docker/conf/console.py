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

"""Serial console options of the ``[docker]`` group, registered with the
rest by :mod:`nova_docker.conf.docker`.

The console package reads no CONF: the driver passes these values to
:class:`nova_docker.console.serial.SerialConsoles`.
"""

from oslo_config import cfg

console_opts = [
    cfg.StrOpt(
        "console_command",
        default="/bin/sh",
        help="""
The command that a serial console runs in the instance's container.

Each connection to a serial console (``openstack console url show --serial``,
through ``nova-serialproxy``) runs this command anew, as ``docker exec -it``
does: on a terminal of its own, as the image's user, in the image's working
directory. It ends when the connection closes. Split as a shell would split
it, but run without one.

Possible values:

* ``/bin/sh`` (the default)
* Any command line, such as ``/bin/bash -l`` or ``/bin/login``. An absolute
  path is checked before a console is handed out: an image without it gets
  Nova's "Unavailable console type" with the path named.

Related options:

* ``[serial_console] enabled`` turns serial consoles on.
* ``serial_console_max_sessions``
""",
    ),
    cfg.IntOpt(
        "serial_console_listen_timeout",
        default=600,
        min=1,
        help="""
Seconds that a serial console's TCP port stays open after the last request
for the console, waiting for ``nova-serialproxy`` to connect.

Each request for the console keeps it open this long again. Sessions
already connected are not affected.

Possible values:

* A positive number of seconds; at least ``[consoleauth] token_ttl`` (600
  by default), so that the port outlives the tokens that name it.

Related options:

* ``[consoleauth] token_ttl``
* ``[serial_console] port_range``
""",
    ),
    cfg.IntOpt(
        "serial_console_idle_timeout",
        default=1800,
        min=0,
        help="""
Seconds after which a serial console session in which nothing was typed or
printed is closed, and its command hung up.

Possible values:

* 0: sessions never expire while their connection stays open.
* A positive number of seconds.

Related options:

* ``console_command``
""",
    ),
    cfg.IntOpt(
        "serial_console_max_sessions",
        default=32,
        min=1,
        help="""
The most serial console sessions this compute host relays at once, over all
of its instances. Beyond it, a request for a console fails with Nova's
"Unavailable console type" saying so, and a connection beyond it is closed
after one line saying so.

Every session is relayed by one thread of nova-compute for all of them and
holds at most 128 KiB of buffered output and input.

Possible values:

* A positive number.

Related options:

* ``serial_console_idle_timeout``
""",
    ),
]
