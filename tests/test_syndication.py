"""syndication.py: feed documents from values, and our feeds read back by our own parser."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import pytest
from sitebuilder import BASE_URL, NOW, open_filled

from aggregator.parse import parse_feed
from aggregator.render import build
from aggregator.syndication import (
    FeedInfo,
    FeedItem,
    MediaItem,
    OpmlFeed,
    OpmlGroup,
    atom,
    json_feed,
    opml,
    rss,
    valid_language,
)

ATOM = "{http://www.w3.org/2005/Atom}"
WHEN = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
INFO = FeedInfo(
    id="https://campaign.example/feed.atom",
    title="NHS campaigners",
    self_url="https://campaign.example/feed.atom",
    home_url="https://campaign.example/",
    language="en-GB",
)


def item(n: int, **kw) -> FeedItem:
    base = dict(
        id=f"urn:uuid:00000000-0000-4000-8000-00000000000{n}",
        title=f"Post {n} <not a tag> & more",
        content_html=f"<p>Body {n} <a href='https://x.example/'>link</a></p>",
        published=WHEN,
        updated=WHEN,
        author_name="Siân Evans",
        url=f"https://x.example/{n}",
    )
    base.update(kw)
    return FeedItem(**base)


def test_atom_escapes_text_and_html_and_keeps_order():
    doc = atom(INFO, [item(2), item(1)])
    root = ET.fromstring(doc.encode())
    entries = root.findall(f"{ATOM}entry")
    assert [e.findtext(f"{ATOM}title") for e in entries] == [
        "Post 2 <not a tag> & more",
        "Post 1 <not a tag> & more",
    ]
    assert entries[0].findtext(f"{ATOM}content").startswith("<p>Body 2")
    assert entries[0].find(f"{ATOM}author/{ATOM}name").text == "Siân Evans"


def test_feed_updated_comes_from_entries_not_the_clock():
    later = datetime(2026, 11, 1, tzinfo=UTC)
    doc = atom(INFO, [item(1, updated=later)])
    assert "<updated>2026-11-01T00:00:00Z</updated>" in doc
    assert atom(INFO, [item(1, updated=later)]) == doc


def test_characters_xml_forbids_are_dropped():
    doc = rss(INFO, [item(1, title="bad\x00\x0btitle")])
    ET.fromstring(doc.encode())
    assert "badtitle" in doc


def test_rss_has_self_link_creator_guid_and_one_enclosure():
    media = (
        MediaItem("https://x.example/a.jpg", "image/jpeg", width=10, height=10),
        MediaItem("https://x.example/a.mp4", "video/mp4", length=99),
    )
    root = ET.fromstring(rss(INFO, [item(1, media=media, tags=("pay",))]).encode())
    channel = root.find("channel")
    assert channel.find(f"{ATOM}link").get("rel") == "self"
    element = channel.find("item")
    assert element.findtext("{http://purl.org/dc/elements/1.1/}creator") == "Siân Evans"
    assert element.find("guid").get("isPermaLink") == "false"
    [enclosure] = element.findall("enclosure")
    assert (enclosure.get("url"), enclosure.get("length")) == ("https://x.example/a.mp4", "99")
    assert element.findtext("category") == "pay"


def test_json_feed_has_required_fields_and_attachments_with_types():
    media = (MediaItem("https://x.example/a.jpg", "image/jpeg"), MediaItem("https://x/b", None))
    data = json.loads(json_feed(INFO, [item(1, media=media, language="cy")]))
    assert data["version"] == "https://jsonfeed.org/version/1.1"
    [entry] = data["items"]
    assert entry["image"] == "https://x.example/a.jpg"
    assert entry["attachments"] == [{"url": "https://x.example/a.jpg", "mime_type": "image/jpeg"}]
    assert entry["language"] == "cy"
    assert entry["authors"] == [{"name": "Siân Evans"}]


@pytest.mark.parametrize(
    "tag, expected",
    [("en", "en"), ("en-GB", "en-GB"), ("en_US", "en-US"), ("cy", "cy"), ("English", None),
     ("", None), (None, None), ("e", None), ('en" onload="x', None)],
)  # fmt: skip
def test_only_well_formed_language_tags_are_published(tag, expected):
    assert valid_language(tag) == expected


def test_opml_groups_feeds_by_campaigner_with_attributes():
    doc = opml(
        "Feeds",
        [
            OpmlGroup("Siân", (OpmlFeed("Siân (Mastodon)", "https://m.example/@s.rss", "https://m.example/@s"),)),
            OpmlGroup("No feeds", ()),
        ],
    )  # fmt: skip
    root = ET.fromstring(doc.encode())
    assert root.get("version") == "2.0"
    [group] = root.find("body")
    assert group.get("text") == "Siân" and group.text is None or not group.text.strip()
    [feed] = group
    assert feed.attrib == {
        "type": "rss",
        "text": "Siân (Mastodon)",
        "title": "Siân (Mastodon)",
        "xmlUrl": "https://m.example/@s.rss",
        "htmlUrl": "https://m.example/@s",
    }


# --------------------------------------------------------------------------- round trip


@pytest.fixture
def site(tmp_path):
    config, store = open_filled(tmp_path)
    build(config, store, now=NOW)
    yield config, store
    store.close()


@pytest.mark.parametrize("name", ["feed.atom", "feed.rss", "feed.json"])
def test_our_feeds_read_back_as_the_same_entries(site, name):
    config, store = site
    stored = store.entries(limit=config.settings.feed_length)
    body = (config.settings.output / name).read_bytes()
    parsed = parse_feed(body, url=BASE_URL + name, now=NOW)
    assert [e.guid for e in parsed.entries] == [f"urn:uuid:{e.id}" for e in stored]
    assert [e.title for e in parsed.entries] == [e.title for e in stored]
    assert [e.link for e in parsed.entries] == [e.link for e in stored]
    assert [e.published for e in parsed.entries] == [e.published for e in stored]
    authors = {e.author for e in parsed.entries}
    assert "Siân Evans" in authors and "Dr Sam Okafor" in authors
    welsh = next(e for e in parsed.entries if e.title == "Amseroedd aros yng Nghymru")
    assert welsh.language == "cy"


def test_the_three_formats_hold_the_same_entries_in_the_same_order(site):
    config, _ = site
    out = config.settings.output
    ids = []
    for name in ("feed.atom", "feed.rss", "feed.json"):
        parsed = parse_feed((out / name).read_bytes(), url=BASE_URL + name, now=NOW)
        ids.append([(e.guid, e.title, e.link) for e in parsed.entries])
    assert ids[0] == ids[1] == ids[2]
    assert len(ids[0]) == 16


def test_media_and_tags_survive_the_round_trip(site):
    config, _ = site
    body = (config.settings.output / "sources" / "sam" / "feed.atom").read_bytes()
    parsed = parse_feed(body, url=BASE_URL + "sources/sam/feed.atom", now=NOW)
    video = next(e for e in parsed.entries if "10-minute" in e.title)
    assert "https://youtube.example/video/abc123.mp4" in {m.url for m in video.media}
    assert "gps" in {t.casefold() for t in video.tags}
