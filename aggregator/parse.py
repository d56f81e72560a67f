"""Bytes -> ParsedFeed: RSS, Atom (lxml fast path, else feedparser) and JSON Feed.

Pure: no network, no clock (`now` is an argument), no store.  What comes out is
normalised (UTC dates, plain-text titles and summaries, absolute links, clean
tags) but *not* sanitised: `ParsedEntry.content` is still the feed's untrusted
HTML, and URLs have not been scheme-checked.  `sanitize.sanitize_entry` is the
next stage and the one door for that.

Every failure is a `ParseError` carrying an `ErrorInfo` whose message an
organiser can act on; feedparser and json exceptions are translated here and
chained, never let through.
"""

from __future__ import annotations

import email.utils
import html as htmllib
import json
import mimetypes
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urljoin, urlsplit

import feedparser

# lxml ships no type hints and pyproject has no mypy override for it (yet).
import lxml.html
from lxml import etree

from .errors import ParseError
from .fastparse import extract
from .models import ErrorInfo, Media, ParsedEntry, ParsedFeed
from .sanitize import clean_text, html_to_text

__all__ = ["derive_title", "discover_feed_links", "parse_feed"]

TITLE_MAX = 300
SUMMARY_MAX = 500
DERIVED_TITLE_MAX = 80
# Dates before this are placeholders (1970-01-01, 0001-01-01) or broken clocks.
MIN_YEAR = 1990
# Beyond now + this, a date is a typo or a scheduled post shown early: clamp it.
FUTURE_SLACK = timedelta(days=1)

FEED_LINK_TYPES = frozenset(
    {
        "application/rss+xml",
        "application/atom+xml",
        "application/feed+json",
        "application/json",
    }
)

_JSONFEED_PREFIX = "https://jsonfeed.org/version/"
# Bluesky puts this where a quote post or embed was; it is no title.
_BLUESKY_PLACEHOLDER = re.compile(r"\[contains quote post or other embedded content\]", re.I)
_HAS_TAG = re.compile(r"<[a-zA-Z!/?]")
_SENTENCE_END = re.compile(r"[.!?…](?=\s|$)")


# --------------------------------------------------------------------------- public


def parse_feed(
    body: bytes,
    *,
    url: str,
    content_type: str | None = None,
    now: datetime,
    max_entries: int = 500,
) -> ParsedFeed:
    """Parse a feed body into a ParsedFeed, newest `max_entries` entries first.

    `url` is where the body came from (after redirects): relative links resolve
    against it.  `content_type` is the server's header, used as a hint only
    (servers often get it wrong).  Raises ParseError with kind "not_a_feed" for an
    HTML page or other non-feed, "parse" for an empty or unreadable body.
    """
    if not body or not body.strip():
        raise _error(url, "parse", "The server sent an empty response instead of a feed.")
    mime = (content_type or "").split(";")[0].strip().lower()
    if _looks_like_json(body, mime):
        data = _load_json(body, url, mime)
        if data is not None:
            return _parse_json_feed(data, url=url, now=now, max_entries=max_entries)
    return _parse_xml_feed(
        body, url=url, content_type=content_type, now=now, max_entries=max_entries
    )


def discover_feed_links(html: bytes, base_url: str) -> list[str]:
    """The feeds a web page advertises, as absolute http(s) URLs in document order.

    Reads `<link rel="alternate" type="application/rss+xml|atom+xml|feed+json|json"
    href=...>` (RSS Autodiscovery, https://www.rssboard.org/rss-autodiscovery),
    honouring `<base href>`.  Returns [] for anything that is not HTML.
    """
    if not html or not html.strip():
        return []
    try:
        root = lxml.html.document_fromstring(html)
    except (etree.ParserError, ValueError):
        return []
    base = base_url
    for element in root.iter("base"):
        href = (element.get("href") or "").strip()
        if href:
            base = urljoin(base_url, href)
            break
    found: list[str] = []
    for element in root.iter("link"):
        rels = (element.get("rel") or "").lower().split()
        kind = (element.get("type") or "").split(";")[0].strip().lower()
        href = (element.get("href") or "").strip()
        if "alternate" not in rels or kind not in FEED_LINK_TYPES or not href:
            continue
        try:
            absolute = urljoin(base, href)
            scheme = urlsplit(absolute).scheme.lower()
        except ValueError:
            continue
        if scheme in ("http", "https") and absolute not in found:
            found.append(absolute)
    return found


