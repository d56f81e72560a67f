"""`aggregator run`'s Service with time under control.

The Service's jobs (`poll`, `build_if_due`, `catch_up_digest`, `digest`) are
driven directly with an injected clock, against real loopback feeds, a real
SQLite file and a real SMTP server; nothing waits on APScheduler's timers.
The one test that runs the whole Service (`run`) stops it as soon as it has
seen what it needs.  The subprocess tests are in test_run_service.py.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import feedparser
import pytest
from aiosmtpd.controller import Controller

from aggregator.digest import digest_records
from aggregator.scheduler import Service, digest_trigger
from aggregator.store import Store

LONDON = ZoneInfo("Europe/London")
START = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


class Clock:
    """The Service's `now`: stands still until a test moves it."""

    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment

    def at(self, **delta: float) -> None:
        """Set the clock to START + delta."""
        self.moment = START + timedelta(**delta)


def rss(slug: str, *numbers: int) -> bytes:
    items = "".join(
        f"<item><title>{slug} post {n}</title><link>https://{slug}.example.org/{n}</link>"
        f"<guid>https://{slug}.example.org/{n}</guid>"
        f"<pubDate>Wed, 25 Nov 2026 08:{n % 60:02d}:00 +0000</pubDate>"
        f"<description>Post number {n}.</description></item>"
        for n in numbers
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>{slug}</title><link>https://{slug}.example.org/</link><description>d</description>"
        f"{items}</channel></rss>"
    ).encode()


def write_config(
    tmp_path: Path,
    sources: list[tuple[str, str, str | None]],
    *,
    poll_interval: str = "30m",
    digest: list[str] | None = None,
) -> Path:
    """feeds.yaml with (name, url, per-source poll_interval or None) sources."""
    lines = [
        "settings:",
        '  title: "Test campaign"',
        '  base_url: "https://campaign.example.org/"',
        "  database: data/test.sqlite",
        "  output: public",
        "  timezone: Europe/London",
        f"  poll_interval: {poll_interval}",
    ]
    if digest:
        lines += ["  digest:", *(f"    {line}" for line in digest)]
    lines.append("sources:")
    for name, url, interval in sources:
        lines += [f'  - name: "{name}"', f"    url: {url}"]
        if interval:
            lines.append(f"    poll_interval: {interval}")
    path = tmp_path / "feeds.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def service_for():
    """Make Services on an injected clock; close their stores afterwards."""
    made: list[Service] = []

    def make(path: Path, clock: Clock, **options) -> Service:
        service = Service(path, now=clock, **options)
        made.append(service)
        return service

    yield make
    for service in made:
        service.store.close()


def statuses(service: Service):
    return {s.url.rsplit("/", 1)[-1]: s for s in service.store.feed_statuses()}


# --------------------------------------------------------------------------- intervals


def test_each_feed_is_polled_on_its_own_interval(tmp_path, feed_server, service_for):
    fast = feed_server.add("/fast.rss", rss("fast", 1), etag='"f1"')
    slow = feed_server.add("/slow.rss", rss("slow", 1), etag='"s1"')
    path = write_config(tmp_path, [("Fast", fast, "10m"), ("Slow", slow, None)], poll_interval="1h")
    clock = Clock(START)
    service = service_for(path, clock)

    async def scenario() -> None:
        # 10 minutes plus up to 10% jitter for Fast; an hour (plus jitter) for Slow.
        for minutes in (0, 11, 22, 33, 67):
            clock.at(minutes=minutes)
            await service.poll()

    asyncio.run(scenario())
    assert feed_server.count("/fast.rss") == 5
    assert feed_server.count("/slow.rss") == 2
    # After the first fetch each poll is conditional, so the feeds answer 304.
    assert feed_server.requests[-1].headers.get("if-none-match") in ('"f1"', '"s1"')


