"""parse.py: bytes in, ParsedFeed out, for every shape of feed the campaign follows."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aggregator.errors import ParseError
from aggregator.models import Media, ParsedFeed
from aggregator.parse import derive_title, discover_feed_links, parse_feed
from aggregator.sanitize import sanitize_entry

FEEDS = Path(__file__).parent / "data" / "feeds"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
SERVED_AT = "http://127.0.0.1:8123/"


def parse_sample(name: str, content_type: str | None = None) -> ParsedFeed:
    return parse_feed(
        (FEEDS / name).read_bytes(), url=SERVED_AT + name, content_type=content_type, now=NOW
    )


def parse_bytes(body: bytes | str, **kwargs: object) -> ParsedFeed:
    if isinstance(body, str):
        body = body.encode()
    options: dict[str, object] = {"url": "https://feeds.example.org/feed", "now": NOW}
    options.update(kwargs)
    return parse_feed(body, **options)  # type: ignore[arg-type]


def rss(items: str, channel_extra: str = "") -> str:
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
        f"<link>https://blog.example.org/</link>{channel_extra}{items}</channel></rss>"
    )


def test_every_sample_feed_parses_without_warnings() -> None:
    expected = {
        "campaign-blog.rss": ("rss20", 6),
        "health-policy.atom": ("atom10", 5),
        "nurse-mastodon.rss": ("rss20", 6),
        "gp-bluesky.rss": ("rss20", 5),
        "nurse-bluesky.rss": ("rss20", 2),
        "doctors-union.json": ("json11", 4),
        "youtube-channel.xml": ("atom10", 3),
    }
    for name, (format, count) in expected.items():
        parsed = parse_sample(name)
        assert (parsed.format, len(parsed.entries)) == (format, count), name
        assert parsed.warnings == (), name
        for entry in parsed.entries:
            assert entry.title and entry.title != "Untitled"
            assert entry.link and entry.link.startswith("https://")
            assert entry.published is not None and entry.published.tzinfo is UTC
            assert entry.published <= NOW


def test_entries_come_newest_first() -> None:
    for name in ("campaign-blog.rss", "health-policy.atom", "doctors-union.json"):
        dates = [e.published for e in parse_sample(name).entries if e.published]
        assert dates == sorted(dates, reverse=True), name


def test_wordpress_blog() -> None:
    parsed = parse_sample("campaign-blog.rss", "application/rss+xml; charset=UTF-8")
    assert parsed.title == "Riverside Patients' Voice"
    assert parsed.link == "https://riverside-patients.example.org"
    assert parsed.language == "en-GB"
    first = parsed.entries[0]
    assert first.guid == "https://riverside-patients.example.org/?p=106"
    assert first.link == "https://riverside-patients.example.org/2026/11/24/4000-signatures/"
    assert first.title == "Thank you: 4,000 signatures for the Riverside walk-in centre"
    assert not first.title_derived
    assert first.author == "Priya Exampleton"
    assert first.published == datetime(2026, 11, 24, 18, 5, 12, tzinfo=UTC)
    assert first.tags == ("petitions", "walk-in centre")
    assert first.media == (
        Media(
            url="https://riverside-patients.example.org/wp-content/uploads/2026/11/market-stall.jpg",
            type="image/jpeg",
            length=184320,
        ),
    )
    assert first.summary.startswith("Our petition to keep the Riverside walk-in centre open")
    assert "<strong>4,000 signatures</strong>" in first.content  # raw, not yet sanitised


def test_html_in_an_rss_title_becomes_plain_text() -> None:
    titles = [e.title for e in parse_sample("campaign-blog.rss").entries]
    assert "Why we are asking about the maternity unit again" in titles


def test_hostile_sample_is_raw_after_parse_and_clean_after_sanitize() -> None:
    entry = next(e for e in parse_sample("campaign-blog.rss").entries if "Volunteer" in e.title)
    assert "<script>" in entry.content
    safe = sanitize_entry(entry, entry.link)
    for bad in ("<script", "onerror", "javascript:", "<iframe", "<form", "style=", "onclick"):
        assert bad not in safe.content
    assert "Training is at the library" in safe.content


def test_atom_feed() -> None:
    parsed = parse_sample("health-policy.atom")
    assert parsed.title == "Health Policy Watch (example)"
    assert parsed.link == "https://policy-watch.example.org/"
    assert parsed.language == "en-GB"
    by_id = {e.guid: e for e in parsed.entries}
    briefing = by_id["tag:policy-watch.example.org,2026:briefing-45"]
    assert briefing.title == "Waiting lists: what the autumn figures do and do not say"
    assert briefing.link == "https://policy-watch.example.org/briefings/autumn-waiting-lists"
    assert briefing.author == "Dr Morgan Placeholder"
    assert briefing.updated == datetime(2026, 11, 24, 17, 30, tzinfo=UTC)
    assert briefing.summary == "A short guide to the autumn waiting-list figures for campaigners."
    assert briefing.tags == ("waiting-lists", "data")
    # Feed-level author stands in for entries without one (Atom 1.0, section 4.2.1).
    explainer = by_id["tag:policy-watch.example.org,2026:explainer-12"]
    assert explainer.author == "Health Policy Watch (example)"
    assert explainer.published == datetime(2026, 11, 21, 8, 15, tzinfo=UTC)  # from +01:00
    assert "<h1>Who decides?</h1>" in explainer.content
    # Only <updated>: it stands in for the publication date.
    consultation = by_id["tag:policy-watch.example.org,2026:consultation-7"]
    assert consultation.published == datetime(2026, 11, 18, 12, 0, tzinfo=UTC)
    assert "<br>" in consultation.content  # text content escaped into HTML


def test_welsh_entry_keeps_its_language() -> None:
    entries = parse_sample("health-policy.atom").entries
    welsh = next(e for e in entries if e.guid and e.guid.endswith("-cy"))
    assert welsh.language == "cy"
    assert welsh.title == "Briff: cyllid gofal cymdeithasol yng Nghymru"
    assert {e.language for e in entries if e is not welsh} == {"en-GB"}


def test_mastodon_posts_get_titles_from_their_text() -> None:
    parsed = parse_sample("nurse-mastodon.rss")
    assert parsed.title == "Nurse Alex Example"
    titles = [e.title for e in parsed.entries]
    assert titles == [
        "Night shift done. Twelve patients, two of us on the ward.",
        "Our banner for Saturday's rally is finished!",
        "Photo by Nurse Alex Example",
        "Thirty seconds on why we are asking the (fictional) trust board for a…",
        "@riverside_voice thank you for the petition link!",
        "Hello Mastodon! I am a (fictional) ward nurse and I post about staffing, pay…",
    ]
    assert all(e.title_derived for e in parsed.entries)
    assert all(len(t) <= 80 for t in titles)


def test_mastodon_alt_text_does_not_replace_the_post() -> None:
    banner = parse_sample("nurse-mastodon.rss").entries[1]
    assert banner.content.startswith("<p>Our banner")
    assert "hand-painted" not in banner.summary


def test_mastodon_media_and_tags() -> None:
    entries = parse_sample("nurse-mastodon.rss").entries
    first = entries[0]
    assert first.guid == first.link == "https://mastodon.example/@nurse_alex/113500000000000006"
    assert first.tags == ("safestaffing", "nhs")
    assert first.author is None
    video = entries[3]
    assert video.media == (
        Media(
            url="https://files.mastodon.example/media_attachments/files/113/500/000/000/003/original/ratio.mp4",
            type="video/mp4",
            length=4194304,
        ),
    )
    assert video.tags == ("nurses", "safestaffing")


def test_bluesky_posts() -> None:
    parsed = parse_sample("gp-bluesky.rss")
    first = parsed.entries[0]
    assert first.guid == ("at://did:plc:exampleexampleexample01/app.bsky.feed.post/3mexample00005")
    assert first.link == "https://bsky.example/profile/drsam.example.com/post/3mexample00005"
    assert first.title == "Monday morning: 212 calls to the practice before 8:15."
    assert first.title_derived
    assert first.published == datetime(2026, 11, 24, 8, 41, tzinfo=UTC)
    assert "<br>" in first.content  # Bluesky's newlines survive as line breaks
    titles = [e.title for e in parsed.entries]
    assert "This thread on the new (fictional) GP contract is worth your time" in titles
    assert "Quote post by Dr Sam Example GP" in titles


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("14 Jan 2026 16:33 +0000", datetime(2026, 1, 14, 16, 33, tzinfo=UTC)),
        ("Wed, 14 Jan 2026 16:33:10 +0000", datetime(2026, 1, 14, 16, 33, 10, tzinfo=UTC)),
        ("Wed, 14 Jan 2026 17:33:10 +0100", datetime(2026, 1, 14, 16, 33, 10, tzinfo=UTC)),
        ("Wed, 14 Jan 2026 16:33:10 GMT", datetime(2026, 1, 14, 16, 33, 10, tzinfo=UTC)),
        ("2026-01-14T16:33:00Z", datetime(2026, 1, 14, 16, 33, tzinfo=UTC)),
        ("2026-01-14T11:33:00-05:00", datetime(2026, 1, 14, 16, 33, tzinfo=UTC)),
        ("2026-01-14", datetime(2026, 1, 14, tzinfo=UTC)),
        ("1970-01-01T00:00:00Z", None),
        ("not a date", None),
        ("", None),
        ("Fri, 01 Jan 2100 00:00:00 +0000", NOW),  # far future: clamped to now
    ],
)
def test_rss_dates(raw: str, expected: datetime | None) -> None:
    item = f"<item><title>x</title><link>https://a.example/1</link><pubDate>{raw}</pubDate></item>"
    (entry,) = parse_bytes(rss(item)).entries
    assert entry.published == expected


def test_a_date_just_ahead_of_now_is_kept() -> None:
    soon = NOW + timedelta(hours=3)
    item = (
        "<item><title>x</title><link>https://a.example/1</link>"
        f"<pubDate>{soon.strftime('%a, %d %b %Y %H:%M:%S +0000')}</pubDate></item>"
    )
    (entry,) = parse_bytes(rss(item)).entries
    assert entry.published == soon


def test_youtube_channel() -> None:
    parsed = parse_sample("youtube-channel.xml")
    assert parsed.title == "Save Our Hospital TV"
    video = parsed.entries[0]
    assert video.guid == "yt:video:exAmple0003"
    assert video.title == "Rally at the town hall: highlights (sample video)"
    assert video.link == "https://www.youtube.example/watch?v=exAmple0003"
    assert video.author == "Save Our Hospital TV"
    assert video.published == datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    assert video.updated == datetime(2026, 11, 24, 15, 20, 11, tzinfo=UTC)
    assert video.summary.startswith("Highlights from Saturday's fictional rally.")
    assert video.media == (
        Media(
            url="https://i1.ytimg.example/vi/exAmple0003/hqdefault.jpg",
            type="image/jpeg",
            width=480,
            height=360,
        ),
        Media(
            url="https://www.youtube.example/watch?v=exAmple0003",
            type="text/html",
            title="Rally at the town hall: highlights (sample video)",
        ),
    )
    assert parsed.entries[2].title == "Why our A&E matters: three patients' stories"


def test_json_feed() -> None:
    parsed = parse_sample("doctors-union.json", "application/feed+json")
    assert parsed.title == "Junior Doctors Union (example)"
    assert parsed.link == "https://juniordoctors.example.org/"
    assert parsed.language == "en-GB"
    ballot, survey, podcast, hostile = parsed.entries
    assert ballot.author == "Dr Jordan Sample"
    assert ballot.tags == ("ballot", "rota", "juniordoctors")
    assert ballot.published == datetime(2026, 11, 24, 20, 0, tzinfo=UTC)
    assert ballot.updated == datetime(2026, 11, 24, 21, 15, tzinfo=UTC)
    assert ballot.summary == "Members voted 78% in favour of the rota deal."
    assert ballot.media == (
        Media(url="https://juniordoctors.example.org/images/ballot.png", type="image/png"),
    )
    assert survey.author == "Junior Doctors Union (example)"  # feed-level author
    assert survey.content.startswith("Our (fictional) survey")  # content_text, escaped
    assert "<br>" in survey.content
    assert survey.media[0].title == "Rest facilities survey 2026"
    assert survey.media[0].length == 482113
    # Wrong types: a number id, tags as a string, a size as a string, a bare string attachment.
    assert podcast.guid == "3"
    assert podcast.tags == ()
    assert podcast.author == "Podcast team"  # JSON Feed 1.0 `author`
    assert podcast.media == (
        Media(
            url="https://juniordoctors.example.org/podcast/episode-12.mp3",
            type="audio/mpeg",
            length=38111222,
        ),
    )
    assert hostile.title == "Sample item with hostile markup <script>alert(1)</script>"
    assert "onmouseover" not in sanitize_entry(hostile, hostile.link).content


def test_json_feed_is_detected_without_a_content_type() -> None:
    body = json.dumps(
        {
            "version": "https://jsonfeed.org/version/1",
            "title": "T",
            "items": [{"id": "1", "content_text": "Hello from JSON Feed one point oh."}],
        }
    )
    parsed = parse_bytes(body)
    assert parsed.format == "json1"
    assert parsed.entries[0].title == "Hello from JSON Feed one point oh."
    assert parsed.entries[0].title_derived


@pytest.mark.parametrize(
    "item",
    [
        {"id": None, "title": 5, "url": ["x"], "date_published": 12},
        {"id": {"x": 1}, "authors": "me", "attachments": {"url": "x"}, "image": 3},
        {"content_html": None, "content_text": 7, "tags": [1, None, "ok"]},
        {"title": "ok", "date_published": "2026-13-45T99:00:00Z", "language": ["en"]},
    ],
)
def test_json_feed_survives_wrong_types(item: dict[str, object]) -> None:
    body = json.dumps({"version": "https://jsonfeed.org/version/1.1", "items": [item, "junk"]})
    parsed = parse_bytes(body)
    (entry,) = parsed.entries
    assert entry.title
    assert any("not objects" in w for w in parsed.warnings)


def test_json_that_is_not_a_json_feed_is_not_a_feed() -> None:
    with pytest.raises(ParseError) as info:
        parse_bytes('{"hello": "world"}', content_type="application/json")
    assert info.value.info.kind == "not_a_feed"


def test_broken_json_is_a_parse_error() -> None:
    with pytest.raises(ParseError) as info:
        parse_bytes('{"version": "https://jsonfeed.org/version/1.1", "items": [', content_type=None)
    assert info.value.info.kind == "parse"
    assert isinstance(info.value.__cause__, ValueError)


def test_an_html_page_is_not_a_feed_and_says_use_site() -> None:
    page = (
        b"<!DOCTYPE html><html><head><title>Riverside</title></head><body><p>Hi</p></body></html>"
    )
    with pytest.raises(ParseError) as info:
        parse_bytes(page, content_type="text/html; charset=utf-8")
    assert info.value.info.kind == "not_a_feed"
    assert "site:" in info.value.info.message
    assert "web page" in info.value.info.message


def test_an_html_page_served_as_xml_is_still_not_a_feed() -> None:
    with pytest.raises(ParseError) as info:
        parse_bytes(b"\n<html lang=en><body>Hello</body></html>", content_type="application/xml")
    assert info.value.info.kind == "not_a_feed"


@pytest.mark.parametrize(
    "body",
    [b"", b"   \n", b"\x00\x01\x02garbage\xff\xfe", b"just some words", b"<rss><channel><item>"],
)
def test_garbage_is_a_parse_error_in_plain_words(body: bytes) -> None:
    with pytest.raises(ParseError) as info:
        parse_bytes(body)
    assert info.value.info.kind in ("parse", "not_a_feed")
    assert info.value.url == "https://feeds.example.org/feed"
    assert "Traceback" not in info.value.info.message
    assert info.value.info.message.endswith(".")


def test_empty_body_says_so() -> None:
    with pytest.raises(ParseError, match="empty response"):
        parse_bytes(b"")


def test_broken_xml_with_entries_keeps_them_and_warns() -> None:
    body = rss(
        "<item><title>One &nbsp; two</title><link>https://a.example/1</link></item>"
        "<item><title>Three</title><link>https://a.example/2</link></item>"
    )
    parsed = parse_bytes(body)
    assert [e.title for e in parsed.entries] == ["One two", "Three"]
    assert parsed.warnings and "errors" in parsed.warnings[0]


def test_an_empty_but_valid_feed_has_no_entries() -> None:
    parsed = parse_bytes(rss(""))
    assert parsed.entries == ()
    assert parsed.title == "T"


def test_duplicate_guids_keep_the_first_and_warn() -> None:
    items = "".join(
        f"<item><guid>same</guid><title>{title}</title><link>https://a.example/{n}</link></item>"
        for n, title in enumerate(["First", "Second", "Third"])
    )
    parsed = parse_bytes(rss(items + "<item><guid>other</guid><title>Fourth</title></item>"))
    assert [e.title for e in parsed.entries] == ["First", "Fourth"]
    assert any("repeat an id" in w for w in parsed.warnings)


def test_blank_guid_is_none() -> None:
    (entry,) = parse_bytes(rss("<item><guid>  </guid><title>x</title></item>")).entries
    assert entry.guid is None


def test_max_entries_keeps_the_newest_then_undated_in_document_order() -> None:
    items = [
        "<item><title>undated A</title></item>",
        "<item><title>old</title><pubDate>Mon, 02 Nov 2026 10:00:00 +0000</pubDate></item>",
        "<item><title>undated B</title></item>",
        "<item><title>new</title><pubDate>Tue, 24 Nov 2026 10:00:00 +0000</pubDate></item>",
        "<item><title>middle</title><pubDate>Tue, 10 Nov 2026 10:00:00 +0000</pubDate></item>",
    ]
    parsed = parse_bytes(rss("".join(items)))
    assert [e.title for e in parsed.entries] == ["new", "middle", "old", "undated A", "undated B"]
    limited = parse_bytes(rss("".join(items)), max_entries=2)
    assert [e.title for e in limited.entries] == ["new", "middle"]
    assert any("newest 2 of 5" in w for w in limited.warnings)


def test_relative_links_are_made_absolute_against_the_feed_url() -> None:
    (entry,) = parse_bytes(rss("<item><title>x</title><link>/posts/1</link></item>")).entries
    assert entry.link == "https://feeds.example.org/posts/1"


def test_atom_prefers_the_alternate_link() -> None:
    body = (
        '<feed xmlns="http://www.w3.org/2005/Atom"><title>T</title><entry><title>x</title>'
        '<id>urn:x</id><link rel="edit" href="https://a.example/edit"/>'
        '<link rel="enclosure" href="https://a.example/a.mp3" type="audio/mpeg" length="9"/>'
        '<link rel="alternate" type="text/html" href="https://a.example/post"/>'
        "<updated>2026-11-20T10:00:00Z</updated></entry></feed>"
    )
    (entry,) = parse_bytes(body).entries
    assert entry.link == "https://a.example/post"
    assert entry.media == (Media(url="https://a.example/a.mp3", type="audio/mpeg", length=9),)


def test_control_characters_and_huge_titles_are_cleaned() -> None:
    title = "Bad\x01 title\x00 " + "word " * 200
    body = rss(f"<item><title>{title}</title><link>https://a.example/1</link></item>")
    (entry,) = parse_bytes(body.replace("\x00", "&#0;")).entries
    assert entry.title.startswith("Bad title word")
    assert len(entry.title) <= 300
    assert entry.title.endswith("…")


def test_tags_are_cleaned_deduplicated_and_lower_case() -> None:
    item = (
        "<item><title>x</title><category>#NHS</category><category>nhs</category>"
        "<category>  Safe   Staffing </category><category></category></item>"
    )
    (entry,) = parse_bytes(rss(item)).entries
    assert entry.tags == ("nhs", "safe staffing")


def test_language_falls_back_to_the_feed() -> None:
    body = rss("<item><title>x</title></item>", channel_extra="<language>en-gb</language>")
    (entry,) = parse_bytes(body).entries
    assert entry.language == "en-gb"


def test_textless_posts_get_meaningful_titles() -> None:
    items = (
        "<item><link>https://social.example/@a/1</link>"
        '<enclosure url="https://social.example/v.mp4" type="video/mp4" length="1"/></item>'
        "<item><link>https://social.example/@a/2</link></item>"
    )
    parsed = parse_bytes(rss(items).replace("<title>T</title>", "<title>Alex</title>"))
    assert [e.title for e in parsed.entries] == [
        "Video by Alex",
        "Post by Alex at social.example/@a/2",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Short post", "Short post"),
        ("", ""),
        (
            "Rally on Saturday at the town hall. Bring banners, flasks and friends please!",
            "Rally on Saturday at the town hall. Bring banners, flasks and friends please!",
        ),
        (
            "Rally on Saturday at the town hall. Bring banners, flasks, friends and family, "
            "and tell your neighbours.",
            "Rally on Saturday at the town hall.",
        ),
        ("x" * 200, "x" * 79 + "…"),
        ("[contains quote post or other embedded content]", ""),
    ],
)
def test_derive_title(text: str, expected: str) -> None:
    assert derive_title(text) == expected


def test_derived_titles_fit_the_limit() -> None:
    assert len(derive_title("word " * 100, 40)) <= 40


def test_a_too_short_first_sentence_is_not_the_whole_title() -> None:
    title = derive_title("Hi. " + "word " * 30)
    assert title.startswith("Hi. word word")
    assert title.endswith("word…")
    assert len(title) <= 80


def test_feedparser_is_never_asked_to_fetch() -> None:
    with pytest.raises(ParseError):
        parse_bytes(b"https://evil.example.com/feed.xml")


# --------------------------------------------------------------------------- discovery

PAGE = b"""<!DOCTYPE html>
<html><head>
<link rel="stylesheet" href="/style.css">
<link rel="alternate" type="application/rss+xml" title="Posts" href="/feed/">
<link rel="alternate" type="application/atom+xml" href="https://blog.example.org/atom.xml">
<LINK REL="Alternate" TYPE="application/feed+json" HREF="feed.json">
<link rel="alternate" type="application/json" href="/wp-json/">
<link rel="alternate" type="text/html" hreflang="cy" href="/cy/">
<link rel="alternate" type="application/rss+xml" href="/feed/">
<link rel="alternate" type="application/rss+xml" href="javascript:alert(1)">
<link rel="alternate" type="application/rss+xml">
</head><body>
<a rel="alternate" type="application/rss+xml" href="/not-a-link-element">x</a>
</body></html>"""


def test_discover_feed_links_in_document_order() -> None:
    assert discover_feed_links(PAGE, "https://blog.example.org/news/") == [
        "https://blog.example.org/feed/",
        "https://blog.example.org/atom.xml",
        "https://blog.example.org/news/feed.json",
        "https://blog.example.org/wp-json/",
    ]


def test_discover_feed_links_honours_base_href() -> None:
    page = (
        b'<html><head><base href="https://cdn.example.com/site/">'
        b'<link rel="alternate" type="application/rss+xml" href="rss.xml"></head></html>'
    )
    assert discover_feed_links(page, "https://blog.example.org/") == [
        "https://cdn.example.com/site/rss.xml"
    ]


@pytest.mark.parametrize("body", [b"", b"   ", b"\x00\xff", b"not html at all"])
def test_discover_feed_links_on_nothing_finds_nothing(body: bytes) -> None:
    assert discover_feed_links(body, "https://blog.example.org/") == []


# --------------------------------------------------------------------------- XML attacks (issue 6)

LAUGHS = '<!ENTITY lol0 "lollollollol">' + "".join(
    f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)
)


def with_doctype(doctype: str, title: str) -> str:
    return (
        f'<?xml version="1.0"?>\n{doctype}\n'
        + rss(f"<item><guid>1</guid><title>{title}</title></item>").split("?>", 1)[-1]
    )


def test_external_entities_are_not_resolved(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    doctype = f'<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file://{secret}">]>'
    (entry,) = parse_bytes(with_doctype(doctype, "a &xxe; b")).entries
    assert "TOP-SECRET" not in entry.title
    assert entry.title == "a &xxe; b"  # kept as the literal reference


def test_entity_expansion_bomb_is_not_expanded() -> None:
    (entry,) = parse_bytes(with_doctype(f"<!DOCTYPE rss [{LAUGHS}]>", "&lol9;")).entries
    assert entry.title == "&lol9;"


def test_doctype_with_quoted_brackets_is_removed_whole() -> None:
    doctype = "<!DOCTYPE rss [<!ENTITY a \"]>\"> <!-- ] > --> <!ENTITY b 'x'>]>"
    (entry,) = parse_bytes(with_doctype(doctype, "T &b;")).entries
    assert entry.title == "T &b;"


def test_external_dtd_alone_is_left_for_expat_which_does_not_load_it() -> None:
    doctype = '<!DOCTYPE rss SYSTEM "http://127.0.0.1:9/never.dtd">'
    (entry,) = parse_bytes(with_doctype(doctype, "Plain")).entries
    assert entry.title == "Plain"


def test_unfinished_doctype_is_a_parse_error() -> None:
    with pytest.raises(ParseError) as caught:
        parse_bytes('<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY a "x">')
    assert caught.value.info.kind == "parse"


def test_utf16_feed_declaring_entities_is_refused() -> None:
    body = with_doctype(f"<!DOCTYPE rss [{LAUGHS}]>", "&lol9;").replace(
        '<?xml version="1.0"?>', '<?xml version="1.0" encoding="utf-16"?>'
    )
    with pytest.raises(ParseError) as caught:
        parse_bytes(body.encode("utf-16"))
    assert caught.value.info.kind == "unsafe_xml"
    assert "UTF-8" in caught.value.info.message


def test_feed_with_thousands_of_entries_keeps_the_newest_before_parsing() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    entries = (
        "".join(
            f"<entry><id>urn:e:{i}</id><title>E{i}</title>"
            f"<updated>{(start + timedelta(hours=(i * 7919) % 3000)).isoformat()}</updated></entry>"
            for i in range(3000)
        )
        + "<entry><id>urn:e:undated</id><title>undated</title></entry>"
    )
    body = f'<feed xmlns="http://www.w3.org/2005/Atom"><title>Big</title>{entries}</feed>'
    parsed = parse_bytes(body, max_entries=10)
    hours = sorted(((i * 7919) % 3000, i) for i in range(3000))[-10:]
    assert [e.title for e in parsed.entries] == [f"E{i}" for _, i in reversed(hours)]
    assert any("3001 entries" in w for w in parsed.warnings)


@pytest.mark.parametrize(
    "body",
    [
        # Many comments before the root: an exponential regular expression hangs on these.
        b"<!---->" * 60 + b"<p>not a feed</p>",
        b"<?xml version='1.0'?>" + b"<!-- c -->" * 60 + b"<rss version='2.0'><channel>",
        # An internal subset of many comments or quotes that never ends.
        b'<?xml version="1.0"?><!DOCTYPE rss [' + b"<!-- -->" * 20_000,
        b'<?xml version="1.0"?><!DOCTYPE rss [' + b"<!--" * 20_000,
        b'<?xml version="1.0"?><!DOCTYPE rss [' + b'"a"' * 100_000,
    ],
    ids=["comments before html", "comments before rss", "subset", "open comments", "quotes"],
)
def test_pathological_prologs_are_read_in_linear_time(body: bytes, tmp_path: Path) -> None:
    """Run in a subprocess with a time limit: a regular expression that backtracks
    exponentially holds the GIL, so in-process it would hang the whole suite."""
    import subprocess
    import sys

    sample = tmp_path / "body.xml"
    sample.write_bytes(body)
    code = (
        "import sys; from datetime import UTC, datetime; from pathlib import Path\n"
        "from aggregator.errors import ParseError; from aggregator.parse import parse_feed\n"
        "try:\n"
        f"    parse_feed(Path({str(sample)!r}).read_bytes(), url='https://x.example/',"
        " now=datetime.now(UTC))\n"
        "except ParseError:\n"
        "    pass\n"
    )
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
