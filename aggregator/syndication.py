"""Feed documents as strings: Atom 1.0, RSS 2.0, JSON Feed 1.1 and OPML 2.0.

Pure functions, views in and strings out: `FeedInfo` (the feed) and
`FeedItem` (its entries, already in order) become one document.  Nothing here
reads the store, the config or the clock, and nothing decides *which* entries a
feed holds (render.py does).  XML is built with ElementTree rather than a
template, so every document is well-formed whatever the entries contain; the
stored HTML was sanitised before it was stored (sanitize.py) and goes into the
XML formats as escaped text (Atom `type="html"`, RSS `<description>`).

Identifiers and dates are chosen so that the same entries always give the same
bytes: `updated`/`lastBuildDate` come from the entries, never from "now", so a
rebuild with nothing new rewrites no file (render.write_atomic skips equal files).

Specifications: Atom RFC 4287, RSS 2.0 (rssboard.org), JSON Feed 1.1
(jsonfeed.org/version/1.1), OPML 2.0 (opml.org/spec2.opml), Media RSS.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any, Literal

__all__ = [
    "FeedInfo",
    "FeedItem",
    "MediaItem",
    "OpmlFeed",
    "OpmlGroup",
    "RelatedLink",
    "atom",
    "json_feed",
    "opml",
    "rfc3339",
    "rfc822",
    "rss",
    "valid_language",
    "xml_safe",
]

ATOM_NS = "http://www.w3.org/2005/Atom"
MEDIA_NS = "http://search.yahoo.com/mrss/"
DC_NS = "http://purl.org/dc/elements/1.1/"
XML_NS = "http://www.w3.org/XML/1998/namespace"
JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"
GENERATOR = "nhs-campaign-aggregator"

# Prefixes used when one of these namespaces appears inside another format.
ET.register_namespace("atom", ATOM_NS)
ET.register_namespace("media", MEDIA_NS)
ET.register_namespace("dc", DC_NS)

# Characters XML 1.0 forbids; one of them makes every reader reject the feed.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# BCP 47 in its simple, common shape ("en", "en-GB", "zh-Hans-CN"): anything else
# a feed calls its language is left out rather than published as invalid.
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*")


def xml_safe(text: str | None) -> str:
    """`text` without the characters XML 1.0 forbids."""
    return _XML_INVALID.sub("", text or "")


def valid_language(tag: str | None) -> str | None:
    """The language tag if it is a well-formed BCP 47 tag we can publish, else None."""
    tag = (tag or "").strip().replace("_", "-")
    return tag if _LANGUAGE.fullmatch(tag) else None


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc822(moment: datetime) -> str:
    """RSS dates (RFC 822 as updated by RFC 1123): `Wed, 25 Nov 2026 09:00:00 GMT`."""
    return format_datetime(moment.astimezone(UTC), usegmt=True)


@dataclass(frozen=True)
class MediaItem:
    """An image, video or audio file attached to an entry, its URL already absolute."""

    url: str
    type: str | None = None
    length: int | None = None
    title: str | None = None
    width: int | None = None
    height: int | None = None

    @property
    def medium(self) -> Literal["image", "video", "audio"] | None:
        kind = (self.type or "").split("/")[0]
        if kind in ("image", "video", "audio"):
            return kind  # type: ignore[return-value]  # narrowed by the test above
        return None


@dataclass(frozen=True)
class RelatedLink:
    """The same post elsewhere ("Mastodon", its URL): Atom `rel="related"`, "Also on" text."""

    url: str
    title: str


@dataclass(frozen=True)
class FeedItem:
    """One entry as every feed format publishes it.

    `id` is an IRI that never changes (`urn:uuid:...`); `content_html` is
    sanitised HTML; `summary` is plain text.  Every URL is absolute.
    """

    id: str
    title: str
    content_html: str
    published: datetime
    updated: datetime
    author_name: str
    author_url: str | None = None
    url: str | None = None
    summary: str = ""
    language: str | None = None
    tags: tuple[str, ...] = ()
    media: tuple[MediaItem, ...] = ()
    related: tuple[RelatedLink, ...] = ()  # cross-posts on the campaigner's other platforms


@dataclass(frozen=True)
class FeedInfo:
    """A feed as a whole.

    `self_url` is where *this* document is published; `alternates` maps the
    other formats of the same feed ("atom", "rss", "json") to their URLs (RSS
    and Atom documents do not link them, but JSON Feed and pages can).
    `home_url` is the web page showing the same entries.
    """

    id: str
    title: str
    self_url: str
    home_url: str
    description: str = ""
    language: str | None = None
    author_name: str | None = None
    icon_url: str | None = None
    fallback_updated: datetime = datetime(2000, 1, 1, tzinfo=UTC)
    alternates: dict[str, str] = field(default_factory=dict)


def _updated(info: FeedInfo, items: Sequence[FeedItem]) -> datetime:
    # From the entries, never the clock: equal entries give equal bytes.
    return max((i.updated for i in items), default=info.fallback_updated)


def _sub(parent: ET.Element, tag: str, text: str | None = None, /, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, {k: xml_safe(v) for k, v in attrs.items()})
    if text is not None:
        element.text = xml_safe(text)
    return element


def _document(root: ET.Element) -> str:
    ET.indent(root, space="  ")
    body: str = ET.tostring(root, encoding="unicode")
    return '<?xml version="1.0" encoding="utf-8"?>\n' + body + "\n"


def _escape(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


def _content(item: FeedItem) -> str:
    """The entry's HTML; a post with none (a bare link) gets its summary or title as HTML.

    Cross-posts end it with "Also on: Mastodon · Bluesky" links, which every
    reader shows, whatever it makes of Atom's `rel="related"` links.
    """
    html = item.content_html
    if not html.strip():
        html = f"<p>{_escape(item.summary or item.title)}</p>"
    if item.related:
        links = " · ".join(
            f'<a href="{_escape(r.url)}">{_escape(r.title)}</a>' for r in item.related
        )
        html += f"\n<p>Also on: {links}</p>"
    return html


# --------------------------------------------------------------------------- Atom


def atom(info: FeedInfo, items: Sequence[FeedItem]) -> str:
    """An Atom 1.0 feed document (RFC 4287)."""
    # Atom elements unprefixed in the default namespace, declared by hand: ElementTree's
    # default_namespace option refuses the unqualified attributes Atom uses.
    root = ET.Element("feed", xmlns=ATOM_NS)
    language = valid_language(info.language)
    if language:
        root.set(f"{{{XML_NS}}}lang", language)
    _sub(root, "id", info.id)
    _sub(root, "title", info.title, type="text")
    if info.description:
        _sub(root, "subtitle", info.description, type="text")
    _sub(root, "updated", rfc3339(_updated(info, items)))
    _sub(root, "link", rel="self", type="application/atom+xml", href=info.self_url)
    _sub(root, "link", rel="alternate", type="text/html", href=info.home_url)
    author = _sub(root, "author")
    _sub(author, "name", info.author_name or info.title)
    _sub(root, "generator", GENERATOR)
    if info.icon_url:
        _sub(root, "icon", info.icon_url)
    for item in items:
        entry = _sub(root, "entry")
        item_language = valid_language(item.language)
        if item_language:
            entry.set(f"{{{XML_NS}}}lang", item_language)
        _sub(entry, "id", item.id)
        _sub(entry, "title", item.title, type="text")
        _sub(entry, "published", rfc3339(item.published))
        _sub(entry, "updated", rfc3339(item.updated))
        author = _sub(entry, "author")
        _sub(author, "name", item.author_name)
        if item.author_url:
            _sub(author, "uri", item.author_url)
        if item.url:
            _sub(entry, "link", rel="alternate", type="text/html", href=item.url)
        for related in item.related:
            _sub(
                entry,
                "link",
                rel="related",
                type="text/html",
                href=related.url,
                title=related.title,
            )
        for media in item.media:
            attrs = {"rel": "enclosure", "href": media.url}
            if media.type:
                attrs["type"] = media.type
            if media.length:
                attrs["length"] = str(media.length)
            if media.title:
                attrs["title"] = media.title
            _sub(entry, "link", **attrs)
        for tag in item.tags:
            _sub(entry, "category", term=tag)
        if item.summary:
            _sub(entry, "summary", item.summary, type="text")
        _sub(entry, "content", _content(item), type="html")
        _media_rss(entry, item)
    return _document(root)


def _media_rss(parent: ET.Element, item: FeedItem) -> None:
    """Media RSS `media:content` for pictures and videos: what readers show as thumbnails."""
    for media in item.media:
        medium = media.medium
        if medium is None:
            continue
        attrs = {"url": media.url, "medium": medium}
        if media.type:
            attrs["type"] = media.type
        if media.length:
            attrs["fileSize"] = str(media.length)
        if media.width and media.height:
            attrs["width"], attrs["height"] = str(media.width), str(media.height)
        content = _sub(parent, f"{{{MEDIA_NS}}}content", **attrs)
        if media.title:
            _sub(content, f"{{{MEDIA_NS}}}description", media.title, type="plain")


# --------------------------------------------------------------------------- RSS


def rss(info: FeedInfo, items: Sequence[FeedItem]) -> str:
    """An RSS 2.0 feed document, with `atom:link rel="self"` as the RSS Advisory Board asks.

    The author goes in `dc:creator` (RSS's own `<author>` must be an email
    address); the first media file with a known type becomes the `<enclosure>`
    (RSS allows one), and every picture and video a `media:content`.
    """
    root = ET.Element("rss", version="2.0")
    channel = _sub(root, "channel")
    _sub(channel, "title", info.title)
    _sub(channel, "link", info.home_url)
    _sub(channel, "description", info.description or info.title)
    _sub(
        channel,
        f"{{{ATOM_NS}}}link",
        href=info.self_url,
        rel="self",
        type="application/rss+xml",
    )
    language = valid_language(info.language)
    if language:
        _sub(channel, "language", language.lower())
    _sub(channel, "lastBuildDate", rfc822(_updated(info, items)))
    _sub(channel, "generator", GENERATOR)
    _sub(channel, "docs", "https://www.rssboard.org/rss-specification")
    if info.icon_url:
        image = _sub(channel, "image")
        _sub(image, "url", info.icon_url)
        _sub(image, "title", info.title)
        _sub(image, "link", info.home_url)
    for item in items:
        element = _sub(channel, "item")
        _sub(element, "title", item.title)
        if item.url:
            _sub(element, "link", item.url)
        _sub(element, "description", _content(item))
        _sub(element, f"{{{DC_NS}}}creator", item.author_name)
        item_language = valid_language(item.language)
        if item_language:  # RSS has no per-item language of its own; readers honour xml:lang
            element.set(f"{{{XML_NS}}}lang", item_language)
        for tag in item.tags:
            _sub(element, "category", tag)
        _sub(element, "guid", item.id, isPermaLink="false")
        _sub(element, "pubDate", rfc822(item.published))
        enclosure = _enclosure(item.media)
        if enclosure is not None:
            _sub(
                element,
                "enclosure",
                url=enclosure.url,
                length=str(enclosure.length or 0),  # RSS Best Practices: 0 when unknown
                type=enclosure.type or "",
            )
        _media_rss(element, item)
    return _document(root)


def _enclosure(media: Sequence[MediaItem]) -> MediaItem | None:
    """RSS's one enclosure: a video or sound file first, else a picture, else any typed file."""
    for wanted in (("video", "audio"), ("image",)):
        found = next((m for m in media if m.medium in wanted), None)
        if found is not None:
            return found
    return next((m for m in media if m.type), None)


