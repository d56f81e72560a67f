"""The one door where untrusted HTML, URLs and text from feeds become safe.

Everything a feed gives us is hostile until it has passed one of these pure
functions:

    sanitize_html   HTML -> HTML through one nh3 (ammonia) allowlist
    safe_url        any URL -> absolute http/https (or mailto: for links), or None
    clean_text      text -> NFC text without control characters, one line, trimmed
    html_to_text    HTML -> readable plain text (then clean_text)
    excerpt         HTML or text -> a short plain-text teaser
    sanitize_entry  a ParsedEntry with all of the above applied

What this module does *not* do: decide whether remote images may be loaded
(render's `allow_remote_images`), escape for a template (Jinja autoescape does
that), or fetch anything.  Templates may mark as safe only what came out of
`sanitize_html`.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from dataclasses import replace
from urllib.parse import quote, urljoin, urlsplit

import nh3

# lxml ships no type hints and pyproject has no mypy override for it (yet).
from lxml import etree

from .models import Media, ParsedEntry

__all__ = [
    "clean_text",
    "excerpt",
    "html_to_text",
    "safe_url",
    "sanitize_entry",
    "sanitize_html",
]

TITLE_MAX = 300
SUMMARY_MAX = 1000
AUTHOR_MAX = 200
TAG_MAX = 100
# Longer URLs are nearly always data smuggled in a query string; browsers cope
# with about this much.
URL_MAX = 8192

# --------------------------------------------------------------------------- text

# XML 1.0 `Char` (https://www.w3.org/TR/xml/#charsets) minus the C0/C1 controls
# and DEL, which are legal XML but never wanted in a title.  Tab, LF and CR are
# kept here because whitespace is collapsed separately.
_NOT_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
# What sanitize_html must strip: only what XML 1.0 forbids (an Atom feed embeds it).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _strip_invalid(text: str, pattern: re.Pattern[str] = _NOT_TEXT) -> str:
    return pattern.sub("", text)


def clean_text(text: str, max_length: int | None = None) -> str:
    """Normalise untrusted plain text: one line, NFC, no control characters.

    Drops NUL, C0 and C1 controls, lone surrogates and anything else XML 1.0
    forbids, collapses every run of whitespace to one space and trims.  Entities
    are *not* decoded: this is a normaliser for text that is already text (use
    `html_to_text` for HTML).  With `max_length`, the result is at most that
    many characters, cut at a word boundary and ended with "…".
    """
    text = _strip_invalid(text)
    text = unicodedata.normalize("NFC", text)
    # str.split() splits on exactly the characters `\s` matches in a str pattern
    # (str.isspace), and is several times faster than re.sub on long bodies.
    text = " ".join(text.split())
    if max_length is not None:
        text = _truncate(text, max_length)
    return text


def _truncate(text: str, max_length: int) -> str:
    """Cut at a word boundary so the result, "…" included, fits `max_length`."""
    if len(text) <= max_length:
        return text
    if max_length <= 1:
        return "…"[:max_length]
    cut = text[: max_length - 1]
    # Back off to the last space unless that throws most of the text away (one
    # very long word, a URL): then a mid-word cut reads better than nothing.
    space = cut.rfind(" ")
    if space >= max_length // 2:
        cut = cut[:space]
    cut = cut.rstrip(" ,;:-–—([{\"'")
    return (cut + "…") if cut else "…"


# Elements whose text is not part of what a reader sees.
_INVISIBLE = frozenset({"script", "style", "head", "title", "noscript", "template", "svg", "math"})
# Elements that start a new line when a browser lays them out.
_BLOCKS = frozenset(
    {
        "address", "article", "aside", "blockquote", "br", "caption", "dd", "details",
        "div", "dl", "dt", "figcaption", "figure", "footer", "h1", "h2", "h3", "h4",
        "h5", "h6", "header", "hr", "li", "main", "nav", "ol", "p", "pre", "section",
        "summary", "table", "td", "th", "tr", "ul",
    }
)  # fmt: skip


# huge_tree lifts libxml2's nesting limit from 256 to 2048 levels, so deeply nested
# (but real) markup keeps its text; the body size is already capped by fetch.
# lxml's plain parser, not lxml.html's, whose Python element-class lookup runs for
# every element touched (a tenth of a build's html_to_text time, issue 8).
_HTML_PARSER = etree.HTMLParser(huge_tree=True)


def html_to_text(html: str, max_length: int | None = None) -> str:
    """Readable plain text from an HTML fragment or document, then `clean_text`.

    Block elements become line breaks (which `clean_text` then folds to spaces, so
    "<p>a</p><p>b</p>" reads "a b", not "ab"); entities are decoded; scripts,
    styles and other invisible parts are dropped.  Never raises: text that lxml
    cannot parse at all gives "", and text nested over 2048 levels deep is lost.

    The walk over the tree is a small XSLT stylesheet, run by libxslt: this runs
    for every entry at ingestion and for every cross-post comparison in a build,
    where a Python walk over every node was most of its cost (issue 8).
    """
    html = _strip_invalid(html)
    if "<" not in html and "&" not in html:
        return clean_text(html, max_length)
    try:
        root = etree.fromstring(html, _HTML_PARSER)
    except (etree.ParserError, ValueError):
        return ""
    if root is None:  # nothing but a comment, say
        return ""
    return clean_text(str(_text_transform()(root)), max_length)


# Invisible elements, comments and processing instructions give nothing; a block
# gives a line break, its content, a line break; text is copied (XSLT's default).
_TEXT_XSLT = f"""\
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:output method="text" encoding="UTF-8"/>
  <xsl:template match="{"|".join(sorted(_INVISIBLE))}|comment()|processing-instruction()"/>
  <xsl:template match="{"|".join(sorted(_BLOCKS))}">
    <xsl:text>&#10;</xsl:text><xsl:apply-templates/><xsl:text>&#10;</xsl:text>
  </xsl:template>
