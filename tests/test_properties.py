"""Property-based tests (hypothesis): no input makes the untrusted-input door raise
or let active content through.

Covered: sanitize.sanitize_html / safe_url / clean_text / excerpt, URL
canonicalisation (canonical.canonical_url, link_key), and parse.parse_feed
followed by sanitize_entry on generated feeds.  Inputs mix arbitrary text with
fragments known to be dangerous (script, event handlers, javascript: in its
many spellings, SVG, styles), so the search spends its time near the edges.
Example counts are modest so the module runs in a few seconds.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html import escape

import lxml.html
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregator.canonical import canonical_url, link_key
from aggregator.errors import ParseError
from aggregator.parse import parse_feed
from aggregator.sanitize import (
    _checked_url,
    clean_text,
    excerpt,
    safe_url,
    sanitize_entry,
    sanitize_html,
)

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --------------------------------------------------------------------------- strategies

SCHEMES = [
    "javascript:",
    "JaVaScRiPt:",
    "java\tscript:",
    "java\nscript:",
    " javascript:",
    "\x01javascript:",
    "jav&#x61;script:",
    "&#106;avascript:",
    "javascript&colon;",
    "vbscript:",
    "data:text/html,",
    "data:image/svg+xml,",
    "file:///",
    "http://",
    "https://",
    "//",
    "mailto:",
    "",
]
TAGS = [
    "script", "img", "a", "svg", "iframe", "object", "embed", "form", "input", "meta",
    "base", "link", "style", "math", "p", "div", "span", "table", "td", "h1", "video",
    "audio", "source", "button", "details", "template", "noscript", "xmp", "plaintext",
]  # fmt: skip
ATTRIBUTES = [
    "onerror", "onload", "onclick", "ONMOUSEOVER", "href", "src", "srcset", "action",
    "formaction", "data", "style", "class", "id", "width", "height", "http-equiv",
    "content", "xlink:href", "background", "poster", "rel", "target",
]  # fmt: skip
PAYLOADS = [
    "alert(1)",
    "position:fixed;top:0;left:0;width:100%;height:100%",
    "expression(alert(1))",
    "url(javascript:alert(1))",
    "0;url=javascript:alert(1)",
    "1",
    "",
    '"><script>alert(1)</script>',
    "'onmouseover='alert(1)",
]

urls = st.builds(
    lambda scheme, rest: scheme + rest,
    st.sampled_from(SCHEMES),
    st.one_of(st.sampled_from(PAYLOADS + ["example.org/x?a=1#f"]), st.text(max_size=30)),
)
attribute = st.builds(
    lambda name, value, quote: f" {name}={quote}{value}{quote}",
    st.sampled_from(ATTRIBUTES),
    st.one_of(urls, st.sampled_from(PAYLOADS)),
    st.sampled_from(['"', "'", ""]),
)
element = st.builds(
    lambda tag, attrs, text, close: (
        f"<{tag}{''.join(attrs)}>{text}" + (f"</{tag}>" if close else "")
    ),
    st.sampled_from(TAGS),
    st.lists(attribute, max_size=3),
    st.one_of(st.sampled_from(PAYLOADS), st.text(max_size=20)),
    st.booleans(),
)
hostile_html = st.lists(st.one_of(element, st.text(max_size=30)), max_size=8).map("".join)
any_text = st.one_of(st.text(), hostile_html)

# --------------------------------------------------------------------------- checks

BAD_SCHEME = re.compile(r"^\s*(?:javascript|vbscript|data|file):", re.I)
FORBIDDEN_TAGS = {
    "script", "iframe", "object", "embed", "form", "input", "button", "meta", "base",
    "link", "style", "svg", "math", "template", "frame", "frameset", "applet",
}  # fmt: skip
CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def assert_inert(html: str) -> None:
    """No element, attribute or URL in `html` can run code or restyle the page."""
    assert "<script" not in html.lower()
    if not html.strip():
        return
    root = lxml.html.fragment_fromstring(html, create_parent="div")
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        assert element.tag.lower() not in FORBIDDEN_TAGS, html
        for name, value in element.attrib.items():
            assert not name.lower().startswith("on"), html
            assert name.lower() not in ("style", "class", "id", "srcset", "action"), html
            if name.lower() in ("href", "src"):
                assert not BAD_SCHEME.match(value), html
                assert value.startswith(("http://", "https://", "mailto:")), html
        if element.tag == "a" and element.get("href"):
            assert element.get("rel") == "nofollow ugc noopener", html


# --------------------------------------------------------------------------- sanitize


@FAST
@given(any_text, st.one_of(st.none(), urls))
def test_sanitize_html_never_raises_or_emits_active_content(html, base):
    cleaned = sanitize_html(html, base)
    assert_inert(cleaned)
    assert "\x00" not in cleaned


@FAST
@given(st.one_of(st.none(), urls, st.text()), st.one_of(st.none(), urls))
def test_safe_url_gives_an_http_or_mailto_url_or_none(url, base):
    result = safe_url(url, base)
    if result is not None:
        assert result.startswith(("http://", "https://", "mailto:"))
        # What could end an attribute or a header; "'" is legal in URLs and escaped on output.
        assert not re.search(r"[\s\"<>`\x00-\x1f\x7f]", result), result
    media = safe_url(url, base, allow_mailto=False)
    assert media is None or media.startswith(("http://", "https://"))


# Strings shaped like the URLs the fast path takes, with every ASCII character and
# a few others in every part, so both sides of each character class get tried.
_ascii = st.text(
    st.characters(min_codepoint=0, max_codepoint=0x7F) | st.sampled_from("é\u00a0\u2028")
)
plain_looking = st.builds(
    lambda scheme, host, port, rest: f"{scheme}://{host}{port}{rest}",
    st.sampled_from(["http", "https", "HTTP", "javascript", "ftp"]),
    st.from_regex(r"[A-Za-z0-9.-]{1,12}", fullmatch=True) | _ascii,
    st.sampled_from(["", ":", ":0", ":80", ":8080", ":99999", ":x"]),
    st.from_regex(r"[/?#][ -~]{0,20}", fullmatch=True) | _ascii,
)


@FAST
@given(plain_looking, st.one_of(st.none(), urls))
def test_safe_url_fast_path_returns_what_the_full_check_returns(url, base):
    assert safe_url(url, base) == _checked_url(url, base, allow_mailto=True)
    assert safe_url(url, base, allow_mailto=False) == _checked_url(url, base, allow_mailto=False)


@FAST
@given(st.from_regex(r"/[ -~]{0,20}", fullmatch=True) | _ascii, plain_looking)
def test_safe_url_fast_path_for_relative_links_returns_what_the_full_check_returns(url, base):
    assert safe_url(url, base) == _checked_url(url, base, allow_mailto=True)
    assert safe_url(url, base, allow_mailto=False) == _checked_url(url, base, allow_mailto=False)


@FAST
@given(any_text, st.integers(min_value=0, max_value=400))
def test_clean_text_and_excerpt_give_one_short_line_without_controls(text, limit):
    for result in (clean_text(text, limit), excerpt(text, max(limit, 1))):
        assert len(result) <= max(limit, 1)
        assert not CONTROL.search(result)
        assert "\n" not in result and "\r" not in result
        assert result == result.strip()


# --------------------------------------------------------------------------- URLs


@FAST
@given(st.one_of(urls, st.text()))
def test_canonical_url_and_link_key_never_raise(url):
    canonical = canonical_url(url)
    assert isinstance(canonical, str)
    assert isinstance(link_key(url), str)


@FAST
@given(
    st.sampled_from(["http", "https", "HTTP"]),
    st.from_regex(r"(www\.|m\.|amp\.)?[a-z]{1,10}\.(org|uk|example)", fullmatch=True),
    st.sampled_from(["", ":80", ":443", ":8080"]),
    st.lists(st.from_regex(r"[a-z0-9%.-]{0,8}", fullmatch=True), max_size=3),
    st.lists(
        st.tuples(
            st.sampled_from(["utm_source", "fbclid", "id", "page", "q", "amp"]),
            st.from_regex(r"[a-z0-9]{0,5}", fullmatch=True),
        ),
        max_size=3,
    ),
)
def test_canonical_url_is_stable_and_keeps_a_safe_url_safe(scheme, host, port, path, query):
    url = f"{scheme}://{host}{port}/{'/'.join(path)}"
    if query:
        url += "?" + "&".join(f"{k}={v}" for k, v in query)
    canonical = canonical_url(url)
    assert canonical_url(canonical) == canonical
    assert link_key(canonical) == link_key(url)
    assert safe_url(canonical) is not None
    assert "utm_source" not in canonical and "fbclid" not in canonical


WRAPPERS = [
    "https://fed.brid.gy/r/",
    "https://www.google.com/amp/s/",
    "https://www.google.com/amp/",
    "https://example-org.cdn.ampproject.org/c/s/",
    "https://example.org/",
]


@FAST
@given(st.sampled_from(WRAPPERS), urls)
def test_unwrapping_a_safe_link_never_gives_an_unsafe_one(wrapper, inner):
    # Bridgy and AMP links are unwrapped to the page they point at; a wrapped
    # javascript: or data: URL must not come out as a working link.
    url = safe_url(wrapper + inner)
    if url is None:
        return
    canonical = canonical_url(url)
    assert not BAD_SCHEME.match(canonical), canonical
    assert canonical.startswith(("http://", "https://")), canonical


# --------------------------------------------------------------------------- parse


def _rss(title: str, body: str, link: str, date: str, guid: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>{escape(title)}</title><link>https://feed.example/</link>"
        f"<item><title>{escape(title)}</title><link>{escape(link)}</link>"
        f"<guid>{escape(guid)}</guid><pubDate>{escape(date)}</pubDate>"
        f"<description>{escape(body)}</description></item>"
        f"<item><title>second</title><guid>{escape(guid)}</guid></item>"
        "</channel></rss>"
    ).encode("utf-8", errors="surrogatepass")


dates = st.one_of(
    st.datetimes(timezones=st.just(UTC)).map(lambda d: d.strftime("%a, %d %b %Y %H:%M:%S +0000")),
    st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat()),
    st.sampled_from(["", "yesterday", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"]),
    st.text(max_size=20),
)


@FAST
@given(st.text(max_size=200), any_text, urls, dates, st.text(max_size=20))
def test_parsed_and_sanitised_feed_is_normalised_and_inert(title, body, link, date, guid):
    try:
        parsed = parse_feed(
            _rss(title, body, link, date, guid), url="https://feed.example/rss", now=NOW
        )
    except ParseError:
        return
    for raw in parsed.entries:
        entry = sanitize_entry(raw, raw.link or "https://feed.example/rss")
        assert_inert(entry.content)
        assert entry.title and not CONTROL.search(entry.title) and len(entry.title) <= 300
        assert not CONTROL.search(entry.summary)
        assert entry.link is None or safe_url(entry.link) == entry.link
        for moment in (entry.published, entry.updated):
            if moment is not None:
                assert moment.tzinfo is not None
                assert datetime(1990, 1, 1, tzinfo=UTC) <= moment <= NOW + timedelta(days=1)
    guids = [e.guid for e in parsed.entries if e.guid]
    assert len(guids) == len(set(guids))


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=2000))
def test_any_bytes_parse_or_raise_parse_error(body):
    try:
        parse_feed(body, url="https://feed.example/", now=NOW)
    except ParseError as exc:
        assert exc.info.message
