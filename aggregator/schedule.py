"""When to poll a feed next: pure arithmetic on a feed's recent history.

The scheduler and the one-shot `update` both store the result as the feed's
`next_poll`, so a restart or a cron run keeps each feed's own rhythm.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

# A failing feed waits twice as long after each failure, up to a day.
MAX_BACKOFF = timedelta(hours=24)
# A quiet feed's interval doubles after every QUIET_STEP polls that brought
# nothing new, up to QUIET_MAX_FACTOR times the configured interval.
QUIET_STEP = 4
QUIET_MAX_FACTOR = 8
# Up to this fraction of the delay is added, so feeds on one host spread out.
JITTER = 0.1


def next_poll_time(
    now: datetime,
    interval: int,
    *,
    key: str = "",
    error_count: int = 0,
    unchanged_polls: int = 0,
    retry_after: int | None = None,
) -> datetime:
    """When to poll a feed next.

    - a failing feed backs off exponentially (interval, 2x, 4x, ... up to a day)
      and recovers by itself: the first success resets `error_count`;
    - a feed that rarely changes is polled less often (adaptive interval);
    - a server's Retry-After (RFC 9110 section 10.2.3) or Cache-Control max-age is
      a floor, never shortened, but capped at a day so a typo cannot stop a feed;
    - jitter is derived from the feed's key and the time, so it is repeatable in
      tests yet spreads feeds that share a host.
    """
    delay = timedelta(seconds=interval)
    if error_count > 0:
        # In whole seconds first: a feed failing for weeks would overflow a timedelta.
        backoff = interval * 2 ** min(error_count - 1, 64)
        delay = min(timedelta(seconds=min(backoff, MAX_BACKOFF.total_seconds())), MAX_BACKOFF)
    else:
        factor = min(2 ** (unchanged_polls // QUIET_STEP), QUIET_MAX_FACTOR)
        delay = min(delay * factor, max(MAX_BACKOFF, delay))
    if retry_after:
        delay = max(delay, min(timedelta(seconds=retry_after), MAX_BACKOFF))
    digest = hashlib.sha256(f"{key}|{now.isoformat()}".encode()).digest()
    fraction = int.from_bytes(digest[:4], "big") / 2**32
    later: datetime = now + delay * (1 + JITTER * fraction)
    return later
