"""One campaigner, many platforms (issue 7): feeds.yaml -> loopback -> page, feed, digest.

The "done when" fixture: five campaigners, each with a blog, a Mastodon and a
Bluesky feed served on 127.0.0.1.  Each posts a blog article announced on both
social networks, a social post written on Mastodon and copied to Bluesky, and
a Mastodon-only post: 30 stored entries, 15 posts.  After a real `update`,
`build` and `digest`, every post appears once on the page, in the feed and in
the digest, under its campaigner, with its other platforms linked.

Also here: the same article shared by three campaigners, a Bluesky account
bridged from Mastodon, and a feed that rewrites its GUIDs on every fetch.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

import feedparser
import lxml.html
import pytest

from aggregator.cli import main

DAY = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)  # the campaign's busy day (UTC = London in Nov)
UPDATED_AT = datetime(2026, 11, 24, 18, 0, tzinfo=UTC)
DIGEST_AT = datetime(2026, 11, 25, 7, 30, tzinfo=UTC)
VALIDATOR = Path(__file__).resolve().parents[2] / "shared" / "validators" / "w3c_validate.py"

CAMPAIGNERS = [
    ("Siân Evans", "sian", "Safe staffing is patient safety", "rota gaps on ward 7 again"),
    ("Dr Sam Okafor", "sam", "GP numbers are falling", "43 letters waiting after a week off"),
    ("Fair Pay for Nurses", "fairpay", "Our petition passed 100,000", "podcast episode on A&E"),
    (
        "Iechyd Cymru",
        "cymru",
        "Our waiting-times report explained",
        "record waits in Betsi Cadwaladr",
    ),
    ("Patients Together", "patients", "What 2,000 patients told us", "carers week stall in Leeds"),
]
# Words for each campaigner's social posts: different enough never to be mistaken for each other.
SOCIAL = {
    "sian": ("Night shift done. Twelve patients, two of us on the ward, nobody on breaks.",
             "Thank you to everyone who came to the rally in Cardiff today."),
    "sam": ("Demand for GP appointments is up a fifth since 2019 while GP numbers fell.",
            "Back at the surgery after a week off: forty-three letters waiting."),
    "fairpay": ("Fifteen years of real-terms pay cuts: that is why nurses are leaving.",
                "Episode three of our podcast follows a charge nurse through a shift."),
    "cymru": ("Waiting lists in Wales have reached a record high for the ninth month.",
              "Diolch i bawb a ddaeth i'r cyfarfod yng Nghaerdydd heno."),
    "patients": ("We asked two thousand patients how long they waited for a GP.",
                 "Our stall at the carers week fair in Leeds is by the main entrance."),
}  # fmt: skip


# --------------------------------------------------------------------------- feeds on loopback


def rss(title: str, items: list[dict]) -> bytes:
    """An RSS 2.0 document; items: guid, link, date, and title and/or html or text."""
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>',
        f"<title>{escape(title)}</title><link>https://example.org/</link><description>d</description>",
    ]
    for item in items:
        parts.append("<item>")
        if "title" in item:
            parts.append(f"<title>{escape(item['title'])}</title>")
        parts.append(f"<link>{escape(item['link'])}</link>")
        parts.append(f'<guid isPermaLink="false">{escape(item["guid"])}</guid>')
        parts.append(f"<pubDate>{format_datetime(item['date'], usegmt=True)}</pubDate>")
        body = item.get("html") or escape(item.get("text", ""))
        parts.append(f"<description>{escape(body)}</description>")
        parts.append("</item>")
    parts.append("</channel></rss>")
    return "".join(parts).encode("utf-8")


def blog_url(slug: str) -> str:
    return f"https://{slug}.example/2026/11/news/"


def toot_url(slug: str, n: int) -> str:
    return f"https://mastodon.example/@{slug}/11350{n}"


def skeet_url(slug: str, n: int) -> str:
    return f"https://bsky.app/profile/{slug}.bsky.social/post/3k{n}"


def campaigner_feeds(index: int, slug: str, headline: str) -> dict[str, bytes]:
    start = DAY + timedelta(minutes=7 * index)
    said, thanks = SOCIAL[slug]
    blog = rss(
        f"{slug} blog",
        [
            {
                "guid": f"https://{slug}.example/?p=1",
                # Feed links often carry tracking parameters; we publish them without.
                "link": blog_url(slug) + "?utm_source=rss&utm_medium=feed",
                "title": headline,
                "html": f"<p>{headline}. The full story of {slug}'s campaign this week.</p>",
                "date": start,
            }
        ],
    )
    mastodon = rss(
        f"{slug} on Mastodon",
        [
            {
                "guid": toot_url(slug, 1),
                "link": toot_url(slug, 1),
                "html": f'<p>New on my blog: <a href="{blog_url(slug)}?utm_source=mastodon">'
                f"{slug}.example/2026/11/news</a> "
                '<a href="https://mastodon.example/tags/NHS">#NHS</a></p>',
                "date": start + timedelta(minutes=5),
            },
            {
                "guid": toot_url(slug, 2),
                "link": toot_url(slug, 2),
                "html": f"<p>{said} #NHS</p>",
                "date": start + timedelta(hours=2),
            },
            {
                "guid": toot_url(slug, 3),
                "link": toot_url(slug, 3),
                "html": f"<p>{thanks}</p>",
                "date": start + timedelta(hours=4),
            },
        ],
    )
    bluesky = rss(
        f"{slug} on Bluesky",
        [
            {
                "guid": f"at://did:plc:{slug}/app.bsky.feed.post/3k1",
                "link": skeet_url(slug, 1),
                "text": f"Blog post: {blog_url(slug).removesuffix('/')} 🦋",
                "date": start + timedelta(minutes=8),
            },
            {
                "guid": f"at://did:plc:{slug}/app.bsky.feed.post/3k2",
                "link": skeet_url(slug, 2),
                "text": f"{said} 🦋 crossposted from Mastodon",
                "date": start + timedelta(hours=2, minutes=1),
            },
        ],
    )
    return {"blog": blog, "mastodon": mastodon, "bluesky": bluesky}


def write_config(
    tmp_path: Path, sources: list[tuple[str, list[tuple[str, str]]]], extra=""
) -> Path:
    """feeds.yaml: sources as (name, [(platform, url), ...])."""
    lines = [
        "settings:",
        '  title: "Campaign"',
        '  base_url: "https://campaign.example.org/"',
        "  database: data/campaign.sqlite",
        "  output: public",
        "  timezone: Europe/London",
        *extra.splitlines(),
        "sources:",
    ]
    for name, feeds in sources:
        lines += [f'  - name: "{name}"', "    feeds:"]
        for platform, url in feeds:
            lines += [f"      - url: {url}", f"        platform: {platform}"]
    path = tmp_path / "feeds.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def cli(config: Path, *args: str) -> int:
    return main(["-c", str(config), *args])


@pytest.fixture
def campaign(tmp_path, feed_server, time_machine):
    """Five campaigners on three platforms each, updated and built at UPDATED_AT."""
    sources = []
    for index, (name, slug, headline, _) in enumerate(CAMPAIGNERS):
        feeds = []
        for platform, body in campaigner_feeds(index, slug, headline).items():
            path = f"/{slug}/{platform}.rss"
            feed_server.add(path, body)
            feeds.append((platform, feed_server.url(path)))
        sources.append((name, feeds))
    config = write_config(tmp_path, sources)
    time_machine.move_to(UPDATED_AT, tick=True)
    assert cli(config, "update") == 0
    assert cli(config, "build") == 0
    return config


def entries_on_page(path: Path) -> list[dict]:
    doc = lxml.html.fromstring(path.read_bytes())
    out = []
    for article in doc.xpath("//article[@class='entry']"):
        out.append(
            {
                "by": article.xpath("string(.//p[@class='by']/a)"),
                "platform": article.xpath("string(.//span[contains(@class, 'platform')])"),
                "text": article.text_content(),
                "links": article.xpath(".//h3/a/@href | .//p[@class='go']/a/@href"),
                "also": [(a.text, a.get("href")) for a in article.xpath(".//p[@class='also']/a")],
                "shared": article.xpath("string(.//p[@class='shared'])"),
            }
        )
    return out


# ------------------------------------------------------------------- the "done when" fixture


def test_five_campaigners_on_three_platforms_each_post_appears_once_on_the_page(campaign):
    out = campaign.parent / "public"
    shown = entries_on_page(out / "index.html")
    assert len(shown) == 15  # 30 stored entries
    assert Counter(e["by"] for e in shown) == {name: 3 for name, *_ in CAMPAIGNERS}
    for name, slug, headline, _ in CAMPAIGNERS:
        mine = [e for e in shown if e["by"] == name]
        [article] = [e for e in mine if e["platform"] == "Blog"]
        assert headline in article["text"]
        assert article["links"] == [blog_url(slug)]  # canonical: no utm_source
        assert article["also"] == [("Mastodon", toot_url(slug, 1)), ("Bluesky", skeet_url(slug, 1))]
        said, thanks = SOCIAL[slug]
        [social] = [e for e in mine if said in e["text"] and e["platform"] != "Blog"]
        assert social["platform"] == "Mastodon"  # no blog version: the earliest
        assert social["also"] == [("Bluesky", skeet_url(slug, 2))]
        [alone] = [e for e in mine if thanks in e["text"]]
        assert alone["also"] == []
    html = (out / "index.html").read_text()
    assert "utm_" not in html
    assert "crossposted" not in html
    # The campaigner's own page shows the same three posts.
    sian = entries_on_page(out / "sources" / "sian-evans" / "index.html")
    assert len(sian) == 3


def test_five_campaigners_on_three_platforms_each_post_appears_once_in_the_feeds(campaign):
    out = campaign.parent / "public"
    atom = feedparser.parse((out / "feed.atom").read_bytes())
    assert not atom.bozo, atom.get("bozo_exception")
    assert len(atom.entries) == 15
    assert Counter(e.author for e in atom.entries) == {name: 3 for name, *_ in CAMPAIGNERS}
    for name, slug, headline, _ in CAMPAIGNERS:
        [article] = [e for e in atom.entries if e.title == headline]
        assert article.author == name
        assert article.link == blog_url(slug)
        related = [link.href for link in article.links if link.rel == "related"]
        assert related == [toot_url(slug, 1), skeet_url(slug, 1)]
        assert "Also on:" in article.content[0].value
    rss = feedparser.parse((out / "feed.rss").read_bytes())
    assert len(rss.entries) == 15
    assert all("utm_" not in e.link for e in rss.entries)
    json_feed = (out / "feed.json").read_text()
    assert json_feed.count('"id": "urn:uuid:') == 15
    # Each campaigner's own feed: their three posts, once each.
    own = feedparser.parse((out / "sources" / "dr-sam-okafor" / "feed.atom").read_bytes())
    assert len(own.entries) == 3


def test_the_campaign_feeds_stay_valid_with_related_links(campaign):
    if not VALIDATOR.is_file():
        pytest.skip(f"the W3C Feed Validator is not at {VALIDATOR}")
    out = campaign.parent / "public"
    result = subprocess.run(
        [sys.executable, str(VALIDATOR), "https://campaign.example.org/",
         str(out / "feed.atom"), str(out / "feed.rss")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_five_campaigners_on_three_platforms_each_post_appears_once_in_the_digest(
    campaign, time_machine
):
    time_machine.move_to(DIGEST_AT, tick=True)
    assert cli(campaign, "digest", "--date", "2026-11-24") == 0
    folder = campaign.parent / "public" / "digest"
    html = (folder / "2026-11-24.html").read_text()
    assert "15 new posts from 5 campaigners" in html
    doc = lxml.html.fromstring(html.encode())
    items = doc.xpath("//td[contains(@class, 'item')]")
    assert len(items) == 15
    headings = [h.text_content() for h in doc.xpath("//h2")]
    assert headings == [name for name, *_ in CAMPAIGNERS]
    also = [p.text_content() for p in doc.xpath("//p[contains(@class, 'also')]")]
    assert also.count("Also on: Mastodon · Bluesky") == 5
    assert also.count("Also on: Bluesky") == 5
    assert "utm_" not in html
    text = " ".join((folder / "2026-11-24.txt").read_text().split())  # unwrapped
    for _, slug, headline, _ in CAMPAIGNERS:
        assert text.count(headline) == 1
        assert text.count(SOCIAL[slug][0]) == 1
        assert f"Also on Bluesky: {skeet_url(slug, 2)}" in text


def test_a_blog_version_arriving_after_the_digest_is_not_news_again(
    tmp_path, feed_server, time_machine
):
    said = "Twelve patients, two of us on the ward, and the rota is already short next week."
    toot = {"guid": toot_url("sian", 1), "link": toot_url("sian", 1), "html": f"<p>{said}</p>",
            "date": DAY}  # fmt: skip
    feed_server.add("/m.rss", rss("m", [toot]))
    feed_server.add("/blog.rss", rss("b", []))
    config = write_config(
        tmp_path,
        [("Siân Evans", [("mastodon", feed_server.url("/m.rss")),
                         ("blog", feed_server.url("/blog.rss"))])],
    )  # fmt: skip
    time_machine.move_to(UPDATED_AT, tick=True)
    assert cli(config, "update") == 0
    time_machine.move_to(DIGEST_AT, tick=True)
    assert cli(config, "digest", "--date", "2026-11-24") == 0
    post = {"guid": "p1", "link": blog_url("sian"), "title": "On the ward",
            "html": f"<p>{said}</p>", "date": DIGEST_AT}  # fmt: skip
    feed_server.set_body("/blog.rss", rss("b", [post]))
    assert cli(config, "update", "--all") == 0
    time_machine.move_to(DIGEST_AT + timedelta(days=1), tick=True)
    assert cli(config, "digest", "--date", "2026-11-25") == 0
    assert not (tmp_path / "public" / "digest" / "2026-11-25.html").exists()


# --------------------------------------------------------------------------- shared links


@pytest.fixture
def shared_article(tmp_path, feed_server, time_machine):
    """Three campaigners share one news article on Mastodon; a fourth posts something else."""
    sources = []
    for n, (name, slug, *_) in enumerate(CAMPAIGNERS[:4]):
        link = f"https://news.example/2026/nhs-report?utm_source={slug}&amp;fbclid=x{n}"
        html = (
            f'<p>{SOCIAL[slug][1]}</p>' if n == 3
            else f'<p>{SOCIAL[slug][0]} Read <a href="{link}">the report</a></p>'
        )  # fmt: skip
        body = rss(slug, [{"guid": toot_url(slug, 1), "link": toot_url(slug, 1),
                           "html": html, "date": DAY + timedelta(minutes=30 * n)}])  # fmt: skip
        feed_server.add(f"/{slug}.rss", body)
        sources.append((name, [("mastodon", feed_server.url(f"/{slug}.rss"))]))
    time_machine.move_to(UPDATED_AT, tick=True)

    def make(extra: str = "") -> Path:
        folder = tmp_path / str(len(list(tmp_path.iterdir())))
        folder.mkdir()
        config = write_config(folder, sources, extra)
        assert cli(config, "update") == 0
        assert cli(config, "build") == 0
        return config

    return make


def test_an_article_shared_by_three_campaigners_is_one_digest_item(shared_article, time_machine):
    config = shared_article()
    time_machine.move_to(DIGEST_AT, tick=True)
    assert cli(config, "digest", "--date", "2026-11-24") == 0
    html = (config.parent / "public" / "digest" / "2026-11-24.html").read_text()
    doc = lxml.html.fromstring(html.encode())
    assert len(doc.xpath("//td[contains(@class, 'item')]")) == 2
    assert "2 new posts from 4 campaigners" in html
    [shared] = [p.text_content() for p in doc.xpath("//p[contains(@class, 'also')]")]
    assert shared == "Shared by Siân Evans, Dr Sam Okafor and Fair Pay for Nurses"
    sharers = doc.xpath("//p[contains(@class, 'also')]/a/@href")
    assert sharers == [toot_url("sian", 1), toot_url("sam", 1), toot_url("fairpay", 1)]
    text = (config.parent / "public" / "digest" / "2026-11-24.txt").read_text()
    assert "Shared by Siân Evans, Dr Sam Okafor and Fair Pay for Nurses" in text


def test_shared_links_are_off_on_the_page_unless_asked(shared_article):
    plain = shared_article()
    assert len(entries_on_page(plain.parent / "public" / "index.html")) == 4
    merged = shared_article("  page:\n    shared_links: true")
    shown = entries_on_page(merged.parent / "public" / "index.html")
    assert len(shown) == 2
    [shared] = [e for e in shown if e["shared"]]
    assert shared["by"] == "Siân Evans"
    assert shared["shared"] == "Shared by Siân Evans, Dr Sam Okafor and Fair Pay for Nurses"


def test_the_digest_can_list_every_share_separately(shared_article, time_machine):
    config = shared_article("  digest:\n    shared_links: false")
    time_machine.move_to(DIGEST_AT, tick=True)
    assert cli(config, "digest", "--date", "2026-11-24") == 0
    html = (config.parent / "public" / "digest" / "2026-11-24.html").read_text()
    assert "4 new posts from 4 campaigners" in html
    assert "Shared by" not in html


# --------------------------------------------------------------------------- bridged accounts


def test_a_mastodon_account_bridged_to_bluesky_is_shown_once(tmp_path, feed_server, time_machine):
    said = "Ward 7 has had no permanent sister for six months. Six months!"
    feed_server.add("/m.rss", rss("m", [{"guid": toot_url("sian", 1), "link": toot_url("sian", 1),
                                          "html": f"<p>{said}</p>", "date": DAY}]))  # fmt: skip
    bridged = "https://bsky.app/profile/sian.mastodon.example.ap.brid.gy/post/3kx"
    feed_server.add("/b.rss", rss("b", [{"guid": "at://did:plc:br/app.bsky.feed.post/3kx",
                                          "link": bridged, "text": said,
                                          "date": DAY + timedelta(minutes=1)}]))  # fmt: skip
    config = write_config(
        tmp_path,
        [("Siân Evans", [("mastodon", feed_server.url("/m.rss")),
                         ("bluesky", feed_server.url("/b.rss"))])],
        "  crosspost_primary: earliest",
    )  # fmt: skip
    time_machine.move_to(UPDATED_AT, tick=True)
    assert cli(config, "update") == 0
    assert cli(config, "build") == 0
    [post] = entries_on_page(tmp_path / "public" / "index.html")
    assert post["platform"] == "Mastodon"
    assert post["also"] == [("Bluesky (bridged)", bridged)]


def test_cross_posts_can_be_turned_off(tmp_path, feed_server, time_machine):
    said = "Ward 7 has had no permanent sister for six months. Six months!"
    for path, link in (("/m.rss", toot_url("sian", 1)), ("/b.rss", skeet_url("sian", 1))):
        feed_server.add(path, rss(path, [{"guid": link, "link": link, "text": said, "date": DAY}]))
    config = write_config(
        tmp_path,
        [("Siân Evans", [("mastodon", feed_server.url("/m.rss")),
                         ("bluesky", feed_server.url("/b.rss"))])],
        "  crosspost_window: off",
    )  # fmt: skip
    time_machine.move_to(UPDATED_AT, tick=True)
    assert cli(config, "update") == 0
    assert cli(config, "build") == 0
    assert len(entries_on_page(tmp_path / "public" / "index.html")) == 2


# --------------------------------------------------------------------------- GUID-rewriting feeds


def rewritten(fetch: int, count: int = 3, *, republished: int | None = None) -> bytes:
    """A feed whose server makes up new GUIDs on every request; links stay put."""
    items = []
    for n in range(count):
        date = DAY + timedelta(hours=n)
        if n == republished:
            date = DAY + timedelta(days=1)  # "republished" with a new date
        items.append({"guid": f"urn:uuid:{fetch:04d}{n:04d}-0000-0000-0000-000000000000",
                      "link": f"https://press.example/news/{n}", "title": f"Press release {n}",
                      "html": f"<p>Release number {n}.</p>", "date": date})  # fmt: skip
    return rss("Press", items)


def feed_row(config: Path) -> dict:
    db = sqlite3.connect(config.parent / "data" / "campaign.sqlite")
    db.row_factory = sqlite3.Row
    try:
        row = db.execute("select * from feeds").fetchone()
        entries = db.execute("select count(*) from entries").fetchone()[0]
        return {**dict(row), "entries": entries}
    finally:
        db.close()


def test_a_feed_that_rewrites_guids_on_every_fetch_makes_no_duplicates(
    tmp_path, feed_server, time_machine, capsys
):
    feed_server.add("/press.rss", rewritten(1))
    config = write_config(tmp_path, [("Press Office", [("blog", feed_server.url("/press.rss"))])])
    time_machine.move_to(UPDATED_AT, tick=True)
    assert cli(config, "update") == 0
    assert feed_row(config)["entries"] == 3
    feed_server.set_body("/press.rss", rewritten(2, republished=1))
    assert cli(config, "update", "--all") == 0
    row = feed_row(config)
    assert row["entries"] == 3
    assert row["identity_by"] == "link"  # remembered on the feed
    assert "event=guids_rewritten" in capsys.readouterr().err
    feed_server.set_body("/press.rss", rewritten(3, count=4))
    assert cli(config, "update", "--all") == 0
    assert feed_row(config)["entries"] == 4
    assert cli(config, "build") == 0
    atom = feedparser.parse((tmp_path / "public" / "feed.atom").read_bytes())
    assert sorted(e.title for e in atom.entries) == [f"Press release {n}" for n in range(4)]
    # The republished release is an update: still at its first date, not a new item on top.
    [moved] = [e for e in atom.entries if e.title == "Press release 1"]
    assert moved.published.startswith("2026-11-24T10:00")


def test_one_post_republished_under_a_new_guid_is_an_update(tmp_path, feed_server, time_machine):
    items = [
        {"guid": f"p{n}", "link": f"https://blog.example/{n}/", "title": f"Post {n}",
         "html": f"<p>Text {n}</p>", "date": DAY + timedelta(hours=n)}
        for n in range(3)
    ]  # fmt: skip
    feed_server.add("/blog.rss", rss("Blog", items))
    config = write_config(tmp_path, [("A blogger", [("blog", feed_server.url("/blog.rss"))])])
    time_machine.move_to(UPDATED_AT, tick=True)
    assert cli(config, "update") == 0
    items[2] = {**items[2], "guid": "p2-republished", "date": DAY + timedelta(days=1),
                "html": "<p>Text 2, corrected</p>"}  # fmt: skip
    feed_server.set_body("/blog.rss", rss("Blog", items))
    assert cli(config, "update", "--all") == 0
    row = feed_row(config)
    assert row["entries"] == 3
    assert row["identity_by"] is None  # one post is not a GUID-rewriting feed
    # A genuinely new post with a new GUID and a new link is still new.
    items.append({"guid": "p3", "link": "https://blog.example/3/", "title": "Post 3",
                  "html": "<p>Text 3</p>", "date": DAY + timedelta(hours=5)})  # fmt: skip
    feed_server.set_body("/blog.rss", rss("Blog", items))
    assert cli(config, "update", "--all") == 0
    assert feed_row(config)["entries"] == 4


# --------------------------------------------------------------------------- settings


def test_check_reports_wrong_cross_post_settings_with_their_lines(tmp_path, capsys):
    config = write_config(
        tmp_path,
        [("A blogger", [("blog", "https://blog.example/feed")])],
        "  crosspost_window: soon\n  crosspost_primary: newest\n  page:\n    shared_links: maybe",
    )
    assert cli(config, "check") == 2
    err = capsys.readouterr().err
    assert "feeds.yaml:7:21:" in err and "soon" in err
    assert "feeds.yaml:8:22:" in err and "blog, earliest" in err
    assert "feeds.yaml:10:19:" in err and "true or false" in err


def test_hiding_the_version_shown_hides_its_cross_posts_everywhere(campaign, time_machine):
    # The organiser hides the link they see on the page: the blog post's canonical link.
    assert cli(campaign, "hide", blog_url("sian"), "--reason", "posted by mistake") == 0
    assert cli(campaign, "build") == 0
    out = campaign.parent / "public"
    shown = entries_on_page(out / "index.html")
    assert len(shown) == 14
    sian = [e for e in shown if e["by"] == "Siân Evans"]
    assert len(sian) == 2
    assert not any(toot_url("sian", 1) in str(e) or skeet_url("sian", 1) in str(e) for e in shown)
    atom = (out / "feed.atom").read_text()
    assert toot_url("sian", 1) not in atom and skeet_url("sian", 1) not in atom
    time_machine.move_to(DIGEST_AT, tick=True)
    assert cli(campaign, "digest", "--date", "2026-11-24") == 0
    html = (out / "digest" / "2026-11-24.html").read_text()
    assert "14 new posts from 5 campaigners" in html
    assert toot_url("sian", 1) not in html and blog_url("sian") not in html
