"""Shorthands an organiser writes in feeds.yaml -> the feed URL we will fetch.

Organisers know people by their handles (``@name@server``, ``name.bsky.social``, a
YouTube channel), not by feed addresses.  This module turns each shorthand into the
one URL that platform publishes a public feed at, and decides which platform label
("on Mastodon") supporters see next to a post.

What it does *not* do: any I/O.  It never looks anything up on the network, so a
YouTube ``@handle`` page (whose channel id cannot be known offline) is handed back
as a page whose ``<link rel="alternate">`` feed fetch.py discovers later, exactly as
for ``site:``.  It also does not read YAML: config.py calls these functions and
turns their ``ValueError`` into ``feeds.yaml:LINE:COL`` problems.

Every ``ValueError`` raised here is shown to organisers as it is, so its message is
plain English: what is wrong with the value and an example of the right form.  The
examples use reserved names (``*.example``, ``YOUR-HANDLE``, ``UCxxx...``) so they
can never point at a real person's account.
"""

from __future__ import annotations

import re
import unicodedata
from typing import NamedTuple
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from .models import FeedKind, Platform

__all__ = [
    "FEED_KINDS",
    "FeedTarget",
    "bluesky_feed",
    "http_url",
    "link_label",
    "mastodon_feed",
    "mastodon_tag_feed",
    "no_feed_platform",
    "platform_for",
    "resolve",
    "site_page",
    "slugify",
    "url_feed",
    "youtube_feed",
]

#: The feed keys an organiser may write, in the order error messages list them.
FEED_KINDS: tuple[FeedKind, ...] = ("url", "mastodon", "mastodon_tag", "bluesky", "youtube", "site")


class FeedTarget(NamedTuple):
    """What a shorthand resolved to: where to fetch, how, and the platform label.

    ``kind`` is usually the kind the organiser wrote; a YouTube ``@handle`` page comes
    back as ``"site"`` because its feed must be discovered from the page at fetch time.
    """

    url: str
    kind: FeedKind
    platform: Platform


# --------------------------------------------------------------------------- examples

# Reserved or obviously fake names, so no example ever names a real account.
_EG_MASTODON = "@yourname@mastodon.example"
_EG_MASTODON_TAG = "#NHS@mastodon.example"
_EG_BLUESKY = "YOUR-HANDLE.bsky.social"
_EG_YOUTUBE = "UCxxxxxxxxxxxxxxxxxxxxxx"
_EG_URL = "https://campaign.example/feed/"
_EG_SITE = "https://campaign.example/"

# --------------------------------------------------------------------------- patterns

# Mastodon's own username rule (app/models/account.rb USERNAME_RE).
_MASTODON_USER = r"[A-Za-z0-9_]+(?:[.-]+[A-Za-z0-9_]+)*"
_MASTODON_ACCOUNT = re.compile(rf"@?(?P<user>{_MASTODON_USER})@(?P<host>[^@/\s]+)")
_MASTODON_PROFILE_PATH = re.compile(rf"/@(?P<user>{_MASTODON_USER})/?")
# Hashtags are letters, digits and underscores in any script.
_TAG = r"[^\W]+"
_MASTODON_TAG = re.compile(rf"#?(?P<tag>{_TAG})@(?P<host>[^@/\s]+)")
_MASTODON_TAG_PATH = re.compile(rf"/tags/(?P<tag>{_TAG})(?:\.rss)?/?")

# AT Protocol handle syntax (atproto.com/specs/handle): dot-separated labels, the last
# starting with a letter.  did:plc identifiers are 24 base32 characters.
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_BLUESKY_HANDLE = re.compile(rf"(?:{_LABEL}\.)+[a-z](?:[a-z0-9-]{{0,61}}[a-z0-9])?")
_BLUESKY_DID = re.compile(r"did:plc:[a-z2-7]{24}")

# A YouTube channel id is "UC" and 22 URL-safe base64 characters.
_YOUTUBE_CHANNEL_ID = re.compile(r"UC[A-Za-z0-9_-]{22}")
_YOUTUBE_HOSTS = frozenset({"youtube.com", "www.youtube.com", "m.youtube.com"})
_YOUTUBE_HANDLE = re.compile(r"@[A-Za-z0-9_.-]{3,30}")

_HOSTNAME = re.compile(rf"(?:{_LABEL}\.)+[a-z][a-z0-9-]*|localhost|\[[0-9a-f:.]+\]|[0-9.]+")

