"""Plain, frozen values passed between the pipeline's stages.

config -> (Config, Source, FeedSpec) -> fetch -> FetchResult -> parse -> ParsedFeed
-> store (rows) -> render.  No stage hands another a feedparser object, an httpx
response or an sqlite row: only these types, so each stage can be tested and
changed alone.  Nothing here does I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property
from pathlib import Path
from typing import Literal

# Where a feed comes from, as the organiser wrote it in feeds.yaml.
FeedKind = Literal["url", "mastodon", "mastodon_tag", "bluesky", "youtube", "site"]
# What supporters see next to a post ("on Mastodon").
Platform = Literal["blog", "mastodon", "bluesky", "youtube"]

PLATFORM_LABELS: dict[str, str] = {
    "blog": "Blog",
    "mastodon": "Mastodon",
    "bluesky": "Bluesky",
    "youtube": "YouTube",
}


# --------------------------------------------------------------------------- config


@dataclass(frozen=True)
class Position:
    """A place in feeds.yaml, 1-based, for `feeds.yaml:LINE:COL: message` errors."""

    line: int
    column: int


@dataclass(frozen=True)
class FeedSpec:
    """One feed of a source, with its shorthand already turned into a URL.

    `key` is what identifies the feed in the store for ever: the URL the
    organiser's shorthand produced.  If the server later redirects, the store
    keeps the new address beside it; the key does not change.
    """

    key: str
    url: str
    kind: FeedKind
    platform: Platform
    source: str  # the source's slug
    title: str | None = None
    position: Position | None = None


@dataclass(frozen=True)
class ProfileLink:
    """A place to find a campaigner that has no feed (TikTok, Threads, Instagram, X)."""

    url: str
    label: str


@dataclass(frozen=True)
class FilterRules:
    """Which posts to publish, from `filters:` in feeds.yaml (issue 7), globally or per source.

    `include_*`: when any is given, only posts matching at least one of them are
    published.  `exclude_*`: posts matching any of them are not.  Keywords and
    hashtags are kept as written (matched case-insensitively by filters.py);
    patterns were compiled, case-insensitive, by config.py.
    """

    include_keywords: tuple[str, ...] = ()
    include_hashtags: tuple[str, ...] = ()
    include_patterns: tuple[re.Pattern[str], ...] = ()
    exclude_keywords: tuple[str, ...] = ()
    exclude_hashtags: tuple[str, ...] = ()
    exclude_patterns: tuple[re.Pattern[str], ...] = ()
    hide_replies: bool = False
    hide_boosts: bool = False  # boosts (Mastodon) and reposts (Bluesky)
    hide_media_only: bool = False  # posts that are only a picture, video or sound

    @property
    def includes(self) -> bool:
        return bool(self.include_keywords or self.include_hashtags or self.include_patterns)

    @property
    def empty(self) -> bool:
        return self == FilterRules()


@dataclass(frozen=True)
class Pinned:
    """An announcement shown above the posts on the page and in the digest until `until`."""

    title: str
    until: date  # the last local day (settings.timezone) it is shown
    link: str | None = None
    text: str = ""
    position: Position | None = None


@dataclass(frozen=True)
class Source:
    """A campaigner or organisation: one person or group, however many platforms."""

    slug: str
    name: str
    feeds: tuple[FeedSpec, ...]
    tags: tuple[str, ...] = ()
    links: tuple[ProfileLink, ...] = ()
    poll_interval: int | None = None  # seconds; None means settings.poll_interval
    position: Position | None = None
    filters: FilterRules = field(default_factory=FilterRules)


@dataclass(frozen=True)
class FetchLimits:
    """Safe defaults for talking to servers we do not control."""

    connect_timeout: float = 10.0
    read_timeout: float = 20.0
    total_timeout: float = 60.0  # a whole feed, however slowly the bytes come
    max_bytes: int = 10 * 1024 * 1024  # decompressed body
    max_redirects: int = 10
    concurrency: int = 20
    per_host: int = 2
    max_entries: int = 500  # per fetch, newest first


@dataclass(frozen=True)
class PageSettings:
    """The web page: how much to show and how fairly (`settings.page` in feeds.yaml)."""

    days: int = 7  # days of posts on the front page
    per_source_per_day: int = 3  # fair share: beyond this, "N more from X"
    max_entries: int = 200  # on the front page
    allow_remote_images: bool = False  # images from other sites are third-party requests
    digest_signup_url: str | None = None  # where supporters sign up for the email
    shared_links: bool = False  # one article shared by several: once, "shared by A and B"


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int = 587
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: str | None = None
    password_env: str | None = None  # the password is read from this environment variable
    timeout: float = 30.0


@dataclass(frozen=True)
class DigestSettings:
    """The daily email (`settings.digest` in feeds.yaml)."""

    time: str = "07:00"  # local time in settings.timezone
    sender: str | None = None  # `from:` in feeds.yaml
    to: tuple[str, ...] = ()
    unsubscribe: str | None = None  # URL or mailto: address
    smtp: SmtpSettings | None = None
    group_by: Literal["source", "tag"] = "source"
    per_source: int = 5  # fair share: at most N items per campaigner, then "and M more"
    send_empty: bool = False
    individual: bool = True  # one message per recipient; False sends one with Bcc
    shared_links: bool = True  # one article shared by several: once, "shared by A and B"


@dataclass(frozen=True)
class Settings:
    title: str = "NHS campaigners"
    base_url: str = "http://localhost:8000/"
    database: Path = Path("data/aggregator.sqlite")
    output: Path = Path("public")
    timezone: str = "Europe/London"
    poll_interval: int = 30 * 60  # seconds
    user_agent: str = ""  # the organiser's contact, appended to our User-Agent
    templates: Path | None = None
    feed_length: int = 100
    description: str = ""
    fetch: FetchLimits = field(default_factory=FetchLimits)
    page: PageSettings = field(default_factory=PageSettings)
    digest: DigestSettings | None = None
    # Cross-posts (issue 7): the same post on several platforms within this many
    # seconds is shown once; "blog" or "earliest" says which version is shown.
    crosspost_window: int = 24 * 3600
    crosspost_primary: Literal["blog", "earliest"] = "blog"
    filters: FilterRules = field(default_factory=FilterRules)  # for every source
    blocked_domains: tuple[str, ...] = ()  # posts linking here are never published
    blocked_words: tuple[str, ...] = ()  # posts containing these are never published


@dataclass(frozen=True)
class Config:
    path: Path
    settings: Settings
    sources: tuple[Source, ...]
    pinned: tuple[Pinned, ...] = ()  # top-level `pinned:` in feeds.yaml

    def feeds(self) -> tuple[FeedSpec, ...]:
        return tuple(feed for source in self.sources for feed in source.feeds)

    def source(self, slug: str) -> Source | None:
        return self._sources_by_slug.get(slug)

    @cached_property
    def _sources_by_slug(self) -> dict[str, Source]:
        # A build asks once per post shown: 150,000 times at 100,000 entries (issue 8).
        return {s.slug: s for s in self.sources}


# --------------------------------------------------------------------------- fetch


@dataclass(frozen=True)
class Validators:
    """Conditional-GET state kept per feed (RFC 9110 section 13): JSON-able."""

    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class FetchRequest:
    """What fetch needs to know about a feed: where it is now and what we saw last."""

    key: str
    url: str
    validators: Validators = Validators()
    # Refuse private and local addresses: set for an address we were sent to
    # (discovered or redirected to another host), not one the organiser wrote.
    guard: bool = False


@dataclass(frozen=True)
class Fetched:
    """The server sent a body (HTTP 200)."""

    key: str
    url: str  # the URL asked for
    final_url: str  # after redirects
    body: bytes
    content_type: str | None
    validators: Validators
    http_status: int = 200
    permanent_redirect: str | None = None  # where a 301/308 chain ended, if any
    elapsed_ms: int = 0
    max_age: int | None = None  # Cache-Control max-age: do not poll again sooner


@dataclass(frozen=True)
class NotModified:
    """HTTP 304: nothing to parse, nothing to store."""

    key: str
    url: str
    validators: Validators
    elapsed_ms: int = 0
    max_age: int | None = None


@dataclass(frozen=True)
class ErrorInfo:
    """A feed's failure in words an organiser can act on."""

    kind: str  # short machine word: timeout, http, dns, too_large, parse, not_a_feed, ...
    message: str  # plain English: what went wrong and what to do
    http_status: int | None = None
    retry_after: int | None = None  # seconds, from Retry-After


