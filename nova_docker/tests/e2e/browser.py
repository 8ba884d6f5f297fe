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

"""A real browser for the end-to-end tests: Debian's ``chromium``, driven
through Debian's ``chromium-driver`` by Selenium.

Both binaries are named explicitly and Selenium Manager runs offline, so a
test never downloads a driver or a browser (nothing but package mirrors is
reachable here).  ``make test`` installs both packages; without them a test
fails under CI and is skipped elsewhere, as without an engine.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from nova_docker.tests import engine_support

CHROMIUM = "chromium"
CHROMEDRIVER = "chromedriver"
#: Big enough that Horizon's Launch Instance dialog shows every column.
WINDOW = "1400,1000"
#: Where the tests' screenshots go (one directory per test), unless the
#: environment names another place.
OUTPUT_ENV = "NOVA_DOCKER_TEST_OUTPUT"
DEFAULT_OUTPUT = Path(__file__).resolve().parents[3] / "test-output"


def binaries() -> tuple[str, str]:
    """The browser and its driver; a missing one fails under CI and skips
    elsewhere, naming the Debian package."""
    browser, driver = shutil.which(CHROMIUM), shutil.which(CHROMEDRIVER)
    engine_support.require(
        bool(browser and driver),
        "Debian's chromium and chromium-driver are not installed; run 'make test'",
    )
    return browser, driver  # type: ignore[return-value]


def output_dir(test: str) -> Path:
    """A fresh directory for one test's screenshots."""
    root = Path(os.environ.get(OUTPUT_ENV, DEFAULT_OUTPUT))
    made = root / test
    shutil.rmtree(made, ignore_errors=True)
    made.mkdir(parents=True)
    return made


@contextlib.contextmanager
def chromium() -> Iterator:
    """A headless Chromium session, quit at the end whatever happens."""
    from selenium import webdriver  # noqa: PLC0415 - only the browser tests
    from selenium.webdriver.chrome.service import Service  # noqa: PLC0415

    browser, driver = binaries()
    # Selenium Manager would look for newer drivers on the internet.
    os.environ["SE_OFFLINE"] = "true"
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for argument in (
        "--headless=new",
        # Root (as make test runs) needs it; the page is our own.
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={WINDOW}",
    ):
        options.add_argument(argument)
    session = webdriver.Chrome(service=Service(driver), options=options)
    try:
        yield session
    finally:
        session.quit()