# Platforms that publish no public feed: a campaigner's profile there goes under
# `links:` and is shown as a link, never fetched.
_NO_FEED_HOSTS: dict[str, str] = {
    "threads.net": "Threads",
    "threads.com": "Threads",
    "tiktok.com": "TikTok",
    "instagram.com": "Instagram",
    "x.com": "X",
    "twitter.com": "X",
}
_LINK_LABELS: dict[str, str] = {
    **_NO_FEED_HOSTS,
    "facebook.com": "Facebook",
    "fb.com": "Facebook",
    "linkedin.com": "LinkedIn",
    "youtube.com": "YouTube",
    "bsky.app": "Bluesky",
}


# --------------------------------------------------------------------------- helpers


def slugify(name: str) -> str:
    """Make a short ASCII, lower-case, hyphenated name for URLs and tags.

    ``"Siân Jones"`` -> ``"sian-jones"``.  Accents are dropped by Unicode
    decomposition; characters with no ASCII form (e.g. non-Latin scripts) are
    removed, so the result may be empty and the caller must say so.  Hand-written
    because it is six lines and the project has no slug library as a dependency.
    """
    decomposed = unicodedata.normalize("NFKD", name)
    ascii_only = decomposed.encode("ascii", "ignore").decode("ascii").lower()
    ascii_only = ascii_only.replace("'", "").replace("&", " and ")
    return re.sub(r"[^a-z0-9]+", "-", ascii_only).strip("-")


def _host(url: str) -> str:
    """The URL's host in lower case, without a leading ``www.``."""
    host = (urlsplit(url).hostname or "").lower()
    return host.removeprefix("www.").removeprefix("m.")


def _host_label(host: str, table: dict[str, str]) -> str | None:
    """Look a host up in `table`, also matching its subdomains (``uk.linkedin.com``)."""
    for known, label in table.items():
        if host == known or host.endswith("." + known):
            return label
    return None


def link_label(url: str) -> str:
    """A human label for a profile link, chosen by its host.

    tiktok.com -> "TikTok", threads.net -> "Threads", x.com -> "X", and so on; an
    unknown host is shown as itself (``"campaign.example"``) so the label is never
    empty.
    """
    host = _host(url)
    return _host_label(host, _LINK_LABELS) or host or url


def no_feed_platform(url: str) -> str | None:
    """The name of the platform if `url` is on one that has no public feed, else None."""
    return _host_label(_host(url), _NO_FEED_HOSTS)


def _normalise_host(host: str, example: str, what: str) -> str:
    """Lower-case and IDNA-encode a server name, or say plainly why it is not one."""
    try:
        ascii_host = host.strip().encode("idna").decode("ascii").lower()
    except UnicodeError:
        ascii_host = ""
    if not _HOSTNAME.fullmatch(ascii_host) or "." not in ascii_host:
        raise ValueError(
            f'"{host}" is not a server name, so "{what}" cannot be followed. '
            f"Write it like {example}."
        )
    return ascii_host


def http_url(value: str, example: str = _EG_SITE) -> str:
    """Check `value` is a full http(s) address and return it with a lower-case host.

    Used for every web address in feeds.yaml (feeds, pages, profile links, the site's
    own base_url), so they are all checked and explained the same way; `example`
    is the right form shown in the error message.

    Only the scheme and host are normalised: paths and queries are case-sensitive
    on many servers, and the result is the feed's permanent key.
    """
    text = value.strip()
    if not text:
        raise ValueError(f"the web address is empty. Write a full address, e.g. {example}")
    if any(ch.isspace() for ch in text):
        raise ValueError(
            f'"{text}" has a space in it, so it is not a web address. '
            f"Write a full address with no spaces, e.g. {example}"
        )
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        if scheme and parts.netloc:
            reason = f"it starts with {parts.scheme}:// and only https:// or http:// work"
        else:
            reason = "it does not start with https:// or http://"
        raise ValueError(
            f'"{text}" is not a full web address: {reason}. Write it in full, e.g. {example}'
        )
    try:
        hostname = parts.hostname
        _ = parts.port  # raises ValueError on a malformed port
    except ValueError:
        hostname = None
    if not hostname:
        raise ValueError(
            f'"{text}" has no website name after {scheme}://. Write it in full, e.g. {example}'
        )
    return urlunsplit((scheme, parts.netloc.lower(), parts.path, parts.query, parts.fragment))