@dataclass(frozen=True)
class FetchFailed:
    key: str
    url: str
    error: ErrorInfo
    elapsed_ms: int = 0


FetchResult = Fetched | NotModified | FetchFailed


# --------------------------------------------------------------------------- parse


@dataclass(frozen=True)
class Media:
    """An image, video or audio file attached to an entry (RSS enclosure, media:content)."""

    url: str
    type: str | None = None  # MIME type
    length: int | None = None
    title: str | None = None
    width: int | None = None
    height: int | None = None


@dataclass(frozen=True)
class ParsedEntry:
    """One entry as the feed gave it, normalised but not yet sanitised.

    `content` is the feed's HTML, untrusted until sanitize.py has passed it;
    `summary` and `title` are plain text.  Dates are timezone-aware UTC, or None
    when the feed gave none (the store then uses the time it first saw the entry).
    """

    guid: str | None
    link: str | None
    title: str
    title_derived: bool  # True when the feed had no title and we made one from the text
    summary: str
    content: str
    author: str | None = None
    published: datetime | None = None
    updated: datetime | None = None
    language: str | None = None
    media: tuple[Media, ...] = ()
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class ParsedFeed:
    format: str  # rss20, atom10, json11, ... as detected
    title: str | None
    link: str | None
    language: str | None
    entries: tuple[ParsedEntry, ...]
    warnings: tuple[str, ...] = ()
    # One per entry, worked out where the feed was parsed (a worker process) so the
    # process that writes the store only compares (issue 8); empty: the store
    # works them out itself.
    keys: tuple[EntryKeys, ...] = ()


