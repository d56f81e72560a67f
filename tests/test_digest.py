"""The daily digest (issue 4): windows in local time, selection, grouping, the email HTML,
the text part, the files it writes and the real-world corpus.  Sending is in test_mail.py."""

from __future__ import annotations

import email
import email.policy
import os
import re
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import lxml.html
import pytest

from aggregator import digest as dg
from aggregator.models import (
    Config,
    DigestSettings,
    FeedSpec,
    Media,
    PageSettings,
    ParsedEntry,
    ParsedFeed,
    Settings,
    Source,
    Validators,
)
from aggregator.render import Renderer
from aggregator.store import Store

LONDON = ZoneInfo("Europe/London")
DAY = date(2026, 11, 24)  # a Tuesday, GMT
# The morning after DAY, when the scheduled digest runs.
MORNING = datetime(2026, 11, 25, 7, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus" / "realworld"


def local(y, m, d, hh, mm=0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=LONDON)


# --------------------------------------------------------------------------- test data


def feed_spec(slug: str, platform: str = "blog") -> FeedSpec:
    url = f"https://{slug}.example/feed"
    return FeedSpec(key=url, url=url, kind="url", platform=platform, source=slug)


SIAN = Source(
    slug="sian",
    name="Siân Evans 🏥",
    feeds=(feed_spec("sian", "mastodon"),),
    tags=("nursing",),
)
NHS_PAY = Source(
    slug="fair-pay",
    name="Fair Pay for Nurses",
    feeds=(feed_spec("fair-pay"),),
    tags=("pay", "nursing"),
)
GP = Source(slug="gp", name="Dr Amara Okafor", feeds=(feed_spec("gp", "bluesky"),))
SOURCES = (SIAN, NHS_PAY, GP)


def make_config(tmp_path: Path, sources=SOURCES, **digest_options) -> Config:
    options = {"sender": "Siân's digest <digest@campaign.example>", **digest_options}
    return Config(
        path=tmp_path / "feeds.yaml",
        settings=Settings(
            title="Save our NHS",
            base_url="https://campaign.example/",
            database=tmp_path / "db.sqlite",
            output=tmp_path / "public",
            digest=DigestSettings(**options),
        ),
        sources=sources,
    )


def post(n: int, published: datetime, **kw) -> ParsedEntry:
    base = dict(
        guid=f"urn:post:{n}",
        link=f"https://posts.example/{n}",
        title=f"Post number {n}",
        title_derived=False,
        summary=f"What post {n} is about.",
        content=f"<p>What post {n} is about.</p>",
        published=published,
    )
    base.update(kw)
    return ParsedEntry(**base)


def save(store: Store, source: Source, entries, *, now: datetime) -> None:
    store.save_fetched(
        source.feeds[0].key,
        ParsedFeed(format="rss20", title=source.name, link=None, language="en", entries=entries),
        validators=Validators(),
        body_hash=str(now),
        now=now,
        next_poll=now + timedelta(minutes=30),
    )


@pytest.fixture
def config(tmp_path) -> Config:
    return make_config(tmp_path)


@pytest.fixture
def store(tmp_path, config):
    s = Store.open(config.settings.database)
    s.sync_feeds(config.feeds())
    yield s
    s.close()


def fill_busy_day(store: Store) -> Store:
    """DAY in London: Siân posts a lot on Mastodon, Fair Pay writes one blog post."""
    toots = [
        post(
            100 + i,
            local(2026, 11, 24, 8 + i),
            title=f"Toot {i} from the picket line at St Thomas' — solidarity ✊",
            title_derived=True,
            content=f"<p>Toot {i} from the picket line at St Thomas' — solidarity ✊ #nursing</p>",
            tags=("nursing",),
        )
        for i in range(8)
    ]
    for toot in toots:
        save(store, SIAN, [toot], now=toot.published + timedelta(minutes=5))
    blog = post(
        1,
        local(2026, 11, 24, 12, 30),
        title="Why nurses' pay matters for patients",
        summary="Pay restoration is about keeping experienced staff on the wards. Here is "
        "what the latest figures say, and what you can do this week.",
        tags=("pay",),
    )
    save(store, NHS_PAY, [blog], now=local(2026, 11, 24, 13))
    return store


@pytest.fixture
def busy_day(store):
    return fill_busy_day(store)


def run(config, store, **kw):
    options = dict(date=None, send=False, force=False, now=MORNING)
    options.update(kw)
    return dg.run_digest(config, store, **options)


# --------------------------------------------------------------------------- email HTML check


def email_html_problems(html: str, allowed_image_prefixes: tuple[str, ...] = ()) -> list[str]:
    """A basic HTML email check: what email clients and privacy-minded readers need.

    Valid structure (doctype, html/head/body, charset, lang, title); no scripts or
    event handlers; no external stylesheets, fonts or @import; <style> only for
    @media rules (everything else inlined, so clients that drop <style> keep the
    layout); tables for layout, none wider than 600 px; every image with alt, width
    and height and loaded only from allowed places; no javascript: links.
    """
    problems: list[str] = []
    if not html.lstrip().lower().startswith("<!doctype html>"):
        problems.append("no <!doctype html>")
    doc = lxml.html.document_fromstring(html)
    if doc.tag != "html" or doc.find("head") is None or doc.find("body") is None:
        problems.append("not an html/head/body document")
    if not doc.get("lang"):
        problems.append("<html> has no lang")
    if not doc.xpath("//meta[@charset]"):
        problems.append("no <meta charset>")
    if not doc.xpath("//head/title/text()"):
        problems.append("no <title>")
    if not doc.xpath("//meta[@name='color-scheme']"):
        problems.append("no color-scheme meta for dark mode")
    for bad in ("script", "iframe", "object", "embed", "form", "link", "base", "svg"):
        for _ in doc.iter(bad):
            problems.append(f"<{bad}> element")
    for el in doc.iter():
        if not isinstance(el.tag, str):
            continue
        for name, value in el.attrib.items():
            if name.lower().startswith("on"):
                problems.append(f"event handler {name} on <{el.tag}>")
            if name in ("href", "src") and value.strip().lower().startswith(
                ("javascript:", "data:", "vbscript:")
            ):
                problems.append(f"{name}={value[:30]!r} on <{el.tag}>")
            if name == "style" and re.search(r"url\(|expression\(|@import", value, re.I):
                problems.append(f"external resource in style on <{el.tag}>")
    for style in doc.iter("style"):
        css = style.text or ""
        if re.search(r"@import|url\(|@font-face", css, re.I):
            problems.append("external resource or font in <style>")
        outside_media = re.sub(r"@media[^{]*\{(?:[^{}]*\{[^{}]*\})*\s*\}", "", css)
        if outside_media.strip():
            problems.append(f"<style> holds rules that were not inlined: {outside_media[:60]!r}")
    tables = list(doc.iter("table"))
    if not tables:
        problems.append("no table layout")
    for table in tables:
        if table.get("role") != "presentation":
            problems.append("layout table without role=presentation")
        width = table.get("width", "")
        if width.isdigit() and int(width) > 600:
            problems.append(f"table {width} px wide")
    for el in doc.iter():
        style = el.get("style", "") if isinstance(el.tag, str) else ""
        for px in re.findall(r"(?<![-\w])(?:max-)?width:\s*(\d+)px", style):
            if int(px) > 600:
                problems.append(f"<{el.tag}> {px} px wide")
    for img in doc.iter("img"):
        for attr in ("alt", "width", "height"):
            if img.get(attr) is None:
                problems.append(f"<img> without {attr}")
        src = img.get("src", "")
        if not src.startswith(allowed_image_prefixes) or not allowed_image_prefixes:
            problems.append(f"<img> loads {src[:60]!r}")
    return problems


def test_the_email_check_catches_what_it_should():
    bad = (
        '<html><head><link rel="stylesheet" href="https://x/y.css"><style>p{color:red}'
        "</style></head><body onload=\"x()\"><script>x()</script><table width='800'>"
        '<tr><td style="width:700px"><img src="https://t.example/p.gif">'
        '<a href="javascript:alert(1)">x</a></td></tr></table></body></html>'
    )
    problems = " | ".join(email_html_problems(bad))
    for expected in (
        "doctype",
        "<script>",
        "<link>",
        "onload",
        "javascript:",
        "not inlined",
        "800 px",
        "700 px",
        "without alt",
        "loads",
    ):
        assert expected in problems


# --------------------------------------------------------------------------- windows


def test_spring_forward_day_is_23_hours_long():
    window = dg.digest_window(datetime(2026, 3, 30, 7, tzinfo=UTC), LONDON, day=date(2026, 3, 29))
    assert window.hours == 23
    assert window.start == datetime(2026, 3, 29, 0, 0, tzinfo=UTC)  # midnight GMT
    assert window.end == datetime(2026, 3, 29, 23, 0, tzinfo=UTC)  # midnight BST


def test_fall_back_day_is_25_hours_long():
    window = dg.digest_window(datetime(2026, 10, 26, 7, tzinfo=UTC), LONDON, day=date(2026, 10, 25))
    assert window.hours == 25
    assert window.start == datetime(2026, 10, 24, 23, 0, tzinfo=UTC)  # midnight BST
    assert window.end == datetime(2026, 10, 26, 0, 0, tzinfo=UTC)  # midnight GMT


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # Just after local midnight in summer time: still 29 March in UTC, but the
        # local "yesterday" is the 29th.
        (datetime(2026, 3, 29, 23, 30, tzinfo=UTC), date(2026, 3, 29)),
        (datetime(2026, 3, 29, 22, 30, tzinfo=UTC), date(2026, 3, 28)),
        (datetime(2026, 10, 26, 0, 30, tzinfo=UTC), date(2026, 10, 25)),
        (datetime(2026, 10, 25, 23, 30, tzinfo=UTC), date(2026, 10, 24)),
    ],
)
def test_default_day_is_yesterday_in_local_time(now, expected):
    assert dg.digest_window(now, LONDON).day == expected


