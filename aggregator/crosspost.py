"""Cross-posts and shared links: the same post shown once (issue 7).  Pure functions.

Campaigners post the same words on Mastodon, Bluesky and their blog; supporters
should see them once.  `merge` takes stored entries (any order) and returns
`Post`s, newest first: one per thing to show, each with

- `copies`: the same campaigner's other versions of it (cross-posts), shown as
  "Also on: Mastodon · Bluesky";
- `shared`: other campaigners' posts of the same article (shared links), shown
  as "Shared by A, B and C" when the caller asks for it.

It runs at publish time (render.py, digest.py), so the store keeps every
original entry and a change of settings changes the next build.

Two entries of one campaigner are one post when, published within `window` of
each other on different feeds, they

1. link to the same page (`canonical.link_key`): the Mastodon and Bluesky posts
   both pointing to the blog post, the blog post itself, or a Bridgy Fed copy
   pointing back at its original; or
2. say the same thing once links, hashtags, mentions, "🦋 crossposted" style
   markers, punctuation and spacing are taken out (`normalise`): equal, or
   near-identical by rapidfuzz (an edited typo, a version cut short for
   Bluesky's 300 characters).

A post never holds two entries of the same feed, so a thread of replies that
all link the same article stays a thread.  Its primary (the version published,
the others linked) is the blog's when `primary` is "blog" and there is one,
otherwise the earliest; a Bridgy Fed copy is never primary while its original
is there (`canonical.is_bridged`).

What this module does not do: read the store, the config or the clock.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from typing import Literal

import lxml.html
from lxml import etree
from rapidfuzz import fuzz

from .canonical import canonical_url, is_bridged, link_key
from .models import PLATFORM_LABELS, StoredEntry
from .sanitize import html_to_text

__all__ = [
    "AlsoOn",
    "Comparisons",
    "Post",
    "also_on",
    "article_keys",
    "earliest_seen",
    "join_names",
    "merge",
    "normalise",
]

Primary = Literal["blog", "earliest"]

# Platforms whose entry link is the article itself (a blog post, a video);
# a social post's own link is only the post, so its *article* is what it links to.
ARTICLE_PLATFORMS = frozenset({"blog", "youtube"})
# Texts shorter than this (normalised) must be equal to count as the same post;
# near-identical matching needs at least NEAR_MIN characters.
EXACT_MIN = 8
NEAR_MIN = 30
NEAR_RATIO = 90  # rapidfuzz ratio, 0-100: a few characters in a hundred differ
PREFIX_RATIO = 95  # partial_ratio for a version cut short...
PREFIX_SHARE = 0.5  # ...that keeps at least half of the longer one
# Only the opening of a long text is compared: cross-posts are social-post length,
# and comparing whole articles would cost a build seconds for nothing.
COMPARED_CHARS = 600

# Bounded repetition: an unbounded `(?:[\w-]+\.)+` backtracks quadratically on
# hostile text like "a.a.a.a…" (40 KB of it took 25 s to build).
_URL = re.compile(r"https?://\S+|\b(?:[\w-]{1,63}\.){1,8}[a-z]{2,24}/\S*", re.IGNORECASE)
_HASHTAG = re.compile(r"(?<![\w&])#[\w-]+")
_MENTION = re.compile(r"(?<![\w])@[\w.-]+(?:@[\w.-]+)?")
# "🦋 crossposted from Bluesky", "(cross-posted from my blog)", "x-post", "via Bridgy Fed".
# (Emoji and brackets around them go with the rest of the punctuation.)
_MARKERS = re.compile(
    r"""\b(?:cross[\s-]?posted|x-?post(?:ed)?|bridged)\b
        (?:\s+(?:from|to|on|via)\s+(?:my\s+)?[\w.@-]+)?
      | \bvia\s+bridgy(?:\s+fed)?\b
      | \b(?:originally\s+)?posted\s+(?:on|to)\s+(?:mastodon|bluesky|my\s+blog)\b""",
    re.IGNORECASE | re.VERBOSE,
)
_MARKER_HINT = re.compile(r"post|bridg", re.IGNORECASE)
_NOT_WORD = re.compile(r"[\W_]+")
_BARE_URL = re.compile(r"https?://[^\s<>\"']+")


@dataclass(frozen=True)
class Post:
    """One thing to show: a primary entry, its cross-posts, other campaigners' shares."""

    entry: StoredEntry  # the version shown (published, linked, counted)
    copies: tuple[StoredEntry, ...] = ()  # the same campaigner elsewhere, earliest first
    shared: tuple[Post, ...] = ()  # other campaigners' posts of the same article

    @property
    def members(self) -> tuple[StoredEntry, ...]:
        """Every stored entry this post stands for."""
        out = (self.entry, *self.copies)
        for other in self.shared:
            out += other.members
        return out


