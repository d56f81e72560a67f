from dataclasses import replace

import pytest

from aggregator.dedupe import canonical_url, content_hash, entry_id, identity_key
from aggregator.models import ParsedEntry


def entry(**kw) -> ParsedEntry:
    base = dict(
        guid="g1",
        link="https://example.org/post",
        title="A post",
        title_derived=False,
        summary="Summary",
        content="<p>Body</p>",
    )
    base.update(kw)
    return ParsedEntry(**base)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("HTTPS://Example.ORG/a", "https://example.org/a"),
        ("https://example.org:443/a", "https://example.org/a"),
        ("http://example.org:80/a", "http://example.org/a"),
        ("http://example.org:8080/a", "http://example.org:8080/a"),
        ("https://example.org/a#comments", "https://example.org/a"),
        ("https://example.org/a?utm_source=x&utm_medium=y", "https://example.org/a"),
        ("https://example.org/a?id=3&fbclid=abc&gclid=1", "https://example.org/a?id=3"),
        ("https://example.org/a?mc_cid=1&mc_eid=2&ref=tw&ref_src=x", "https://example.org/a"),
        ("https://example.org", "https://example.org/"),
        ("https://example.org/a?b=2&a=1", "https://example.org/a?b=2&a=1"),
        ("not a url", "not a url"),
        ("https://[::1]:8443/x", "https://[::1]:8443/x"),
    ],
)
def test_canonical_url(url, expected):
    assert canonical_url(url) == expected


def test_identity_prefers_guid_then_link_then_text():
    assert identity_key(entry()) == "guid:g1"
    assert identity_key(entry(guid=None)) == "link:https://example.org/post"
    assert identity_key(entry(guid="  ")) == "link:https://example.org/post"
    no_id = identity_key(entry(guid=None, link=None))
    assert no_id.startswith("hash:")
    assert no_id == identity_key(entry(guid=None, link=None))
    assert no_id != identity_key(entry(guid=None, link=None, content="<p>Other</p>"))


def test_link_identity_ignores_tracking_parameters():
    a = entry(guid=None, link="https://example.org/post?utm_source=mastodon")
    assert identity_key(a) == identity_key(entry(guid=None))


def test_content_hash_changes_with_content_but_not_tag_order_or_updated_date():
    e = entry(tags=("nhs", "nurses"))
    assert content_hash(e) == content_hash(replace(e, tags=("nurses", "nhs")))
    assert content_hash(e) != content_hash(replace(e, content="<p>Edited</p>"))
    assert content_hash(e) != content_hash(replace(e, title="New title"))


def test_entry_id_is_stable_and_differs_between_feeds():
    assert entry_id("feed-a", "guid:1") == entry_id("feed-a", "guid:1")
    assert entry_id("feed-a", "guid:1") != entry_id("feed-b", "guid:1")
