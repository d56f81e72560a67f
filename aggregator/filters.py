"""Which stored posts may be published: organisers' filters and block lists (issue 7), pure.

    StoredEntry + Config (+ the ids organisers hid) -> Policy.reason(entry) -> None | why not

Applied at *publish* time, not at store time: render.py (page, feeds, archive)
and digest.py ask a Policy before anything goes out, and the store keeps every
post it fetched.  Why: an organiser who edits a filter or a block list sees the
effect at the next `build` (or digest), without refetching anything, and loosening
a filter brings back posts that were only held back.  The cost is that a filter
is evaluated again at every build (see moderation.excluded_ids, which does it in
one pass over the store).

What this module does *not* do: read YAML or compile patterns (config.py), touch
the database (moderation.py), or decide anything about duplicates (dedupe.py).

How replies, boosts and picture-only posts are recognised, from what real feeds
carry (``../shared/corpus/realworld``; parse.py keeps no reply or boost flag):

- Mastodon's account RSS (``/@user.rss``) leaves boosts out and keeps replies to
  others out too, except a reply's text starts with the @mention of whoever it
  answers (``<span class="h-card">@<span>name</span></span>``, plain text after
  sanitising).  A post whose text starts with an @mention is counted as a reply.
- Bluesky's profile RSS (``bsky.app/profile/<handle>/rss``) leaves reposts out.
  Feeds made by other tools (bridges, RSS generators) mark them in the text
  ("RT @", "🔁", "Reposted by", "[Repost]", "[Reply]", "Replying to ...") or
  link to someone else's post; both are recognised.
- A post links to someone else's post (``/@other/123`` on Mastodon,
  ``bsky.app/profile/other/post/...`` on Bluesky) when the feed is one account's:
  that is a boost or repost carried by the feed.
- A post is "only media" when it has a picture, video or sound and no words of
  its own (links, hashtags and @mentions do not count as words).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from functools import cached_property
from html import unescape
from urllib.parse import unquote, urlsplit

from .models import Config, FilterRules, StoredEntry

__all__ = [
    "Policy",
    "hashtags",
    "is_boost",
    "is_media_only",
    "is_reply",
    "keyword_pattern",
    "linked_hosts",
    "post_text",
]

_HASHTAG = re.compile(r"(?<![\w&/])#(\w+)")
_MENTION = re.compile(r"@[\w.-]+(?:@[\w-]+(?:\.[\w-]+)+)?")
_URL = re.compile(r"https?://\S+")
_HREF = re.compile(r"""\b(?:href|src)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
# At the start of a post's text: the reply / repost markers of feed generators.
_REPLY_START = re.compile(
    r"^(?:@[\w.-]+(?:@[\w-]+(?:\.[\w-]+)+)?(?![\w@])|\[reply\]|replying to\b|in reply to\b|"
    r"reply to @|re @)",
    re.IGNORECASE,
)
_BOOST_START = re.compile(
    r"^(?:rt @|rp @|🔁|♻|\[repost\]|\[boost\]|reposted\b|repost by\b|boosted\b|"
    r"repost:|boost:|shared a post by\b)",
    re.IGNORECASE,
)
_MASTODON_ACCOUNT = re.compile(r"/@(?P<user>[A-Za-z0-9_]+(?:[.-]+[A-Za-z0-9_]+)*)(?:/\d+)?/?")
_BLUESKY_PROFILE = re.compile(r"/profile/(?P<actor>[^/]+)(?:/rss|/post/[^/]+)?/?")


def keyword_pattern(words: Iterable[str]) -> re.Pattern[str] | None:
    """One case-insensitive pattern matching any of `words` as whole words or phrases.

    "NHS" matches "the NHS." and "#NHS" but not "NHSX"; a phrase matches with any
    run of spaces between its words.
    """
    parts = []
    for word in words:
        tokens = [re.escape(t) for t in word.split()]
        if tokens:
            parts.append(r"\s+".join(tokens))
    if not parts:
        return None
    return re.compile(rf"(?<!\w)(?:{'|'.join(parts)})(?!\w)", re.IGNORECASE)


_BLOCK_TAG = re.compile(
    r"</?(?:p|br|div|li|ul|ol|blockquote|h[1-6]|pre|tr|td|th|figure|figcaption)\b[^>]*>",
    re.IGNORECASE,
)
_ANY_TAG = re.compile(r"<[^>]*>")