@dataclass(frozen=True)
class AlsoOn:
    """ "Also on Bluesky": where else a campaigner published the same post."""

    label: str  # "Bluesky", "Mastodon (bridged)"
    url: str  # canonical, tracking parameters removed


# --------------------------------------------------------------------------- text and links


def normalise(text: str) -> str:
    """What a post says, for comparing: no links, hashtags, mentions, markers or punctuation."""
    text = unicodedata.normalize("NFKC", text)
    if "/" in text:
        text = _URL.sub(" ", text)
    if _MARKER_HINT.search(text):
        text = _MARKERS.sub(" ", text)
    if "#" in text:
        text = _HASHTAG.sub(" ", text)
    if "@" in text:
        text = _MENTION.sub(" ", text)
    return " ".join(_NOT_WORD.sub(" ", text.casefold()).split())


def _plain(entry: StoredEntry) -> str:
    """The post's words as plain text."""
    body = html_to_text(entry.content) if entry.content else ""
    return body or entry.summary or (entry.title if entry.title_derived else "")


def _hrefs(html: str) -> list[str]:
    """Links a post makes, leaving out hashtag and mention links ("#NHS", "@sam")."""
    if "<a" not in html:
        return []
    try:
        root = lxml.html.fragment_fromstring(html, create_parent="div")
    except (etree.ParserError, ValueError):
        return []
    out = []
    for anchor in root.iter("a"):
        href = anchor.get("href") or ""
        label = anchor.text_content().strip()
        if href.startswith(("http://", "https://")) and not label.startswith(("#", "@")):
            out.append(href)
    return out


def article_keys(entry: StoredEntry, plain: str | None = None) -> frozenset[str]:
    """The pages a post is about, as link keys: a blog post itself, or what a social post links.

    Bare URLs in the text count too: Bluesky's feeds carry the post as text.
    `plain` is the post's text when the caller has it already.
    """
    if entry.platform in ARTICLE_PLATFORMS:
        return frozenset({link_key(entry.link)} if entry.link else ())
    return _linked(entry.content, _plain(entry) if plain is None else plain, entry.link)


def _linked(html: str, plain: str, own_link: str | None) -> frozenset[str]:
    """Link keys of the pages a social post links to, other than itself."""
    urls = _hrefs(html)
    urls += [u.rstrip(".,;:!?)]'\"…") for u in _BARE_URL.findall(plain)]
    own = link_key(own_link) if own_link else None
    return frozenset(k for k in (link_key(u) for u in urls) if k != own)


@dataclass(frozen=True)
class _Seen:
    """What comparing needs of an entry, worked out once per merge."""

    at: float  # published, POSIX seconds
    text: str  # normalised
    articles: frozenset[str]  # article_keys
    refs: frozenset[str]  # its own link and its articles: equal refs mean the same post

    @classmethod
    def of(cls, entry: StoredEntry) -> _Seen:
        link = entry.link
        plain = _plain(entry)
        if entry.platform in ARTICLE_PLATFORMS:
            articles = frozenset({link_key(link)} if link else ())
        else:
            articles = _linked(entry.content, plain, link)
        own = {link_key(link)} if link else set()
        return _Seen(
            entry.published.timestamp(),
            normalise(plain[:COMPARED_CHARS]),
            articles,
            articles | own,
        )


