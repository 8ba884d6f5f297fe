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

import datetime

from nova_docker.image import cache


def test_engine_times_with_nanoseconds_parse_to_utc():
    parsed = cache.parse_time("2026-11-29T22:57:22.809100066Z")
    assert parsed == datetime.datetime(
        2026, 11, 29, 22, 57, 22, 809100, tzinfo=datetime.UTC
    )
    assert cache.parse_time("2026-11-29T22:57:22Z").microsecond == 0


def test_never_tagged_means_no_time():
    assert cache.parse_time("0001-01-01T00:00:00Z") is None
    assert cache.parse_time(None) is None
