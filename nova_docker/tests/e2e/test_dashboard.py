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

"""End-to-end: the OpenStack dashboard, in a real browser, as a new user
meets it after ``make demo``.

Logged in as the demo user, the test launches a server from a Docker image
through Horizon's Launch Instance dialog, waits until the Instances table
shows it Active, opens its Console tab, types a command into the serial
console there and reads the answer off the page.  A screenshot of each step
goes to ``test-output/dashboard/`` (see :mod:`.browser`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from nova_docker.tests.e2e import browser
from nova_docker.tests.e2e import support
from nova_docker_aio import secret
from nova_docker_aio.services import dashboard

FLAVOR = "c1.tiny"
#: Seconds for a page or a dialog step to show what the test waits for.
PAGE_TIMEOUT = 60


class Horizon:
    """The pages of the dashboard that a user goes through, and a
    screenshot of each step."""

    def __init__(self, session: WebDriver, url: str, shots: Path) -> None:
        self.session = session
        self.url = url.rstrip("/")
        self.shots = shots
        self.steps = 0

    def shot(self, what: str) -> None:
        # From the top: the page's tabs and title belong in the picture.
        self.session.execute_script("window.scrollTo(0, 0)")
        self.steps += 1
        self.session.save_screenshot(str(self.shots / f"{self.steps:02}-{what}.png"))

    def wait(self, found, what: str, timeout: float = PAGE_TIMEOUT):
        return WebDriverWait(self.session, timeout).until(found, what)

    def visible(self, xpath: str) -> list[WebElement]:
        elements = self.session.find_elements(By.XPATH, xpath)
        return [element for element in elements if element.is_displayed()]

    def log_in(self, user: str, password: str) -> None:
        self.session.get(f"{self.url}/auth/login/")
        self.session.find_element(By.ID, "id_username").send_keys(user)
        self.session.find_element(By.ID, "id_password").send_keys(password)
        self.shot("login")
        self.session.find_element(By.ID, "loginBtn").click()
        self.wait(
            lambda s: "/auth/login" not in s.current_url, "the login to be accepted"
        )

    def launch(self, name: str, image: str, flavor: str) -> None:
        """Through the Launch Instance dialog, with its defaults elsewhere
        (the project's one network is allocated already)."""
        self.session.get(f"{self.url}/project/instances/")
        self.shot("instances")
        self.session.find_element(By.ID, "instances__action_launch-ng").click()
        self.wait(lambda s: self.visible("//input[@id='name']"), "the dialog")
        self.visible("//input[@id='name']")[0].send_keys(name)
        self.shot("launch-details")
        self._step("Source")
        self._allocate(image)
        self.shot("launch-source")
        self._step("Flavor")
        self._allocate(flavor)
        self.shot("launch-flavor")
        self._step("Networks")
        self.wait(
            lambda s: self.visible("//transfer-table//tr[td[normalize-space()]]"),
            "an allocated network",
        )
        self.shot("launch-networks")
        self.session.find_element(By.CSS_SELECTOR, ".modal-footer .finish").click()
        self.wait(
            lambda s: not self.visible("//div[contains(@class,'modal-dialog')]"),
            "the dialog to close",
        )

    def _step(self, title: str) -> None:
        link = f"//div[contains(@class,'wizard-nav')]//a[normalize-space()='{title}']"
        self.visible(link)[0].click()

    def _allocate(self, item: str) -> None:
        """Move ``item`` from the step's Available table to Allocated."""
        row = f"//transfer-table//tr[td[normalize-space()='{item}']]"
        found = self.wait(lambda s: self.visible(row), f"{item} in the dialog")
        found[0].find_element(By.TAG_NAME, "button").click()

    def wait_active(self, name: str, timeout: float) -> None:
        row = (
            f"//table[@id='instances']//tr[.//a[normalize-space()='{name}']]"
            "[.//td[normalize-space()='Active']]"
        )
        # The table refreshes a row by itself while the server builds.
        self.wait(lambda s: self.visible(row), f"{name} Active", timeout)
        self.shot("active")

    def open_console(self, name: str) -> None:
        instance = f"//table[@id='instances']//a[normalize-space()='{name}']"
        self.visible(instance)[0].click()
        self.wait(lambda s: self.visible("//ul[contains(@class,'nav-tabs')]"), "tabs")
        self.visible(
            "//ul[contains(@class,'nav-tabs')]//a[normalize-space()='Console']"
        )[0].click()
        frame = self.wait(
            lambda s: self.visible("//iframe[contains(@src,'/serial')]"),
            "the console's frame",
        )[0]
        self.session.switch_to.frame(frame)
        self.wait(lambda s: "#" in self.text(), "the shell's prompt")
        self.session.switch_to.default_content()
        self.shot("console")

    def type_into_console(self, line: str, wanted: str) -> str:
        """Type ``line`` into the console tab's terminal; the terminal's
        text once ``wanted`` shows in it."""
        frame = self.visible("//iframe[contains(@src,'/serial')]")[0]
        self.session.switch_to.frame(frame)
        try:
            self.session.find_element(By.TAG_NAME, "body").send_keys(f"{line}\n")
            self.wait(lambda s: wanted in self.text(), f"{wanted!r} in the console")
            seen = self.text()
        finally:
            self.session.switch_to.default_content()
        self.shot("console-answer")
        return seen

    def text(self) -> str:
        return self.session.find_element(By.TAG_NAME, "body").text


@pytest.fixture
def horizon(cloud) -> Iterator[Horizon]:
    shots = browser.output_dir("dashboard")
    with browser.chromium() as session:
        yield Horizon(session, dashboard.url(cloud.layout), shots)


def test_a_user_launches_a_container_and_types_into_its_console(
    cloud, horizon, user_conn, net_image
) -> None:
    server_name = support.name("e2e-web")
    horizon.log_in("demo", secret.load_or_create(cloud.layout)["demo"])
    try:
        horizon.launch(server_name, net_image.name, FLAVOR)
        horizon.wait_active(server_name, support.TIMEOUT)
        horizon.open_console(server_name)
        # The shell computes 42: the typed line itself does not hold it.
        seen = horizon.type_into_console("echo hello-$((6*7))", "hello-42")
        # The server the dialog made is the one the API shows, as asked.
        (made,) = user_conn.compute.servers(name=f"^{server_name}$")
        assert made.status == "ACTIVE"
        assert made.image["id"] == net_image.id
        assert made.flavor["original_name"] == FLAVOR
    finally:
        for server in user_conn.compute.servers(name=f"^{server_name}$"):
            user_conn.compute.delete_server(server)
            user_conn.compute.wait_for_delete(server, wait=support.TIMEOUT)
    assert "hello-42" in seen
