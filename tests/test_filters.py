"""Filters and block lists (issue 7): checked at `check`, applied when publishing.

Config errors carry feeds.yaml line:col; each filter kind is proved on entries
shaped as real feeds give them (Mastodon h-card replies, Bluesky post links,
picture-only toots); and a filter edit changes the next build without a refetch.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime
from html import escape
from pathlib import Path

import pytest
import sitebuilder as sb

from aggregator import render
from aggregator.config import load_config
from aggregator.errors import ConfigError
from aggregator.filters import Policy, hashtags, is_boost, is_media_only, is_reply
from aggregator.models import FilterRules, Media, Settings, StoredEntry
from aggregator.parse import parse_feed
from aggregator.sanitize import sanitize_entry

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "realworld"
WHEN = datetime(2026, 11, 24, 12, tzinfo=UTC)


def stored(
    content: str,
    *,
    platform: str = "mastodon",
    feed: str = "https://mastodon.example/@gp.rss",
    link: str | None = "https://mastodon.example/@gp/1",
    title: str | None = None,
    tags: tuple[str, ...] = (),
    media: tuple[Media, ...] = (),
    source: str = "gp",
    id: str = "e1",
) -> StoredEntry:
    """A StoredEntry as the store reads it back; no title means a social post."""
    return StoredEntry(
        id=id,
        feed_key=feed,
        source=source,
        platform=platform,
        guid=link,
        link=link,
        title=title or re.sub(r"<[^>]+>", "", content)[:60] or "Photo by GP",
        title_derived=title is None,
        summary="",
        content=content,
        author=None,
        published=WHEN,
        updated=WHEN,
        first_seen=WHEN,
        language="en",
        media=media,
        tags=tags,
    )


def from_feed(body: bytes, url: str, platform: str) -> list[StoredEntry]:
    """Entries of a real feed body, parsed and sanitised as the pipeline stores them."""
    parsed = parse_feed(body, url=url, now=WHEN)
    out = []
    for n, entry in enumerate(parsed.entries):
        safe = sanitize_entry(entry, url)
        out.append(
            StoredEntry(
                id=f"e{n}",
                feed_key=url,
                source="s",
                platform=platform,
                guid=safe.guid,
                link=safe.link,
                title=safe.title,
                title_derived=safe.title_derived,
                summary=safe.summary,
                content=safe.content,
                author=safe.author,
                published=WHEN,
                updated=WHEN,
                first_seen=WHEN,
                language=safe.language,
                media=safe.media,
                tags=safe.tags,
            )
        )
    return out


def policy_for(rules: FilterRules | None = None, **settings) -> Policy:
    config = sb.make_config(Path("/nonexistent"))
    config = replace(
        config,
        settings=replace(config.settings, filters=rules or FilterRules(), **settings),
        sources=(sb.SOURCES[0],),
    )
    return Policy(config)


# --------------------------------------------------------------------------- feeds.yaml


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "feeds.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    return str(caught.value).replace(f"{tmp_path}/", "").splitlines()


SOURCE = """sources:
  - name: Dr GP
    mastodon: "@gp@mastodon.example"