def derive_title(text: str, max_length: int = DERIVED_TITLE_MAX) -> str:
    """A short title for a post that has none (Mastodon, Bluesky): its first sentence.

    The first sentence if it ends within `max_length` characters and is not a
    mere "Hi!", otherwise the text cut at a word boundary with "…".  Returns ""
    when the text is empty: the caller decides what a textless post is called.
    """
    text = clean_text(_BLUESKY_PLACEHOLDER.sub(" ", text))
    if len(text) <= max_length:
        return text
    for match in _SENTENCE_END.finditer(text):
        if match.end() > max_length:
            break
        if match.end() >= 20:
            return text[: match.end()]
    return clean_text(text, max_length)


# --------------------------------------------------------------------------- errors


def _error(url: str, kind: str, message: str) -> ParseError:
    return ParseError(url, ErrorInfo(kind=kind, message=message))


def _not_a_feed_page(url: str) -> ParseError:
    return _error(
        url,
        "not_a_feed",
        "This address gives a web page, not a feed. If it is the campaigner's website, "
        f"write it as `site: {url}` in feeds.yaml so the aggregator finds the page's feed.",
    )


# --------------------------------------------------------------------------- sniffing

# Atomic groups and possessive loops (Python 3.11+): once a comment has matched
# it is never re-split, so a body of many comments cannot make matching take
# exponential time (ReDoS).
_HTML_START = re.compile(
    rb"^(?>\s|<!--.*?-->|<\?xml[^>]*>)*+<(?:!doctype\s+html|(?:html|head|body|meta|title)[\s>/])",
    re.I | re.S,
)
_FEED_ROOT = re.compile(rb"<(?:[\w.-]+:)?(?:rss|feed|RDF|channel)[\s>]")


def _looks_like_html(body: bytes, mime: str) -> bool:
    """A web page rather than a feed: by its start, or by its type when that agrees."""
    head = body[:4096].lstrip(b"\xef\xbb\xbf")
    if _FEED_ROOT.search(head):
        return False
    return bool(_HTML_START.match(head)) or mime in ("text/html", "application/xhtml+xml")


def _looks_like_json(body: bytes, mime: str) -> bool:
    if mime.endswith("json"):
        return True
    start = body[:64].lstrip(b"\xef\xbb\xbf \t\r\n")
    return start.startswith(b"{")


def _load_json(body: bytes, url: str, mime: str) -> Any:
    """Decode a JSON body, or return None to let the XML parser try it.

    A body the server labels as JSON but that is not valid JSON may still be an
    XML feed with a wrong header, so only a real JSON document ends up here.
    """
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        if body.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<"):
            return None
        raise _error(
            url, "parse", f"The feed looks like JSON but cannot be read: {_short(exc)}."
        ) from exc
    if isinstance(data, dict) and str(data.get("version", "")).startswith(_JSONFEED_PREFIX):
        return data
    if isinstance(data, dict) and isinstance(data.get("items"), list) and "feed+json" in mime:
        return data  # a JSON Feed that forgot its version
    raise _error(
        url,
        "not_a_feed",
        "This address gives JSON data, but not a JSON Feed (https://jsonfeed.org/). "
        "Check that it is the campaigner's feed address.",
    )


def _short(exc: object, limit: int = 160) -> str:
    """A failure's reason, one line and short enough for a status page."""
    return clean_text(str(exc) or type(exc).__name__, limit)


# --------------------------------------------------------------------------- XML