def test_missed_days_are_caught_up_in_one_digest():
    now = datetime(2026, 11, 25, 7, tzinfo=UTC)
    window = dg.digest_window(now, LONDON, last_day=date(2026, 11, 21))
    assert (window.first_day, window.day) == (date(2026, 11, 22), date(2026, 11, 24))
    assert window.hours == 72
    long_gap = dg.digest_window(now, LONDON, last_day=date(2026, 1, 1))
    assert long_gap.first_day == date(2026, 11, 18)  # at most a week


def test_an_explicit_date_is_that_day_alone_and_must_be_over():
    now = datetime(2026, 11, 25, 7, tzinfo=UTC)
    window = dg.digest_window(now, LONDON, day=date(2026, 11, 20), last_day=date(2026, 11, 1))
    assert window.first_day == window.day == date(2026, 11, 20)
    with pytest.raises(ValueError, match="once that day is over"):
        dg.digest_window(now, LONDON, day=date(2026, 11, 25))


@pytest.mark.parametrize(
    ("day", "first_seen", "included"),
    [
        # 00:30 BST on 30 March is still 29 March in UTC but belongs to the 30th.
        (date(2026, 3, 29), datetime(2026, 3, 29, 23, 30, tzinfo=UTC), False),
        (date(2026, 3, 29), datetime(2026, 3, 29, 22, 59, tzinfo=UTC), True),
        (date(2026, 3, 29), datetime(2026, 3, 29, 0, 0, tzinfo=UTC), True),
        (date(2026, 3, 29), datetime(2026, 3, 28, 23, 59, tzinfo=UTC), False),
        # The 25-hour day: 00:30 BST and 23:30 GMT are both 25 October.
        (date(2026, 10, 25), datetime(2026, 10, 24, 23, 30, tzinfo=UTC), True),
        (date(2026, 10, 25), datetime(2026, 10, 25, 23, 30, tzinfo=UTC), True),
        (date(2026, 10, 25), datetime(2026, 10, 24, 22, 30, tzinfo=UTC), False),
        (date(2026, 10, 25), datetime(2026, 10, 26, 0, 0, tzinfo=UTC), False),
    ],
)
def test_entries_belong_to_the_local_day_they_were_first_seen(
    tmp_path, config, store, day, first_seen, included
):
    save(store, SIAN, [post(1, first_seen - timedelta(minutes=1))], now=first_seen)
    now = datetime.combine(day + timedelta(days=2), datetime.min.time(), tzinfo=UTC)
    window = dg.digest_window(now, LONDON, day=day)
    chosen = dg.select_new(store.entries(), window)
    assert bool(chosen) is included