# --------------------------------------------------------------------------- shorthands


def mastodon_feed(value: str) -> str:
    """``@user@instance``, ``user@instance`` or ``https://instance/@user`` -> the RSS URL.

    Mastodon publishes every public account's posts at ``https://instance/@user.rss``.
    """
    text = value.strip()
    user: str | None = None
    host: str | None = None
    if text.lower().startswith(("http://", "https://")):
        parts = urlsplit(text)
        # Usernames may contain dots, so take a pasted feed's ".rss" off first.
        match = _MASTODON_PROFILE_PATH.fullmatch(parts.path.removesuffix(".rss"))
        if match and parts.hostname:
            user, host = match["user"], parts.hostname
    else:
        match = _MASTODON_ACCOUNT.fullmatch(text)
        if match:
            user, host = match["user"], match["host"]
    if user is None or host is None:
        raise ValueError(
            f'"{text}" is not a Mastodon account. Write the full account with its server, '
            f"like {_EG_MASTODON}, or paste the profile address, like "
            "https://mastodon.example/@yourname"
        )
    host = _normalise_host(host, _EG_MASTODON, text)
    return f"https://{host}/@{user}.rss"


def mastodon_tag_feed(value: str) -> str:
    """``#tag@instance`` (or ``https://instance/tags/tag``) -> the hashtag's RSS URL.

    Each Mastodon server publishes the public posts *it knows about* with a hashtag
    at ``https://instance/tags/TAG.rss``; a bigger server sees more of the network.
    """
    text = value.strip()
    tag: str | None = None
    host: str | None = None
    if text.lower().startswith(("http://", "https://")):
        parts = urlsplit(text)
        match = _MASTODON_TAG_PATH.fullmatch(unquote(parts.path))
        if match and parts.hostname:
            tag, host = match["tag"], parts.hostname
    else:
        match = _MASTODON_TAG.fullmatch(text)
        if match:
            tag, host = match["tag"], match["host"]
    if tag is None or host is None:
        raise ValueError(
            f'"{text}" is not a Mastodon hashtag. Write the tag and the server to follow '
            f"it on, like {_EG_MASTODON_TAG} (letters, digits and _ only in the tag)"
        )
    host = _normalise_host(host, _EG_MASTODON_TAG, text)
    return f"https://{host}/tags/{quote(tag)}.rss"


def bluesky_feed(value: str) -> str:
    """A Bluesky handle (``name.bsky.social``, ``@name.org``), a ``did:plc:...`` or a
    ``https://bsky.app/profile/<handle>`` address -> ``https://bsky.app/profile/<h>/rss``.

    The handle is checked against the AT Protocol handle syntax so that a typo is
    caught here rather than as a puzzling 404 at fetch time.
    """
    text = value.strip()
    handle = text
    if text.lower().startswith(("http://", "https://")):
        parts = urlsplit(text)
        match = re.fullmatch(r"/profile/([^/]+)(?:/rss)?/?", parts.path)
        if _host(text) != "bsky.app" or not match:
            raise ValueError(
                f'"{text}" is not a Bluesky profile address. Write the handle, like '
                f"{_EG_BLUESKY}, or paste the profile address, like "
                f"https://bsky.app/profile/{_EG_BLUESKY}"
            )
        handle = match[1]
    handle = handle.removeprefix("@").lower()
    if not (_BLUESKY_DID.fullmatch(handle) or _BLUESKY_HANDLE.fullmatch(handle)):
        if "." not in handle and not handle.startswith("did:"):
            hint = " Bluesky handles have a dot in them (such as name.bsky.social)."
        else:
            hint = ""
        raise ValueError(
            f'"{text}" is not a Bluesky handle.{hint} Write it like {_EG_BLUESKY} '
            "(or did:plc: followed by 24 letters and digits)"
        )
    return f"https://bsky.app/profile/{handle}/rss"


