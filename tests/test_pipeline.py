"""End to end on real parts: feeds.yaml -> loopback HTTP -> SQLite -> feed.atom.

These are the foundation's "done" checks (issue 2): three loopback feeds (RSS,
Atom, Mastodon-style) are updated and built into a feed.atom holding every
entry once; a second update is answered with 304s and adds nothing; a broken
feed among good ones loses nothing and is recorded.
"""

import json
import sqlite3
from pathlib import Path

import feedparser
import pytest

from aggregator.cli import main
from aggregator.config import load_config
from aggregator.store import Store
from aggregator.update import UpdateOptions, update

RSS = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Patients Together</title><link>https://blog.example.org/</link>
<description>d</description>
<item><title>Waiting lists: what we found</title><link>https://blog.example.org/waiting</link>
<guid>https://blog.example.org/?p=1</guid><pubDate>Mon, 23 Nov 2026 09:00:00 +0000</pubDate>
<description>&lt;p&gt;Our survey of 2,000 patients.&lt;/p&gt;</description></item>
<item><title>Join the march</title><link>https://blog.example.org/march</link>
<guid>https://blog.example.org/?p=2</guid><pubDate>Tue, 24 Nov 2026 10:00:00 +0000</pubDate>
<description>&lt;p&gt;Saturday at noon.&lt;/p&gt;&lt;script&gt;alert(1)&lt;/script&gt;
</description></item>
</channel></rss>"""

ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Policy notes</title><id>urn:x:policy</id>
<updated>2026-11-24T12:00:00Z</updated>
<entry><id>urn:x:policy:1</id><title>Social care funding</title>
<link rel="alternate" href="https://policy.example.org/social-care"/>
<updated>2026-11-24T12:00:00Z</updated><summary>A short note.</summary></entry>
</feed>"""

