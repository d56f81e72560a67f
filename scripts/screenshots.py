"""Screenshots of the demo site for the README (run by scripts/screenshots)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from aggregator.demo import run_demo
from aggregator.serve import serve_in_thread

DOCS = Path(__file__).resolve().parent.parent / "docs"
SHOTS = [
    # (file in docs/, page in the site, viewport width, height, whole page)
    ("screenshot-desktop.png", "", 1280, 900, False),
    ("screenshot-phone.png", "", 360, 800, False),
    ("screenshot-digest.png", "digest/latest.html", 720, 1200, False),
]


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        run_demo(Path(folder) / "demo")
        server = serve_in_thread(Path(folder) / "demo" / "site")
        base = f"http://127.0.0.1:{server.server_address[1]}/"
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path="/usr/bin/chromium")
                for name, path, width, height, full in SHOTS:
                    page = browser.new_page(viewport={"width": width, "height": height})
                    page.goto(base + path)
                    page.screenshot(path=str(DOCS / name), full_page=full)
                    print(f"wrote docs/{name}")
                browser.close()
        finally:
            server.shutdown()
            server.server_close()


if __name__ == "__main__":
    main()