def test_an_entry_only_updated_in_the_window_is_not_new(store):
    save(store, SIAN, [post(1, local(2026, 11, 23, 9))], now=local(2026, 11, 23, 10))
    later = post(1, local(2026, 11, 23, 9), content="<p>Corrected</p>")
    save(store, SIAN, [later], now=local(2026, 11, 24, 10))
    window = dg.digest_window(MORNING, LONDON)
    assert window.day == DAY
    assert dg.select_new(store.entries(), window) == []


def test_a_new_feeds_back_catalogue_is_not_news(store):
    old = [post(n, local(2026, 11, 24, 9) - timedelta(days=30 + n)) for n in range(5)]
    fresh = post(99, local(2026, 11, 23, 22))  # late last night, fetched this morning
    save(store, GP, [*old, fresh], now=local(2026, 11, 24, 9))
    chosen = dg.select_new(store.entries(), dg.digest_window(MORNING, LONDON))
    assert [e.guid for e in chosen] == ["urn:post:99"]


# --------------------------------------------------------------------------- grouping


def digest_for(config, store, day=DAY):
    window = dg.digest_window(MORNING, LONDON, day=day)
    return dg.build_digest(dg.select_new(store.entries(), window), config, window)


def test_entries_are_grouped_by_campaigner_with_a_fair_share_each(config, busy_day):
    d = digest_for(config, busy_day)
    assert (d.entry_count, d.source_count) == (9, 2)
    assert d.summary == "9 new posts from 2 campaigners"
    assert [g.heading for g in d.groups] == ["Siân Evans 🏥", "Fair Pay for Nurses"]
    sian = d.groups[0]
    assert len(sian.items) == 5  # per_source default
    assert sian.items[0].headline.startswith("Toot 7")  # newest first
    assert sian.more == (dg.MoreLink("Siân Evans 🏥", 3, "https://campaign.example/sources/sian/"),)
    assert sian.url == "https://campaign.example/sources/sian/"
    [blog] = d.groups[1].items
    assert blog.headline == "Why nurses' pay matters for patients"
    assert blog.text.startswith("Pay restoration")
    assert (blog.platform, blog.when) == ("Blog", "12:30")
    assert d.subject == "Save our NHS: Tuesday 24 November 2026"


