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

"""What the tests of generated configuration files share: a cloud's layout,
stand-in secrets, and the parser the services' INI files are read with."""

from __future__ import annotations

import configparser
from pathlib import Path

from nova_docker_aio import secret
from nova_docker_aio.layout import Layout

LAYOUT = Layout(Path("/state"), 30000)
SECRETS = {name: f"pw-{name}" for name in secret.NAMES}


def parse(text: str) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser()
    parser.read_string(text)
    return parser
