"""Moderation (issue 7): hide / unhide / hidden, and pinned announcements.

End to end on real parts: feeds served on loopback, `aggregator update`, `build`
and the digest, then `hide` and a rebuild; the hidden post must be gone from the
page, every feed format, the campaigner's and the archive's pages, and the
unsent digest, and come back after `unhide`.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
import sitebuilder as sb

from aggregator import digest as dg
from aggregator import render
from aggregator.cli import main
from aggregator.config import load_config
from aggregator.digest import build_digest, digest_window, render_text
from aggregator.models import Pinned
from aggregator.moderation import active_pinned, hidden_ids, hide
from aggregator.store import Store

NOW = datetime.now(UTC)


def rss(title: str, items: list[tuple[str, str, str]], guid: str = "") -> bytes:
    """An RSS feed; items are (link, text, hours ago); the GUID is `guid` + the link."""
    body = "".join(
        f"<item><guid isPermaLink='false'>{guid}{link}</guid><link>{link}</link>"
        f"<pubDate>{format_datetime(NOW - timedelta(hours=float(ago)))}</pubDate>"
        f"<description>&lt;p&gt;{text}&lt;/p&gt;</description></item>"
        for link, text, ago in items
    )
    return (
        f"<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>{title}"
        f"</title><link>https://x.example/</link><description>d</description>{body}"
        "</channel></rss>"
    ).encode()


ABUSE = "https://mastodon.example/@nurse/2"
ABUSE_TEXT = "An abusive reply we must not republish"


@pytest.fixture
def site(tmp_path, feed_server):
    feed_server.add(
        "/nurse.rss",
        rss(
            "Nurse",
            [
                ("https://mastodon.example/@nurse/1", "Twelve-hour shift, three nurses short", "2"),
                (ABUSE, ABUSE_TEXT, "1"),
            ],
        ),
    )
    feed_server.add(
        "/blog.xml",
        rss("Blog", [("https://blog.example/waiting", "Waiting lists: what we found", "3")]),
    )
    path = tmp_path / "feeds.yaml"
    path.write_text(
        "settings:\n"
        "  title: Test campaign\n"
        "  base_url: https://campaign.example/\n"
        "  database: data/test.sqlite\n"
        "  output: public\n"
        "sources:\n"
        "  - name: Nurse Jo\n"
        f"    url: {feed_server.url('/nurse.rss')}\n"
        "    platform: mastodon\n"
        "  - name: Patients Together\n"
        f"    url: {feed_server.url('/blog.xml')}\n",
        encoding="utf-8",
    )
    # `platform:` is only allowed under feeds:, so write the nurse's feed that way.
    text = path.read_text().replace(
        f"    url: {feed_server.url('/nurse.rss')}\n    platform: mastodon\n",
        f"    feeds:\n      - url: {feed_server.url('/nurse.rss')}\n        platform: mastodon\n",
    )
    path.write_text(text)
    assert main(["-q", "-c", str(path), "update", "--all"]) == 0
    return path


def cli(path: Path, *args: str) -> int:
    return main(["-c", str(path), *args])


def outputs(path: Path) -> dict[str, str]:
    """Every published file that shows posts, by name."""
    public = path.parent / "public"
    files = {
        name: (public / name).read_text(encoding="utf-8")
        for name in ("index.html", "feed.atom", "feed.rss", "feed.json")
    }
    files["source page"] = (public / "sources/nurse-jo/index.html").read_text(encoding="utf-8")
    files["source feed"] = (public / "sources/nurse-jo/feed.atom").read_text(encoding="utf-8")
    for day in public.glob("archive/*/*/*/index.html"):
        files[str(day.relative_to(public))] = day.read_text(encoding="utf-8")
    return files


def digest_text(path: Path) -> str:
    """Today's digest, made now as an unsent digest is: from the store, at send time."""
    config = load_config(path)
    with Store.open(config.settings.database) as store:
        outcome = dg.run_digest(
            config, store, date=None, send=False, force=False, now=NOW + timedelta(days=1)
        )
    [txt] = [f for f in outcome.files if f.suffix == ".txt"]
    return txt.read_text(encoding="utf-8")


def test_a_hidden_post_leaves_every_output_and_comes_back_when_unhidden(site, capsys):
    assert cli(site, "build") == 0
    before = outputs(site)
    for name in ("index.html", "feed.atom", "feed.rss", "feed.json", "source page"):
        assert ABUSE_TEXT in before[name], name
    assert ABUSE_TEXT in digest_text(site)

    assert cli(site, "hide", ABUSE, "--reason", "abusive reply") == 0
    said = capsys.readouterr().out
    assert "Hidden: 'An abusive reply" in said and "next `aggregator build`" in said
    assert cli(site, "build") == 0
    shown = outputs(site)
    assert len(shown) >= 7
    for name, text in shown.items():
        assert ABUSE_TEXT not in text, name
        assert ABUSE not in text, name
    assert "Twelve-hour shift" in shown["index.html"]  # the rest stays
    assert "Twelve-hour shift" in shown["feed.atom"]
    digest = digest_text(site)
    assert ABUSE_TEXT not in digest and "Twelve-hour shift" in digest

    capsys.readouterr()
    assert cli(site, "hidden") == 0
    listed = capsys.readouterr().out
    assert "'An abusive reply we must not republish' by Nurse Jo" in listed
    assert "abusive reply" in listed and ABUSE in listed
    assert cli(site, "hidden", "--json") == 0
    [row] = json.loads(capsys.readouterr().out)
    assert (row["link"], row["reason"]) == (ABUSE, "abusive reply")

    assert cli(site, "unhide", row["id"]) == 0
    assert cli(site, "build") == 0
    assert ABUSE_TEXT in outputs(site)["feed.atom"]
    assert ABUSE_TEXT in outputs(site)["index.html"]
    capsys.readouterr()
    assert cli(site, "hidden") == 0
    assert "Nothing is hidden" in capsys.readouterr().out