def youtube_feed(value: str) -> str:
    """A channel id or channel address -> the channel's video feed URL.

    ``UC`` + 22 characters, ``https://www.youtube.com/channel/UC...`` and the feed
    address itself all give ``https://www.youtube.com/feeds/videos.xml?channel_id=UC...``.

    A ``https://www.youtube.com/@handle`` page (or ``/c/name``, ``/user/name``) names a
    channel without its id, and the id can only be found by loading the page.  Since
    this module does no I/O, such a value is returned as the page address, normalised;
    ``resolve`` marks it kind ``"site"`` so fetch.py discovers the feed from the page's
    ``<link rel="alternate">``.
    """
    text = value.strip()
    if _YOUTUBE_CHANNEL_ID.fullmatch(text):
        return f"https://www.youtube.com/feeds/videos.xml?channel_id={text}"
    if _YOUTUBE_HANDLE.fullmatch(text):
        return f"https://www.youtube.com/{text}"
    parts = urlsplit(text)
    if parts.scheme.lower() in ("http", "https") and (parts.hostname or "") in _YOUTUBE_HOSTS:
        segments = [s for s in parts.path.split("/") if s]
        if len(segments) >= 2 and segments[0] == "channel":
            if _YOUTUBE_CHANNEL_ID.fullmatch(segments[1]):
                return youtube_feed(segments[1])
        elif segments == ["feeds", "videos.xml"]:
            match = re.search(r"(?:^|&)channel_id=([^&]+)", parts.query)
            if match and _YOUTUBE_CHANNEL_ID.fullmatch(match[1]):
                return youtube_feed(match[1])
        elif segments and _YOUTUBE_HANDLE.fullmatch(unquote(segments[0])):
            return f"https://www.youtube.com/{unquote(segments[0])}"
        elif len(segments) >= 2 and segments[0] in ("c", "user"):
            return f"https://www.youtube.com/{segments[0]}/{segments[1]}"
    raise ValueError(
        f'"{text}" is not a YouTube channel. Write the channel id, which starts with UC and '
        f"is 24 characters long (like {_EG_YOUTUBE}), or paste the channel's address, like "
        f"https://www.youtube.com/channel/{_EG_YOUTUBE} or https://www.youtube.com/@handle"
    )


def _reject_no_feed_platform(url: str) -> None:
    platform = no_feed_platform(url)
    if platform is not None:
        raise ValueError(
            f"{platform} has no public feed; put this under `links:` instead, so "
            f"supporters can still find {url}"
        )


def url_feed(value: str) -> str:
    """A feed's own address: must be a full http(s) URL on a platform that has feeds."""
    url = http_url(value, _EG_URL)
    _reject_no_feed_platform(url)
    return url


def site_page(value: str) -> str:
    """A web page whose feed fetch.py discovers from its ``<link rel="alternate">``.

    Only checked to be a full http(s) address here; whether it has a feed is known
    only when the page is loaded.
    """
    url = http_url(value, _EG_SITE)
    _reject_no_feed_platform(url)
    return url


# --------------------------------------------------------------------------- dispatch


def platform_for(kind: FeedKind, url: str) -> Platform:
    """The platform label supporters see for a feed of this kind at this URL.

    ``url:`` and ``site:`` are "blog" unless the address is obviously a Mastodon
    (``/@user.rss``, ``/tags/x.rss``), Bluesky (``bsky.app/profile/.../rss``) or
    YouTube (``youtube.com/feeds/videos.xml``, a channel page) address.
    """
    if kind in ("mastodon", "mastodon_tag"):
        return "mastodon"
    if kind == "bluesky":
        return "bluesky"
    if kind == "youtube":
        return "youtube"
    parts = urlsplit(url)
    host = _host(url)
    if host == "bsky.app" and re.fullmatch(r"/profile/[^/]+/rss/?", parts.path):
        return "bluesky"
    if host == "youtube.com":
        return "youtube"
    if re.fullmatch(rf"/(?:@{_MASTODON_USER}|tags/{_TAG})\.rss", unquote(parts.path)):
        return "mastodon"
    return "blog"


_RESOLVERS = {
    "url": url_feed,
    "site": site_page,
    "mastodon": mastodon_feed,
    "mastodon_tag": mastodon_tag_feed,
    "bluesky": bluesky_feed,
    "youtube": youtube_feed,
}


def resolve(kind: FeedKind, value: str) -> FeedTarget:
    """Turn one feeds.yaml feed (its kind and value) into a FeedTarget.

    Raises ValueError with an organiser-readable message if the value is wrong.
    """
    url = _RESOLVERS[kind](value)
    actual: FeedKind = kind
    if kind == "youtube" and "/feeds/videos.xml" not in url:
        actual = "site"  # a @handle page: the feed is discovered at fetch time
    return FeedTarget(url=url, kind=actual, platform=platform_for(kind, url))