def _parse_xml_feed(
    body: bytes, *, url: str, content_type: str | None, now: datetime, max_entries: int
) -> ParsedFeed:
    headers = {"content-location": url, "content-type": content_type or "application/xml"}
    body = _defuse_doctype(body, url)
    body, total = _trim_xml_entries(body, url, max_entries)
    # Plain RSS 2.0 and Atom 1.0 are read with lxml alone (fastparse.py), in the
    # shape feedparser gives; anything it is unsure of goes to feedparser.
    parsed: Mapping[str, Any] | None = extract(body, url=url, content_type=content_type)
    if parsed is None:
        try:
            # Always bytes, never a URL or a path: feedparser must not fetch anything.
            parsed = feedparser.parse(
                body,
                sanitize_html=False,
                resolve_relative_uris=False,
                response_headers=headers,
            )
        except Exception as exc:  # feedparser can fail in many internal ways on hostile input
            raise _error(url, "parse", f"The feed cannot be read: {_short(exc)}.") from exc

    feed: Mapping[str, Any] = _dict(parsed.get("feed"))
    version = str(parsed.get("version") or "")
    feed_title = _text_field(feed, "title", TITLE_MAX)
    feed_language = _language(_str(feed.get("language")))
    feed_author = _author(feed)
    entries = [
        _xml_entry(
            _dict(raw),
            rss=not version.startswith("atom"),
            url=url,
            now=now,
            feed_language=feed_language,
            feed_author=feed_author,
            feed_name=_feed_name(feed_title),
        )
        for raw in parsed.get("entries") or []
    ]
    warnings: list[str] = []
    if total:
        warnings.append(f"The feed has {total} entries; only the newest {max_entries} were read.")
    if not any(not _is_empty(e) for e in entries):
        _raise_if_not_a_feed(parsed, body, url=url, content_type=content_type, title=feed_title)
    elif parsed.get("bozo"):
        reason = _short(parsed.get("bozo_exception") or "unknown error")
        warnings.append(f"The feed has errors ({reason}); {len(entries)} entries were read anyway.")
    return _finish(
        format=version or "unknown",
        title=feed_title or None,
        link=_absolute(_alternate_link(feed), url),
        language=feed_language,
        entries=entries,
        warnings=warnings,
        max_entries=max_entries,
    )


# A document type declaration with an internal subset, in the prolog: where XML
# entities are declared.  Quoted values and comments may hold "]" and ">".
_PROLOG = re.compile(rb"(?:\xef\xbb\xbf)?(?>\s|<\?.*?\?>|<!--.*?-->)*+", re.S)
_DOCTYPE_START = re.compile(rb"<!DOCTYPE\b(?>\"[^\"]*\"|'[^']*'|[^\"'\[>])*+", re.I)
_SUBSET_STOP = re.compile(rb"[\"'\]<]")
_SUBSET_CLOSE = re.compile(rb"\s*>")
_WIDE_XML_STARTS = (b"\xff\xfe", b"\xfe\xff", b"<\x00", b"\x00<")
_ENTITY_DECLARATION = "<!ENTITY"


def _defuse_doctype(body: bytes, url: str) -> bytes:
    """Remove a DOCTYPE that declares entities, before any XML parser sees it.

    Entities are how XML attacks work: an external entity reads a file or a URL
    (XXE), and nested internal ones expand a few hundred bytes into gigabytes
    ("billion laughs").  Feeds do not need them.  Python's expat never fetches
    external entities, and libexpat 2.4+ stops an expansion bomb, but only
    after expanding megabytes through feedparser's Python callbacks (seconds of
    CPU per feed); so the declarations go.  References to the removed entities
    make the strict parse fail, and feedparser's lenient parser keeps them as
    the literal text "&name;".  UTF-16/32 documents that declare entities are
    refused instead of rewritten (real feeds never do both).
    """
    if body.startswith(_WIDE_XML_STARTS) or body[:4] in (b"\x00\x00\x00<", b"<\x00\x00\x00"):
        for codec in ("utf-32", "utf-16", "utf-16-le", "utf-16-be"):
            try:
                head = body[:65536].decode(codec, errors="ignore")
            except UnicodeError:
                continue
            if _ENTITY_DECLARATION in head.upper():
                raise _error(
                    url,
                    "unsafe_xml",
                    "The feed declares XML entities in a UTF-16/32 document, which we do not "
                    "read for safety (it is how XML attacks work). Ask the site to publish a "
                    "plain UTF-8 feed.",
                )
        return body
    prolog = _PROLOG.match(body)
    start = prolog.end() if prolog else 0
    doctype = _DOCTYPE_START.match(body, start)
    if doctype is None:
        return body
    if not body.startswith(b"[", doctype.end()):
        return body  # an external DTD only (RSS 0.91); expat does not load it
    end = _subset_end(body, doctype.end() + 1)
    if end is None:
        # An internal subset that never ends properly: nothing after it is a feed.
        raise _error(url, "parse", "The feed's XML is broken (an unfinished DOCTYPE).")
    return body[:start] + body[end:]


