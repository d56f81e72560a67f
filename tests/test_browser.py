"""The built site in a real browser: Debian's chromium driven by Playwright.

The site is served on loopback by serve.serve_in_thread and built with that
server's address as base_url.  Each page must load with no console errors, make
no request to any other host, fit a 360 px phone without sideways scrolling and
pass axe-core (bundled by axe-playwright-python) with no violations, in light
and dark mode.  Screenshots go to test-artifacts/ (gitignored); the desktop and
phone views in docs/ come from `scripts/screenshots` (the demo), not from tests.

Skipped when /usr/bin/chromium is missing, unless AGGREGATOR_REQUIRE_BROWSER=1
(CI), when that is a failure.  Never `playwright install`: we use Debian's browser.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sitebuilder import NOW, open_filled

from aggregator.render import build
from aggregator.serve import serve_in_thread

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"
PHONE = {"width": 360, "height": 800}
DESKTOP = {"width": 1280, "height": 900}
PAGES = {
    "index": "",
    "source": "sources/sian/",
    "directory": "sources/",
    "health": "health.html",
    "topic": "tags/staffing/",
    "day": "archive/2026/11/25/",
    "archive": "archive/",
}


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        if os.environ.get("AGGREGATOR_REQUIRE_BROWSER") == "1":
            pytest.fail(f"AGGREGATOR_REQUIRE_BROWSER=1 but there is no browser at {CHROMIUM}")
        pytest.skip(f"no chromium at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[str]:
    """The sample site, built for and served from a loopback address; yields its URL."""
    tmp = tmp_path_factory.mktemp("browser")
    public = tmp / "public"
    public.mkdir()
    server = serve_in_thread(public)
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}/"
        config, store = open_filled(tmp, base_url=base, digest_signup_url=base + "signup")
        build(config, store, now=NOW)
        store.close()
        yield base
    finally:
        server.shutdown()
        server.server_close()


class Visit:
    """A page opened in a fresh context, with its console errors and requests recorded."""

    def __init__(self, browser, url: str, viewport: dict, scheme: str = "light") -> None:
        self.context = browser.new_context(viewport=viewport, color_scheme=scheme)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))
        response = self.page.goto(url, wait_until="load")
        assert response is not None and response.ok, url

    def close(self) -> None:
        self.context.close()


def axe_violations(page) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [
        f"{v['id']}: {v['help']} ({len(v['nodes'])}x) {v['nodes'][0]['target']}"
        for v in results.response["violations"]
    ]


@pytest.mark.parametrize("name", list(PAGES))
def test_page_loads_cleanly_from_this_server_only(browser, site, name):
    visit = Visit(browser, site + PAGES[name], PHONE)
    try:
        assert visit.errors == []
        host = urlsplit(site).netloc
        strangers = [u for u in visit.requests if urlsplit(u).netloc != host]
        assert strangers == []
        assert visit.requests  # the page itself, its stylesheet and icon
        width = visit.page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"{name} scrolls sideways on a phone: {width}px"
    finally:
        visit.close()


@pytest.mark.parametrize("name", ["index", "source", "health", "directory", "topic", "day"])
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_axe_finds_no_accessibility_violations(browser, site, name, scheme):
    for viewport in (PHONE, DESKTOP):
        visit = Visit(browser, site + PAGES[name], viewport, scheme)
        try:
            assert axe_violations(visit.page) == []
        finally:
            visit.close()


def test_the_page_works_with_javascript_switched_off(browser, site):
    context = browser.new_context(viewport=PHONE, java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(site)
        assert page.locator("article").count() > 5
        page.get_by_role("link", name="Campaigners", exact=True).click()
        assert page.locator("h1").inner_text() == "Campaigners"
    finally:
        context.close()


def test_screenshots_at_phone_and_desktop_widths(browser, site):
    ARTIFACTS.mkdir(exist_ok=True)
    for label, viewport in (("phone", PHONE), ("desktop", DESKTOP)):
        for scheme in ("light", "dark"):
            for name in ("index", "source", "directory", "health"):
                visit = Visit(browser, site + PAGES[name], viewport, scheme)
                try:
                    path = ARTIFACTS / f"{name}-{label}-{scheme}.png"
                    visit.page.screenshot(path=str(path))
                    assert path.stat().st_size > 5_000
                finally:
                    visit.close()
