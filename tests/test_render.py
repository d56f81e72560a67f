"""render.py: what `aggregator build` publishes, read back as a supporter would see it."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import lxml.html
import pytest
from sitebuilder import (
    BASE_URL,
    FAIRPAY,
    NOW,
    SIAN_MASTODON,
    fill,
    make_config,
    open_filled,
    post,
    save,
)

from aggregator.models import Source
from aggregator.render import build, tag_slug
from aggregator.store import Store


@pytest.fixture
def site(tmp_path):
    config, store = open_filled(tmp_path)
    report = build(config, store, now=NOW)
    yield config, store, report
    store.close()


def page(config, path: str):
    return lxml.html.document_fromstring((config.settings.output / path).read_bytes())


def html_files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.html"))


def test_build_publishes_feeds_pages_and_opml(site):
    config, _, report = site
    out = config.settings.output
    expected = [
        "feed.atom", "feed.rss", "feed.json", "sources.opml", "index.html", "health.html",
        "sources/index.html", "sources/sian/index.html", "sources/sian/feed.atom",
        "sources/sian/feed.rss", "sources/sian/feed.json", "tags/index.html",
        "tags/junior-doctors/index.html", "tags/junior-doctors/feed.atom",
        "archive/index.html", "archive/2026/11/25/index.html", "style.css", "favicon.svg",
    ]  # fmt: skip
    for name in expected:
        assert (out / name).is_file(), name
    assert report.entries == 16


def test_a_second_build_with_nothing_changed_writes_nothing(site):
    config, store, _ = site
    report = build(config, store, now=NOW + timedelta(minutes=30))
    assert report.written == ()
    assert report.unchanged > 40


def test_a_new_post_rewrites_only_what_shows_it(site):
    config, store, _ = site
    save(store, FAIRPAY, [post("https://fairpay.example/news/new", NOW, title="New post")])
    written = {
        p.relative_to(config.settings.output).as_posix()
        for p in build(config, store, now=NOW).written
    }
    assert {
        "feed.atom",
        "index.html",
        "sources/fairpay/index.html",
        "tags/pay/feed.atom",
    } <= written
    assert "sources/sam/index.html" not in written
    assert "archive/2026/11/24/index.html" not in written
    assert "archive/2026/11/25/index.html" in written


def _files(root: Path) -> dict[str, bytes]:
    """Every file under `root`; day pages without their signature (it covers the output path)."""
    return {
        p.relative_to(root).as_posix(): re.sub(rb"<!-- signature:\w+ -->", b"", p.read_bytes())
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_pages_left_alone_by_an_incremental_build_match_a_full_build(site, monkeypatch):
    # Issue 8: feeds and topic pages whose posts did not change are not rendered
    # again.  Whatever the change (a new post, an edit that keeps the date, a
    # hidden post), the folder must equal a fresh build of the same store.
    from aggregator import moderation, render

    config, store, _ = site
    rendered: list[str] = []
    feeds = render._Site.feeds

    def spy(self, folder, *args):
        rendered.append(folder)
        return feeds(self, folder, *args)

    pages: list[str] = []
    page_of = render._Site.page

    def page_spy(self, path, *args, **kwargs):
        pages.append(path)
        return page_of(self, path, *args, **kwargs)

    monkeypatch.setattr(render._Site, "feeds", spy)
    monkeypatch.setattr(render._Site, "page", page_spy)
    save(store, FAIRPAY, [post("https://fairpay.example/news/new", NOW, title="New post")])
    build(config, store, now=NOW)
    # A campaigner with no posts: their empty feed is dated by the newest post anywhere.
    empty = "sources/links-only/"
    assert {"", "sources/fairpay/", "tags/pay/", "tags/staffing/", empty} == set(rendered)
    assert "sources/fairpay/index.html" in pages and "tags/pay/index.html" in pages
    assert "sources/sam/index.html" not in pages and "tags/gps/index.html" not in pages

    [sian] = [e for e in store.entries(sources=["sian"], limit=1)]
    store.db.execute(
        "update entries set content = ?, content_hash = ? where id = ?",
        ["<p>Corrected, same date</p>", "edited", sian.id],
    )
    moderation.hide(store, "https://fairpay.example/news/new", reason=None, now=NOW)
    rendered.clear()
    build(config, store, now=NOW)
    assert "sources/sam/" not in rendered and "sources/sian/" in rendered

    fresh = replace(
        config, settings=replace(config.settings, output=config.settings.output.parent / "fresh")
    )
    build(fresh, store, now=NOW)
    incremental, full = _files(config.settings.output), _files(fresh.settings.output)
    assert incremental.keys() == full.keys()
    differ = [name for name in full if incremental[name] != full[name]]
    assert differ == []
    assert b"Corrected, same date" in incremental["sources/sian/feed.atom"]
    assert b"New post" not in incremental["sources/fairpay/feed.atom"]


def test_entry_ids_are_stable_across_builds_and_stores(tmp_path):
    ids = []
    for run in ("one", "two"):
        config, store = open_filled(tmp_path / run)
        build(config, store, now=NOW)
        atom = (config.settings.output / "feed.atom").read_text()
        ids.append(re.findall(r"<id>(urn:uuid:[^<]+)</id>", atom))
        store.close()
    assert ids[0] == ids[1] and len(ids[0]) == 16


def test_front_page_gives_each_campaigner_a_fair_share_per_day(site):
    config, _, _ = site
    doc = page(config, "index.html")
    [today] = doc.xpath("//section[@id='d2026-11-25']")
    names = [a.text for a in today.xpath(".//p[@class='by']/a")]
    assert names.count("Siân Evans") == config.settings.page.per_source_per_day == 3
    assert "Dr Sam Okafor" in names and "Fair Pay for Nurses" in names
    [more] = today.xpath(".//ul[@class='more']//a")
    assert more.text == "5 more from Siân Evans"
    assert more.get("href") == "sources/sian/#d2026-11-25"
    # Her page shows them all, at that day.
    mine = page(config, "sources/sian/index.html")
    assert len(mine.xpath("//section[@id='d2026-11-25']//article")) == 8


def test_entries_show_campaigner_platform_time_text_and_original_link(site):
    config, _, _ = site
    doc = page(config, "index.html")
    article = doc.xpath("//article[.//a[@href='https://fairpay.example/news/petition-100k']]")[0]
    by = article.xpath("string(.//p[@class='by'])")
    assert "Fair Pay for Nurses" in by and "Blog" in by and "07:00" in by
    assert article.xpath("string(.//h3)") == "Our petition passed 100,000 signatures"
    social = doc.xpath("//article[.//a[contains(@href, 'drsam.bsky.social/post/3k1')]]")[0]
    assert "The maths does not work." in social.xpath("string(.//p[@class='text'])")
    assert social.xpath("string(.//p[@class='go']/a)") == "View on Bluesky"


def test_every_outside_link_is_nofollow_ugc_noopener(site):
    config, _, _ = site
    for path in html_files(config.settings.output):
        doc = lxml.html.document_fromstring(path.read_bytes())
        for a in doc.xpath(
            "//main//a[starts-with(@href, 'https://') or starts-with(@href, 'http://')]"
        ):
            if a.get("href").startswith(BASE_URL):
                continue
            assert a.get("rel") == "nofollow ugc noopener", (path, a.get("href"))


def test_every_page_advertises_the_feeds_and_forbids_scripts(site):
    config, _, _ = site
    for path in html_files(config.settings.output):
        doc = lxml.html.document_fromstring(path.read_bytes())
        feeds = doc.xpath("//head/link[@rel='alternate']")
        types = {link.get("type") for link in feeds}
        assert {"application/atom+xml", "application/rss+xml", "application/feed+json"} <= types
        assert all(link.get("href").startswith(BASE_URL) for link in feeds), path
        [csp] = doc.xpath("//meta[@http-equiv='Content-Security-Policy']/@content")
        assert "script-src 'none'" in csp and "default-src 'none'" in csp
        assert doc.get("lang") == "en-GB"
        assert not doc.xpath("//script")


def test_campaigner_and_topic_pages_advertise_their_own_feeds_first(site):
    config, _, _ = site
    doc = page(config, "sources/sian/index.html")
    first = doc.xpath("//head/link[@rel='alternate']/@href")[0]
    assert first == BASE_URL + "sources/sian/feed.atom"
    doc = page(config, "tags/junior-doctors/index.html")
    assert doc.xpath("//head/link[@rel='alternate']/@href")[0] == (
        BASE_URL + "tags/junior-doctors/feed.atom"
    )


def test_no_page_loads_anything_from_another_site(site):
    config, _, _ = site
    for path in html_files(config.settings.output):
        doc = lxml.html.document_fromstring(path.read_bytes())
        loaded = doc.xpath("//img/@src | //link[@rel='stylesheet' or @rel='icon']/@href")
        loaded += doc.xpath("//script/@src | //iframe/@src | //video/@src | //source/@src")
        assert all("://" not in url for url in loaded), (path, loaded)


def test_remote_images_become_links_unless_allowed(tmp_path):
    config, store = open_filled(tmp_path / "off")
    build(config, store, now=NOW)
    doc = page(config, "index.html")
    assert not doc.xpath("//img")
    labels = doc.xpath("//p[@class='media']/a/text()")
    assert "[image: Nurses holding a banner outside the hospital]" in labels

    config, store = open_filled(tmp_path / "on", allow_remote_images=True)
    build(config, store, now=NOW)
    doc = page(config, "index.html")
    [img] = doc.xpath("//img[contains(@src, 'rally.jpg')]")
    assert img.get("alt") == "Nurses holding a banner outside the hospital"
    assert (img.get("width"), img.get("height")) == ("1200", "800")
    csp = doc.xpath("//meta[@http-equiv='Content-Security-Policy']/@content")[0]
    assert "img-src 'self' https:" in csp


def test_entry_language_is_marked_on_what_it_wrote(site):
    config, _, _ = site
    doc = page(config, "index.html")
    [heading] = doc.xpath("//h3[contains(., 'Amseroedd')]")
    assert heading.get("lang") == "cy"
    atom = (config.settings.output / "feed.atom").read_text()
    assert '<entry xml:lang="cy">' in atom


def test_directory_lists_every_place_to_find_each_campaigner(site):
    config, _, _ = site
    doc = page(config, "sources/index.html")
    [sian] = doc.xpath("//section[h2/a[.='Siân Evans']]")
    places = sian.xpath(".//ul[@class='places']/li/a[1]/text()")
    assert places == ["Mastodon", "Blog", "TikTok"]
    assert sian.xpath(".//a[.='TikTok']/@href") == ["https://www.tiktok.com/@sian.example"]
    assert len(sian.xpath(".//ul[@class='latest']/li")) == 3
    [only_links] = doc.xpath("//section[h2/a[.='Patients Together']]")
    assert only_links.xpath(".//a[.='TikTok']")
    assert (config.settings.output / "sources/links-only/index.html").is_file()


def test_topics_follow_the_tags_in_feeds_yaml(site):
    config, _, _ = site
    assert tag_slug("Junior doctors") == "junior-doctors"
    listing = page(config, "tags/index.html")
    assert listing.xpath("//ul[@class='topics']/li/a/text()") == [
        "GPs", "Junior doctors", "pay", "staffing", "Wales",
    ]  # fmt: skip
    staffing = (config.settings.output / "tags/staffing/feed.atom").read_text()
    assert "Siân Evans" in staffing and "Fair Pay for Nurses" in staffing
    assert "Dr Sam Okafor" not in staffing


def test_health_page_says_what_is_wrong_in_plain_words(site):
    config, _, _ = site
    doc = page(config, "health.html")
    text = doc.text_content()
    assert "The server says this feed does not exist (HTTP 404)" in text
    assert "update feeds.yaml to https://iechyd.example/newydd/feed.atom" in " ".join(text.split())
    failing = doc.xpath("//li[contains(@class, 'bad')]")
    assert len(failing) == 1 and "YouTube" in failing[0].text_content()
    counts = doc.xpath("//dt[.='Posts stored']/following-sibling::dd[1]/text()")
    assert sorted(int(c) for c in counts) == [1, 1, 2, 2, 2, 8]


def test_subscribe_box_offers_feeds_opml_and_email_when_configured(tmp_path):
    config, store = open_filled(tmp_path, digest_signup_url="https://lists.example/join")
    build(config, store, now=NOW)
    doc = page(config, "index.html")
    box = doc.xpath("//aside[@class='subscribe']")[0]
    hrefs = box.xpath(".//a/@href")
    assert BASE_URL + "feed.atom" in hrefs and "sources.opml" in hrefs
    assert "https://lists.example/join" in hrefs


def test_front_page_stays_under_100_kb_however_busy(tmp_path):
    config = make_config(tmp_path, max_entries=1000, per_source_per_day=1000)
    store = Store.open(config.settings.database)
    fill(store, config)
    words = "Safe staffing saves lives and we will keep saying so until it is law. " * 8
    posts = [
        post(f"https://mastodon.example/@sian/9{n:04d}", NOW - timedelta(minutes=7 * n), text=words)
        for n in range(600)
    ]
    save(store, SIAN_MASTODON, posts)
    build(config, store, now=NOW)
    out = config.settings.output
    weight = (out / "index.html").stat().st_size + (out / "style.css").stat().st_size
    assert weight < 100_000
    assert len(page(config, "index.html").xpath("//article")) > 50
    store.close()


def test_days_are_local_days_across_the_october_clock_change(tmp_path):
    # Clocks go back at 02:00 BST on Sunday 25 October 2026 (01:00 UTC).
    config = make_config(tmp_path, days=3)
    store = Store.open(config.settings.database)
    store.sync_feeds(config.feeds())
    moments = {
        "late Saturday": datetime(2026, 10, 24, 22, 59, tzinfo=UTC),  # 23:59 BST, the 24th
        "early Sunday": datetime(2026, 10, 24, 23, 30, tzinfo=UTC),  # 00:30 BST, the 25th
        "after the change": datetime(2026, 10, 25, 1, 30, tzinfo=UTC),  # 01:30 GMT
        "late Sunday": datetime(2026, 10, 25, 23, 30, tzinfo=UTC),  # 23:30 GMT, the 25th
        "early Monday": datetime(2026, 10, 26, 0, 10, tzinfo=UTC),  # 00:10 GMT, the 26th
    }
    save(
        store,
        FAIRPAY,
        [post(f"https://fairpay.example/{i}", when, title=name)
         for i, (name, when) in enumerate(moments.items())],
        now=datetime(2026, 10, 26, 9, 0, tzinfo=UTC),
    )  # fmt: skip
    build(config, store, now=datetime(2026, 10, 26, 9, 0, tzinfo=UTC))

    def titles(path):
        return page(config, path).xpath("//article//h2//text()")

    assert titles("archive/2026/10/24/index.html") == ["late Saturday"]
    assert titles("archive/2026/10/25/index.html") == [
        "late Sunday", "after the change", "early Sunday",
    ]  # fmt: skip
    assert titles("archive/2026/10/26/index.html") == ["early Monday"]
    front = page(config, "index.html")
    assert front.xpath("//section[@id='d2026-10-25']//h3//text()") == [
        "late Sunday", "after the change", "early Sunday",
    ]  # fmt: skip
    times = front.xpath("//section[@id='d2026-10-25']//time/text()")
    assert times == ["23:30", "01:30", "00:30"]
    store.close()


HOSTILE = [
    "<script>alert('s')</script>",
    "<img src='https://evil.example/x.png' onerror='alert(1)'>",
    "<a href='javascript:alert(2)'>click</a>",
    "<a href=' JaVaScRiPt:alert(3)'>click</a>",
    "<iframe src='https://evil.example/frame'></iframe>",
    "<svg><script>alert(4)</script></svg>",
    "<svg onload='alert(5)'><circle r='1'/></svg>",
    "<meta http-equiv='refresh' content='0;url=https://evil.example/'>",
    "<object data='https://evil.example/x.swf'></object>",
    "<p style='background:url(javascript:alert(6))' onclick='alert(7)'>text</p>",
    "<form action='https://evil.example/'><input name=x></form>",
]
FORBIDDEN = [
    "<script", "&lt;script", "onerror", "onload", "onclick", "javascript:", "<iframe",
    "&lt;iframe", "<svg", "&lt;svg", "refresh", "<object", "&lt;object", "<form", "&lt;form",
    "alert(",
]  # fmt: skip


def test_hostile_markup_appears_in_no_output_file(tmp_path):
    config = make_config(tmp_path)
    store = Store.open(config.settings.database)
    store.sync_feeds(config.feeds())
    entries = [
        post(f"https://fairpay.example/h{i}", NOW - timedelta(hours=i), title=f"Hostile {i}",
             text="Plain summary", html=f"<p>Before</p>{html}<p>After</p>")
        for i, html in enumerate(HOSTILE)
    ]  # fmt: skip
    entries.append(
        post("https://fairpay.example/link", NOW, title="Bad link", link="javascript:alert(9)")
    )
    save(store, FAIRPAY, entries)
    build(config, store, now=NOW)
    files = [
        p
        for p in config.settings.output.rglob("*")
        if p.is_file() and p.suffix not in (".svg", ".css")
    ]
    assert len(files) > 20
    for path in files:
        text = path.read_text().lower()
        for bad in FORBIDDEN:
            assert bad.lower() not in text, (path, bad)
    store.close()


def test_hostile_titles_are_escaped_text(tmp_path):
    config = make_config(tmp_path)
    store = Store.open(config.settings.database)
    store.sync_feeds(config.feeds())
    save(
        store, FAIRPAY, [post("https://fairpay.example/t", NOW, title="<script>alert(1)</script>")]
    )
    build(config, store, now=NOW)
    for path in config.settings.output.rglob("*"):
        if path.is_file() and path.suffix != ".svg":
            assert "<script" not in path.read_text(), path
    doc = page(config, "index.html")
    assert doc.xpath("string(//article//h3)") == "<script>alert(1)</script>"
    store.close()


def test_removed_campaigners_entries_are_not_published(tmp_path):
    config, store = open_filled(tmp_path)
    config = replace(config, sources=tuple(s for s in config.sources if s.slug != "sian"))
    build(config, store, now=NOW)
    assert "Siân Evans" not in (config.settings.output / "feed.atom").read_text()
    assert "Siân" not in (config.settings.output / "index.html").read_text()
    store.close()


def test_an_empty_store_builds_a_helpful_site(tmp_path):
    config = make_config(tmp_path, sources=[Source("solo", "Solo", feeds=())])
    with Store.open(config.settings.database) as store:
        build(config, store, now=NOW)
    assert "No posts in the last 7 days yet." in (config.settings.output / "index.html").read_text()
    assert (config.settings.output / "feed.atom").is_file()


def test_a_build_that_fails_part_way_leaves_the_previous_site_and_no_temporary_files(
    site, monkeypatch
):
    # Files are staged on disk as they are made (issue 8: a full build no longer
    # holds the site in memory) and moved into place only once all are made.
    from aggregator import render

    config, store, _ = site
    out = config.settings.output
    before = _files(out)
    save(store, FAIRPAY, [post("https://fairpay.example/news/late", NOW, title="Late post")])

    def broken(self):
        raise RuntimeError("a bug while making the archive")

    monkeypatch.setattr(render._Site, "archive", broken)
    with pytest.raises(RuntimeError):
        build(config, store, now=NOW)
    assert _files(out) == before
    assert not list(out.rglob("*.tmp"))


def test_temporary_files_left_by_a_killed_build_are_cleared_by_the_next(site):
    config, store, _ = site
    out = config.settings.output
    leftover = out / "sources" / ".index.html.k3x_9q2a.tmp"
    leftover.write_text("half a page")
    own = out / ".organiser-notes.tmp"  # hidden and .tmp, but not a name we make
    own.write_text("Remember to add the new campaigners.")
    save(store, FAIRPAY, [post("https://fairpay.example/news/next", NOW, title="Next post")])
    build(config, store, now=NOW)
    assert not leftover.exists()
    assert own.exists()