class Comparisons:
    """What comparing needs of each entry, worked out once for all the merges it is in.

    A build merges overlapping sets of the same entries for many pages (front
    page, days, campaigners, tags, feeds): give every `merge` of one build the
    same Comparisons.  Keyed by entry id, so it must not outlive the store
    contents it was filled from.  (An lru_cache keyed by the entry's text did
    this before, and thrashed once a build had more entries than it held: at
    100,000 entries each was worked out almost three times, issue 8.)
    """

    def __init__(self) -> None:
        self._by_id: dict[str, _Seen] = {}

    def of(self, entry: StoredEntry) -> _Seen:
        seen = self._by_id.get(entry.id)
        if seen is None:
            seen = self._by_id[entry.id] = _Seen.of(entry)
        return seen


# --------------------------------------------------------------------------- grouping


class _Groups:
    """Union-find over entries, refusing a union that would put two of one kind together."""

    def __init__(self, items: Sequence[StoredEntry], kind: dict[str, str]) -> None:
        self.parent = {e.id: e.id for e in items}
        self.kinds = {e.id: {kind[e.id]} for e in items}

    def find(self, item: str) -> str:
        while self.parent[item] != item:
            self.parent[item] = self.parent[self.parent[item]]
            item = self.parent[item]
        return item

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb or self.kinds[ra] & self.kinds[rb]:
            return
        self.parent[rb] = ra
        self.kinds[ra] |= self.kinds.pop(rb)


@lru_cache(maxsize=50000)  # the pages of one build merge overlapping sets of entries
def _same_post(a: _Seen, b: _Seen) -> float | None:
    """How surely `a` and `b` are one post (lower is surer), or None when they are not."""
    if a.refs & b.refs:
        return 0.0
    ta, tb = a.text, b.text
    short, long = sorted((ta, tb), key=len)
    if len(short) < EXACT_MIN:
        return None
    if ta == tb:
        return 1.0
    if len(short) < NEAR_MIN:
        return None
    ratio = fuzz.ratio(ta, tb, score_cutoff=NEAR_RATIO)
    if ratio:
        return 2.0 + (100 - ratio) / 100
    if len(short) >= PREFIX_SHARE * len(long) and long.startswith(short[:EXACT_MIN]):
        partial = fuzz.partial_ratio(short, long, score_cutoff=PREFIX_RATIO)
        if partial:
            return 3.0 + (100 - partial) / 100
    return None


def _order(entry: StoredEntry) -> tuple[float, str]:
    return (entry.published.timestamp(), entry.id)


def _pairs(
    entries: Sequence[StoredEntry], seen: dict[str, _Seen], window: timedelta
) -> list[tuple[float, float, str, str]]:
    """Candidate cross-posts: (sureness, seconds apart, id, id), surest first.

    Only entries of the same source on different feeds, within `window`.
    """
    by_source: dict[str, list[StoredEntry]] = {}
    for entry in entries:
        by_source.setdefault(entry.source, []).append(entry)
    limit = window.total_seconds()
    out = []
    for mine in by_source.values():
        ordered = sorted(mine, key=_order)
        for i, a in enumerate(ordered):
            sa = seen[a.id]
            for b in ordered[i + 1 :]:
                sb = seen[b.id]
                apart = sb.at - sa.at
                if apart > limit:
                    break
                if a.feed_key == b.feed_key:
                    continue
                score = _same_post(sa, sb)
                if score is not None:
                    out.append((score, apart, a.id, b.id))
    return sorted(out)


def _primary(members: Sequence[StoredEntry], primary: Primary) -> StoredEntry:
    if len(members) == 1:
        return members[0]
    originals = [e for e in members if not is_bridged(e.link) and not is_bridged(e.feed_key)]
    pool = sorted(originals or members, key=_order)
    if primary == "blog":
        blog = next((e for e in pool if e.platform == "blog"), None)
        if blog is not None:
            return blog
    return pool[0]