def _subset_end(body: bytes, position: int) -> int | None:
    """Where the DOCTYPE whose internal subset starts at `position` ends, or None.

    A scanner rather than one regular expression: every step moves forward, so
    the time is linear in the body whatever it holds.  Quoted values and
    comments may contain "]" and ">"; the subset ends at "]" then ">".
    """
    while True:
        stop = _SUBSET_STOP.search(body, position)
        if stop is None:
            return None
        char = body[stop.start() : stop.start() + 1]
        if char in (b'"', b"'"):
            close = body.find(char, stop.start() + 1)
            if close < 0:
                return None
            position = close + 1
        elif char == b"<":
            if body.startswith(b"<!--", stop.start()):
                close = body.find(b"-->", stop.start() + 4)
                if close < 0:
                    return None
                position = close + 3
            else:
                position = stop.start() + 1
        else:  # "]"
            end = _SUBSET_CLOSE.match(body, stop.start() + 1)
            if end is not None:
                return end.end()
            position = stop.start() + 1


# Many more entries than this are read with lxml first and cut to the newest
# `max_entries`, so a 100,000-entry feed costs a fraction of a second, not the
# minute feedparser would spend on it.
TRIM_THRESHOLD = 1000
_ENTRY_START = re.compile(rb"<(?:[\w.-]+:)?(?:item|entry)[\s>/]")
_ENTRY_NAMES = frozenset({"item", "entry"})
_ENTRY_PARENTS = frozenset({"channel", "RDF", "feed", "rss"})
_DATE_NAMES = ("published", "pubDate", "updated", "date", "issued", "modified", "created")


def _trim_xml_entries(body: bytes, url: str, max_entries: int) -> tuple[bytes, int]:
    """Cut a feed with very many entries to its newest `max_entries`.

    Returns the (possibly rewritten) body and the number of entries it had, or
    0 when it was left alone.  lxml parses without entities, DTDs or network;
    the dates compared are the first date element of each entry, read the same
    way as `_parse_date_string`; undated entries come last, in document order,
    as `_finish` orders them.
    """
    limit = max(max_entries, 0)
    if len(_ENTRY_START.findall(body)) <= max(2 * limit, TRIM_THRESHOLD):
        return body, 0
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, recover=True, huge_tree=False
    )
    try:
        root = etree.fromstring(body, parser)
    except (etree.XMLSyntaxError, ValueError) as exc:
        raise _error(url, "parse", f"The feed cannot be read: {_short(exc)}.") from exc
    if root is None:
        raise _error(url, "parse", "The feed is too broken to read.")
    entries = [
        element
        for element in root.iter("{*}item", "{*}entry")
        if element.getparent() is not None
        and etree.QName(element.getparent()).localname in _ENTRY_PARENTS
    ]
    dated: list[tuple[datetime, int]] = []
    undated: list[int] = []
    for index, element in enumerate(entries):
        when = _entry_date(element)
        if when is None:
            undated.append(index)
        else:
            dated.append((when, index))
    dated.sort(key=lambda pair: pair[0], reverse=True)
    keep = {index for _, index in dated[:limit]}
    keep.update(undated[: max(0, limit - len(keep))])
    for index, element in enumerate(entries):
        if index not in keep:
            parent = element.getparent()
            if parent is not None:
                parent.remove(element)
    trimmed: bytes = etree.tostring(root, encoding="utf-8", xml_declaration=True)
    return trimmed, len(entries)


_FIRST_DATE = etree.XPath(
    "string(*[" + " or ".join(f"local-name()='{name}'" for name in _DATE_NAMES) + "][1])"
)


def _entry_date(element: etree._Element) -> datetime | None:
    return _parse_date_string(str(_FIRST_DATE(element)))


def _raise_if_not_a_feed(
    parsed: Mapping[str, Any], body: bytes, *, url: str, content_type: str | None, title: str
) -> None:
    """Explain a body with no usable entries, unless it is a real (empty) feed."""
    if _looks_like_html(body, (content_type or "").split(";")[0].strip().lower()):
        raise _not_a_feed_page(url)
    if parsed.get("bozo") and not title:
        reason = _short(parsed.get("bozo_exception") or "unknown error")
        raise _error(
            url,
            "parse",
            "This is not a feed we can read (RSS, Atom or JSON Feed): "
            f"the XML is broken ({reason}).",
        )
    if not parsed.get("version") and not title:
        raise _error(
            url,
            "not_a_feed",
            "This address does not give an RSS, Atom or JSON Feed. "
            "Check the feed address, or use `site:` with the website's address.",
        )