def _plain(html: str) -> str:
    """Sanitised HTML -> text for matching words: block tags end lines, other tags vanish.

    Not sanitize.html_to_text: that parses with lxml, about ten times slower, and
    a build checks every stored post.  The HTML came out of sanitize.py (nh3), so
    it is well formed and a regular expression reads it safely.
    """
    return unescape(_ANY_TAG.sub("", _BLOCK_TAG.sub("\n", html)))


class _Post:
    """One entry's plain text and hashtags, worked out once however many rules ask."""

    def __init__(self, entry: StoredEntry) -> None:
        self.entry = entry

    @cached_property
    def body(self) -> str:
        entry = self.entry
        return (_plain(entry.content) if entry.content else entry.summary).strip()

    @cached_property
    def text(self) -> str:
        entry = self.entry
        if entry.title_derived or not entry.title.strip():
            return self.body
        return f"{entry.title}\n{self.body}"

    @cached_property
    def tags(self) -> frozenset[str]:
        tags = {t.lstrip("#").casefold() for t in self.entry.tags if t.strip("# ")}
        tags.update(m.casefold() for m in _HASHTAG.findall(self.text))
        return frozenset(tags)


def post_text(entry: StoredEntry) -> str:
    """What a post says, as plain text: its title (when it has its own) and its body."""
    return _Post(entry).text


def hashtags(entry: StoredEntry) -> frozenset[str]:
    """The post's hashtags, lower case without '#': the feed's categories and #words in the text."""
    return _Post(entry).tags


def is_reply(entry: StoredEntry) -> bool:
    """True for a reply to someone else (see the module docstring for how it is told)."""
    return _is_reply(_Post(entry))


def _is_reply(post: _Post) -> bool:
    if post.entry.platform not in ("mastodon", "bluesky"):
        return False
    return bool(_REPLY_START.match(post.body))


def _account(url: str | None, platform: str) -> tuple[str, str] | None:
    """(server, account) of a Mastodon or Bluesky profile, feed or post address."""
    if not url:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    host = (parts.hostname or "").lower()
    path = unquote(parts.path)
    if platform == "mastodon":
        match = _MASTODON_ACCOUNT.fullmatch(path.removesuffix(".rss"))
        return (host, match["user"].casefold()) if match else None
    if platform == "bluesky":
        match = _BLUESKY_PROFILE.fullmatch(path)
        return (host, match["actor"].casefold()) if match else None
    return None


def is_boost(entry: StoredEntry) -> bool:
    """True for a boost (Mastodon) or repost (Bluesky) of someone else's post.

    Told by a repost marker at the start of the text, or by the post's link
    pointing at another account than the one the feed belongs to (compared only
    when both are written the same way: two handles, or two did:s).
    """
    return _is_boost(_Post(entry))


def _is_boost(post: _Post) -> bool:
    entry = post.entry
    if entry.platform not in ("mastodon", "bluesky"):
        return False
    if _BOOST_START.match(post.body):
        return True
    owner = _account(entry.feed_key, entry.platform)
    author = _account(entry.link, entry.platform)
    if owner is None or author is None:
        return False
    if entry.platform == "bluesky" and owner[1].startswith("did:") != author[1].startswith("did:"):
        return False
    return owner != author


def is_media_only(entry: StoredEntry) -> bool:
    """True when the post is a picture, video or sound with no words of its own."""
    return _is_media_only(_Post(entry))


def _is_media_only(post: _Post) -> bool:
    entry = post.entry
    kinds = {(m.type or "").split("/")[0] for m in entry.media}
    if not kinds & {"image", "video", "audio"}:
        return False
    if not entry.title_derived and entry.title.strip():
        return False  # a real title (a video's, a blog post's) is words of its own
    words = _URL.sub(" ", post.body)
    words = _HASHTAG.sub(" ", words)
    words = _MENTION.sub(" ", words)
    return not re.sub(r"[\W_]+", "", words)


def linked_hosts(entry: StoredEntry) -> frozenset[str]:
    """Every host the post links to or shows media from, lower case, without "www."."""
    urls = [entry.link or "", *(m.url for m in entry.media), *_HREF.findall(entry.content)]
    hosts = set()
    for url in urls:
        try:
            host = urlsplit(url.strip()).hostname
        except ValueError:
            continue
        if host:
            hosts.add(host.lower().removeprefix("www."))
    return frozenset(hosts)


