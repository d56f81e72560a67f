"""`aggregator serve`: preview the output folder on this machine.

A preview, not a production server (deploy/ has those): it binds to loopback by
default and serves feeds with the content types feed readers expect.
"""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path

CONTENT_TYPES = {
    ".atom": "application/atom+xml; charset=utf-8",
    ".rss": "application/rss+xml; charset=utf-8",
    ".json": "application/feed+json; charset=utf-8",
    ".opml": "text/x-opml; charset=utf-8",
    ".xml": "application/xml; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".eml": "message/rfc822",
}


class _Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, **CONTENT_TYPES}

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
        pass


def make_server(
    root: Path, *, host: str = "127.0.0.1", port: int = 0
) -> http.server.ThreadingHTTPServer:
    handler = functools.partial(_Handler, directory=str(root))
    return http.server.ThreadingHTTPServer((host, port), handler)


def serve_in_thread(
    root: Path, *, host: str = "127.0.0.1", port: int = 0
) -> http.server.ThreadingHTTPServer:
    """Start a server in a daemon thread; call `.shutdown()` and `.server_close()` to stop it."""
    server = make_server(root, host=host, port=port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def serve(root: Path, *, port: int = 8000, host: str = "127.0.0.1") -> None:
    if not (root / "index.html").exists():
        print(f"Nothing built in {root} yet: run `aggregator build` first.")
    server = make_server(root, host=host, port=port)
    print(f"Serving {root} at http://{host}:{server.server_address[1]}/ — press Ctrl-C to stop.")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