# --------------------------------------------------------------------------- JSON Feed


def json_feed(info: FeedInfo, items: Sequence[FeedItem]) -> str:
    """A JSON Feed 1.1 document (https://www.jsonfeed.org/version/1.1/)."""
    feed: dict[str, Any] = {
        "version": JSON_FEED_VERSION,
        "title": info.title,
        "home_page_url": info.home_url,
        "feed_url": info.self_url,
    }
    if info.description:
        feed["description"] = info.description
    if info.icon_url:
        feed["icon"] = info.icon_url
    feed["authors"] = [{"name": info.author_name or info.title}]
    language = valid_language(info.language)
    if language:
        feed["language"] = language
    feed["items"] = [_json_item(item) for item in items]
    text = json.dumps(feed, ensure_ascii=False, indent=2)
    # "<" only ever occurs inside strings here; escaped, no markup survives a careless
    # embedding of the document in a page (as JSON.stringify-safe servers do).
    return text.replace("<", "\\u003c") + "\n"


def _json_item(item: FeedItem) -> dict[str, Any]:
    out: dict[str, Any] = {"id": item.id}
    if item.url:
        out["url"] = item.url
    out["title"] = item.title
    out["content_html"] = _content(item)
    if item.summary:
        out["summary"] = item.summary
    image = next((m for m in item.media if m.medium == "image"), None)
    if image is not None:
        out["image"] = image.url
    out["date_published"] = rfc3339(item.published)
    out["date_modified"] = rfc3339(item.updated)
    author: dict[str, str] = {"name": item.author_name}
    if item.author_url:
        author["url"] = item.author_url
    out["authors"] = [author]
    if item.tags:
        out["tags"] = list(item.tags)
    language = valid_language(item.language)
    if language:
        out["language"] = language
    attachments = []
    for media in item.media:
        if not media.type:  # mime_type is required for an attachment
            continue
        attachment: dict[str, Any] = {"url": media.url, "mime_type": media.type}
        if media.title:
            attachment["title"] = media.title
        if media.length:
            attachment["size_in_bytes"] = media.length
        attachments.append(attachment)
    if attachments:
        out["attachments"] = attachments
    return out


