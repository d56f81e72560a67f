"""`aggregator demo`: the whole site from the bundled sample feeds, with no internet.

The demo is the first thing a new organiser runs, so it must show the real
result whatever day it is run on: the sample feeds' dates are moved forward so
the newest post is within the last day, and a digest is written.
"""

from datetime import UTC, datetime, timedelta
from email import policy
from email.parser import BytesParser

import feedparser
import lxml.html
import pytest

from aggregator.cli import main
from aggregator.demo import NEWEST_SAMPLE, shift_dates

LATER = datetime(2027, 3, 31, 6, 0, tzinfo=UTC)  # months after the samples, across a clock change


@pytest.mark.parametrize(
    ("found", "moved"),
    [
        ("Tue, 24 Nov 2026 18:05:12 +0000", "Wed, 25 Nov 2026 18:05:12 +0000"),
        ("24 Nov 2026 08:41 +0000", "25 Nov 2026 08:41 +0000"),  # Bluesky's shape
        ("2026-11-24T20:00:00Z", "2026-11-25T20:00:00Z"),
        ("2026-11-21T09:15:00+01:00", "2026-11-22T09:15:00+01:00"),
    ],
)
def test_sample_dates_move_forward_keeping_their_platforms_shape(found, moved):
    assert shift_dates(f"<pubDate>{found}</pubDate>", 1) == f"<pubDate>{moved}</pubDate>"


def test_shifting_by_whole_months_recomputes_the_weekday():
    assert shift_dates("Tue, 24 Nov 2026 18:05:12 +0000", 31) == "Fri, 25 Dec 2026 18:05:12 +0000"


def test_demo_builds_a_current_site_feeds_and_digest(tmp_path, time_machine, capsys):
    time_machine.move_to(LATER, tick=True)
    assert main(["demo", "--output", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    assert "stored 31 new entries" in out
    site = tmp_path / "demo" / "site"

    feed = feedparser.parse((site / "feed.atom").read_bytes())
    assert len(feed.entries) == 29  # 31 stored, two of them cross-posts shown once
    newest = max(datetime(*e.published_parsed[:6], tzinfo=UTC) for e in feed.entries)
    assert LATER - timedelta(days=1) < newest <= LATER
    assert NEWEST_SAMPLE < newest

    page = lxml.html.fromstring((site / "index.html").read_bytes())
    days = [h.text_content().strip() for h in page.xpath("//h2[starts-with(@id, 'd2')]")]
    # 07:02 UTC on the 31st is still to come at 06:00 UTC, so the newest post is from the 30th.
    assert days[0] == "Tuesday 30 March 2027"
    assert page.xpath("//a[@href='digest/']")
    also_on = [e.text_content() for e in page.xpath("//*[contains(text(), 'Also on')]/..")]
    assert len(also_on) == 2 and all("Bluesky" in text for text in also_on)

    digest = site / "digest"
    eml = next(digest.glob("*.eml"))
    message = BytesParser(policy=policy.default).parsebytes(eml.read_bytes())
    assert "new posts from 6 campaigners" in (digest / "latest.html").read_text()
    assert message.get_body(("plain",)) is not None
    assert (digest / "index.html").exists()