def test_entries_can_be_grouped_by_topic_tag(tmp_path, busy_day):
    config = make_config(tmp_path, group_by="tag", per_source=2)
    save(busy_day, GP, [post(7, local(2026, 11, 24, 15))], now=local(2026, 11, 24, 15, 5))
    d = digest_for(config, busy_day)
    assert [g.heading for g in d.groups] == ["nursing", "pay", dg.OTHER_TOPIC]
    nursing, pay, other = d.groups
    assert {i.source_name for i in nursing.items} == {"Siân Evans 🏥"}
    assert [m.count for m in nursing.more] == [6]
    assert [i.source_name for i in pay.items] == ["Fair Pay for Nurses"]
    assert [i.source_name for i in other.items] == ["Dr Amara Okafor"]
    assert other.url is None


def test_entries_of_campaigners_no_longer_in_feeds_yaml_are_left_out(tmp_path, busy_day):
    config = make_config(tmp_path, sources=(NHS_PAY, GP))
    d = digest_for(config, busy_day)
    assert [g.heading for g in d.groups] == ["Fair Pay for Nurses"]
    assert (d.entry_count, d.source_count) == (1, 1)


# --------------------------------------------------------------------------- rendering


def rendered(config, store):
    d = digest_for(config, store)
    renderer = Renderer(config)
    return d, dg.render_html(d, renderer), dg.render_text(d, renderer)