def test_a_failing_feed_backs_off_and_recovers_by_itself(tmp_path, feed_server, service_for):
    url = feed_server.add(
        "/flaky.rss", b"Service Unavailable", status=503, content_type="text/plain"
    )
    path = write_config(tmp_path, [("Flaky", url, None)], poll_interval="10m")
    clock = Clock(START)
    service = service_for(path, clock)
    fetched_at: list[float] = []

    async def poll_at(minutes: float) -> None:
        clock.at(minutes=minutes)
        before = feed_server.count("/flaky.rss")
        await service.poll()
        if feed_server.count("/flaky.rss") > before:
            fetched_at.append(minutes)

    async def scenario() -> None:
        # Failures at 0, 11 and 34: waits of 10, 20, 40 minutes (+ jitter).
        for minutes in (0, 11, 22, 30, 34, 60, 70):
            await poll_at(minutes)
        assert statuses(service)["flaky.rss"].last_error is not None
        feed_server.add("/flaky.rss", rss("flaky", 1, 2), etag='"ok"')
        for minutes in (79, 85, 90):
            await poll_at(minutes)

    asyncio.run(scenario())
    assert fetched_at == [0, 11, 34, 79, 90]
    recovered = statuses(service)["flaky.rss"]
    assert recovered.last_error is None and recovered.failing_since is None
    assert recovered.entry_count == 2
    # Back on its own 10-minute interval (plus at most 10% jitter).
    assert timedelta(minutes=10) <= recovered.next_poll - clock() <= timedelta(minutes=11)


def test_a_feed_failing_for_a_day_is_warned_about_once_a_day(
    tmp_path, feed_server, service_for, caplog
):
    url = feed_server.add("/gone.rss", b"Not Found", status=404, content_type="text/plain")
    path = write_config(tmp_path, [("Gone", url, None)], poll_interval="1h")
    clock = Clock(START)
    service = service_for(path, clock)

    def warnings() -> list[str]:
        return [r.getMessage() for r in caplog.records if "event=feed_failing" in r.getMessage()]

    async def scenario() -> None:
        for hours in (0, 23, 25, 26, 50):
            clock.at(hours=hours)
            await service.poll()

    with caplog.at_level(logging.WARNING, logger="aggregator.scheduler"):
        asyncio.run(scenario())
    # Failing since START: warned after 25 h, not again at 26 h, again after 50 h.
    assert len(warnings()) == 2
    assert url in warnings()[0]


# --------------------------------------------------------------------------- rebuilds


def test_several_polls_with_changes_make_one_debounced_build(tmp_path, feed_server, service_for):
    url = feed_server.add("/busy.rss", rss("busy", 1), etag='"b1"')
    path = write_config(tmp_path, [("Busy", url, None)], poll_interval="1m")
    clock = Clock(START)
    service = service_for(path, clock, debounce=300, max_build_delay=3600)

    async def scenario() -> None:
        await service.poll()  # the first poll builds at once
        assert await service.build_if_due()
        for n in range(2, 5):  # a new post on each of three polls, 67 s apart
            feed_server.set_body("/busy.rss", rss("busy", *range(1, n + 1)))
            clock.at(seconds=67 * (n - 1))
            results = await service.poll()
            assert [r.new for r in results] == [1]
            assert not await service.build_if_due()
        clock.at(seconds=67 * 3 + 299)
        assert not await service.build_if_due()
        clock.at(seconds=67 * 3 + 300)
        assert await service.build_if_due()
        clock.at(seconds=67 * 3 + 900)
        assert not await service.build_if_due()

    asyncio.run(scenario())
    assert service.builds == 2
    feed = feedparser.parse((tmp_path / "public" / "feed.atom").read_bytes())
    assert sorted(e.title for e in feed.entries) == [f"busy post {n}" for n in range(1, 5)]


def test_a_feed_that_always_changes_cannot_hold_the_build_back(tmp_path, feed_server, service_for):
    url = feed_server.add("/chatty.rss", rss("chatty", 1), etag='"c1"')
    path = write_config(tmp_path, [("Chatty", url, None)], poll_interval="1m")
    clock = Clock(START)
    service = service_for(path, clock, debounce=300, max_build_delay=600)
    built_at: list[int] = []

    async def scenario() -> None:
        await service.poll()
        await service.build_if_due()
        for n in range(2, 13):
            feed_server.set_body("/chatty.rss", rss("chatty", *range(1, n + 1)))
            clock.at(seconds=67 * (n - 1))
            await service.poll()
            if await service.build_if_due():
                built_at.append(67 * (n - 1))

    asyncio.run(scenario())
    # First unbuilt change at 67 s; quiet never comes, so it builds once 600 s later.
    assert built_at == [67 * 10]


