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
