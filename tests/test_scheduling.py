"""Poll timing: intervals, jitter, adaptive slowing, backoff and recovery (pure functions)."""

from datetime import UTC, datetime, timedelta

from aggregator.schedule import JITTER, MAX_BACKOFF, next_poll_time

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
HOUR = 3600


def delay(**kw) -> timedelta:
    return next_poll_time(NOW, HOUR, key="https://a.example/feed", **kw) - NOW


def within_jitter(actual: timedelta, expected: timedelta) -> bool:
    return expected <= actual <= expected * (1 + JITTER)


def test_healthy_feed_is_polled_on_its_interval_plus_jitter():
    assert within_jitter(delay(), timedelta(hours=1))


def test_jitter_spreads_feeds_but_is_repeatable():
    a = next_poll_time(NOW, HOUR, key="https://host.example/a")
    b = next_poll_time(NOW, HOUR, key="https://host.example/b")
    assert a != b
    assert a == next_poll_time(NOW, HOUR, key="https://host.example/a")


def test_failing_feed_backs_off_exponentially_up_to_a_day():
    assert within_jitter(delay(error_count=1), timedelta(hours=1))
    assert within_jitter(delay(error_count=2), timedelta(hours=2))
    assert within_jitter(delay(error_count=4), timedelta(hours=8))
    assert within_jitter(delay(error_count=30), MAX_BACKOFF)


def test_feed_failing_for_months_still_gets_a_next_poll():
    # Found by bench/ (issue 8): 2**37 hours overflowed timedelta and stopped every update.
    assert within_jitter(delay(error_count=40), MAX_BACKOFF)
    assert within_jitter(delay(error_count=10_000), MAX_BACKOFF)


def test_recovered_feed_returns_to_its_interval():
    # error_count is reset by the store on the first success.
    assert within_jitter(delay(error_count=0), timedelta(hours=1))


def test_quiet_feed_is_polled_less_often_up_to_a_limit():
    assert within_jitter(delay(unchanged_polls=3), timedelta(hours=1))
    assert within_jitter(delay(unchanged_polls=4), timedelta(hours=2))
    assert within_jitter(delay(unchanged_polls=8), timedelta(hours=4))
    assert within_jitter(delay(unchanged_polls=100), timedelta(hours=8))


def test_retry_after_is_a_floor_but_capped_at_a_day():
    assert within_jitter(delay(retry_after=3 * HOUR), timedelta(hours=3))
    assert within_jitter(delay(retry_after=60), timedelta(hours=1))
    assert within_jitter(delay(retry_after=10**9), MAX_BACKOFF)