"""


@pytest.mark.parametrize(
    ("yaml", "expected"),
    [
        (
            "settings:\n  filters:\n    exclude:\n      regex: ['ward (\\d+']\n" + SOURCE,
            "feeds.yaml:4:15: settings: filters: exclude: regex: 'ward (\\d+' is not a valid "
            "regular expression: missing ), unterminated subpattern at character 6",
        ),
        (
            "settings:\n  filters:\n    hide: [replies, boostz]\n" + SOURCE,
            'feeds.yaml:3:21: settings: filters: hide: "boostz" is not something filters can '
            "hide — did you mean 'boosts'?",
        ),
        (
            SOURCE + "    filters:\n      include:\n        hashtags: [NHS, 'two words']\n",
            "feeds.yaml:6:25: source 'Dr GP': filters: include: hashtags: \"two words\" is not "
            "a hashtag",
        ),
        (
            SOURCE + "    filters:\n      inclde:\n        hashtags: [NHS]\n",
            "feeds.yaml:5:7: unknown key 'inclde' in source 'Dr GP': filters — did you mean "
            "'include'?",
        ),
        (
            SOURCE + "    filters:\n      include:\n        hashtag: [NHS]\n",
            "feeds.yaml:6:9: unknown key 'hashtag' in source 'Dr GP': filters: include — did "
            "you mean 'hashtags'?",
        ),
        (
            "settings:\n  blocked_domains: [tabloid.example, 'not a domain']\n" + SOURCE,
            'feeds.yaml:2:38: settings: blocked_domains: "not a domain" is not a website name',
        ),
        (
            "settings:\n  blocked_words: spam\n  filters: [replies]\n" + SOURCE,
            "feeds.yaml:3:12: settings: filters: should be `key: value` lines indented under "
            "it (include:, exclude:, hide:), but it is a list",
        ),
        (
            "pinned:\n  - title: March\n    until: next week\n" + SOURCE,
            'feeds.yaml:3:12: pinned announcement number 1: until: "next week" is not a date; '
            "write the last day to show it as YYYY-MM-DD",
        ),
        (
            "pinned:\n  - title: March\n    link: campaign.example/march\n" + SOURCE,
            "feeds.yaml:2:5: pinned announcement number 1 has no until: add `until:` with the "
            "last day to show it",
        ),
    ],
)
def test_filter_and_pinned_mistakes_are_reported_at_their_line(tmp_path, yaml, expected):
    found = problems(tmp_path, yaml)
    assert any(line.startswith(expected) for line in found), found


def test_a_pinned_link_that_is_not_a_web_address_is_reported(tmp_path):
    found = problems(
        tmp_path, "pinned:\n  - title: March\n    link: campaign.example/march\n" + SOURCE
    )
    expected = "feeds.yaml:3:11: pinned announcement number 1: link:"
    assert any(line.startswith(expected) for line in found), found


def test_valid_filters_are_read_into_rules(tmp_path):
    config = load_config(
        write(
            tmp_path,
            "settings:\n"
            "  blocked_domains: [tabloid.example, 'https://www.spam.example/page']\n"
            "  blocked_words: [crypto, 'get rich']\n"
            "  filters:\n"
            "    exclude:\n"
            "      regex: ['ward \\d+ clos(ed|ure)']\n"
            "    hide: [replies, reposts, media-only]\n"
            "pinned:\n"
            "  - title: March on Saturday\n"
            "    link: https://campaign.example/march\n"
            "    text: Meet at noon.\n"
            "    until: 2026-12-01\n" + SOURCE + "    filters:\n"
            "      include:\n"
            "        hashtags: ['#NHS']\n",
        )
    )
    settings = config.settings
    assert settings.blocked_domains == ("tabloid.example", "spam.example")
    assert settings.blocked_words == ("crypto", "get rich")
    rules = settings.filters
    assert (rules.hide_replies, rules.hide_boosts, rules.hide_media_only) == (True, True, True)
    assert rules.exclude_patterns[0].search("WARD 7 CLOSURE")  # case-insensitive
    assert config.sources[0].filters.include_hashtags == ("NHS",)
    [pinned] = config.pinned
    assert (pinned.title, pinned.until.isoformat(), pinned.text) == (
        "March on Saturday",
        "2026-12-01",
        "Meet at noon.",
    )


def test_the_bundled_feeds_yaml_documents_filters_and_still_passes_check():
    bundled = Path(__file__).resolve().parents[1] / "feeds.yaml"
    text = bundled.read_text(encoding="utf-8")
    for key in ("filters:", "blocked_domains:", "blocked_words:", "pinned:", "hide:"):
        assert key in text
    load_config(bundled)  # raises if the commented examples broke anything


# --------------------------------------------------------------------------- each kind


def toot(n: int, html: str, extra: str = "") -> str:
    """One item of a Mastodon account's RSS, as Mastodon 4 writes it."""
    link = f"https://mastodon.example/@gp/{n}"
    return (
        f'<item><guid isPermaLink="true">{link}</guid><link>{link}</link>'
        f"<pubDate>Tue, 24 Nov 2026 18:0{n}:00 +0000</pubDate>"
        f"<description>{escape(html)}</description>{extra}</item>"
    )