def test_polls_that_change_nothing_do_not_rebuild(tmp_path, feed_server, service_for):
    url = feed_server.add("/quiet.rss", rss("quiet", 1), etag='"q1"')
    path = write_config(tmp_path, [("Quiet", url, None)], poll_interval="1m")
    clock = Clock(START)
    service = service_for(path, clock)

    async def scenario() -> None:
        await service.poll()
        await service.build_if_due()
        for minutes in (2, 4, 6):
            clock.at(minutes=minutes)
            await service.poll()
            await service.build_if_due()

    asyncio.run(scenario())
    assert feed_server.count("/quiet.rss") == 4
    assert service.builds == 1


# --------------------------------------------------------------------------- the digest


def fires(path: Path, after: datetime, count: int) -> list[datetime]:
    """The digest trigger's next `count` fire times after `after`."""
    from aggregator.config import load_config

    trigger = digest_trigger(load_config(path))
    assert trigger is not None
    out: list[datetime] = []
    previous = None
    now = after
    for _ in range(count):
        moment = trigger.get_next_fire_time(previous, now)
        out.append(moment)
        previous = now = moment
    return out


@pytest.mark.parametrize(
    ("after", "utc_hours", "gaps"),
    [
        # Clocks go forward at 01:00 GMT on Sunday 29 March 2026.
        (datetime(2026, 3, 27, 12, tzinfo=UTC), [7, 6, 6], [23]),
        # Clocks go back at 02:00 BST on Sunday 25 October 2026.
        (datetime(2026, 10, 23, 12, tzinfo=UTC), [6, 7, 7], [25]),
    ],
    ids=["march", "october"],
)
def test_the_digest_is_made_at_seven_london_time_across_a_clock_change(
    tmp_path, after, utc_hours, gaps
):
    path = write_config(
        tmp_path,
        [("Blog", "https://blog.example.org/feed", None)],
        digest=['time: "07:00"', 'from: "Campaign <digest@campaign.example.org>"'],
    )
    moments = fires(path, after, 3)
    assert [m.astimezone(LONDON).strftime("%H:%M") for m in moments] == ["07:00"] * 3
    assert [m.astimezone(UTC).hour for m in moments] == utc_hours
    # Subtracting in UTC: two datetimes in one zone subtract as wall-clock times.
    utc = [m.astimezone(UTC) for m in moments]
    hours = [(b - a).total_seconds() / 3600 for a, b in zip(utc, utc[1:], strict=False)]
    assert sorted(set(hours)) == sorted({24, *gaps})


