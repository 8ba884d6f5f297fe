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

"""Nova's ``nova-serialproxy`` for a cloud of one host.

Run as ``python -m nova_docker_aio.serialproxy_runner --state-dir DIR
--port-base N -- NOVA ARGS``.  Before it connects a websocket to a server's
console port, the proxy checks the token in Nova's database, then asks
nova-compute over RPC whether that port is still the server's
(``validate_console_port``).  In a cloud of one host nova-compute answers
RPC only on the Nova process's in-process ``fake://`` bus, which no other
process reaches; so this runner asks the same question through the compute
API instead: a new serial console for the server (the API has nova-compute
run the driver's ``get_serial_console``, as ``validate_console_port`` does),
whose token names the port the server has now.  Everything else is the
upstream proxy; a cloud of several hosts runs Nova's console script as it is.
"""

from __future__ import annotations

import argparse
import sys
import urllib.parse
from pathlib import Path

from nova_docker_aio import clouds_yaml
from nova_docker_aio.layout import Layout

#: The first compute microversion with ``remote-consoles``.
CONSOLE_MICROVERSION = "2.6"


def arguments() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nova-docker-aio-serialproxy")
    parser.add_argument("--state-dir", required=True, type=Path)
    parser.add_argument("--port-base", required=True, type=int)
    parser.add_argument("nova_args", nargs=argparse.REMAINDER)
    return parser


def token_of(url: str) -> str:
    """The ``token`` query parameter of a console URL (pure)."""
    return urllib.parse.parse_qs(urllib.parse.urlparse(url).query)["token"][0]


def current_port(layout: Layout, ctxt, instance_uuid: str) -> int | None:
    """The serial console port nova-compute gives the server now, or None
    when it gives none (the server is not running, or is gone)."""
    import openstack.exceptions  # noqa: PLC0415 - after Nova's monkey patching
    from nova import objects  # noqa: PLC0415

    conn = clouds_yaml.connect(
        layout, clouds_yaml.ADMIN_CLOUD, compute_api_version=CONSOLE_MICROVERSION
    )
    try:
        console = conn.compute.create_console(instance_uuid, "serial")
    except openstack.exceptions.HttpException:
        return None
    finally:
        conn.close()
    return objects.ConsoleAuthToken.validate(ctxt, token_of(console["url"])).port


def check_through_api(layout: Layout, upstream):
    """``NovaProxyRequestHandler._check_console_port`` for serial consoles
    (other kinds, which this cloud does not have, go to ``upstream``)."""

    def check(handler, ctxt, instance_uuid, port, console_type):
        if console_type != "serial":
            return upstream(handler, ctxt, instance_uuid, port, console_type)
        found = current_port(layout, ctxt, instance_uuid)
        return found is not None and str(found) == str(port)

    return check


def main(argv: list[str] | None = None) -> None:
    args = arguments().parse_args(argv)
    layout = Layout(root=args.state_dir.resolve(), port_base=args.port_base)
    nova_args = [a for a in args.nova_args if a != "--"]
    # Imported first: it applies Nova's monkey patching.
    from nova.cmd import serialproxy  # noqa: PLC0415
    from nova.console import websocketproxy  # noqa: PLC0415

    handler = websocketproxy.NovaProxyRequestHandler
    handler._check_console_port = check_through_api(layout, handler._check_console_port)
    sys.argv = ["nova-serialproxy", *nova_args]
    serialproxy.main()


if __name__ == "__main__":
    main()
