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

"""The network service of a cloud without Neutron (``up --no-neutron``).

Servers there boot with ``--nic none``, yet Nova still asks the network
service a few read-only questions (its API lists a server's ports for
security groups; on delete it lists the instance's ports to unbind them).
Without an endpoint those calls fail and a delete ends in ERROR.  This app
answers every such read with "nothing here" and refuses every write, so
nothing pretends to provide networking.  It is served on a loopback port
from the Nova process (see :mod:`nova_docker_aio.nova_runner`), is not in
the Keystone catalog (users see no network service), and logs every
request.  Nova reaches it through ``[neutron] endpoint_override``
(:func:`nova_settings`).  The benchmarks' clouds and the lightest demo
cloud use it; a cloud with Neutron never starts it.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from typing import Any

from nova_docker_aio.layout import Layout

LOG = logging.getLogger(__name__)

_COLLECTION = re.compile(r"^/v2\.0/([a-z-]+)(?:\.json)?$")
_QUOTA = re.compile(r"^/v2\.0/quotas/[^/]+(?:\.json)?$")

StartResponse = Callable[..., Any]


def nova_settings(
    layout: Layout, client: Mapping[str, str]
) -> dict[str, dict[str, str]]:
    """Nova's ``[neutron]``: the service client, pointed here (pure)."""
    return {"neutron": {**client, "endpoint_override": layout.url("null-network")}}


def _reply(start_response: StartResponse, status: str, body: dict) -> list[bytes]:
    data = json.dumps(body).encode()
    start_response(
        status,
        [("Content-Type", "application/json"), ("Content-Length", str(len(data)))],
    )
    return [data]


def application(environ: dict, start_response: StartResponse) -> Iterable[bytes]:
    method = environ["REQUEST_METHOD"]
    path = environ.get("PATH_INFO", "")
    LOG.info("null-network: %s %s?%s", method, path, environ.get("QUERY_STRING"))
    if method != "GET":
        return _reply(
            start_response,
            "501 Not Implemented",
            {"NeutronError": {"message": "no network service in this cloud"}},
        )
    if path in ("", "/"):
        return _reply(start_response, "200 OK", {"versions": []})
    if _QUOTA.match(path):
        return _reply(start_response, "200 OK", {"quota": {"port": -1}})
    match = _COLLECTION.match(path)
    if match:
        return _reply(start_response, "200 OK", {match[1].replace("-", "_"): []})
    return _reply(
        start_response, "404 Not Found", {"NeutronError": {"message": "not found"}}
    )
