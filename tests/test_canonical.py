"""URL canonicalisation (issue 7): what we publish, and what compares equal."""

import pytest

from aggregator.canonical import canonical_url, is_bridged, link_key

# (as found in a feed or a post, what we store and publish)
PUBLISHED = [
    # case, default ports, fragments
    ("HTTPS://Example.ORG/Path", "https://example.org/Path"),
    ("https://example.org:443/a", "https://example.org/a"),
    ("http://example.org:80/a", "http://example.org/a"),
    ("http://example.org:8080/a", "http://example.org:8080/a"),
    ("https://example.org/a#comments", "https://example.org/a"),
    ("https://example.org", "https://example.org/"),
    ("https://example.org./a", "https://example.org/a"),
    ("https://[::1]:8443/x", "https://[::1]:8443/x"),
    # tracking parameters go, others stay in their order
    ("https://example.org/a?utm_source=x&utm_medium=y&utm_campaign=z", "https://example.org/a"),
    ("https://example.org/a?id=3&fbclid=abc&gclid=1", "https://example.org/a?id=3"),
    ("https://example.org/a?mc_cid=1&mc_eid=2", "https://example.org/a"),
    ("https://example.org/a?ref=tw&ref_src=twsrc", "https://example.org/a"),
    ("https://example.org/a?UTM_Source=x&p=1", "https://example.org/a?p=1"),
    ("https://example.org/a?b=2&a=1", "https://example.org/a?b=2&a=1"),
    ("https://user:secret@example.org/a", "https://example.org/a"),
    # AMP versions -> the ordinary page
    ("https://example.org/2026/11/story/amp/", "https://example.org/2026/11/story/"),
    ("https://example.org/2026/11/story/amp", "https://example.org/2026/11/story"),
    ("https://example.org/news/story.amp.html", "https://example.org/news/story.html"),
    ("https://example.org/story?amp=1", "https://example.org/story"),
    ("https://example.org/story?outputType=amp&id=4", "https://example.org/story?id=4"),
    ("https://amp.example.org/story", "https://example.org/story"),
    ("https://www.google.com/amp/s/example.org/story/", "https://example.org/story/"),
    ("https://example-org.cdn.ampproject.org/c/s/example.org/story", "https://example.org/story"),
    # a page merely about AMP is not an AMP page
    ("https://example.org/amplifier", "https://example.org/amplifier"),
    ("https://example.org/story?amp=no", "https://example.org/story?amp=no"),
    # mobile hosts -> the ordinary site
    ("https://m.example.org/story", "https://example.org/story"),
    ("https://mobile.example.org/story", "https://example.org/story"),
    ("https://en.m.wikipedia.org/wiki/NHS", "https://en.wikipedia.org/wiki/NHS"),
    ("https://m.org/story", "https://m.org/story"),  # a two-label host is the site itself
    # Bridgy Fed's redirect to the original post
    (
        "https://bsky.brid.gy/r/https://bsky.app/profile/sam.example/post/3k1",
        "https://bsky.app/profile/sam.example/post/3k1",
    ),
    # not a web URL: left alone
    ("not a url", "not a url"),
    ("mailto:someone@example.org", "mailto:someone@example.org"),
    ("  https://example.org/a  ", "https://example.org/a"),
]


@pytest.mark.parametrize(("url", "expected"), PUBLISHED)
def test_canonical_url_is_the_published_form(url, expected):
    assert canonical_url(url) == expected


@pytest.mark.parametrize(("url", "_"), PUBLISHED)
def test_canonical_url_is_idempotent(url, _):
    once = canonical_url(url)
    assert canonical_url(once) == once


# Pairs that are the same page for dedupe, cross-posts and shared links.
SAME_PAGE = [
    ("http://example.org/a", "https://example.org/a"),
    ("https://www.example.org/a", "https://example.org/a"),
    ("https://example.org/a/", "https://example.org/a"),
    ("https://example.org/a?x=1&y=2", "https://example.org/a?y=2&x=1"),
    ("https://m.example.org/a/?utm_source=mastodon", "http://www.example.org/a"),
    ("https://example.org/story/amp/", "https://example.org/story"),
    ("https://Example.org/a#top", "https://example.org/a"),
]


@pytest.mark.parametrize(("a", "b"), SAME_PAGE)
def test_links_to_the_same_page_have_the_same_key(a, b):
    assert link_key(a) == link_key(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("https://example.org/a", "https://example.org/b"),
        ("https://example.org/a?id=1", "https://example.org/a?id=2"),
        ("https://example.org/a", "https://example.org:8443/a"),
        ("https://example.org/", "https://example.net/"),
        ("https://one.example.org/a", "https://example.org/a"),
    ],
)
def test_links_to_different_pages_have_different_keys(a, b):
    assert link_key(a) != link_key(b)


def test_the_root_keeps_its_slash_in_the_key():
    assert link_key("http://example.org") == "https://example.org/"


@pytest.mark.parametrize(
    ("url", "bridged"),
    [
        ("https://bsky.app/profile/nurse.mastodon.example.ap.brid.gy/post/3k1", True),
        ("https://bsky.brid.gy/@sam.bsky.social", True),
        ("https://fed.brid.gy/r/https://example.org/a", True),
        ("https://bsky.app/profile/sam.bsky.social/post/3k1", False),
        ("https://mastodon.example/@nurse/1", False),
        ("https://brid.gy.example.org/a", False),
        (None, False),
    ],
)
def test_bridged_copies_are_recognised(url, bridged):
    assert is_bridged(url) is bridged


def test_an_older_store_gets_its_links_recanonicalised(tmp_path):
    """m004: link identities stored under the old rules still match the next fetch."""
    from datetime import UTC, datetime

    from aggregator.models import FeedSpec, ParsedEntry, ParsedFeed, Validators
    from aggregator.store import Store

    now = datetime(2026, 11, 24, 9, tzinfo=UTC)
    feed = FeedSpec("https://blog.example/feed", "https://blog.example/feed", "url", "blog", "b")
    item = ParsedEntry(
        guid=None,
        link="http://www.blog.example/post/amp/?utm_source=rss",
        title="A post",
        title_derived=False,
        summary="",
        content="<p>Text</p>",
        published=now,
    )

    def save(store):
        parsed = ParsedFeed("rss20", "Blog", None, None, (item,))
        return store.save_fetched(
            feed.key, parsed, validators=Validators(), body_hash="x", now=now, next_poll=now
        )

    path = tmp_path / "old.sqlite"
    with Store.open(path) as store:
        store.sync_feeds([feed])
        save(store)
        # As the store was before m004: the old identity and canonical link, no identity_by.
        store.db.execute(
            "update entries set identity = ?, canonical_link = ?",
            ["link:http://www.blog.example/post/amp/", "http://www.blog.example/post/amp/"],
        )
        store.db.table("feeds").transform(drop={"identity_by"})
        store.db.execute("delete from _sqlite_migrations where name = 'm004_canonical_links'")
        store.db.conn.commit()
    with Store.open(path) as store:
        row = next(iter(store.db.table("entries").rows))
        assert row["identity"] == "link:https://blog.example/post"
        assert row["canonical_link"] == "http://www.blog.example/post/"
        counts = save(store)
        assert (counts.new, counts.updated) == (0, 0)
        assert store.entry_count() == 1
