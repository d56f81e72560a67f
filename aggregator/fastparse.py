"""A fast extraction path for plain, well-formed RSS 2.0 and Atom 1.0 feeds.

feedparser costs 1.2-1.7 ms an entry (its expat callbacks run once per entity of
the escaped HTML); most real feeds use a handful of elements that one lxml parse
reads in a few tens of microseconds.  `extract` reads those feeds into the same
dict shape `feedparser.parse` returns, *as far as parse.py reads it* (the keys
`_xml_entry`, `_content`, `_xml_media`, `_author`, `_alternate_link` and
`_text_field` use), so everything after extraction (normalising, dates,
titles, media) is the one shared code path.

It copies feedparser's quirks on purpose (a permalink guid or an Atom id becomes
the link when there is none yet; a second summary-like element becomes
content; a text/plain RSS title that looks like HTML is HTML; the cp1252 and
double-encoded UTF-8 repairs), and returns None -- "let feedparser do it" --
for anything else: another format or version, another encoding, a document
lxml cannot parse strictly, an element or attribute it does not know, xml:base
or xml:lang below the entry level, XHTML or base64 content, emails in author
names, repeated elements.  tests/test_fastparse.py checks, for every feed of
the shared corpus it accepts, that parse_feed gives the same result either way.

The body it gets has been through parse.py's DOCTYPE stripping and entry
trimming already; lxml is told never to resolve entities, load a DTD or use the
network.
"""

from __future__ import annotations

import re
from typing import Any

from feedparser.datetimes import _parse_date
from feedparser.html import _cp1252
from feedparser.mixin import _FeedParserMixin
from feedparser.urls import _urljoin, make_safe_absolute_uri
from lxml import etree

__all__ = ["extract"]

ATOM = "http://www.w3.org/2005/Atom"
MEDIA = "http://search.yahoo.com/mrss/"
DC = "http://purl.org/dc/elements/1.1/"
CONTENT = "http://purl.org/rss/1.0/modules/content/"
YOUTUBE = "http://www.youtube.com/xml/schemas/2015"
XML_NS = "http://www.w3.org/XML/1998/namespace"
_XML_LANG = f"{{{XML_NS}}}lang"
_XML_BASE = f"{{{XML_NS}}}base"

_MIMES = frozenset(
    {"", "application/xml", "application/rss+xml", "application/atom+xml", "text/xml"}
)
_XML_DECLARATION = re.compile(rb"^(?:\xef\xbb\xbf)?<\?xml[^>]*?encoding=[\"']([\w.:-]+)[\"']")
_CHARSET = re.compile(r"charset\s*=\s*\"?([\w.:-]+)", re.I)
_HTML_TYPES = ("text/html", "application/xhtml+xml")
_ENTRY_TAGS = frozenset({"item", "entry"})
_ENTITY_LIKE = re.compile("&([A-Za-z0-9_]+);")
_C1 = re.compile("[\x80-\x9f]")
# Elements feedparser stores under keys parse.py never reads: safe to skip.
_RSS_CHANNEL_SKIP = frozenset(
    {
        "description",
        "generator",
        "lastBuildDate",
        "pubDate",
        "image",
        "ttl",
        "docs",
        "copyright",
        "webMaster",
        "category",
        "cloud",
        "skipHours",
        "skipDays",
        "{http://purl.org/rss/1.0/modules/syndication/}updatePeriod",
        "{http://purl.org/rss/1.0/modules/syndication/}updateFrequency",
        "{http://purl.org/rss/1.0/modules/syndication/}updateBase",
        "{http://webfeeds.org/rss/1.0}icon",
    }
)
_RSS_ITEM_SKIP = frozenset(
    {
        "comments",
        "{http://wellformedweb.org/CommentAPI/}commentRss",
        "{http://purl.org/rss/1.0/modules/slash/}comments",
    }
)
_ATOM_FEED_SKIP = frozenset(
    {
        f"{{{ATOM}}}subtitle",
        f"{{{ATOM}}}id",  # handled separately (it can become the link)
        f"{{{ATOM}}}updated",
        f"{{{ATOM}}}generator",
        f"{{{ATOM}}}icon",
        f"{{{ATOM}}}logo",
        f"{{{ATOM}}}rights",
        f"{{{ATOM}}}category",
        "{http://a9.com/-/spec/opensearchrss/1.0/}itemsPerPage",
        "{http://a9.com/-/spec/opensearchrss/1.0/}startIndex",
        "{http://a9.com/-/spec/opensearchrss/1.0/}totalResults",
        f"{{{ATOM}}}published",
        f"{{{YOUTUBE}}}channelId",
    }
)
_ATOM_ENTRY_SKIP = frozenset(
    {
        "{http://purl.org/syndication/thread/1.0}total",
        f"{{{ATOM}}}rights",
        f"{{{YOUTUBE}}}channelId",
    }
)
_AUTHOR_CHILDREN = frozenset(
    {
        f"{{{ATOM}}}name",
        f"{{{ATOM}}}email",
        f"{{{ATOM}}}uri",
        "{http://schemas.google.com/g/2005}image",
    }
)
_MEDIA_CONTENT_CHILDREN = frozenset({f"{{{MEDIA}}}description", f"{{{MEDIA}}}rating"})