MASTODON = b"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"><channel>
<title>Nurse Example</title><link>https://mastodon.example/@nurse</link><description>d</description>
<item><guid isPermaLink="true">https://mastodon.example/@nurse/1</guid>
<link>https://mastodon.example/@nurse/1</link><pubDate>Tue, 24 Nov 2026 18:30:00 +0000</pubDate>
<description>&lt;p&gt;Twelve-hour shift, three nurses short. #NHS&lt;/p&gt;</description>
<category>nhs</category></item>
</channel></rss>"""


ALL = UpdateOptions(force=True, parse_workers=1)


def write_config(tmp_path: Path, feeds: dict[str, str]) -> Path:
    lines = [
        "settings:",
        '  title: "Test campaign"',
        '  base_url: "https://campaign.example.org/"',
        "  database: data/test.sqlite",
        "  output: public",
        "sources:",
    ]
    for name, url in feeds.items():
        lines += [f'  - name: "{name}"', f"    url: {url}"]
    path = tmp_path / "feeds.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def campaign(tmp_path, feed_server):
    feed_server.add("/blog.rss", RSS, content_type="application/rss+xml", etag='"rss-1"')
    feed_server.add(
        "/policy.atom",
        ATOM,
        content_type="application/atom+xml",
        last_modified="Tue, 24 Nov 2026 12:00:00 GMT",
    )
    feed_server.add("/@nurse.rss", MASTODON, content_type="application/rss+xml", etag='"m-1"')
    config = write_config(
        tmp_path,
        {
            "Patients Together": feed_server.url("/blog.rss"),
            "Policy Notes": feed_server.url("/policy.atom"),
            "Nurse Example": feed_server.url("/@nurse.rss"),
        },
    )
    return config


def run(config: Path, *args: str) -> int:
    return main(["-c", str(config), *args])


def status(config: Path, capsys) -> list[dict]:
    capsys.readouterr()
    assert run(config, "status", "--json") == 0
    return json.loads(capsys.readouterr().out)


def test_update_then_build_publishes_every_entry_once(campaign, feed_server, capsys):
    assert run(campaign, "update") == 0
    assert run(campaign, "build") == 0
    atom = campaign.parent / "public" / "feed.atom"
    parsed = feedparser.parse(atom.read_bytes())
    assert not parsed.bozo, parsed.get("bozo_exception")
    titles = [e.title for e in parsed.entries]
    assert sorted(titles) == sorted(
        [
            "Waiting lists: what we found",
            "Join the march",
            "Social care funding",
            "Twelve-hour shift, three nurses short. #NHS",
        ]
    )
    # Newest first, the campaigner as author, the original link.
    assert titles[0] == "Twelve-hour shift, three nurses short. #NHS"
    assert parsed.entries[0].author == "Nurse Example"
    assert parsed.entries[0].link == "https://mastodon.example/@nurse/1"
    assert "<script" not in atom.read_text()
    assert (campaign.parent / "public" / "index.html").exists()


def test_second_update_gets_304s_and_adds_nothing(campaign, feed_server, capsys):
    assert run(campaign, "update") == 0
    first = {s["feed"]: s["entries"] for s in status(campaign, capsys)}
    assert run(campaign, "update", "--all") == 0
    assert run(campaign, "build") == 0
    second = {s["feed"]: s["entries"] for s in status(campaign, capsys)}
    assert first == second
    for path in ("/blog.rss", "/policy.atom", "/@nurse.rss"):
        requests = [r for r in feed_server.requests if r.path == path]
        assert len(requests) == 2
        last = requests[-1].headers
        assert last.get("If-None-Match") or last.get("If-Modified-Since")
    parsed = feedparser.parse((campaign.parent / "public" / "feed.atom").read_bytes())
    assert len(parsed.entries) == 4


def _feed_rows(config: Path) -> dict[str, dict]:
    with sqlite3.connect(config.parent / "data" / "test.sqlite") as db:
        db.row_factory = sqlite3.Row
        return {row["url"]: dict(row) for row in db.execute("select * from feeds")}


def test_every_poll_that_brings_nothing_new_is_counted_and_reschedules(campaign, feed_server):
    assert run(campaign, "update") == 0
    for _ in range(2):
        assert run(campaign, "update", "--all") == 0
    rows = _feed_rows(campaign).values()
    assert {row["unchanged_polls"] for row in rows} == {2}
    for row in rows:
        assert row["next_poll"] > row["last_fetched"] == row["last_success"]
        assert row["etag"] or row["last_modified"]


def test_a_bug_in_one_feed_keeps_what_the_quiet_feeds_before_it_brought(
    tmp_path, feed_server, monkeypatch
):
    quiet = feed_server.add("/quiet.rss", RSS, etag='"q-1"')
    buggy = feed_server.add("/buggy.rss", RSS, etag='"b-1"')
    config = write_config(tmp_path, {"Quiet": quiet, "Buggy": buggy})
    assert run(config, "update") == 0
    # Next time the buggy feed has changed, answers last, and parsing it hits a bug.
    feed_server.add("/buggy.rss", RSS.replace(b"march", b"rally"), etag='"b-2"', delay=0.5)

    def bug(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr("aggregator.update.parse_and_sanitize", bug)
    with Store.open(tmp_path / "data" / "test.sqlite") as store, pytest.raises(RuntimeError):
        update(load_config(config), store, options=ALL)
    rows = _feed_rows(config)
    assert rows[quiet]["unchanged_polls"] == 1
    assert rows[buggy]["unchanged_polls"] == 0


def test_update_without_all_skips_feeds_that_are_not_due(campaign, feed_server, capsys):
    assert run(campaign, "update") == 0
    assert run(campaign, "update") == 0
    assert feed_server.count("/blog.rss") == 1
    assert "No feed was due" in capsys.readouterr().out


def test_changed_feed_updates_entry_in_place(campaign, feed_server, capsys):
    assert run(campaign, "update") == 0
    feed_server.set_body("/blog.rss", RSS.replace(b"Join the march", b"Join the march (moved)"))
    assert run(campaign, "update", "--all") == 0
    assert run(campaign, "build") == 0
    parsed = feedparser.parse((campaign.parent / "public" / "feed.atom").read_bytes())
    titles = [e.title for e in parsed.entries]
    assert "Join the march (moved)" in titles
    assert "Join the march" not in titles
    assert len(titles) == 4


def test_one_broken_feed_among_good_ones_loses_nothing(tmp_path, feed_server, capsys):
    feed_server.add("/blog.rss", RSS, content_type="application/rss+xml")
    feed_server.add("/broken.xml", b"<rss><channel><item>", content_type="application/rss+xml")
    feed_server.add("/gone.xml", b"", status=404)
    config = write_config(
        tmp_path,
        {
            "Good": feed_server.url("/blog.rss"),
            "Broken": feed_server.url("/broken.xml"),
            "Gone": feed_server.url("/gone.xml"),
        },
    )
    assert run(config, "update") == 0
    out = capsys.readouterr().out
    assert "2 failed" in out
    states = {s["source"]: s for s in status(config, capsys)}
    assert states["good"]["entries"] == 2
    assert states["good"]["last_error"] is None
    assert states["gone"]["last_error"]["http_status"] == 404
    assert "404" in states["gone"]["last_error"]["message"]
    assert states["broken"]["last_error"]["kind"] in {"parse", "not_a_feed"}
    assert run(config, "build") == 0


def test_status_lists_every_feed_with_its_state(campaign, capsys):
    assert run(campaign, "update") == 0
    states = status(campaign, capsys)
    assert len(states) == 3
    for s in states:
        assert s["last_success"] is not None
        assert s["entries"] >= 1
        assert s["next_poll"] is not None


def test_bad_config_exits_2_naming_the_line(tmp_path, capsys):
    path = tmp_path / "feeds.yaml"
    path.write_text("sources:\n  - name: X\n    urll: https://example.org/feed\n")
    assert run(path, "update") == 2
    err = capsys.readouterr().err
    assert "feeds.yaml:3:5" in err
    assert "url" in err