def test_a_post_can_be_hidden_by_the_id_in_feed_atom(site, capsys):
    assert cli(site, "build") == 0
    feed = json.loads((site.parent / "public/feed.json").read_text())
    [item] = [i for i in feed["items"] if "Waiting lists" in i["content_html"]]
    assert item["id"].startswith("urn:uuid:")
    assert cli(site, "hide", item["id"]) == 0
    assert cli(site, "build") == 0
    assert "Waiting lists" not in (site.parent / "public/feed.rss").read_text()


def test_a_hidden_post_stays_hidden_when_it_comes_back_under_a_new_guid(site, feed_server):
    assert cli(site, "hide", ABUSE) == 0
    feed_server.add(
        "/nurse.rss", rss("Nurse", [(ABUSE, ABUSE_TEXT + " (edited)", "1")], guid="new:")
    )
    assert main(["-q", "-c", str(site), "update", "--all"]) == 0
    config = load_config(site)
    with Store.open(config.settings.database) as store:
        assert [e for e in store.entries() if e.link == ABUSE]  # still stored
    assert cli(site, "build") == 0
    assert ABUSE_TEXT not in (site.parent / "public/feed.atom").read_text()


def test_hiding_something_unknown_says_how_to_find_a_posts_address_or_id(site, capsys):
    assert cli(site, "hide", "https://mastodon.example/@nurse/404") == 1
    err = capsys.readouterr().err
    assert "Nothing in the database matches 'https://mastodon.example/@nurse/404'" in err
    assert "urn:uuid:" in err and "feed.atom" in err and "View on Mastodon" in err


def test_hiding_twice_and_unhiding_what_is_not_hidden_are_explained(site, capsys):
    assert cli(site, "hide", ABUSE) == 0
    assert cli(site, "hide", ABUSE) == 1
    assert "already hidden; `aggregator hidden` lists" in capsys.readouterr().err
    assert cli(site, "unhide", "https://blog.example/waiting") == 1
    assert "No hidden post matches" in capsys.readouterr().err


def test_hiding_a_link_shared_by_two_campaigners_hides_both_posts(tmp_path):
    config, store = sb.open_filled(tmp_path)
    article = "https://news.example/nhs-cuts"
    with store:
        for feed, guid in ((sb.FAIRPAY, "fp-1"), (sb.CYMRU, "cy-1")):
            sb.save(store, feed, [sb.post(guid, sb.at(2), title="Cuts", link=article)])
        done = hide(store, article + "?utm_source=x", reason="paywalled", now=sb.NOW)
        assert {h.source for h in done} == {"fairpay", "cymru"}
        assert len(hidden_ids(store)) == 2


# --------------------------------------------------------------------------- pinned


MARCH = Pinned(
    title="March for the NHS on Saturday",
    until=date(2026, 11, 28),
    link="https://campaign.example/march",
    text="Meet at noon outside the town hall.",
)


def test_pinned_announcements_are_chosen_by_their_last_day():
    assert active_pinned([MARCH], date(2026, 11, 28)) == (MARCH,)
    assert active_pinned([MARCH], date(2026, 11, 29)) == ()


def test_a_pinned_announcement_tops_the_page_until_its_day_ends_locally(tmp_path):
    config, store = sb.open_filled(tmp_path)
    config = replace(config, pinned=(MARCH,))
    page = config.settings.output / "index.html"
    with store:
        # 23:30 UTC on the 28th is still the 28th in London (GMT in November).
        render.build(config, store, now=datetime(2026, 11, 28, 23, 30, tzinfo=UTC))
        html = page.read_text()
        assert "March for the NHS on Saturday" in html
        assert 'href="https://campaign.example/march"' in html
        assert html.index("March for the NHS") < html.index("Night shift done")
        render.build(config, store, now=datetime(2026, 11, 29, 0, 30, tzinfo=UTC))
        assert "March for the NHS" not in page.read_text()


def test_a_pinned_announcement_tops_the_digest_until_its_day(tmp_path):
    config = replace(sb.make_config(tmp_path), pinned=(MARCH,))
    zone = __import__("zoneinfo").ZoneInfo("Europe/London")
    renderer = render.Renderer(config)
    # The digest for the 27th goes out on the 28th: still pinned.
    window = digest_window(datetime(2026, 11, 28, 7, tzinfo=UTC), zone)
    text = render_text(build_digest([], config, window), renderer)
    assert "March for the NHS on Saturday" in text
    assert "https://campaign.example/march" in text
    html = dg.render_html(build_digest([], config, window), renderer)
    assert "March for the NHS on Saturday" in html
    later = digest_window(datetime(2026, 11, 29, 7, tzinfo=UTC), zone)
    assert "March for the NHS" not in render_text(build_digest([], config, later), renderer)


def test_check_notes_a_pinned_announcement_that_has_ended(tmp_path, capsys):
    path = tmp_path / "feeds.yaml"
    path.write_text(
        "pinned:\n  - title: Old march\n    until: 2020-01-01\n"
        "sources:\n  - name: A\n    url: https://a.example/feed\n",
        encoding="utf-8",
    )
    assert main(["-c", str(path), "check"]) == 0
    out = capsys.readouterr().out
    assert "the pinned announcement 'Old march' (line 2) ended on 2020-01-01" in out