def _dict(value: Any) -> dict[str, Any]:
    """The plain dict behind a FeedParserDict.

    We read keys with dict.get, bypassing FeedParserDict's legacy aliases (its
    `updated` falls back to `published` with a DeprecationWarning, `enclosures`
    is computed): what we use is what the feed said.
    """
    if type(value) is dict:
        return value
    return dict(value) if isinstance(value, dict) else {}


def _str(value: Any) -> str | None:
    """A string from a field that should be one; numbers are accepted, the rest not."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _text_field(entry: Mapping[str, Any], key: str, max_length: int) -> str:
    """A feedparser text construct as plain text, decoding HTML only when it is HTML."""
    value = _str(entry.get(key)) or ""
    detail = _dict(entry.get(f"{key}_detail"))
    if str(detail.get("type") or "").endswith("html"):
        return html_to_text(value, max_length)
    return clean_text(value, max_length)


def _alternate_link(entry: Mapping[str, Any]) -> str | None:
    """The entry's web page: Atom rel="alternate" (HTML first), else feedparser's `link`."""
    alternates = [
        _dict(link)
        for link in entry.get("links") or []
        if _dict(link).get("rel", "alternate") == "alternate" and _str(_dict(link).get("href"))
    ]
    alternates.sort(key=lambda link: 0 if "html" in str(link.get("type") or "text/html") else 1)
    if alternates:
        return str(alternates[0]["href"])
    return _str(entry.get("link"))


def _absolute(link: str | None, base: str) -> str | None:
    link = (link or "").strip()
    if not link:
        return None
    try:
        return urljoin(base, link)
    except ValueError:
        return None


def _language(value: str | None) -> str | None:
    value = clean_text(value or "", 35)
    return value or None


def _author(entry: Mapping[str, Any]) -> str | None:
    detail = _dict(entry.get("author_detail"))
    name = _str(detail.get("name")) or _str(entry.get("author"))
    if not name:
        for author in entry.get("authors") or []:
            name = _str(_dict(author).get("name"))
            if name:
                break
    return (clean_text(name, 200) or None) if name else None


def _xml_entry(
    entry: dict[str, Any],
    *,
    rss: bool,
    url: str,
    now: datetime,
    feed_language: str | None,
    feed_author: str | None,
    feed_name: str | None,
) -> ParsedEntry:
    content, content_language = _content(entry, rss=rss)
    summary_html = _str(entry.get("summary")) or ""
    published = _date(entry, "published", now)
    updated = _date(entry, "updated", now)
    link = _absolute(_alternate_link(entry), url)
    author = _author(entry) or feed_author
    media = _xml_media(entry, link)
    title = _text_field(entry, "title", TITLE_MAX)
    language = (
        content_language
        or _language(_str(_dict(entry.get("title_detail")).get("language")))
        or _language(_str(_dict(entry.get("summary_detail")).get("language")))
        or feed_language
    )
    return _entry(
        guid=_str(entry.get("id")),
        link=link,
        title=title,
        summary_source=summary_html or content,
        content=content,
        author=author,
        published=published or updated,
        updated=updated,
        language=language,
        media=media,
        tags=[_str(_dict(tag).get("term")) or "" for tag in entry.get("tags") or []],
        feed_name=feed_name,
    )


def _content(entry: Mapping[str, Any], *, rss: bool) -> tuple[str, str | None]:
    """The entry's body as HTML (HTML content first, then summary) and its xml:lang.

    feedparser 6 files a <media:description> (Mastodon's image alt text) that
    follows an RSS <description> as the entry's text/plain *content*, and lets it
    overwrite `summary_detail` (though not `summary`).  So in RSS a text/plain
    content beside media is alt text, not the post, and <description> is HTML as
    RSS 2.0 says, whatever `summary_detail` claims.
    """
    candidates = [_dict(c) for c in entry.get("content") or []]
    if rss and (entry.get("media_content") or entry.get("media_thumbnail")):
        candidates = [c for c in candidates if "html" in str(c.get("type") or "")]
    candidates.sort(key=lambda c: 0 if "html" in str(c.get("type") or "") else 1)
    for item in candidates:
        value = _str(item.get("value"))
        if value and value.strip():
            kind = str(item.get("type") or "text/html")
            return _as_html(value, kind), _language(_str(item.get("language")))
    value = _str(entry.get("summary")) or ""
    detail = _dict(entry.get("summary_detail"))
    kind = "text/html" if rss else str(detail.get("type") or "text/html")
    return _as_html(value, kind), _language(_str(detail.get("language")))


def _as_html(value: str, kind: str) -> str:
    """Content as HTML: plain text is escaped, and tagless text keeps its line breaks.

    Bluesky's RSS puts plain text with newlines in <description>, which RSS calls
    HTML; without <br> every post would render as one run-on line.
    """
    if "html" not in kind:
        return _text_to_html(value)
    if "\n" in value.strip() and not _HAS_TAG.search(value):
        return value.strip().replace("\n", "<br>\n")
    return value


def _text_to_html(text: str) -> str:
    return htmllib.escape(text.strip()).replace("\n", "<br>\n")


def _date(entry: Mapping[str, Any], key: str, now: datetime) -> datetime | None:
    """A date field as aware UTC: feedparser's parse, else our own, then sanity checks."""
    value: datetime | None = None
    parsed = entry.get(f"{key}_parsed")
    if parsed is not None:
        try:
            year, month, day, hour, minute, second = parsed[:6]
            value = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
        except (TypeError, ValueError, OverflowError):
            value = None
    if value is None:
        value = _parse_date_string(_str(entry.get(key)))
    return _sane_date(value, now)


def _parse_date_string(raw: str | None) -> datetime | None:
    """RFC 822/2822 (with or without weekday and seconds) or ISO 8601 / RFC 3339."""
    raw = (raw or "").strip()
    if not raw:
        return None
    value: datetime | None = None
    try:
        value = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError, OverflowError):
        try:
            value = datetime.fromisoformat(raw.replace("z", "Z"))
        except ValueError:
            return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def _sane_date(value: datetime | None, now: datetime) -> datetime | None:
    if value is None or value.year < MIN_YEAR:
        return None
    if value > now + FUTURE_SLACK:
        return now.astimezone(UTC)
    return value


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float):
        return int(value) if value >= 0 and value == value and value != float("inf") else None
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip()[:18])
    return None


