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

import pytest

from nova_docker_aio import poll


def test_until_returns_the_first_true_result() -> None:
    answers = iter([None, "", "found"])
    assert poll.until(lambda: next(answers), "an answer", 5, interval=0) == "found"


def test_until_names_what_never_came() -> None:
    with pytest.raises(poll.Timeout, match="still not: the moon"):
        poll.until(lambda: False, "the moon", 0.05, interval=0.01)