def _blocked_host(hosts: Collection[str], domains: Collection[str]) -> str | None:
    for host in hosts:
        for domain in domains:
            if host == domain or host.endswith("." + domain):
                return domain
    return None


@dataclass(frozen=True)
class _Compiled:
    """One FilterRules with its keyword lists made into patterns once."""

    rules: FilterRules
    include_words: re.Pattern[str] | None
    exclude_words: re.Pattern[str] | None
    include_tags: frozenset[str]
    exclude_tags: frozenset[str]

    @classmethod
    def of(cls, rules: FilterRules) -> _Compiled:
        def tags(items: Iterable[str]) -> frozenset[str]:
            return frozenset(t.lstrip("#").casefold() for t in items)

        return cls(
            rules,
            keyword_pattern(rules.include_keywords),
            keyword_pattern(rules.exclude_keywords),
            tags(rules.include_hashtags),
            tags(rules.exclude_hashtags),
        )

    def reason(self, post: _Post) -> str | None:
        rules = self.rules
        if rules.empty:
            return None
        if rules.hide_replies and _is_reply(post):
            return "it is a reply"
        if rules.hide_boosts and _is_boost(post):
            return "it is a boost or repost"
        if rules.hide_media_only and _is_media_only(post):
            return "it is only a picture, video or sound"
        text = post.text
        if rules.includes:
            matched = (
                bool(self.include_tags and self.include_tags & post.tags)
                or (self.include_words is not None and self.include_words.search(text) is not None)
                or any(p.search(text) for p in rules.include_patterns)
            )
            if not matched:
                return "it matches none of the include: rules"
        found = sorted(self.exclude_tags & post.tags) if self.exclude_tags else []
        if found:
            return f"it has the hashtag #{found[0]}"
        if self.exclude_words is not None:
            match = self.exclude_words.search(text)
            if match:
                return f"it contains '{match[0]}'"
        for pattern in rules.exclude_patterns:
            if pattern.search(text):
                return f"it matches the pattern {pattern.pattern!r}"
        return None


class Policy:
    """What may be published under one config: hidden entries, block lists, filters.

    Build one per build (or digest) and ask `allows(entry)`; `reason(entry)` says
    in plain words why a post is held back, for messages and tests.
    """

    def __init__(self, config: Config, hidden: Collection[str] = ()) -> None:
        settings = config.settings
        self.hidden = frozenset(hidden)
        self.blocked_domains = tuple(
            d.lower().removeprefix("www.") for d in settings.blocked_domains
        )
        self.blocked_words = keyword_pattern(settings.blocked_words)
        self.global_rules = _Compiled.of(settings.filters)
        self.source_rules = {s.slug: _Compiled.of(s.filters) for s in config.sources}
        self.source_names = {s.slug: s.name for s in config.sources}

    @cached_property
    def checks_content(self) -> bool:
        """False when only hidden ids matter, so callers can skip reading every post."""
        return bool(
            self.blocked_domains
            or self.blocked_words
            or not self.global_rules.rules.empty
            or any(not c.rules.empty for c in self.source_rules.values())
        )

    def reason(self, entry: StoredEntry) -> str | None:
        """Why `entry` must not be published, or None when it may be."""
        if entry.id in self.hidden:
            return "an organiser hid it (aggregator hidden lists it)"
        if not self.checks_content:
            return None
        if self.blocked_domains:
            domain = _blocked_host(linked_hosts(entry), self.blocked_domains)
            if domain:
                return f"it links to {domain}, in settings: blocked_domains"
        post = _Post(entry)
        if self.blocked_words is not None:
            match = self.blocked_words.search(post.text)
            if match:
                return f"it contains '{match[0]}', in settings: blocked_words"
        why = self.global_rules.reason(post)
        if why:
            return f"{why} (settings: filters)"
        own = self.source_rules.get(entry.source)
        if own is not None:
            why = own.reason(post)
            if why:
                name = self.source_names.get(entry.source, entry.source)
                return f"{why} (filters of source '{name}')"
        return None

    def allows(self, entry: StoredEntry) -> bool:
        return self.reason(entry) is None