</xsl:stylesheet>
"""
_local = threading.local()


def _text_transform() -> etree.XSLT:
    """This thread's compiled stylesheet (lxml's XSLT objects are not shared safely)."""
    transform: etree.XSLT | None = getattr(_local, "text_transform", None)
    if transform is None:
        transform = _local.text_transform = etree.XSLT(etree.XML(_TEXT_XSLT))
    return transform


def excerpt(html_or_text: str, max_length: int = 280) -> str:
    """A short plain-text teaser for lists and emails, from HTML or text."""
    return html_to_text(html_or_text, max_length)


# --------------------------------------------------------------------------- URLs

_URL_SCHEMES = frozenset({"http", "https", "mailto"})
_URL_EDGES = re.compile("^[\x00-\x20]+|[\x00-\x20]+$")
_URL_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_URL_SPACE = re.compile(r"\s")
# Characters that must never appear raw in an attribute or a header; the rest of
# the URL is left as the feed wrote it (IRIs keep their non-ASCII characters).
_URL_ESCAPES = str.maketrans({'"': "%22", "<": "%3C", ">": "%3E", "`": "%60", " ": "%20"})
# Most URLs in feeds are already in the form `safe_url` gives: absolute, lower-case
# http(s) scheme, a plain host name with at most a 4-digit port, and nothing after
# it that is whitespace, a control, non-ASCII or one of the escaped characters.
# Such a URL comes back unchanged (tests/test_properties.py checks that claim).
_PLAIN_URL = re.compile(r"https?://[A-Za-z0-9.-]+(?::[0-9]{1,4})?(?:[/?#][!#-;=?-_a-~]*)?")
# A site-relative link ("/2026/03/post") in the same characters, resolved against
# such a URL.
_PLAIN_PATH = re.compile(r"/(?!/)[!#-;=?-_a-~]*")


def safe_url(
    url: str | None, base_url: str | None = None, *, allow_mailto: bool = True
) -> str | None:
    """Return `url` as an absolute http(s) URL (or mailto:), or None if it is not safe.

    Whitespace and control characters are removed the way browsers do (WHATWG URL:
    leading/trailing C0 and spaces trimmed, tabs and newlines dropped anywhere), so
    "java\\tscript:" cannot slip past the scheme check.  Relative URLs are
    resolved against `base_url`; a relative URL with no usable base is None,
    except protocol-relative ones ("//host/x"), which become https.  mailto: is
    for links only: media and images pass `allow_mailto=False`.
    """
    if not url or not isinstance(url, str):
        return None
    # Fast paths: what `_checked_url` would return, without its cost (issue 8).
    if len(url) <= URL_MAX:
        if _PLAIN_URL.fullmatch(url):
            return url
        if base_url and _PLAIN_PATH.fullmatch(url) and _PLAIN_URL.fullmatch(base_url):
            joined = urljoin(base_url, url)
            if len(joined) <= URL_MAX and _PLAIN_URL.fullmatch(joined):
                return joined
    return _checked_url(url, base_url, allow_mailto=allow_mailto)


def _checked_url(url: str, base_url: str | None, *, allow_mailto: bool) -> str | None:
    """`safe_url` for any string: every step spelled out."""
    url = _URL_CONTROLS.sub("", _URL_EDGES.sub("", url).strip())
    if not url or len(url) > URL_MAX:
        return None
    schemes = _URL_SCHEMES if allow_mailto else _URL_SCHEMES - {"mailto"}
    try:
        parts = urlsplit(url)
        if not parts.scheme:
            if base_url:
                base = safe_url(base_url, allow_mailto=False)
                if base is None:
                    return None
                url = urljoin(base, url)
            elif url.startswith("//"):
                url = "https:" + url
            else:
                return None
            parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in schemes:
            return None
        if scheme in ("http", "https"):
            if not parts.hostname:
                return None
            _ = parts.port  # raises ValueError for a port out of range
        elif not parts.path:  # a bare "mailto:"
            return None
    except ValueError:  # "http://[::1", ports out of range and the like
        return None
    # Normalise the scheme's case so later string checks (and readers) agree.
    url = scheme + url[len(parts.scheme) :]
    url = _URL_SPACE.sub(lambda m: quote(m.group()), url)
    return url.translate(_URL_ESCAPES)


# --------------------------------------------------------------------------- HTML

_TAGS = frozenset(
    {
        "p", "br", "a", "em", "strong", "b", "i", "u", "s", "blockquote", "q", "cite",
        "code", "pre", "ul", "ol", "li", "dl", "dt", "dd", "h1", "h2", "h3", "h4", "h5",
        "h6", "img", "figure", "figcaption", "table", "thead", "tbody", "tr", "th", "td",
        "caption", "hr", "sub", "sup", "abbr", "span", "small", "del", "ins",
    }
)  # fmt: skip
_ATTRIBUTES = {
    "*": {"lang", "dir"},
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan"},
    "abbr": {"title"},
}
# Removed together with everything inside them (the default keeps the text of a
# tag it drops, which for these is code or a fallback that makes no sense alone).
_CLEAN_CONTENT = frozenset(
    {
        "script", "style", "noscript", "template", "iframe", "object", "embed", "applet",
        "svg", "math", "form", "select", "textarea", "button", "head", "title",
    }
)  # fmt: skip
_LINK_REL = "nofollow ugc noopener"
_NUMBER = re.compile(r"\s*(\d{1,5})\s*(?:px)?\s*")
_IMG = re.compile(r'<img(?:\s+[a-z-]+(?:="[^"]*")?)*\s*/?>')
_ATTR = re.compile(r'([a-z-]+)="([^"]*)"')
_HEADING = re.compile(r"<(/?)h([1-6])\b")
# Web-bug URLs, seen with or without declared 1x1 sizes.
_TRACKER = re.compile(
    r"/(?:pixel|beacon|track/open|wf/open)(?:\.gif|\.png|/|\?|$)"
    r"|feedburner\.com/~r/|feeds\.feedburner\.com/~ff/|stats\.wordpress\.com/b\.gif"
    r"|pixel\.wp\.com/|/1x1\.(?:gif|png)",
    re.IGNORECASE,
)


def sanitize_html(html: str, base_url: str | None = None) -> str:
    """Return `html` with everything but a small reading allowlist removed (nh3).

    Kept: paragraphs, links, emphasis, lists, quotes, code, headings (demoted two
    levels so a post never outranks the page's own headings), images, tables.
    Removed: scripts, styles and `style=`/`class=`/`id=`, event handlers, frames,
    objects, forms, meta/base/link, SVG and MathML, and any URL that is not
    http/https (or mailto: on a link), however it is spelled or encoded.
    Relative URLs are resolved against `base_url` (via `safe_url`); links get
    rel="nofollow ugc noopener"; tracking pixels and images left without a safe
    src are dropped.  The output is an HTML fragment with no characters XML 1.0
    forbids, so it can be embedded in Atom as escaped HTML and in a page.
    """
    if not html:
        return ""
    html = _strip_invalid(html, _NOT_XML)

    def attribute_filter(tag: str, attr: str, value: str) -> str | None:
        if attr == "href":
            return safe_url(value, base_url)
        if attr == "src":
            return safe_url(value, base_url, allow_mailto=False)
        if attr in ("width", "height", "colspan", "rowspan"):
            match = _NUMBER.fullmatch(value)
            return match.group(1) if match else None
        if attr == "dir":
            return value.lower() if value.lower() in ("ltr", "rtl", "auto") else None
        return value

    cleaned: str = nh3.clean(
        html,
        tags=set(_TAGS),
        clean_content_tags=set(_CLEAN_CONTENT),
        attributes={k: set(v) for k, v in _ATTRIBUTES.items()},
        attribute_filter=attribute_filter,
        strip_comments=True,
        link_rel=_LINK_REL,
        url_schemes=set(_URL_SCHEMES),
    )
    # Character references such as "&#1;" are decoded by the parser, so strip again.
    cleaned = _strip_invalid(cleaned, _NOT_XML)
    cleaned = _IMG.sub(_keep_image, cleaned)
    cleaned = _HEADING.sub(_demote_heading, cleaned)
    return cleaned.strip()


def _keep_image(match: re.Match[str]) -> str:
    """Drop an <img> with no safe src, or one that is a tracking pixel.

    nh3's output is normalised (lower-case names, double-quoted values with '"'
    and '>' escaped), which is what makes matching it with a pattern reliable.
    """
    attrs = dict(_ATTR.findall(match.group()))
    src = attrs.get("src", "")
    if not src:
        return ""
    width, height = attrs.get("width"), attrs.get("height")
    tiny = [int(v) <= 1 for v in (width, height) if v is not None and v.isdigit()]
    if tiny and all(tiny):
        return ""
    if _TRACKER.search(src) and not tiny:  # a web-bug URL with no declared size
        return ""
    return match.group()


def _demote_heading(match: re.Match[str]) -> str:
    return f"<{match.group(1)}h{min(int(match.group(2)) + 2, 6)}"


# --------------------------------------------------------------------------- entries


def _clean_optional(text: str | None, max_length: int | None = None) -> str | None:
    if text is None:
        return None
    return clean_text(text, max_length) or None


def _safe_media(media: Media, base_url: str | None) -> Media | None:
    url = safe_url(media.url, base_url, allow_mailto=False)
    if url is None:
        return None
    return replace(
        media,
        url=url,
        type=_clean_optional(media.type, 100),
        title=_clean_optional(media.title, TITLE_MAX),
    )


def sanitize_entry(entry: ParsedEntry, base_url: str | None) -> ParsedEntry:
    """Return a copy of `entry` that is safe to store and render.

    Content goes through `sanitize_html`, the link and media URLs through
    `safe_url` (media with no safe URL are dropped), and every text field through
    `clean_text` with a length cap.  An empty title after cleaning keeps the
    cleaned original's fallback of the link, so a title is never blank.
    """
    media = tuple(m for m in (_safe_media(m, base_url) for m in entry.media) if m is not None)
    link = safe_url(entry.link, base_url)
    title = clean_text(entry.title, TITLE_MAX) or clean_text(link or "", TITLE_MAX) or "Post"
    tags: list[str] = []
    for tag in entry.tags:
        cleaned = clean_text(tag, TAG_MAX)
        if cleaned and cleaned not in tags:
            tags.append(cleaned)
    return replace(
        entry,
        guid=_clean_optional(entry.guid),
        link=link,
        title=title,
        summary=clean_text(entry.summary, SUMMARY_MAX),
        content=sanitize_html(entry.content, base_url),
        author=_clean_optional(entry.author, AUTHOR_MAX),
        language=_clean_optional(entry.language, 35),
        media=media,
        tags=tuple(tags),
    )
