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

"""Locate the upstream command-line tools and data files of this venv."""

from __future__ import annotations

import sys
from pathlib import Path


def bin_path(name: str) -> str:
    """A console script installed next to this interpreter (same venv)."""
    return str(Path(sys.executable).parent / name)


def data_file(relative: str) -> Path:
    """A file a wheel installed under ``<prefix>/etc`` (paste configs)."""
    path = Path(sys.prefix) / "etc" / relative
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; reinstall nova-docker-aio")
    return path
