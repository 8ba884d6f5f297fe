"""TEMPORARY stand-in for Neutron, until the networking issue lands.

Servers here boot with ``--nic none``, yet Nova still asks the network
service a few read-only questions (on delete it lists the instance's ports
to unbind them).  Without an endpoint those calls fail and a delete ends in
ERROR.  This app answers every such read with "nothing here" and refuses
every write, so nothing pretends to provide networking.  It is served on a
loopback port from the Nova process, is not in the Keystone catalog (users
see no network service), and logs every request so the gap stays visible.
It goes away when real Neutron is started by the launcher.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from collections.abc import Iterable
from typing import Any

LOG = logging.getLogger(__name__)

_COLLECTION = re.compile(r"^/v2\.0/([a-z-]+)(?:\.json)?$")
_QUOTA = re.compile(r"^/v2\.0/quotas/[^/]+(?:\.json)?$")

StartResponse = Callable[..., Any]


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
            {"NeutronError": {"message": "no network service in this cloud yet"}},
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