def merge(
    entries: Iterable[StoredEntry],
    *,
    window: timedelta,
    primary: Primary = "blog",
    shared_links: bool = False,
    hidden: Collection[str] = (),
    comparisons: Comparisons | None = None,
) -> list[Post]:
    """Stored entries -> posts to show, newest first (by the primary's publication date).

    Every entry given ends up in exactly one post.  With `shared_links`, posts
    of different campaigners linking the same article become one post too: the
    article's own entry (a blog post, a video) or else the earliest share is
    shown, the others in `shared`.

    A cross-post with a `hidden` member is left out whole (pass hidden entries
    in with the others): an organiser who hides the version they saw
    (`aggregator hide`) must not see its copy from another platform take its
    place.  Another campaigner's share of the same article stays.
    """
    items = list({e.id: e for e in entries}.values())
    comparisons = comparisons or Comparisons()
    seen = {e.id: comparisons.of(e) for e in items}
    groups = _Groups(items, {e.id: e.feed_key for e in items})
    if window > timedelta(0):  # crosspost_window: off shows every version
        for _, _, a, b in _pairs(items, seen, window):
            groups.union(a, b)
    members: dict[str, list[StoredEntry]] = {}
    for e in items:
        members.setdefault(groups.find(e.id), []).append(e)
    posts = []
    for group in members.values():
        if hidden and any(e.id in hidden for e in group):
            continue
        first = _primary(group, primary)
        copies = tuple(sorted((e for e in group if e is not first), key=_order))
        posts.append(Post(first, copies))
    if shared_links and posts and window > timedelta(0):
        posts = _share(posts, seen, window)
    return sorted(posts, key=lambda p: (-p.entry.published.timestamp(), p.entry.id))


def _share(posts: Sequence[Post], seen: dict[str, _Seen], window: timedelta) -> list[Post]:
    """Posts of different campaigners linking the same article -> one post, "shared by"."""
    keys = {
        p.entry.id: frozenset().union(*(seen[e.id].articles for e in (p.entry, *p.copies)))
        for p in posts
    }
    # Pair on the primary entries, with the whole post's article keys.
    heads = [p.entry for p in posts]
    by_head = {p.entry.id: p for p in posts}
    groups = _Groups(heads, {e.id: e.source for e in heads})
    sharing: dict[str, list[StoredEntry]] = {}  # article -> the posts linking it
    for head in sorted(heads, key=_order):
        for key in keys[head.id]:
            sharing.setdefault(key, []).append(head)
    limit = window.total_seconds()
    for linking in sharing.values():
        for i, a in enumerate(linking):
            for b in linking[i + 1 :]:
                if seen[b.id].at - seen[a.id].at > limit:
                    break
                if a.source != b.source:
                    groups.union(a.id, b.id)
    grouped: dict[str, list[Post]] = {}
    for head in heads:
        grouped.setdefault(groups.find(head.id), []).append(by_head[head.id])
    out = []
    for group in grouped.values():
        if len(group) == 1:
            out.append(group[0])
            continue
        common = frozenset.intersection(*(keys[p.entry.id] for p in group))
        authors = [
            p
            for p in group
            if p.entry.platform in ARTICLE_PLATFORMS
            and p.entry.link
            and link_key(p.entry.link) in common
        ]
        first = (authors or sorted(group, key=lambda p: _order(p.entry)))[0]
        others = tuple(sorted((p for p in group if p is not first), key=lambda p: _order(p.entry)))
        out.append(Post(first.entry, first.copies, others))
    return out


# --------------------------------------------------------------------------- for the outputs


def also_on(post: Post) -> tuple[AlsoOn, ...]:
    """The post's other platforms, in the order they were published, one link each."""
    seen = {link_key(post.entry.link)} if post.entry.link else set()
    out = []
    for copy in post.copies:
        if not copy.link or link_key(copy.link) in seen:
            continue
        seen.add(link_key(copy.link))
        label = PLATFORM_LABELS.get(copy.platform, copy.platform)
        if is_bridged(copy.link) or is_bridged(copy.feed_key):
            label += " (bridged)"
        out.append(AlsoOn(label, canonical_url(copy.link)))
    return tuple(out)


def earliest_seen(post: Post) -> StoredEntry:
    """The member first seen by the aggregator: when the post became news."""
    return min(post.members, key=lambda e: (e.first_seen, e.id))


def join_names(names: Sequence[str]) -> str:
    """ "A", "A and B", "A, B and C"."""
    if len(names) <= 2:
        return " and ".join(names)
    return f"{', '.join(names[:-1])} and {names[-1]}"