def test_the_html_part_passes_the_email_check(config, busy_day):
    _, html, _ = rendered(config, busy_day)
    assert email_html_problems(html) == []
    doc = lxml.html.document_fromstring(html)
    hrefs = [a.get("href") for a in doc.iter("a")]
    assert "https://posts.example/1" in hrefs
    assert "https://campaign.example/sources/sian/" in hrefs
    assert "https://campaign.example/digest/2026-11-24.html" in hrefs
    assert all(h.startswith("https://") for h in hrefs)
    # Inlined: the masthead's colour is on the element, not only in <style>.
    [masthead] = doc.find_class("masthead")
    assert "background-color: #005eb8" in masthead.get("style")
    assert "…and 3 more from Siân Evans 🏥" in doc.text_content()


def test_the_html_part_keeps_its_layout_without_style_elements(config, busy_day):
    _, html, _ = rendered(config, busy_day)
    doc = lxml.html.document_fromstring(html)
    for style in doc.iter("style"):
        assert "@media" in style.text  # dark mode and narrow screens only
        style.getparent().remove(style)
    [container] = doc.find_class("container")
    assert container.get("width") == "600"
    assert "max-width: 600px" in container.get("style")
    for cell in doc.iter("td"):
        assert cell.get("style"), "every cell carries its own padding and colours"


def test_images_appear_only_when_allowed_and_with_size_and_alt(tmp_path, store):
    picture = Media(
        url="https://media.example/picket.jpg", type="image/jpeg", width=1200, height=800
    )
    unsized = Media(url="https://media.example/unsized.jpg", type="image/jpeg")
    save(
        store,
        SIAN,
        [post(1, local(2026, 11, 24, 9), media=(unsized, picture))],
        now=local(2026, 11, 24, 9, 5),
    )
    config = make_config(tmp_path)
    _, html, _ = rendered(config, store)
    assert "<img" not in html  # remote images are a third-party request: off by default
    allowed = replace(
        config, settings=replace(config.settings, page=PageSettings(allow_remote_images=True))
    )
    _, html, _ = rendered(allowed, store)
    assert email_html_problems(html, ("https://media.example/",)) == []
    [img] = lxml.html.document_fromstring(html).iter("img")
    assert (img.get("src"), img.get("width"), img.get("height")) == (
        "https://media.example/picket.jpg",
        "552",
        "368",
    )
    assert img.get("alt") == "Picture from Siân Evans 🏥's post"


