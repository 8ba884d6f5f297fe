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

"""Error translation at the engine seam.

These are the fault cases a real engine cannot produce on demand (an engine
that is too old, an error in the middle of a load stream), so the SDK client
is replaced here; everything else is tested against the real engine.
"""

from __future__ import annotations

from unittest import mock

import docker.errors
import pytest
import requests

from nova_docker import exception
from nova_docker.engine import client


def engine_with(api: mock.Mock) -> client.Engine:
    engine = client.Engine(client.EngineSettings(url="unix:///x.sock"))
    engine._api = engine._bulk_api = api
    return engine


def test_an_engine_older_than_the_minimum_is_refused():
    fake_api = mock.Mock()
    fake_api.version.return_value = {"Version": "19.03", "ApiVersion": "1.40"}
    with mock.patch.object(client.docker, "APIClient", return_value=fake_api):
        engine = client.Engine(client.EngineSettings(url="unix:///x.sock"))
        with pytest.raises(exception.EngineTooOld, match=r"1\.40.*at least 1\.41"):
            engine.connect()


def test_404_becomes_the_missing_exception_the_caller_named():
    api = mock.Mock()
    api.inspect_container.side_effect = docker.errors.NotFound("no such container")
    with pytest.raises(exception.ContainerNotFound, match="nova-x"):
        engine_with(api).inspect_container("nova-x")


def test_other_api_errors_carry_the_engines_explanation():
    response = mock.Mock(status_code=409)
    api = mock.Mock()
    api.pause.side_effect = docker.errors.APIError(
        "409", response=response, explanation="Container is not running"
    )
    with pytest.raises(exception.EngineError, match="pause nova-x: Container is not"):
        engine_with(api).pause("nova-x")


def test_connection_failures_become_engine_unavailable_with_the_url():
    api = mock.Mock()
    api.info.side_effect = requests.exceptions.ConnectionError("refused")
    with pytest.raises(exception.EngineUnavailable, match=r"unix:///x\.sock.*refused"):
        engine_with(api).info()


def test_remove_of_a_missing_container_is_not_an_error():
    api = mock.Mock()
    api.remove_container.side_effect = docker.errors.NotFound("gone")
    assert engine_with(api).remove_container("nova-x") is False


def test_an_error_in_the_load_stream_is_raised():
    api = mock.Mock()
    api.load_image.return_value = iter(
        [{"stream": "Loading layer\n"}, {"errorDetail": {"message": "bad layer"}}]
    )
    with pytest.raises(exception.EngineError, match="bad layer"):
        engine_with(api).load_image(iter([b""]))


def test_load_reports_what_was_loaded():
    api = mock.Mock()
    api.load_image.return_value = iter(
        [
            {"stream": "Loaded image: nova-glance:abc\n"},
            {"stream": "Loaded image ID: sha256:1\n"},
        ]
    )
    assert engine_with(api).load_image(iter([])) == ["nova-glance:abc", "sha256:1"]


@pytest.mark.parametrize(
    ("url", "tls"),
    [
        ("unix:///var/run/docker.sock", False),
        ("http://127.0.0.1:2375", False),
        ("tcp://engine:2376", True),
        ("https://engine:2376", True),
    ],
)
def test_tcp_always_means_tls(url, tls):
    assert client.EngineSettings(url=url).uses_tls is tls


def test_tls_verification_is_on_by_default():
    settings = client.EngineSettings(url="tcp://engine:2376")
    config = client.Engine(settings)._tls_config()
    assert config.verify is True
    assert config.cert is None
