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

"""The state cache behind get_info(use_cache=True)."""

from __future__ import annotations

from nova_docker import container
from nova_docker.engine import naming


def _listing(**states: str) -> list[dict]:
    return [
        {"Labels": {naming.UUID_LABEL: uuid}, "State": status}
        for uuid, status in states.items()
    ]


class Engine:
    """Answers listings from ``self.now``; counts them."""

    def __init__(self, **states: str) -> None:
        self.now = _listing(**states)
        self.calls = 0
        self.during_listing = None

    def list(self) -> list[dict]:
        self.calls += 1
        found = self.now
        if self.during_listing:
            self.during_listing()
        return found


def test_one_listing_answers_every_instance() -> None:
    engine = Engine(a="running", b="exited")
    cache = container._StateCache(engine.list)
    assert (cache.status("a"), cache.status("b"), cache.status("c")) == (
        "running",
        "exited",
        None,
    )
    assert engine.calls == 1


def test_a_listing_of_the_host_refreshes_the_states() -> None:
    engine = Engine(a="running")
    cache = container._StateCache(engine.list)
    assert cache.status("a") == "running"
    engine.now = _listing(a="exited")  # the engine restarted meanwhile
    cache.listing()
    assert cache.status("a") == "exited"
    assert engine.calls == 2


def test_forget_makes_the_next_query_list_again() -> None:
    engine = Engine(a="running")
    cache = container._StateCache(engine.list)
    cache.status("a")
    engine.now = _listing(a="paused")
    cache.forget()
    assert cache.status("a") == "paused"


def test_a_listing_taken_before_our_own_change_is_not_kept() -> None:
    engine = Engine(a="running")
    cache = container._StateCache(engine.list)

    def we_change_it() -> None:
        engine.now = _listing(a="paused")
        cache.forget()

    engine.during_listing = we_change_it
    assert cache.listing()[0]["State"] == "running"
    engine.during_listing = None
    assert cache.status("a") == "paused"
