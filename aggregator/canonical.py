"""Canonical links: one spelling per page, for publishing and for comparing (issue 7).

Two functions, both pure:

``canonical_url(url)``
    The link we store in `canonical_link` and publish on the page, in the feeds
    and in the digest.  Only changes that keep the link working: lower-case
    scheme and host, no default port, no fragment, no tracking parameters
    (utm_*, fbclid, gclid, mc_cid/mc_eid, ref/ref_src, ...), AMP pages and
    mobile hosts turned into the ordinary page where the pattern is
    recognisable, and redirect wrappers (Bridgy Fed ``/r/``, Google's AMP
    viewer, the AMP cache) unwrapped.

``link_key(url)``
    A key for *comparing* links, never for publishing: the canonical URL with
    ``http`` and ``https`` treated as equal, ``www.`` dropped, a trailing slash
    dropped and query parameters sorted.  Two links with the same key are the
    same page for dedupe (dedupe.py), cross-posts and shared links (crosspost.py).

Hand-written rather than w3lib's ``canonicalize_url`` or url-normalize: those
normalise encoding and sort parameters (which can change what some servers
answer) but know nothing of AMP, mobile hosts or Bridgy Fed, which is what
campaigners' posts are full of.
"""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

__all__ = ["TRACKING_PARAMS", "canonical_url", "is_bridged", "link_key"]

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
# Parameters that ask for the AMP version of an ordinary page.
_AMP_PARAMS = frozenset({"amp", "outputtype"})
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Hosts whose first label means "the phone version of the same site".
_MOBILE_LABELS = frozenset({"m", "mobile"})
# https://bsky.brid.gy/r/https://bsky.app/... and fed.brid.gy/r/...: Bridgy Fed's
# redirects to the original post.
_BRIDGY_REDIRECT = re.compile(r"^/r/(https?://.+)$")
# https://www.google.com/amp/s/example.org/a and https://example-org.cdn.ampproject.org/c/s/...
_GOOGLE_AMP = re.compile(r"^/amp/(s/)?(.+)$")
_AMP_CACHE = re.compile(r"^/[a-z]/(s/)?(.+)$")
_AMP_PATH = re.compile(r"/amp(/?)$|\.amp(\.html?)$", re.IGNORECASE)
# Bridgy Fed's bridged accounts: Bluesky people on the fediverse (bsky.brid.gy),
# fediverse people on Bluesky (alice.mastodon.social.ap.brid.gy).
_BRIDGED = re.compile(r"(?:^|[./@])(?:bsky|ap|fed|web)\.brid\.gy(?:$|[/:])", re.IGNORECASE)


# Pure; every build asks again for the same links, about twice per entry stored:
# sized for a store of 100,000 entries (a URL and its form: a few hundred bytes).
_LINKS_CACHED = 131072


@lru_cache(maxsize=_LINKS_CACHED)
def canonical_url(url: str) -> str:
    """The form of a URL we publish and store: same page, one spelling.

    A URL that cannot be split (no scheme or host, a bad port) is returned
    stripped and otherwise unchanged.  Parameter order is kept: it can matter
    to some servers.
    """
    url = url.strip()
    for _ in range(3):  # a wrapper inside a wrapper, at most
        unwrapped = _unwrap(url)
        if unwrapped == url:
            break
        url = unwrapped
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return url
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower().rstrip(".")
    if scheme not in ("http", "https") or not host:
        return url
    labels = host.split(".")
    if len(labels) >= 3 and labels[0] in _MOBILE_LABELS:
        labels = labels[1:]  # m.example.org, mobile.twitter.com
    elif len(labels) >= 4 and labels[1] == "m":
        labels = [labels[0], *labels[2:]]  # en.m.wikipedia.org
    if len(labels) >= 3 and labels[0] == "amp":
        labels = labels[1:]  # amp.example.org
    host = ".".join(labels)
    netloc = f"[{host}]" if ":" in host else host  # IPv6 literal
    if port is not None and port != _DEFAULT_PORTS.get(scheme):
        netloc = f"{netloc}:{port}"
    # Credentials in a feed link are never wanted in a published link: left out.
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if not _dropped_param(k, v)
    ]
    # /story/amp/ -> /story/ (WordPress), /story/amp -> /story, story.amp.html -> story.html
    path = _AMP_PATH.sub(lambda m: m.group(1) or m.group(2) or "", parts.path) or "/"
    return urlunsplit((scheme, netloc, path, urlencode(query, doseq=True), ""))


def _dropped_param(key: str, value: str) -> bool:
    k = key.lower()
    if k.startswith("utm_") or k in TRACKING_PARAMS:
        return True
    return k in _AMP_PARAMS and value.lower() in ("", "1", "true", "amp")


def _unwrap(url: str) -> str:
    """The URL a redirect wrapper or AMP viewer points at, or `url` itself."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    host = (parts.hostname or "").lower()
    path = parts.path
    if host.endswith(".brid.gy"):
        match = _BRIDGY_REDIRECT.match(path)
        if match:
            return unquote(match.group(1)) if "%3A" in match.group(1) else match.group(1)
    if host in ("www.google.com", "google.com"):
        match = _GOOGLE_AMP.match(path)
        if match:
            return "https://" + match.group(2) if match.group(1) else "http://" + match.group(2)
    if host.endswith(".cdn.ampproject.org"):
        match = _AMP_CACHE.match(path)
        if match:
            return "https://" + match.group(2) if match.group(1) else "http://" + match.group(2)
    return url


@lru_cache(maxsize=_LINKS_CACHED)
def link_key(url: str) -> str:
    """A key under which two links to the same page compare equal; never published.

    On top of `canonical_url`: http and https are the same, ``www.`` is the
    same as no ``www.``, a trailing slash (not the root's) is dropped and
    query parameters are sorted.
    """
    canonical = canonical_url(url)
    try:
        parts = urlsplit(canonical)
    except ValueError:
        return canonical
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return canonical
    netloc = parts.netloc.removeprefix("www.")
    path = parts.path
    if len(path) > 1:
        path = path.rstrip("/") or "/"
    query = urlencode(sorted(parse_qsl(parts.query, keep_blank_values=True)))
    return urlunsplit(("https", netloc, path, query, ""))


def is_bridged(url: str | None) -> bool:
    """True for a post or feed that Bridgy Fed copied from another network.

    Bluesky accounts appear on Mastodon as ``@name@bsky.brid.gy`` and Mastodon
    accounts on Bluesky as ``name.server.ap.brid.gy``: the same posts, later,
    on the other network.  crosspost.py never makes such a copy the primary
    while the original is there.
    """
    return bool(url) and _BRIDGED.search(url or "") is not None