class Inbox:
    """aiosmtpd handler keeping each message received."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope.original_content)
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def inbox():
    handler = Inbox()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    handler.port = controller.port
    yield handler
    controller.stop()


def digest_config(tmp_path: Path, feed_server, port: int) -> Path:
    url = feed_server.add("/blog.rss", rss("blog", 1), etag='"b1"')
    return write_config(
        tmp_path,
        [("Blog", url, None)],
        digest=[
            'time: "07:00"',
            'from: "Campaign <digest@campaign.example.org>"',
            "to: [ann@supporters.example]",
            "send_empty: true",
            f"smtp: {{host: 127.0.0.1, port: {port}, security: none, timeout: 5}}",
        ],
    )


def test_a_digest_missed_while_stopped_is_made_once_on_start_never_twice(
    tmp_path, feed_server, service_for, inbox
):
    path = digest_config(tmp_path, feed_server, inbox.port)
    # Down from before yesterday's digest until 09:30 today (GMT = London time).
    first = service_for(path, Clock(START + timedelta(minutes=30)))
    assert asyncio.run(first.catch_up_digest())
    first.store.close()
    # Restarted an hour later, and again the same day: nothing more is made or sent.
    for minutes in (90, 600):
        again = service_for(path, Clock(START + timedelta(minutes=minutes)))
        assert not asyncio.run(again.catch_up_digest())
        again.store.close()
    assert len(inbox.messages) == 1
    with Store.open(tmp_path / "data" / "test.sqlite") as store:
        records = digest_records(store)
    assert [(r.day.isoformat(), r.sent_at is not None) for r in records] == [("2026-11-24", True)]


def test_several_missed_days_are_caught_up_in_one_digest(tmp_path, feed_server, service_for, inbox):
    path = digest_config(tmp_path, feed_server, inbox.port)
    earlier = service_for(path, Clock(datetime(2026, 11, 22, 8, tzinfo=UTC)))
    assert asyncio.run(earlier.catch_up_digest())  # the digest for 21 November
    earlier.store.close()
    # Stopped for three days: one digest covering 22-24 November, not three.
    later = service_for(path, Clock(START))
    assert asyncio.run(later.catch_up_digest())
    later.store.close()
    assert len(inbox.messages) == 2
    db = sqlite3.connect(tmp_path / "data" / "test.sqlite")
    rows = db.execute("select date, first_day from digests order by date").fetchall()
    db.close()
    assert rows == [("2026-11-21", "2026-11-21"), ("2026-11-24", "2026-11-22")]


def test_no_catch_up_before_the_digest_time(tmp_path, feed_server, service_for, inbox):
    path = digest_config(tmp_path, feed_server, inbox.port)
    service = service_for(path, Clock(datetime(2026, 11, 25, 6, 30, tzinfo=UTC)))
    # The 07:00 job will make it (and fold in any missed days).
    assert not asyncio.run(service.catch_up_digest())
    assert inbox.messages == []


def test_the_digest_made_on_the_spring_forward_morning_is_for_the_day_before(
    tmp_path, feed_server, service_for
):
    path = write_config(
        tmp_path,
        [("Blog", feed_server.add("/blog.rss", rss("blog", 1)), None)],
        digest=[
            'time: "07:00"',
            'from: "Campaign <digest@campaign.example.org>"',
            "send_empty: true",
        ],
    )
    # 07:00 BST on 29 March 2026 is 06:00 UTC.
    service = service_for(path, Clock(datetime(2026, 3, 29, 6, 0, tzinfo=UTC)))
    assert asyncio.run(service.catch_up_digest())
    assert [r.day.isoformat() for r in digest_records(service.store)] == ["2026-03-28"]
    assert (tmp_path / "public" / "digest" / "2026-03-28.html").exists()


# --------------------------------------------------------------------------- reload


def test_a_broken_edit_keeps_the_old_config_and_a_good_one_is_used(
    tmp_path, feed_server, service_for, caplog
):
    one = feed_server.add("/one.rss", rss("one", 1))
    two = feed_server.add("/two.rss", rss("two", 1))
    path = write_config(tmp_path, [("One", one, None)])
    service = service_for(path, Clock(START))
    good = path.read_text()
    broken = good.replace("    url:", "    ur1:")
    line = broken.splitlines().index(f"    ur1: {one}") + 1

    async def scenario() -> None:
        await service.poll()
        path.write_text(broken)
        await service.poll()  # notices the change before polling
        assert [s.name for s in service.config.sources] == ["One"]
        path.write_text(good + f'  - name: "Two"\n    url: {two}\n')
        await service.poll()

    with caplog.at_level(logging.INFO, logger="aggregator.scheduler"):
        asyncio.run(scenario())
    failed = [r.getMessage() for r in caplog.records if "config_reload_failed" in r.getMessage()]
    assert len(failed) == 1
    assert "keeps running with the previous configuration" in failed[0]
    assert f"{path.name}:{line}:" in failed[0]  # where the misspelt key is
    assert [s.name for s in service.config.sources] == ["One", "Two"]
    assert feed_server.count("/two.rss") == 1


# --------------------------------------------------------------------------- stopping


def test_stop_abandons_a_slow_fetch_and_keeps_what_finished(tmp_path, feed_server):
    fast = feed_server.add("/fast.rss", rss("fast", 1, 2, 3))
    slow = feed_server.add("/slow.rss", rss("slow", 1), delay=8)
    path = write_config(tmp_path, [("Fast", fast, None), ("Slow", slow, None)])
    database = tmp_path / "data" / "test.sqlite"
    service = Service(path, tick=0.1, grace=0.2)

    def stored() -> int:
        db = sqlite3.connect(database)
        try:
            return int(db.execute("select count(*) from entries").fetchone()[0])
        finally:
            db.close()

    async def scenario() -> int:
        running = asyncio.create_task(service.run())
        for _ in range(200):
            if feed_server.count("/slow.rss") and stored() == 3:
                break
            await asyncio.sleep(0.025)
        assert stored() == 3, "the fast feed was never stored"
        service.stop()
        return await asyncio.wait_for(running, timeout=5)

    assert asyncio.run(scenario()) == 0
    db = sqlite3.connect(database)
    assert db.execute("pragma integrity_check").fetchone() == ("ok",)
    slow_row = db.execute(
        "select last_success, last_error_kind from feeds where url = ?", [slow]
    ).fetchone()
    db.close()
    # The abandoned fetch left no trace: neither a success nor an error.
    assert slow_row == (None, None)
