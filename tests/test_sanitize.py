"""The one door: hostile HTML, URLs and text never get through sanitize.py."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.models import Media, ParsedEntry
from aggregator.sanitize import (
    clean_text,
    excerpt,
    html_to_text,
    safe_url,
    sanitize_entry,
    sanitize_html,
)

BASE = "https://blog.example.org/2026/11/post/"

# Patterns that must never appear in sanitised HTML.
EVENT_HANDLER = re.compile(r"\son\w+\s*=", re.I)
FORBIDDEN = re.compile(
    r"<\s*(script|iframe|object|embed|form|input|button|meta|base|link|svg|math|style)\b"
    r"|javascript:|vbscript:|data:|\sstyle\s*=|\sclass\s*=|\sid\s*=",
    re.I,
)

HOSTILE = [
    ("script", "<p>hi</p><script>alert(1)</script>"),
    ("script mixed case", "<ScRiPt>alert(1)</sCrIpT>"),
    ("script in attribute-less split", "<scr<script>ipt>alert(1)</script>"),
    ("img onerror", "<img src=x onerror=alert(1)>"),
    ("body onload", "<body onload=alert(1)>text</body>"),
    ("svg onload", "<svg onload=alert(1)><script>alert(2)</script></svg>"),
    ("javascript href", '<a href="javascript:alert(1)">x</a>'),
    ("javascript mixed case", '<a href="JaVaScRiPt:alert(1)">x</a>'),
    ("javascript leading space", '<a href="  javascript:alert(1)">x</a>'),
    ("javascript tab inside", '<a href="java\tscript:alert(1)">x</a>'),
    ("javascript newline inside", '<a href="java\nscript:alert(1)">x</a>'),
    ("javascript entity", '<a href="jav&#x61;script:alert(1)">x</a>'),
    ("javascript decimal entity", '<a href="&#106;avascript:alert(1)">x</a>'),
    ("javascript named entity colon", '<a href="javascript&colon;alert(1)">x</a>'),
    ("vbscript", '<a href="vbscript:msgbox(1)">x</a>'),
    ("data href", '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>'),
    ("data img", '<img src="data:image/svg+xml;base64,PHN2Zz48L3N2Zz4=">'),
    ("iframe", '<iframe src="https://evil.example.com/"></iframe>'),
    ("iframe srcdoc", '<iframe srcdoc="<script>alert(1)</script>"></iframe>'),
    ("object", '<object data="https://evil.example.com/x.swf"></object>'),
    ("embed", '<embed src="https://evil.example.com/x.swf">'),
    ("form", '<form action="https://evil.example.com/"><input name=p><button>go</button></form>'),
    ("meta refresh", '<meta http-equiv="refresh" content="0;url=https://evil.example.com/">'),
    ("base", '<base href="https://evil.example.com/"><a href="/x">x</a>'),
    ("link stylesheet", '<link rel="stylesheet" href="https://evil.example.com/x.css">'),
    ("style element", "<style>body{display:none}</style><p>x</p>"),
    ("style attribute", '<p style="position:fixed;top:0;left:0;width:100%">overlay</p>'),
    ("class and id", '<p class="x" id="main">x</p>'),
    ("math", '<math><mtext><a href="javascript:alert(1)">x</a></mtext></math>'),
    ("noscript trick", '<noscript><p title="</noscript><img src=x onerror=alert(1)>"></noscript>'),
    ("comment trick", "<!--<img src=x onerror=alert(1)>-->"),
    ("unclosed attribute", '<a href="https://ok.example/" onclick="alert(1)'),
    ("formaction", '<button formaction="javascript:alert(1)">x</button>'),
    ("xlink", '<svg><a xlink:href="javascript:alert(1)"><text>x</text></a></svg>'),
]


@pytest.mark.parametrize("html", [h for _, h in HOSTILE], ids=[name for name, _ in HOSTILE])
def test_hostile_markup_does_not_survive(html: str) -> None:
    out = sanitize_html(html, BASE)
    assert not FORBIDDEN.search(out), out
    assert not EVENT_HANDLER.search(out), out


def test_tracking_pixel_is_dropped() -> None:
    html = '<p>Hi</p><img src="https://stats.example.com/pixel.gif?id=1" width="1" height="1">'
    assert "<img" not in sanitize_html(html, BASE)


def test_zero_sized_image_is_dropped() -> None:
    assert "<img" not in sanitize_html('<img src="https://a.example/x.png" width="0" height="0">')


def test_known_tracker_without_size_is_dropped() -> None:
    assert "<img" not in sanitize_html('<img src="https://stats.wordpress.com/b.gif?v=1">')


def test_ordinary_image_is_kept_with_its_size() -> None:
    out = sanitize_html('<img src="/a.png" alt="A ward" width="640" height="480px">', BASE)
    assert out == (
        '<img src="https://blog.example.org/a.png" alt="A ward" width="640" height="480">'
    )


def test_image_without_safe_src_is_dropped() -> None:
    assert sanitize_html('<img src="javascript:alert(1)" alt="x">', BASE) == ""


def test_relative_links_are_resolved_against_the_base() -> None:
    out = sanitize_html('<a href="../other/">x</a><img src="pic.jpg">', BASE)
    assert 'href="https://blog.example.org/2026/11/other/"' in out
    assert 'src="https://blog.example.org/2026/11/post/pic.jpg"' in out


def test_relative_links_without_a_base_are_removed() -> None:
    assert "href" not in sanitize_html('<a href="/x">x</a>')


def test_links_get_nofollow_ugc_noopener() -> None:
    out = sanitize_html('<a href="https://a.example/" rel="opener" target="_blank">x</a>')
    assert out == '<a href="https://a.example/" rel="nofollow ugc noopener">x</a>'


def test_mailto_links_survive() -> None:
    out = sanitize_html('<a href="mailto:hello@example.org">mail</a>')
    assert 'href="mailto:hello@example.org"' in out


def test_reading_markup_is_kept() -> None:
    html = (
        "<p>a <em>b</em> <strong>c</strong></p><blockquote>q</blockquote>"
        "<ul><li>one</li></ul><pre><code>x</code></pre>"
        '<table><tr><td colspan="2">t</td></tr></table>'
        '<abbr title="National Health Service">NHS</abbr>'
    )
    out = sanitize_html(html)
    for tag in ("<p>", "<em>", "<strong>", "<blockquote>", "<li>", "<code>", 'colspan="2"'):
        assert tag in out
    assert '<abbr title="National Health Service">' in out


def test_headings_are_demoted_below_the_page_headings() -> None:
    assert sanitize_html("<h1>A</h1><h2>B</h2><h5>C</h5>") == "<h3>A</h3><h4>B</h4><h6>C</h6>"


def test_lang_and_dir_are_kept_but_dir_only_with_known_values() -> None:
    assert sanitize_html('<p lang="cy" dir="RTL">x</p>') == '<p lang="cy" dir="rtl">x</p>'
    assert sanitize_html('<p dir="sideways">x</p>') == "<p>x</p>"


def test_output_has_no_characters_xml_forbids() -> None:
    out = sanitize_html("<p>a\x00b\x0bc\x1fd\ufffee</p>")
    assert out == "<p>abcde</p>"


# --------------------------------------------------------------------------- safe_url

URL_CASES = [
    ("https://a.example/x", None, "https://a.example/x"),
    ("HTTP://A.example/x", None, "http://A.example/x"),
    ("  https://a.example/x \n", None, "https://a.example/x"),
    ("https://a.example/a b", None, "https://a.example/a%20b"),
    ('https://a.example/"><script>', None, "https://a.example/%22%3E%3Cscript%3E"),
    ("/path?q=1", "https://blog.example.org/a/b", "https://blog.example.org/path?q=1"),
    ("c", "https://blog.example.org/a/b", "https://blog.example.org/a/c"),
    ("//cdn.example.com/x.png", None, "https://cdn.example.com/x.png"),
    ("//cdn.example.com/x.png", "http://blog.example.org/", "http://cdn.example.com/x.png"),
    ("mailto:a@example.org", None, "mailto:a@example.org"),
    ("relative", None, None),
    ("javascript:alert(1)", None, None),
    ("JAVASCRIPT:alert(1)", "https://blog.example.org/", None),
    ("java\tscript:alert(1)", None, None),
    ("\x01javascript:alert(1)", None, None),
    ("vbscript:x", None, None),
    ("data:text/html,x", None, None),
    ("file:///etc/passwd", None, None),
    ("ftp://a.example/x", None, None),
    ("https://", None, None),
    ("https:no-host", None, None),
    ("http://[::1", None, None),
    ("http://a.example:99999/", None, None),
    ("mailto:", None, None),
    ("", None, None),
    (None, None, None),
    ("x", "javascript:alert(1)", None),
]


@pytest.mark.parametrize(("url", "base", "expected"), URL_CASES)
def test_safe_url(url: str | None, base: str | None, expected: str | None) -> None:
    assert safe_url(url, base) == expected


def test_safe_url_refuses_mailto_for_media() -> None:
    assert safe_url("mailto:a@example.org", allow_mailto=False) is None


# --------------------------------------------------------------------------- text

TEXT_CASES = [
    ("  Hello \n\t world  ", None, "Hello world"),
    ("NUL\x00 and \x07bell and \x85C1", None, "NUL and bell and C1"),
    ("cafe\u0301", None, "café"),  # NFC
    ("AT&amp;T", None, "AT&amp;T"),  # unescapes nothing
    ("one two three four", 12, "one two…"),
    ("short", 10, "short"),
    ("averyveryverylongwordwithoutspaces", 10, "averyvery…"),
    ("", 5, ""),
]


@pytest.mark.parametrize(("text", "limit", "expected"), TEXT_CASES)
def test_clean_text(text: str, limit: int | None, expected: str) -> None:
    assert clean_text(text, limit) == expected


def test_truncated_text_fits_the_limit() -> None:
    out = clean_text("word " * 100, 50)
    assert len(out) <= 50
    assert out.endswith("…")


def test_html_to_text_reads_like_the_page() -> None:
    html = (
        "<html><head><title>T</title><style>p{}</style></head><body>"
        "<p>Hello &amp; welcome</p><p>Second<br>line</p><script>alert(1)</script>"
        "<ul><li>one</li><li>two</li></ul>tail</body></html>"
    )
    assert html_to_text(html) == "Hello & welcome Second line one two tail"


def test_html_to_text_keeps_inline_words_together() -> None:
    assert html_to_text("<p>N<strong>H</strong>S</p>") == "NHS"


def test_html_to_text_of_nothing_is_empty() -> None:
    assert html_to_text("") == ""
    assert html_to_text("<!-- only a comment -->") == ""


def test_html_to_text_survives_deep_nesting() -> None:
    assert html_to_text("<div>" * 1000 + "deep" + "</div>" * 1000) == "deep"
    assert html_to_text("<div>" * 50_000 + "deeper" + "</div>" * 50_000) in ("", "deeper")


def test_excerpt_is_short_plain_text() -> None:
    out = excerpt("<p>" + "Save our NHS. " * 50 + "</p>", 100)
    assert len(out) <= 100
    assert "<" not in out
    assert out.endswith("…")


# --------------------------------------------------------------------------- entries


def test_sanitize_entry_cleans_every_field() -> None:
    entry = ParsedEntry(
        guid="id\x00-1",
        link="/post/1",
        title="A\x00 title " + "x" * 400,
        title_derived=False,
        summary="s" * 2000,
        content='<p onclick="x()">Hi <a href="/a">a</a></p><script>x</script>',
        author="  Nurse\x07 Alex  ",
        published=datetime(2026, 11, 24, tzinfo=UTC),
        media=(
            Media(url="/img.jpg", type="image/jpeg"),
            Media(url="javascript:alert(1)"),
            Media(url="mailto:a@example.org"),
        ),
        tags=("nhs", " nhs ", "pay"),
    )
    safe = sanitize_entry(entry, "https://blog.example.org/")
    assert safe.guid == "id-1"
    assert safe.link == "https://blog.example.org/post/1"
    assert len(safe.title) <= 300
    assert safe.title.startswith("A title")
    assert len(safe.summary) <= 1000
    assert safe.content == (
        '<p>Hi <a href="https://blog.example.org/a" rel="nofollow ugc noopener">a</a></p>'
    )
    assert safe.author == "Nurse Alex"
    assert safe.media == (Media(url="https://blog.example.org/img.jpg", type="image/jpeg"),)
    assert safe.tags == ("nhs", "pay")
    assert safe.published == entry.published


# --------------------------------------------------------------------------- properties

HTML_BITS = st.sampled_from(
    [
        "<script>",
        "</script>",
        "<img src=x onerror=alert(1)>",
        '<a href="javascript:alert(1)">',
        "<a href=jav&#x61;script:x>",
        "<svg onload=alert(1)>",
        "<p>",
        "</p>",
        "<",
        ">",
        '"',
        "'",
        "&",
        "&#0;",
        "&#x1;",
        "<!--",
        "-->",
        "<![CDATA[",
        "<style>",
        "<iframe>",
        " on",
        "=",
        "\x00",
        "\x0b",
        "\ud800",
        "\u2028",
    ]
)
HOSTILE_STRINGS = st.lists(st.one_of(st.text(max_size=20), HTML_BITS), max_size=30).map("".join)
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


@settings(max_examples=300, deadline=None)
@given(HOSTILE_STRINGS, st.sampled_from([None, BASE, "javascript:x", "nonsense"]))
def test_sanitize_html_never_raises_and_never_lets_script_through(html: str, base: str) -> None:
    out = sanitize_html(html, base)
    lowered = out.lower()
    assert "<script" not in lowered
    assert "javascript:" not in lowered
    assert not re.search(r"<[^>]*\son\w+=", out)
    assert not _NOT_XML.search(out)


_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


@settings(max_examples=300, deadline=None)
@given(HOSTILE_STRINGS, st.one_of(st.none(), st.integers(min_value=0, max_value=50)))
def test_clean_text_output_is_one_clean_line(text: str, limit: int | None) -> None:
    out = clean_text(text, limit)
    assert not CONTROL.search(out)
    assert out == out.strip()
    assert "  " not in out
    assert unicodedata.is_normalized("NFC", out)
    if limit is not None:
        assert len(out) <= limit


@settings(max_examples=300, deadline=None)
@given(HOSTILE_STRINGS, st.one_of(st.none(), st.integers(min_value=1, max_value=80)))
def test_html_to_text_never_raises(html: str, limit: int | None) -> None:
    out = html_to_text(html, limit)
    assert not CONTROL.search(out)
    assert "<script" not in out.lower() or "<script" in html.lower()


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(st.none(), HOSTILE_STRINGS, st.just("javascript:alert(1)")),
    st.sampled_from([None, BASE]),
)
def test_safe_url_only_returns_web_or_mail_urls(url: str | None, base: str | None) -> None:
    out = safe_url(url, base)
    if out is not None:
        assert out.split(":", 1)[0] in ("http", "https", "mailto")
        assert not CONTROL.search(out)
        assert not re.search(r'[\s"<>`]', out)