# --------------------------------------------------------------------------- OPML


@dataclass(frozen=True)
class OpmlFeed:
    title: str
    xml_url: str
    html_url: str | None = None
    type: str = "rss"  # OPML 2.0: "rss" for every kind of feed


@dataclass(frozen=True)
class OpmlGroup:
    """One campaigner and their original feeds."""

    title: str
    feeds: tuple[OpmlFeed, ...]
    html_url: str | None = None


def opml(title: str, groups: Sequence[OpmlGroup], *, owner_url: str | None = None) -> str:
    """An OPML 2.0 subscription list: one outline per campaigner, their feeds inside.

    Feed readers import it to subscribe to every original feed directly, so a
    supporter never depends on this site.  Campaigners without feeds are left out.
    """
    root = ET.Element("opml", version="2.0")
    head = _sub(root, "head")
    _sub(head, "title", title)
    if owner_url:
        _sub(head, "ownerId", owner_url)
    _sub(head, "docs", "http://opml.org/spec2.opml")
    body = _sub(root, "body")
    for group in groups:
        if not group.feeds:
            continue
        outline = _sub(body, "outline", text=group.title, title=group.title)
        for feed in group.feeds:
            attrs = {"type": feed.type, "text": feed.title, "title": feed.title}
            attrs["xmlUrl"] = feed.xml_url
            if feed.html_url:
                attrs["htmlUrl"] = feed.html_url
            _sub(outline, "outline", **attrs)
    return _document(root)