MENTION = (
    '<span class="h-card" translate="no"><a href="https://other.example/@nurse" '
    'class="u-url mention">@<span>nurse</span></a></span>'
)
HASHTAG = (
    '<a href="https://mastodon.example/tags/NHS" class="mention hashtag" rel="tag">'
    "#<span>NHS</span></a>"
)
MASTODON_REPLY = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"><channel>'
    "<title>GP</title><link>https://mastodon.example/@gp</link><description>d</description>"
    + toot(3, f"<p>{MENTION} Agreed, the rota is impossible.</p>")
    + toot(2, f"<p>Surgery open late tonight. Thanks {MENTION}</p>")
    + toot(
        1,
        f"<p>{HASHTAG}</p>",
        '<media:content url="https://files.example/picket.jpg" type="image/jpeg" '
        'medium="image"/><category>NHS</category>',
    )
    + "</channel></rss>"
).encode()


def test_a_mastodon_reply_is_told_by_the_mention_it_starts_with():
    reply, post, picture = from_feed(MASTODON_REPLY, "https://mastodon.example/@gp.rss", "mastodon")
    assert is_reply(reply)
    assert not is_reply(post)  # a mention at the end is not a reply
    assert not is_reply(picture)
    assert policy_for(FilterRules(hide_replies=True)).reason(reply) == (
        "it is a reply (settings: filters)"
    )
    assert policy_for(FilterRules(hide_replies=True)).allows(post)


def test_a_picture_with_only_hashtags_is_media_only_but_a_titled_video_is_not():
    _, post, picture = from_feed(MASTODON_REPLY, "https://mastodon.example/@gp.rss", "mastodon")
    assert is_media_only(picture)
    assert not is_media_only(post)
    video = stored(
        "<p>Ten minutes in a GP surgery.</p>",
        platform="youtube",
        title="What a GP does in a 10-minute appointment",
        media=(Media("https://i.youtube.example/vi/x/hq.jpg", "image/jpeg"),),
    )
    assert not is_media_only(video)
    assert not policy_for(FilterRules(hide_media_only=True)).allows(picture)


@pytest.mark.parametrize(
    ("entry", "boost"),
    [
        # A Mastodon feed carrying someone else's post (another tool's feed of boosts).
        (stored("<p>Read this.</p>", link="https://other.example/@nurse/99"), True),
        (stored("<p>RT @nurse: the rota is impossible</p>"), True),
        (stored("<p>🔁 Reposted from @nurse.example</p>"), True),
        (stored("<p>Our own post.</p>"), False),
        # Bluesky: the post's link names another account than the feed's.
        (
            stored(
                "<p>Worth reading</p>",
                platform="bluesky",
                feed="https://bsky.app/profile/drsam.bsky.social/rss",
                link="https://bsky.app/profile/nurse.bsky.social/post/3k1",
            ),
            True,
        ),
        (
            stored(
                "<p>Our own post</p>",
                platform="bluesky",
                feed="https://bsky.app/profile/drsam.bsky.social/rss",
                link="https://bsky.app/profile/drsam.bsky.social/post/3k1",
            ),
            False,
        ),
        # A did: and a handle cannot be compared offline: not counted as a repost.
        (
            stored(
                "<p>Our own post</p>",
                platform="bluesky",
                feed="https://bsky.app/profile/drsam.bsky.social/rss",
                link="https://bsky.app/profile/did:plc:abcdefghijklmnopqrstuvwx/post/3k1",
            ),
            False,
        ),
        # Blogs never have boosts, whatever they link to.
        (stored("<p>RT @someone</p>", platform="blog", feed="https://b.example/feed"), False),
    ],
)
def test_boosts_and_reposts_are_told_by_marker_or_by_whose_post_it_links(entry, boost):
    assert is_boost(entry) is boost
    assert policy_for(FilterRules(hide_boosts=True)).allows(entry) is not boost


@pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus is not here")
def test_real_account_feeds_are_not_mistaken_for_boosts_or_replies():
    """Mastodon account feeds and Bluesky's profile RSS leave boosts/replies out."""
    checked = 0
    for path in sorted(CORPUS.glob("*.xml")):
        platform = path.name.split("_")[0]
        if platform not in ("mastodon", "bluesky"):
            continue
        parsed = parse_feed(path.read_bytes(), url="https://x.example/", now=WHEN)
        feed_url = parsed.link.rstrip("/") + (".rss" if platform == "mastodon" else "/rss")
        if "/tags/" in feed_url:
            continue  # a hashtag feed belongs to no one
        for entry in from_feed(path.read_bytes(), feed_url, platform):
            assert not is_boost(entry), (path.name, entry.link)
            assert not is_reply(entry), (path.name, entry.link)
            checked += 1
    assert checked >= 20


def test_hashtags_come_from_categories_and_from_the_text():
    entry = stored("<p>Save our #SureStart centres</p>", tags=("NHS",))
    assert hashtags(entry) == {"nhs", "surestart"}


def test_include_hashtags_keep_only_a_gps_posts_tagged_nhs():
    rules = FilterRules(include_hashtags=("NHS",))
    keep = policy_for(rules)
    assert keep.allows(stored("<p>Winter pressures again #NHS</p>"))
    assert keep.allows(stored("<p>Winter pressures again</p>", tags=("nhs",)))
    assert keep.reason(stored("<p>My cat is asleep</p>")) == (
        "it matches none of the include: rules (settings: filters)"
    )


def test_include_keywords_and_patterns_match_whole_words_any_case():
    keep = policy_for(FilterRules(include_keywords=("waiting list",)))
    assert keep.allows(stored("<p>The Waiting\n list is 7.6 million</p>"))
    assert not keep.allows(stored("<p>Waiting for the bus</p>"))
    word = policy_for(FilterRules(include_keywords=("NHS",)))
    assert not word.allows(stored("<p>NHSX is gone</p>"))  # not a whole word
    pattern = policy_for(FilterRules(include_patterns=(re.compile(r"ward \d+", re.I),)))
    assert pattern.allows(stored("<p>WARD 12 is closing</p>"))


def test_exclude_rules_say_what_matched():
    rules = FilterRules(
        exclude_keywords=("football",),
        exclude_hashtags=("OffTopic",),
        exclude_patterns=(re.compile(r"\bbet(ting)?\b", re.I),),
    )
    drop = policy_for(rules)
    assert drop.reason(stored("<p>Football tonight!</p>")) == (
        "it contains 'Football' (settings: filters)"
    )
    assert drop.reason(stored("<p>hello #offtopic</p>")) == (
        "it has the hashtag #offtopic (settings: filters)"
    )
    assert "matches the pattern" in (drop.reason(stored("<p>Betting odds</p>")) or "")
    assert drop.allows(stored("<p>Staffing on the wards</p>"))


def test_a_sources_own_filters_apply_to_that_source_only(tmp_path):
    config = sb.make_config(tmp_path)
    gp = replace(config.sources[2], filters=FilterRules(include_hashtags=("NHS",)))
    config = replace(config, sources=(config.sources[0], config.sources[1], gp))
    policy = Policy(config)
    assert "filters of source 'Dr Sam Okafor'" in (
        policy.reason(stored("<p>Holiday photos</p>", source="sam")) or ""
    )
    assert policy.allows(stored("<p>Holiday photos</p>", source="sian"))