def test_hostile_content_never_reaches_the_email(config, store):
    # Stored content has been sanitised; even so, the email shows only plain text
    # made from it, and titles and links are escaped or dropped.
    hostile = post(
        1,
        local(2026, 11, 24, 9),
        title='<script>alert("title")</script> Pay <img src=x onerror=alert(1)>',
        summary="<b onmouseover=alert(2)>hover</b>",
        content='<p>Hi <script>alert(3)</script><img src="x" onerror="alert(4)">'
        '<a href="javascript:alert(5)">click</a></p>',
        link="javascript:alert(6)",
    )
    toot = post(
        2,
        local(2026, 11, 24, 10),
        title="derived",
        title_derived=True,
        content='<p onclick="alert(7)">Toot <style>body{display:none}</style>text</p>',
        link="https://mastodon.example/@sian/2",
    )
    save(store, SIAN, [hostile, toot], now=local(2026, 11, 24, 11))
    _, html, text = rendered(config, store)
    assert email_html_problems(html) == []
    lowered = html.lower()
    # Event handlers are caught by the check above; what is left of them is escaped text.
    for bad in ("<script", "<img", "javascript:", "display:none}"):
        assert bad not in lowered
    assert "&lt;script&gt;" in html  # the title's text, shown as text
    assert "Toot text" in html
    assert "javascript:" not in text and "<b" not in text and "alert(3)" not in text


def test_the_text_part_is_written_for_reading(config, busy_day):
    d, _, text = rendered(config, busy_day)
    assert text.startswith("Save our NHS\nTuesday 24 November 2026\n====")
    assert "9 new posts from 2 campaigners." in text
    assert "\n\nSiân Evans 🏥\n-------------\n" in text  # the emoji takes two columns
    assert "* Why nurses' pay matters for patients\n  Pay restoration" in text
    assert "  https://posts.example/1\n" in text
    assert "...and 3 more from Siân Evans 🏥:\n  https://campaign.example/sources/sian/" in text
    assert "<" not in text and "&amp;" not in text and "&#" not in text
    for line in text.splitlines():
        assert len(line) <= 72 or line.strip().startswith("http"), line
    # Paragraphs wrap rather than running on.
    assert (
        "  Pay restoration is about keeping experienced staff on the wards. Here\n  is what" in text
    )


def test_an_empty_day_renders_a_short_note(config, store):
    d, html, text = rendered(config, store)
    assert d.empty and d.summary == "No new posts"
    assert "Nobody we follow posted anything new" in text
    assert email_html_problems(html) == []


# --------------------------------------------------------------------------- run_digest


def test_run_digest_writes_the_web_text_and_eml_files(config, busy_day):
    outcome = run(config, busy_day)
    folder = config.settings.output / "digest"
    assert outcome.status == "written" and outcome.exit_code == 0
    assert (outcome.entry_count, outcome.source_count) == (9, 2)
    for name in ("2026-11-24.html", "2026-11-24.txt", "2026-11-24.eml", "latest.html"):
        assert (folder / name).is_file(), name
        assert folder / name in outcome.files
    assert (folder / "latest.html").read_bytes() == (folder / "2026-11-24.html").read_bytes()
    assert "Wrote the digest for Tuesday 24 November 2026: 9 new posts" in outcome.message
    message = email.message_from_bytes(
        (folder / "2026-11-24.eml").read_bytes(), policy=email.policy.default
    )
    assert message.get_content_type() == "multipart/alternative"
    assert message["Subject"] == "Save our NHS: Tuesday 24 November 2026"
    assert message["From"].addresses[0].display_name == "Siân's digest"
    assert message["To"] == "undisclosed-recipients:;"
    assert message["Date"].datetime == MORNING
    assert re.fullmatch(
        r"<digest\.2026-11-24\.[0-9a-f]{16}@campaign\.example>", message["Message-ID"]
    )
    assert message["List-Id"] == "Save our NHS <digest.campaign.example>"
    assert "List-Unsubscribe" not in message  # none configured
    plain = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert plain.get_content_charset() == "utf-8" and html.get_content_charset() == "utf-8"
    assert plain.get_content().replace("\r\n", "\n") == (folder / "2026-11-24.txt").read_text()
    assert (
        html.get_content().replace("\r\n", "\n")
        == (folder / "2026-11-24.html").read_text().rstrip("\n") + "\n"
    )
    assert b"\r\n" in (folder / "2026-11-24.eml").read_bytes()  # RFC 5322 line ends