class _Decline(Exception):
    """The feed has something the fast path does not copy exactly: use feedparser."""


def extract(body: bytes, *, url: str, content_type: str | None) -> dict[str, Any] | None:
    """feedparser's result for a plain RSS 2.0 or Atom 1.0 feed, or None to fall back."""
    if not _utf8(body, content_type):
        return None
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        remove_comments=False,
        recover=False,
    )
    try:
        root = etree.fromstring(body, parser)
    except (etree.Error, ValueError):
        return None
    if root.getroottree().docinfo.doctype:
        return None  # undeclared entities may hide behind an external DTD: feedparser's call
    try:
        if root.tag == "rss":
            return _rss(root, url)
        if root.tag == f"{{{ATOM}}}feed":
            return _atom(root, url)
    except _Decline:
        return None
    except Exception:  # noqa: BLE001 -- a surprise on hostile input: feedparser decides
        return None
    return None


def _utf8(body: bytes, content_type: str | None) -> bool:
    """UTF-8 by declaration and header alike, and a type feedparser calls XML."""
    mime = (content_type or "").split(";")[0].strip().lower()
    if mime not in _MIMES:
        return False
    charset = _CHARSET.search(content_type or "")
    if charset and charset.group(1).lower() not in ("utf-8", "utf8"):
        return False
    if mime == "text/xml" and not charset:
        return False  # RFC 3023: us-ascii, whatever the document says
    if body.startswith((b"\xff\xfe", b"\xfe\xff", b"\x00", b"<\x00")):
        return False
    declared = _XML_DECLARATION.match(body[:200])
    if declared and declared.group(1).lower() not in (b"utf-8", b"utf8"):
        return False
    return True


# --------------------------------------------------------------------------- helpers


