"""Identity keys and duplicate decisions: pure functions, no I/O.

An entry is "the same entry" as one already stored when, within the same feed,
its key matches.  Keys are tried in a fixed order (STYLE.md):

1. the feed's GUID / Atom id / JSON Feed id, when the feed gives one;
2. otherwise the canonical form of its link;
3. otherwise a hash of its text (title + content), for feeds with neither.

Whether a re-fetched entry has *changed* is decided by `content_hash`, which
deliberately ignores fields that churn without the post changing (the updated
date, the order of tags).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .models import ParsedEntry

# Query parameters that only track who clicked; removing them never changes the page.
TRACKING_PARAMS = frozenset(
    {
        "fbclid",
        "gclid",
        "dclid",
        "msclkid",
        "mc_cid",
        "mc_eid",
        "ref",
        "ref_src",
        "ref_url",
        "igshid",
        "_hsenc",
        "_hsmi",
        "yclid",
    }
)
_DEFAULT_PORTS = {"http": 80, "https": 443}

# A fixed namespace so the same (feed, key) pair always yields the same entry id.
_ENTRY_NAMESPACE = uuid.UUID("6f1c3a52-3b8e-4a53-9b55-6a3c2f0d8e11")


def canonical_url(url: str) -> str:
    """The form of a URL used to compare links: same page, same string.

    Lower-cases scheme and host, drops default ports, fragments and tracking
    parameters (utm_*, fbclid, ...), and sorts nothing else: parameter order can
    matter to some servers, so it is kept.  A URL that cannot be split is
    returned stripped, unchanged.
    """
    url = url.strip()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return url
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower().rstrip(".")
    if not scheme or not host:
        return url
    netloc = host
    if ":" in host:  # IPv6 literal
        netloc = f"[{host}]"
    if port is not None and port != _DEFAULT_PORTS.get(scheme):
        netloc = f"{netloc}:{port}"
    if parts.username:
        # Credentials in a feed link are never wanted in a published link.
        pass
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if not k.lower().startswith("utm_") and k.lower() not in TRACKING_PARAMS
    ]
    path = parts.path or "/"
    return urlunsplit((scheme, netloc, path, urlencode(query, doseq=True), ""))


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


def identity_key(entry: ParsedEntry) -> str:
    """The key that says which stored entry this is, in the order GUID, link, text hash."""
    if entry.guid and entry.guid.strip():
        return "guid:" + entry.guid.strip()
    if entry.link:
        return "link:" + canonical_url(entry.link)
    text = json.dumps([entry.title, entry.content or entry.summary], ensure_ascii=False)
    return "hash:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def entry_id(feed_key: str, identity: str) -> str:
    """A stable, opaque id for an entry: the same feed and key give the same id for ever.

    It is a UUID so the published feeds can use `urn:uuid:<id>` (RFC 4122), which
    stays valid if the site moves to another base URL.
    """
    return str(uuid.uuid5(_ENTRY_NAMESPACE, feed_key + "\n" + identity))