def test_blocked_domains_cover_subdomains_links_in_the_text_and_media():
    block = policy_for(blocked_domains=("tabloid.example",))
    assert not block.allows(stored("<p>Read <a href='https://news.tabloid.example/x'>this</a></p>"))
    assert not block.allows(stored("<p>x</p>", link="https://www.tabloid.example/story"))
    assert not block.allows(
        stored("<p>x</p>", media=(Media("https://img.tabloid.example/a.jpg", "image/jpeg"),))
    )
    assert block.allows(stored("<p>Read <a href='https://nottabloid.example/'>this</a></p>"))


def test_blocked_words_never_appear_whatever_the_filters():
    block = policy_for(FilterRules(include_hashtags=("NHS",)), blocked_words=("crypto",))
    assert block.reason(stored("<p>Buy CRYPTO now #NHS</p>")) == (
        "it contains 'CRYPTO', in settings: blocked_words"
    )


# --------------------------------------------------------------------------- publish time


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def test_filters_apply_at_the_next_build_without_refetching(tmp_path):
    config, store = sb.open_filled(tmp_path)
    with store:
        render.build(config, store, now=sb.NOW)
        out = config.settings.output
        assert "Rota gaps again" in read(out / "index.html")
        strict = replace(
            config,
            settings=replace(
                config.settings,
                filters=FilterRules(exclude_keywords=("rota",)),
                blocked_domains=("fairpay.example",),
            ),
        )
        render.build(strict, store, now=sb.NOW)
        page, atom = read(out / "index.html"), read(out / "feed.atom")
        feed = json.loads(read(out / "feed.json"))
        for text in (page, atom, read(out / "sources/sian/index.html")):
            assert "Rota gaps again" not in text
            assert "petition passed 100,000" not in text
        assert not [i for i in feed["items"] if "Rota gaps" in i.get("content_html", "")]
        assert "Night shift done" in page  # the rest stays
        assert "Amseroedd aros" in page
        # Loosen it again: the posts were only held back, never deleted.
        render.build(config, store, now=sb.NOW)
        assert "Rota gaps again" in read(out / "index.html")
        assert "petition passed 100,000" in read(out / "feed.atom")


def test_filtered_posts_leave_the_archive_and_its_empty_days(tmp_path):
    config, store = sb.open_filled(tmp_path)
    with store:
        render.build(config, store, now=sb.NOW)
        out = config.settings.output
        days = sorted(p.parent for p in out.glob("archive/2026/*/*/index.html"))
        oldest = read(days[0] / "index.html")
        assert "Waiting times in Wales" in oldest
        only_wales = replace(
            config,
            settings=replace(
                config.settings, filters=FilterRules(exclude_keywords=("Waiting times",))
            ),
        )
        render.build(only_wales, store, now=sb.NOW)
        assert not (days[0] / "index.html").exists()  # its only post is filtered out
        assert "Waiting times in Wales" not in read(out / "archive/index.html")


def test_settings_default_to_no_filters():
    assert Settings().filters.empty
    assert not Policy(sb.make_config(Path("/x"))).checks_content


def test_the_commented_filter_and_pinned_examples_work_when_uncommented(tmp_path):
    """Organisers copy the examples by deleting the #: they must then pass check."""
    text = (Path(__file__).resolve().parents[1] / "feeds.yaml").read_text(encoding="utf-8")
    lines = text.splitlines()
    out, block = [], None
    for line in lines:
        if line.startswith(("  # blocked_domains:", "  # blocked_words:")):
            out.append("  " + line[4:])
            continue
        if line in ("  # filters:", "# pinned:"):
            block = line.index("#")
        elif block is not None and not line.startswith(" " * block + "#   "):
            block = None
        out.append(line[:block] + line[block + 2 :] if block is not None else line)
    path = tmp_path / "feeds.yaml"
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    config = load_config(path)
    assert config.settings.blocked_domains == ("tabloid.example", "spam.example")
    assert config.settings.filters.include_hashtags == ("NHS", "SaveOurNHS")
    assert config.settings.filters.hide_media_only
    assert config.pinned[0].title == "March for the NHS, Saturday 12 noon"