def _fix(text: str) -> str:
    """feedparser's last steps for every text value of a UTF-8 document.

    Both are no-ops on ASCII text, and the cp1252 table only maps U+0080-U+009F,
    so the common cases skip the (slow, per-character) work.
    """
    if text.isascii():
        return text
    try:
        text = text.encode("iso-8859-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        pass
    return text.translate(_cp1252) if _C1.search(text) else text


def _text(element: Any) -> str:
    """An element's text, stripped; child elements, comments or PIs make us decline."""
    if len(element):
        raise _Decline
    return _fix((element.text or "").strip())


def _attrs(element: Any, allowed: frozenset[str]) -> dict[str, str]:
    """Attributes as feedparser keeps them: lower-case names, rel and type lower-cased."""
    result: dict[str, str] = {}
    for key, value in element.attrib.items():
        if key not in allowed:
            raise _Decline
        name = key.lower()
        result[name] = value.lower() if name in ("rel", "type") else value
    return result


def _scope(element: Any, base: str, lang: str | None) -> tuple[str, str | None]:
    """The xml:base and xml:lang in force inside `element`, as feedparser tracks them."""
    if "base" in element.attrib or "lang" in element.attrib:
        raise _Decline  # feedparser honours bare base= and lang= too
    given = element.get(_XML_BASE)
    if given is not None:
        base = make_safe_absolute_uri(base, given) or base
    if _XML_LANG in element.attrib:
        lang = element.get(_XML_LANG) or None
    return base, lang


def _lang(lang: str | None) -> str | None:
    return lang.replace("_", "-") if lang else lang


def _skip(element: Any) -> None:
    """An element whose value parse.py never reads; but an entry inside it would count."""
    for inner in element.iter():
        if isinstance(inner.tag, str) and etree.QName(inner).localname.lower() in _ENTRY_TAGS:
            raise _Decline


def _no_scope(element: Any) -> None:
    if _XML_BASE in element.attrib or _XML_LANG in element.attrib:
        raise _Decline


def _once(seen: set[str], tag: str) -> None:
    if tag in seen:
        raise _Decline
    seen.add(tag)


def _children(element: Any) -> list[Any]:
    """Child elements; comments and processing instructions between them are harmless."""
    return [child for child in element if isinstance(child.tag, str)]


def _author_name(value: str) -> str:
    if "@" in value or not value:
        raise _Decline  # feedparser splits emails out of author strings its own way
    return value


def _date(entry: dict[str, Any], key: str, value: str) -> None:
    entry[key] = value
    entry[f"{key}_parsed"] = _parse_date(value)


def _detail(value: str, kind: str, lang: str | None) -> dict[str, Any]:
    return {"type": kind, "language": _lang(lang), "value": value}


def _content_type(element: Any, default: str) -> str:
    kind = _FeedParserMixin.map_content_type(element.get("type", default))
    if (
        kind not in ("text/plain", "text/html")
        or "mode" in element.attrib
        or "src" in element.attrib
    ):
        raise _Decline  # XHTML, base64, out-of-line content
    return str(kind)


# --------------------------------------------------------------------------- RSS 2.0


def _rss(root: Any, url: str) -> dict[str, Any]:
    if root.get("version") != "2.0":
        raise _Decline
    _attrs_ok(root, {"version"})
    base, lang = _scope(root, url, None)
    feed: dict[str, Any] = {}
    if lang:
        feed["language"] = lang.replace("_", "-")
    channels = _children(root)
    if len(channels) != 1 or channels[0].tag != "channel":
        raise _Decline
    channel = channels[0]
    _attrs_ok(channel, set())
    base, lang = _scope(channel, base, lang)
    entries: list[dict[str, Any]] = []
    seen: set[str] = set()
    for child in _children(channel):
        tag = child.tag
        if tag == "item":
            entries.append(_rss_item(child, base, lang))
        elif tag in _RSS_CHANNEL_SKIP:
            _skip(child)
        elif tag == "title":
            _once(seen, tag)
            _attrs_ok(child, set())
            _no_scope(child)
            value = _text(child)
            kind = "text/html" if _FeedParserMixin.looks_like_html(value) else "text/plain"
            feed["title"] = value
            feed["title_detail"] = _detail(value, kind, lang)
        elif tag == "link":
            _once(seen, tag)
            _attrs_ok(child, set())
            _no_scope(child)
            # feedparser's feed-level <link>: resolved, its "&name;" quirk but not
            # the entry-level "&amp;" one, and an href even when empty.
            value = _text(child)
            if value:
                value = _urljoin(base, value)
            value = _ENTITY_LIKE.sub(r"&\g<1>", value)
            feed["link"] = value
            feed.setdefault("links", []).append(
                {"rel": "alternate", "type": "text/html", "href": value}
            )
        elif tag == "language":
            _once(seen, tag)
            _attrs_ok(child, set())
            _no_scope(child)
            feed["language"] = _text(child)
        elif tag == f"{{{ATOM}}}link":
            _no_scope(child)
            attrs = _attrs(child, frozenset({"rel", "type", "href", "title", "hreflang"}))
            if attrs.get("rel", "alternate") == "alternate" or "href" not in attrs:
                raise _Decline
            attrs["href"] = _urljoin(base, attrs["href"])
            feed.setdefault("links", []).append(attrs)
        else:
            raise _Decline
    return {"feed": feed, "entries": entries, "version": "rss20", "bozo": False}


def _attrs_ok(element: Any, allowed: set[str]) -> None:
    for key in element.attrib:
        if key not in allowed and key not in (_XML_LANG, _XML_BASE):
            raise _Decline


def _rss_link(value: str, base: str) -> str:
    """An RSS <link>'s text as feedparser stores it: resolved, and its &amp; quirk."""
    if value:
        value = _urljoin(base, value)
    value = value.replace("&amp;", "&")
    return _ENTITY_LIKE.sub(r"&\g<1>", value)


def _rss_item(item: Any, base: str, lang: str | None) -> dict[str, Any]:
    _attrs_ok(item, set())
    item_base, item_lang = _scope(item, base, lang)
    entry: dict[str, Any] = {}
    seen: set[str] = set()
    has_content = False
    from_description = False
    for child in _children(item):
        tag = child.tag
        if tag in _RSS_ITEM_SKIP:
            _skip(child)
            continue
        base, lang = _scope(child, item_base, item_lang)
        if tag == "title":
            _once(seen, tag)
            _attrs_ok(child, set())
            value = _text(child)
            kind = "text/html" if _FeedParserMixin.looks_like_html(value) else "text/plain"
            entry["title"] = value
            entry["title_detail"] = _detail(value, kind, lang)
        elif tag == "link":
            _once(seen, tag)
            _attrs_ok(child, set())
            value = _rss_link(_text(child), base)
            entry["link"] = value
            link: dict[str, Any] = {"rel": "alternate", "type": "text/html"}
            if value:
                link["href"] = value
            entry.setdefault("links", []).append(link)
        elif tag == "guid":
            _once(seen, tag)
            _attrs_ok(child, {"isPermaLink"})
            is_link = child.get("isPermaLink", "true") == "true"
            value = _text(child)
            if is_link and value:
                value = _urljoin(base, value)
            entry["id"] = value
            entry.setdefault("guidislink", is_link and "link" not in entry)
            if is_link:
                entry.setdefault("link", value)
        elif tag == "description":
            _once(seen, tag)
            _attrs_ok(child, set())
            if "summary" in entry and not has_content:
                raise _Decline
            value = _text(child)
            entry["summary"] = value
            entry["summary_detail"] = _detail(value, "text/html", lang)
            from_description = True
        elif tag == f"{{{CONTENT}}}encoded":
            _once(seen, tag)
            _attrs_ok(child, set())
            has_content = True
            value = _text(child)
            entry.setdefault("content", []).append(_detail(value, "text/html", lang))
            entry.setdefault("summary", value)
        elif tag in ("pubDate", f"{{{ATOM}}}published"):
            _once(seen, "published")
            _attrs_ok(child, set())
            _date(entry, "published", _text(child))
        elif tag in (f"{{{DC}}}date", f"{{{ATOM}}}updated"):
            _once(seen, "updated")
            _attrs_ok(child, set())
            _date(entry, "updated", _text(child))
        elif tag == "category":
            _attrs_ok(child, {"domain"})
            value = _text(child)
            if value:
                entry.setdefault("tags", []).append({"term": value})
        elif tag == f"{{{DC}}}creator":
            _once(seen, tag)
            _attrs_ok(child, set())
            name = _author_name(_text(child))
            entry["author"] = name
            entry["author_detail"] = {"name": name}
        elif tag == "enclosure":
            attrs = _attrs(child, frozenset({"url", "type", "length"}))
            if "url" not in attrs:
                raise _Decline
            attrs["href"] = attrs.pop("url")
            attrs["rel"] = "enclosure"
            entry.setdefault("links", []).append(attrs)
        elif tag == f"{{{MEDIA}}}content":
            attrs = _attrs(
                child,
                frozenset(
                    {"url", "type", "medium", "width", "height", "fileSize", "isDefault", "lang"}
                    - {"lang"}
                ),
            )
            entry.setdefault("media_content", []).append(attrs)
            for inner in _children(child):
                if inner.tag not in _MEDIA_CONTENT_CHILDREN:
                    raise _Decline
                _no_scope(inner)
                if inner.tag == f"{{{MEDIA}}}description":
                    # feedparser files the first alt text after the <description> as
                    # text/plain content (which `_content` leaves out when the item has
                    # media) and lets the next ones overwrite summary_detail.
                    _attrs_ok(inner, {"type"})
                    kind = _FeedParserMixin.map_content_type(inner.get("type", "text/plain"))
                    value = _text(inner)
                    if kind != "text/plain" or _FeedParserMixin.looks_like_html(value):
                        raise _Decline
                    if "summary" not in entry:
                        raise _Decline
                    if not has_content:
                        has_content = True
                        entry.setdefault("content", []).append(_detail(value, kind, lang))
                    elif from_description:
                        entry["summary_detail"] = _detail(value, kind, lang)
                    else:
                        raise _Decline
            if child.text and child.text.strip():
                raise _Decline
        elif tag == f"{{{MEDIA}}}thumbnail":
            attrs = _attrs(child, frozenset({"url", "width", "height", "time"}))
            if len(child) or (child.text and child.text.strip()) or "url" not in attrs:
                raise _Decline
            entry.setdefault("media_thumbnail", []).append(attrs)
        else:
            raise _Decline
    return entry


# --------------------------------------------------------------------------- Atom 1.0


def _atom(root: Any, url: str) -> dict[str, Any]:
    _attrs_ok(root, set())
    base, lang = _scope(root, url, None)
    feed: dict[str, Any] = {}
    if lang:
        feed["language"] = lang.replace("_", "-")
    entries: list[dict[str, Any]] = []
    seen: set[str] = set()
    for child in _children(root):
        tag = child.tag
        if tag == f"{{{ATOM}}}entry":
            entries.append(_atom_entry(child, base, lang))
            continue
        child_base, child_lang = _scope(child, base, lang)
        if tag == f"{{{ATOM}}}id":
            _once(seen, tag)
            _attrs_ok(child, set())
            value = _text(child)
            if value:
                value = _urljoin(child_base, value)
            feed["id"] = value
            feed.setdefault("guidislink", "link" not in feed)
            feed.setdefault("link", value)
        elif tag in _ATOM_FEED_SKIP:
            _skip(child)
        elif tag in (f"{{{ATOM}}}title", f"{{{ATOM}}}link", f"{{{ATOM}}}author"):
            if tag == f"{{{ATOM}}}author":
                _once(seen, tag)
            _atom_common(feed, child, seen, child_base, child_lang)
        else:
            raise _Decline
    return {"feed": feed, "entries": entries, "version": "atom10", "bozo": False}


def _atom_common(
    context: dict[str, Any], child: Any, seen: set[str], base: str, lang: str | None
) -> None:
    """title, link and author, the same in a feed and an entry (scope: the child's own)."""
    tag = child.tag
    if tag == f"{{{ATOM}}}title":
        _once(seen, tag)
        _attrs_ok(child, {"type"})
        kind = _content_type(child, "text")
        value = _text(child)
        context["title"] = value
        context["title_detail"] = _detail(value, kind, lang)
    elif tag == f"{{{ATOM}}}link":
        if len(child) or (child.text and child.text.strip()):
            raise _Decline
        attrs = _attrs(child, frozenset({"rel", "type", "href", "title", "length", "hreflang"}))
        if "href" not in attrs:
            raise _Decline
        attrs.setdefault("rel", "alternate")
        attrs.setdefault("type", "application/atom+xml" if attrs["rel"] == "self" else "text/html")
        attrs["href"] = _urljoin(base, attrs["href"])
        context.setdefault("links", []).append(attrs)
        if (
            attrs["rel"] == "alternate"
            and _FeedParserMixin.map_content_type(attrs["type"]) in _HTML_TYPES
        ):
            context["link"] = attrs["href"]
    else:  # author
        _attrs_ok(child, set())
        detail: dict[str, str] = {}
        names: set[str] = set()
        for inner in _children(child):
            if inner.tag not in _AUTHOR_CHILDREN:
                raise _Decline
            _once(names, inner.tag)
            _no_scope(inner)
            if inner.tag == "{http://schemas.google.com/g/2005}image":
                continue
            _attrs_ok(inner, set())
            key = {"name": "name", "email": "email", "uri": "href"}[etree.QName(inner).localname]
            detail[key] = _text(inner)
        if child.text and child.text.strip():
            raise _Decline
        name = detail.get("name")
        if not name:
            raise _Decline
        context["author_detail"] = detail
        context["author"] = f"{name} ({detail['email']})" if detail.get("email") else name


def _atom_entry(element: Any, base: str, lang: str | None) -> dict[str, Any]:
    _attrs_ok(element, set())
    entry_base, entry_lang = _scope(element, base, lang)
    entry: dict[str, Any] = {}
    seen: set[str] = set()
    has_content = False
    for child in _children(element):
        tag = child.tag
        if tag in _ATOM_ENTRY_SKIP:
            _skip(child)
            continue
        base, lang = _scope(child, entry_base, entry_lang)
        if tag in (f"{{{ATOM}}}title", f"{{{ATOM}}}link", f"{{{ATOM}}}author"):
            if tag == f"{{{ATOM}}}author":
                _once(seen, tag)
            _atom_common(entry, child, seen, base, lang)
        elif tag == f"{{{ATOM}}}id":
            _once(seen, tag)
            _attrs_ok(child, set())
            value = _text(child)
            if value:
                value = _urljoin(base, value)
            entry["id"] = value
            entry.setdefault("guidislink", "link" not in entry)
            entry.setdefault("link", value)
        elif tag == f"{{{ATOM}}}content":
            _once(seen, tag)
            _attrs_ok(child, {"type"})
            kind = _content_type(child, "text/plain")
            value = _text(child)
            has_content = True
            entry.setdefault("content", []).append(_detail(value, kind, lang))
            entry.setdefault("summary", value)
        elif tag == f"{{{ATOM}}}summary":
            _once(seen, tag)
            _attrs_ok(child, {"type"})
            if "summary" in entry and not has_content:
                raise _Decline
            kind = _content_type(child, "text/plain")
            value = _text(child)
            entry["summary"] = value
            entry["summary_detail"] = _detail(value, kind, lang)
        elif tag == f"{{{ATOM}}}published":
            _once(seen, tag)
            _attrs_ok(child, set())
            _date(entry, "published", _text(child))
        elif tag == f"{{{ATOM}}}updated":
            _once(seen, tag)
            _attrs_ok(child, set())
            _date(entry, "updated", _text(child))
        elif tag == f"{{{ATOM}}}category":
            attrs = _attrs(child, frozenset({"term", "scheme", "label"}))
            if len(child) or (child.text and child.text.strip()):
                raise _Decline
            if attrs.get("term"):
                entry.setdefault("tags", []).append({"term": attrs["term"]})
        elif tag == f"{{{MEDIA}}}thumbnail":
            entry.setdefault("media_thumbnail", []).append(_thumbnail(child))
        elif tag == f"{{{YOUTUBE}}}videoId":
            _once(seen, tag)
            _attrs_ok(child, set())
            entry["yt_videoid"] = _text(child)
        elif tag == f"{{{MEDIA}}}group":
            _once(seen, tag)
            _attrs_ok(child, set())
            _media_group(entry, child, lang)
        else:
            raise _Decline
    return entry


def _thumbnail(element: Any) -> dict[str, str]:
    attrs = _attrs(element, frozenset({"url", "width", "height", "time"}))
    if len(element) or (element.text and element.text.strip()) or "url" not in attrs:
        raise _Decline
    return attrs


def _media_group(entry: dict[str, Any], group: Any, lang: str | None) -> None:
    """YouTube's <media:group>: the video, its thumbnail and its description.

    feedparser ignores the group itself; a <media:title> after the entry's
    <title> is dropped, and <media:description> is the entry's (HTML) summary.
    """
    if group.text and group.text.strip():
        raise _Decline
    for inner in _children(group):
        _no_scope(inner)
        tag = inner.tag
        if tag == f"{{{MEDIA}}}title":
            _attrs_ok(inner, set())
            _text(inner)
            if "title" not in entry:
                raise _Decline
        elif tag == f"{{{MEDIA}}}content":
            attrs = _attrs(inner, frozenset({"url", "type", "medium", "width", "height"}))
            if len(inner) or (inner.text and inner.text.strip()):
                raise _Decline
            entry.setdefault("media_content", []).append(attrs)
        elif tag == f"{{{MEDIA}}}thumbnail":
            entry.setdefault("media_thumbnail", []).append(_thumbnail(inner))
        elif tag == f"{{{MEDIA}}}description":
            _attrs_ok(inner, set())
            if "summary" in entry:
                raise _Decline
            value = _text(inner)
            entry["summary"] = value
            entry["summary_detail"] = _detail(value, "text/html", lang)
        elif tag == f"{{{MEDIA}}}community":
            _skip(inner)
        else:
            raise _Decline
