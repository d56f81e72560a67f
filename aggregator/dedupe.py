"""Identity keys and duplicate decisions: pure functions, no I/O.

An entry is "the same entry" as one already stored when, within the same feed,
its key matches.  Keys are tried in a fixed order (STYLE.md):

1. the feed's GUID / Atom id / JSON Feed id, when the feed gives one;
2. otherwise the comparison key of its link (canonical.link_key);
3. otherwise a hash of its text (title + content), for feeds with neither.

Some feeds give every entry a new GUID on every fetch (issue 7).  `relinked`
and `guids_rewritten` notice it from what was stored before: a new GUID whose
link belongs to a stored entry that has gone from the feed is that entry,
republished; when a whole re-fetch is like that, the store remembers to use
links for that feed (`identity_key(..., by_link=True)`) from then on.

Whether a re-fetched entry has *changed* is decided by `content_hash`, which
deliberately ignores fields that churn without the post changing (the updated
date, the order of tags).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import Counter
from collections.abc import Sequence

from .canonical import TRACKING_PARAMS, canonical_url, link_key
from .models import EntryKeys, ParsedEntry

# canonical.py owns link canonicalisation; these names stay importable from here.
__all__ = [
    "TRACKING_PARAMS",
    "canonical_url",
    "content_hash",
    "entry_id",
    "entry_keys",
    "guids_rewritten",
    "identity_key",
    "link_key",
    "relinked",
]

# A fixed namespace so the same (feed, key) pair always yields the same entry id.
_ENTRY_NAMESPACE = uuid.UUID("6f1c3a52-3b8e-4a53-9b55-6a3c2f0d8e11")


def content_hash(entry: ParsedEntry) -> str:
    """A digest of what a reader would see change; ignores the churning `updated` date."""
    payload = json.dumps(
        [
            entry.title,
            entry.link,
            entry.author,
            entry.summary,
            entry.content,
            entry.language,
            sorted(entry.tags),
            [(m.url, m.type, m.title) for m in entry.media],
        ],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def entry_keys(entry: ParsedEntry) -> EntryKeys:
    """The content hash and link keys the store compares a sanitised entry by."""
    link = entry.link
    return EntryKeys(
        content_hash=content_hash(entry),
        link_key=link_key(link) if link else None,
        canonical_link=canonical_url(link) if link else None,
    )


def identity_key(entry: ParsedEntry, *, by_link: bool = False) -> str:
    """The key that says which stored entry this is, in the order GUID, link, text hash.

    `by_link` puts the link first, for feeds known to rewrite their GUIDs.
    """
    if by_link and entry.link:
        return "link:" + link_key(entry.link)
    if entry.guid and entry.guid.strip():
        return "guid:" + entry.guid.strip()
    if entry.link:
        return "link:" + link_key(entry.link)
    text = json.dumps([entry.title, entry.content or entry.summary], ensure_ascii=False)
    return "hash:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def entry_id(feed_key: str, identity: str) -> str:
    """A stable, opaque id for an entry: the same feed and key give the same id for ever.

    It is a UUID so the published feeds can use `urn:uuid:<id>` (RFC 4122), which
    stays valid if the site moves to another base URL.
    """
    return str(uuid.uuid5(_ENTRY_NAMESPACE, feed_key + "\n" + identity))


# (identity, link key or None) of one entry, as a fetch gives it or the store holds it.
Keyed = tuple[str, str | None]


def relinked(fetched: Sequence[Keyed], stored: Sequence[Keyed]) -> dict[str, str]:
    """Fetched identities that are a stored entry republished under a new GUID.

    Maps a fetched entry's identity to the stored identity it replaces when:
    its identity is not stored, its link is stored exactly once in this feed
    and appears exactly once in this fetch, and the stored entry's own
    identity is not in this fetch (it was replaced, not joined).  Feeds whose
    entries all share one link (a home page) never match.
    """
    fetched_ids = {identity for identity, _ in fetched}
    stored_ids = {identity for identity, _ in stored}
    fetched_links = Counter(key for _, key in fetched if key)
    stored_by_link: dict[str, list[str]] = {}
    for identity, key in stored:
        if key:
            stored_by_link.setdefault(key, []).append(identity)
    out: dict[str, str] = {}
    for identity, key in fetched:
        if identity in stored_ids or not key or fetched_links[key] != 1:
            continue
        owners = stored_by_link.get(key, [])
        if len(owners) == 1 and owners[0] not in fetched_ids:
            out[identity] = owners[0]
    return out


def guids_rewritten(fetched: Sequence[Keyed], stored: Sequence[Keyed]) -> bool:
    """True when a re-fetch looks like a feed that rewrites its GUIDs every time.

    Every fetched GUID is new, yet at least half of the fetched entries with a
    link are stored entries republished (`relinked`).  A busy feed whose
    entries are all genuinely new has new links too, so it does not qualify.
    """
    guids = [(identity, key) for identity, key in fetched if identity.startswith("guid:")]
    stored_ids = {identity for identity, _ in stored}
    if not guids or not stored or any(identity in stored_ids for identity, _ in guids):
        return False
    with_links = [pair for pair in guids if pair[1]]
    matched = relinked(guids, stored)
    return bool(matched) and 2 * len(matched) >= len(with_links)