@pytest.mark.parametrize(
    ("unsubscribe", "header", "one_click"),
    [
        ("https://campaign.example/unsubscribe", "<https://campaign.example/unsubscribe>", True),
        ("mailto:leave@campaign.example", "<mailto:leave@campaign.example>", False),
        ("leave@campaign.example", "<mailto:leave@campaign.example>", False),
    ],
)
def test_the_eml_carries_list_unsubscribe_headers(
    tmp_path, busy_day, unsubscribe, header, one_click
):
    config = make_config(tmp_path, unsubscribe=unsubscribe, to=("list@lists.campaign.example",))
    run(config, busy_day)
    raw = (config.settings.output / "digest" / "2026-11-24.eml").read_bytes()
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message["List-Unsubscribe"] == header
    assert (message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click") is one_click
    assert message["To"] == "list@lists.campaign.example"
    link = header.strip("<>")
    assert link in message.get_body(("html",)).get_content()
    assert f"Unsubscribe: {link}" in message.get_body(("plain",)).get_content()


def test_an_empty_day_writes_no_digest_unless_asked(tmp_path, config, store):
    outcome = run(config, store)
    assert outcome.status == "empty" and outcome.exit_code == 0 and outcome.files == ()
    assert "No new posts for Tuesday 24 November 2026" in outcome.message
    assert "send_empty" in outcome.message
    assert not (config.settings.output / "digest").exists()
    wanted = make_config(tmp_path, send_empty=True)
    outcome = run(wanted, store)
    assert outcome.status == "written"
    assert (wanted.settings.output / "digest" / "2026-11-24.eml").is_file()


def test_the_archive_lists_every_digest_newest_first(config, busy_day):
    save(busy_day, GP, [post(50, local(2026, 11, 22, 9))], now=local(2026, 11, 22, 9, 5))
    run(config, busy_day)  # the 24th
    run(config, busy_day, date=date(2026, 11, 22))  # an older day, made afterwards
    run(config, busy_day, date=date(2026, 11, 23))  # empty: no files, not listed
    folder = config.settings.output / "digest"
    doc = lxml.html.document_fromstring((folder / "index.html").read_text())
    links = [(a.get("href"), a.text_content()) for a in doc.xpath("//main//a")]
    assert links == [
        ("2026-11-24.html", "Tuesday 24 November 2026"),
        ("2026-11-22.html", "Sunday 22 November 2026"),
    ]
    # latest.html stays the newest day's digest.
    assert (folder / "latest.html").read_bytes() == (folder / "2026-11-24.html").read_bytes()


def test_the_default_run_catches_up_days_missed_since_the_last_digest(config, busy_day):
    save(busy_day, GP, [post(50, local(2026, 11, 22, 9))], now=local(2026, 11, 22, 9, 5))
    run(config, busy_day, date=date(2026, 11, 21))  # the last digest made (empty)
    outcome = run(config, busy_day)
    assert outcome.day == DAY and outcome.entry_count == 10
    text = (config.settings.output / "digest" / "2026-11-24.txt").read_text()
    assert "Sunday 22 to Tuesday 24 November 2026" in text
    assert "Sun 22 Nov, 09:00" in text


def test_a_date_that_is_not_over_is_refused(config, store):
    with pytest.raises(dg.DigestError, match="once that day is over") as caught:
        run(config, store, date=date(2026, 11, 25))
    assert caught.value.exit_code == 2


# --------------------------------------------------------------------------- real-world corpus


def test_a_day_of_real_world_posts_makes_a_good_digest(tmp_path):
    if not CORPUS.is_dir():
        pytest.skip(f"the real-world corpus is not at {CORPUS}")
    from aggregator.parse import parse_feed
    from aggregator.sanitize import sanitize_entry

    files = sorted(p for p in CORPUS.iterdir() if p.suffix in (".xml", ".json"))
    platforms = {"mastodon": "mastodon", "bluesky": "bluesky", "youtube": "youtube"}
    sources = tuple(
        Source(
            slug=p.stem,
            name=p.stem.replace("_", " ").title(),
            feeds=(feed_spec(p.stem, platforms.get(p.stem.split("_")[0], "blog")),),
        )
        for p in files
    )
    config = make_config(tmp_path, sources=sources, per_source=3)
    with Store.open(config.settings.database) as store:
        store.sync_feeds(config.feeds())
        for path, source in zip(files, sources, strict=True):
            url = source.feeds[0].url
            parsed = parse_feed(path.read_bytes(), url=url, now=MORNING)
            # The corpus is from many dates: replay its posts as if made on DAY.
            entries = tuple(
                replace(
                    sanitize_entry(e, url),
                    published=local(2026, 11, 24, 6) + timedelta(minutes=7 * i),
                )
                for i, e in enumerate(parsed.entries[:6])
            )
            save(
                store, source, replace(parsed, entries=entries).entries, now=local(2026, 11, 24, 21)
            )
        outcome = run(config, store)
    assert outcome.status == "written"
    assert outcome.source_count == len(files)
    folder = config.settings.output / "digest"
    html = (folder / "2026-11-24.html").read_text()
    text = (folder / "2026-11-24.txt").read_text()
    assert email_html_problems(html) == []
    for line in text.splitlines():
        assert len(line) <= 72 or line.strip().startswith("http"), line
    assert "<" not in re.sub(r"<https?://[^>]+>", "", text)
    assert all(
        i.headline
        for g in digest_for(config, Store.open(config.settings.database)).groups
        for i in g.items
    )


# --------------------------------------------------------------------------- screenshot


CHROMIUM = Path("/usr/bin/chromium")


@pytest.mark.browser
def test_screenshot_of_the_digest_in_chromium(tmp_path, busy_day):
    if not CHROMIUM.exists():
        if os.environ.get("AGGREGATOR_REQUIRE_BROWSER") == "1":
            pytest.fail(f"AGGREGATOR_REQUIRE_BROWSER=1 but {CHROMIUM} is missing")
        pytest.skip(f"{CHROMIUM} is missing")
    from playwright.sync_api import sync_playwright

    config = make_config(tmp_path, unsubscribe="https://campaign.example/unsubscribe")
    save(
        busy_day,
        GP,
        [
            post(
                60,
                local(2026, 11, 24, 18, 45),
                title="x",
                title_derived=True,
                content="<p>Evening surgery ran 40 minutes late again. It's not the staff — "
                "it's the rota. Write to your MP: the link is in my bio. 🩺</p>",
            )
        ],
        now=local(2026, 11, 24, 18, 50),
    )
    run(config, busy_day)
    page_file = config.settings.output / "digest" / "2026-11-24.html"
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
            ],
        )
        try:
            page = browser.new_page(viewport={"width": 720, "height": 900})
            requests: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            page.goto(page_file.as_uri())
            container = page.locator("table.container")
            assert container.bounding_box()["width"] <= 600
            target = ROOT / "test-artifacts" / "digest.png"
            target.parent.mkdir(exist_ok=True)
            page.screenshot(path=str(target), full_page=True)
            dark = browser.new_page(viewport={"width": 720, "height": 900}, color_scheme="dark")
            dark.goto(page_file.as_uri())
            background = dark.evaluate("getComputedStyle(document.body).backgroundColor")
            assert background == "rgb(15, 20, 24)"
            dark.screenshot(path=str(tmp_path / "dark.png"), full_page=True)
            narrow = browser.new_page(viewport={"width": 360, "height": 800})
            narrow.goto(page_file.as_uri())
            scroll = narrow.evaluate("document.documentElement.scrollWidth")
            assert scroll <= 360  # no sideways scrolling on a phone
        finally:
            browser.close()
    assert requests == [page_file.as_uri()]  # nothing loaded from anywhere else
