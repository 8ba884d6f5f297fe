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

import io
import json

from nova_docker_aio.services import null_network


def _call(method: str, path: str, query: str = "") -> tuple[str, dict]:
    seen = {}

    def start_response(status, headers):
        seen["status"] = status

    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "wsgi.input": io.BytesIO(),
    }
    body = b"".join(null_network.application(environ, start_response))
    return seen["status"], json.loads(body)


def test_listing_an_instances_ports_finds_none() -> None:
    status, body = _call("GET", "/v2.0/ports", "device_id=abc")
    assert status == "200 OK"
    assert body == {"ports": []}


def test_hyphenated_collections_use_underscored_keys() -> None:
    assert _call("GET", "/v2.0/security-groups")[1] == {"security_groups": []}


def test_port_quota_is_unlimited() -> None:
    assert _call("GET", "/v2.0/quotas/p1")[1] == {"quota": {"port": -1}}


def test_writes_are_refused_rather_than_faked() -> None:
    status, body = _call("POST", "/v2.0/ports")
    assert status.startswith("501")
    assert "no network service" in body["NeutronError"]["message"]