def _guess_type(url: str) -> str | None:
    try:
        path = urlsplit(url).path
    except ValueError:
        return None
    return mimetypes.guess_type(path)[0]


def _xml_media(entry: Mapping[str, Any], link: str | None) -> list[Media]:
    """Enclosures, media:content and media:thumbnail; for YouTube, thumbnail and watch link."""
    media: list[Media] = []
    youtube = bool(entry.get("yt_videoid"))
    for raw in entry.get("links") or []:
        item = _dict(raw)
        href = _str(item.get("href"))
        if item.get("rel") == "enclosure" and href and href.strip():
            media.append(
                Media(
                    url=href.strip(),
                    type=_str(item.get("type")) or _guess_type(href),
                    length=_int(item.get("length")),
                    title=_str(item.get("title")) or None,
                )
            )
    for raw in entry.get("media_content") or []:
        item = _dict(raw)
        href = _str(item.get("url"))
        kind = _str(item.get("type")) or _guess_type(href or "")
        if not href or not href.strip():
            continue
        if youtube and kind == "application/x-shockwave-flash":
            continue  # YouTube's long-dead Flash player URL; the watch link is added below
        medium = _str(item.get("medium"))
        if kind is None and medium in ("image", "video", "audio"):
            kind = f"{medium}/*"
        media.append(
            Media(
                url=href.strip(),
                type=kind,
                length=_int(item.get("filesize")),
                width=_int(item.get("width")),
                height=_int(item.get("height")),
            )
        )
    for raw in entry.get("media_thumbnail") or []:
        item = _dict(raw)
        href = _str(item.get("url"))
        if href and href.strip():
            media.append(
                Media(
                    url=href.strip(),
                    type=_guess_type(href) or "image/*",
                    width=_int(item.get("width")),
                    height=_int(item.get("height")),
                )
            )
    if youtube and link:
        media.append(Media(url=link, type="text/html", title=_str(entry.get("title"))))
    return media


# --------------------------------------------------------------------------- JSON Feed