@dataclass(frozen=True)
class EntryKeys:
    """How the store recognises a sanitised entry (dedupe.entry_keys)."""

    content_hash: str  # changes when what a reader sees changes
    link_key: str | None  # canonical.link_key of the link
    canonical_link: str | None  # canonical.canonical_url of the link


# --------------------------------------------------------------------------- store -> render


@dataclass(frozen=True)
class StoredEntry:
    """An entry as the store keeps it and the renderers read it."""

    id: str  # stable, opaque, unique across the store
    feed_key: str
    source: str  # slug
    platform: Platform
    guid: str | None
    link: str | None
    title: str
    title_derived: bool
    summary: str
    content: str  # sanitised HTML
    author: str | None
    published: datetime
    updated: datetime
    first_seen: datetime
    language: str | None
    media: tuple[Media, ...]
    tags: tuple[str, ...]


@dataclass(frozen=True)
class FeedStatus:
    """A feed's health, for `status` and the health page."""

    key: str
    url: str  # where we fetch it now
    source: str
    platform: Platform
    title: str | None
    entry_count: int
    last_fetched: datetime | None
    last_success: datetime | None
    last_error: ErrorInfo | None
    last_error_at: datetime | None
    failing_since: datetime | None
    next_poll: datetime | None
    redirected_to: str | None = None


@dataclass(frozen=True)
class UpdateResult:
    """What one feed's update did: exactly one per feed per run."""

    key: str
    url: str
    status: Literal["ok", "not_modified", "error"]
    new: int = 0
    updated: int = 0
    error: ErrorInfo | None = None
    elapsed_ms: int = 0