def _parse_json_feed(
    data: dict[str, Any], *, url: str, now: datetime, max_entries: int
) -> ParsedFeed:
    """JSON Feed 1.0 and 1.1 (https://jsonfeed.org/version/1.1), tolerant of wrong types."""
    version = str(data.get("version", ""))
    number = version.removeprefix(_JSONFEED_PREFIX).strip("/").replace(".", "")
    feed_language = _language(_str(data.get("language")))
    feed_author = _json_author(data)
    warnings: list[str] = []
    items = data.get("items")
    if not isinstance(items, list):
        items = []
        warnings.append("The JSON Feed has no list of items.")
    skipped = sum(1 for item in items if not isinstance(item, dict))
    if skipped:
        warnings.append(f"{skipped} items of the JSON Feed are not objects and were skipped.")
    entries = [
        _json_entry(item, url=url, now=now, feed_language=feed_language, feed_author=feed_author)
        for item in items
        if isinstance(item, dict)
    ]
    return _finish(
        format=f"json{number}" if number.isdigit() else "json",
        title=clean_text(_str(data.get("title")) or "", TITLE_MAX) or None,
        link=_absolute(_str(data.get("home_page_url")), url),
        language=feed_language,
        entries=entries,
        warnings=warnings,
        max_entries=max_entries,
    )


def _json_author(item: Mapping[str, Any]) -> str | None:
    authors = item.get("authors")
    candidates: list[Any] = list(authors) if isinstance(authors, list) else []
    candidates.append(item.get("author"))  # JSON Feed 1.0
    for author in candidates:
        name = _str(author.get("name")) if isinstance(author, dict) else _str(author)
        if name and name.strip():
            return clean_text(name, 200) or None
    return None


def _json_entry(
    item: dict[str, Any],
    *,
    url: str,
    now: datetime,
    feed_language: str | None,
    feed_author: str | None,
) -> ParsedEntry:
    content_html = _str(item.get("content_html"))
    content_text = _str(item.get("content_text"))
    if content_html and content_html.strip():
        content = content_html
    elif content_text:
        content = _text_to_html(content_text)
    else:
        content = ""
    summary = _str(item.get("summary"))
    link = _absolute(_str(item.get("url")) or _str(item.get("external_url")), url)
    media: list[Media] = []
    for key in ("image", "banner_image"):
        image = _str(item.get(key))
        if image and image.strip():
            media.append(Media(url=_absolute(image, url) or image, type=_guess_type(image)))
    attachments = item.get("attachments")
    for attachment in attachments if isinstance(attachments, list) else []:
        if not isinstance(attachment, dict):
            continue
        href = _str(attachment.get("url"))
        if href and href.strip():
            media.append(
                Media(
                    url=_absolute(href, url) or href,
                    type=_str(attachment.get("mime_type")) or _guess_type(href),
                    length=_int(attachment.get("size_in_bytes")),
                    title=_str(attachment.get("title")),
                )
            )
    tags = item.get("tags")
    return _entry(
        guid=_str(item.get("id")),
        link=link,
        title=clean_text(_str(item.get("title")) or "", TITLE_MAX),
        summary_source=htmllib.escape(summary) if summary else (content or ""),
        content=content,
        author=_json_author(item) or feed_author,
        published=_sane_date(_parse_date_string(_str(item.get("date_published"))), now),
        updated=_sane_date(_parse_date_string(_str(item.get("date_modified"))), now),
        language=_language(_str(item.get("language"))) or feed_language,
        media=media,
        tags=[_str(tag) or "" for tag in tags] if isinstance(tags, list) else [],
    )


# --------------------------------------------------------------------------- common


def _entry(
    *,
    guid: str | None,
    link: str | None,
    title: str,
    summary_source: str,
    content: str,
    author: str | None,
    published: datetime | None,
    updated: datetime | None,
    language: str | None,
    media: list[Media],
    tags: Iterable[str],
    feed_name: str | None = None,
) -> ParsedEntry:
    """Build a ParsedEntry, deriving a title when the feed gave none."""
    guid = clean_text(guid or "") or None
    derived = False
    summary: str | None = None
    if not title:
        derived = True
        source = content or summary_source
        text = html_to_text(source)
        if source == summary_source:  # one HTML parse for both (issue 8)
            summary = clean_text(text, SUMMARY_MAX)
        title = derive_title(text) or _fallback_title(
            media,
            author or feed_name,
            link,
            quote=bool(_BLUESKY_PLACEHOLDER.search(text)),
        )
    return ParsedEntry(
        guid=guid,
        link=link,
        title=title,
        title_derived=derived,
        summary=html_to_text(summary_source, SUMMARY_MAX) if summary is None else summary,
        content=content,
        author=author,
        published=published,
        updated=updated,
        language=language,
        media=_unique_media(media),
        tags=_clean_tags(tags),
    )


def _feed_name(feed_title: str) -> str | None:
    """Who a social feed belongs to, for "Photo by X"; Mastodon tag feeds belong to no one.

    Bluesky titles its feed "@handle - Display Name": the name is what people know.
    """
    if not feed_title or feed_title.startswith("#"):
        return None
    handle, sep, name = feed_title.partition(" - ")
    return name.strip() if sep and handle.startswith("@") and name.strip() else feed_title


def _fallback_title(
    media: list[Media], author: str | None, link: str | None, *, quote: bool = False
) -> str:
    """A meaningful title for a post with no text at all: never "Untitled"."""
    kinds = [(m.type or _guess_type(m.url) or "").split("/")[0] for m in media]
    by = f" by {author}" if author else ""
    if quote:
        return clean_text(f"Quote post{by}", DERIVED_TITLE_MAX)
    for kind, word in (("video", "Video"), ("image", "Photo"), ("audio", "Audio")):
        if kind in kinds:
            return clean_text(f"{word}{by}", DERIVED_TITLE_MAX)
    if link:
        try:
            parts = urlsplit(link)
            place = (parts.hostname or "") + parts.path.rstrip("/")
        except ValueError:
            place = link
        if place:
            return clean_text(f"Post{by} at {place}" if by else place, DERIVED_TITLE_MAX)
    return f"Post{by}" if by else "Post without text"


def _unique_media(media: list[Media]) -> tuple[Media, ...]:
    seen: set[str] = set()
    unique: list[Media] = []
    for item in media:
        if item.url not in seen:
            seen.add(item.url)
            unique.append(item)
    return tuple(unique)


def _clean_tags(tags: Iterable[str]) -> tuple[str, ...]:
    cleaned: list[str] = []
    for tag in tags:
        term = clean_text(tag, 100).lstrip("#").strip().lower()
        if term and term not in cleaned:
            cleaned.append(term)
    return tuple(cleaned)


def _is_empty(entry: ParsedEntry) -> bool:
    return not (
        entry.guid or entry.link or entry.content.strip() or entry.media or not entry.title_derived
    )


def _finish(
    *,
    format: str,
    title: str | None,
    link: str | None,
    language: str | None,
    entries: list[ParsedEntry],
    warnings: list[str],
    max_entries: int,
) -> ParsedFeed:
    """Drop empty entries and repeated GUIDs (first wins), newest first, keep `max_entries`.

    An entry with no id, no link, no title and no content (what `<item/>` or a
    truncated body gives) can be neither shown nor told apart from the next one.
    """
    seen: set[str] = set()
    unique: list[ParsedEntry] = []
    repeated = 0
    empty = [e for e in entries if _is_empty(e)]
    if empty:
        warnings.append(f"Skipped {len(empty)} entries with no id, link, title or text.")
        entries = [e for e in entries if not _is_empty(e)]
    for entry in entries:
        if entry.guid is not None:
            if entry.guid in seen:
                repeated += 1
                continue
            seen.add(entry.guid)
        unique.append(entry)
    if repeated:
        warnings.append(
            f"{repeated} entries repeat an id used earlier in the feed; kept the first of each."
        )
    dated = [e for e in unique if (e.published or e.updated) is not None]
    undated = [e for e in unique if (e.published or e.updated) is None]
    dated.sort(
        key=lambda e: e.published or e.updated or datetime.min.replace(tzinfo=UTC), reverse=True
    )
    ordered = (dated + undated)[: max(max_entries, 0)]
    if len(unique) > len(ordered):
        warnings.append(f"Kept the newest {len(ordered)} of {len(unique)} entries.")
    return ParsedFeed(
        format=format,
        title=title,
        link=link,
        language=language,
        entries=tuple(ordered),
        warnings=tuple(warnings),
    )
