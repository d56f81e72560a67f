"""A loopback feed farm: N feeds of M entries, served fast enough not to be what is measured.

    python -m bench.farm --feeds 1000 --entries 50 [--gzip] [--latency 0.1] [--slow 0.02]

Every feed is generated once, before the farm says it is ready, so serving a
request is a dictionary lookup and one write.  The HTTP/1.1 server is a bare
asyncio Protocol (keep-alive, no pipelining, GET only): the standard library's
http.server manages a few thousand requests a second, which would make the farm
the bottleneck.  The farm listens on several loopback addresses
(127.0.0.1 .. 127.0.0.H, one port) so that clients that limit connections per
host see many hosts, as they would on the real web.

What a feed is, by its number i (deterministic: the same feed every run):

    i % 4 == 0   an RSS 2.0 blog (titles, HTML in <description>, relative links)
    i % 4 == 1   an Atom blog (HTML <content>, xml:base)
    i % 4 == 2   a Mastodon-style RSS (no titles, HTML posts, media:content)
    i % 4 == 3   a Bluesky-style RSS (no titles, plain text with line breaks)

Each entry carries 1-3 KB of HTML (text, links, images, a list, and a little
hostile markup a sanitiser must remove).  A share of the feeds fails (HTTP 500,
404, a broken body, a dropped connection), a share is slow (answers after
`--slow-delay` seconds), and every request can wait `--latency` seconds.

Control paths (any host):

    GET /_stats              JSON: requests served by status, CPU seconds used, uptime
    GET /_mode?conditional=0 ignore If-None-Match/If-Modified-Since and send no validators
    GET /_mode?conditional=1 honour them again (the default)

When ready, the farm prints one JSON line on stdout ({"port": ..., "hosts": [...],
"feeds": ..., "bytes": ...}) and serves until stdin closes or it is killed.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import hashlib
import json
import os
import random
import resource
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from html import escape
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

__all__ = ["FarmOptions", "Feed", "feed_kind", "feed_path", "make_feeds", "serve"]

KINDS = ("rss", "atom", "mastodon", "bluesky")
FAILURES = ("http500", "http404", "broken", "reset")

_WORDS = (
    "nurses doctors patients ward shift staffing waiting list appointment practice "
    "funding budget campaign petition rally hospital community care mental health "
    "pharmacy ambulance emergency department winter pressure beds discharge social "
    "junior consultant strike pay union vote council meeting report evidence data "
    "privatisation contract outsourcing public service local people families cuts"
).split()


def feed_kind(i: int) -> str:
    return KINDS[i % len(KINDS)]


def feed_path(i: int) -> str:
    return f"/feed/{i}"


@dataclass(frozen=True)
class FarmOptions:
    feeds: int = 1000
    entries: int = 50
    hosts: int = 50
    gzip: bool = False
    latency: float = 0.0  # seconds before every answer
    slow: float = 0.0  # share of feeds that answer after slow_delay
    slow_delay: float = 2.0
    fail: float = 0.02  # share of feeds that fail
    seed: int = 8
    epoch: datetime = field(
        default_factory=lambda: datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    )


@dataclass
class Feed:
    """One feed as the farm serves it."""

    index: int
    kind: str
    body: bytes
    gz: bytes | None
    etag: str
    last_modified: str
    content_type: str
    entries: int
    failure: str | None = None
    slow: bool = False


# --------------------------------------------------------------------------- content


def _sentence(rng: random.Random, words: int) -> str:
    text = " ".join(rng.choice(_WORDS) for _ in range(words))
    return text[0].upper() + text[1:] + "."


def _html(rng: random.Random, base: str, size: int) -> str:
    """About `size` bytes of blog-like HTML, with what a sanitiser has to deal with."""
    parts: list[str] = []
    n = 0
    while n < size:
        choice = rng.random()
        if choice < 0.55:
            piece = f"<p>{escape(_sentence(rng, rng.randint(12, 30)))}</p>"
        elif choice < 0.70:
            word = rng.choice(_WORDS)
            piece = (
                f'<p>Read <a href="/{word}/{rng.randint(1, 9999)}" class="x">more about '
                f'{word}</a> or <a href="https://example.org/{word}">elsewhere</a>.</p>'
            )
        elif choice < 0.80:
            piece = (
                f'<figure><img src="{base}img/{rng.randint(1, 99999)}.jpg" width="640" '
                f'height="480" alt="{escape(_sentence(rng, 5))}" style="border:0">'
                f"<figcaption>{escape(_sentence(rng, 6))}</figcaption></figure>"
            )
        elif choice < 0.90:
            items = "".join(f"<li>{escape(_sentence(rng, 6))}</li>" for _ in range(3))
            piece = f"<ul>{items}</ul>"
        elif choice < 0.95:
            piece = (
                f"<h2>{escape(_sentence(rng, 4))}</h2>"
                '<p onclick="steal()">Share <script>track()</script>this.</p>'
            )
        else:
            piece = '<img src="https://pixel.example/track/open?u=1" width="1" height="1">'
        parts.append(piece)
        n += len(piece)
    return "".join(parts)


def _rss_item(
    rng: random.Random, i: int, j: int, when: datetime, kind: str, site: str
) -> tuple[str, int]:
    size = rng.randint(1000, 3000)
    date = format_datetime(when, usegmt=True)
    if kind == "bluesky":
        text = "\n\n".join(_sentence(rng, rng.randint(15, 40)) for _ in range(size // 200 + 1))
        post = f"{site}post/3k{i:05d}{j:05d}"
        return (
            f"<item><link>{post}</link><description>{escape(text)}</description>"
            f"<pubDate>{date}</pubDate>"
            f'<guid isPermaLink="false">at://did:plc:farm{i:05d}/app.bsky.feed.post/'
            f"3k{i:05d}{j:05d}</guid></item>"
        ), len(text)
    html = _html(rng, site, size)
    if kind == "mastodon":
        post = f"{site}{1135 * 10**12 + i * 1000 + j}"
        media = (
            f'<media:content url="{site}media/{i}-{j}.png" type="image/png" medium="image">'
            f'<media:description type="plain">{escape(_sentence(rng, 6))}</media:description>'
            "</media:content>"
            if j % 3 == 0
            else ""
        )
        return (
            f'<item><guid isPermaLink="true">{post}</guid><link>{post}</link>'
            f"<pubDate>{date}</pubDate><description>{escape(html)}</description>{media}"
            f"<category>{rng.choice(_WORDS)}</category></item>"
        ), len(html)
    link = f"{site}{when:%Y/%m}/post-{j}/"
    return (
        f"<item><title>{escape(_sentence(rng, rng.randint(4, 10)))}</title>"
        f"<link>{link}</link><guid>{link}</guid><pubDate>{date}</pubDate>"
        f"<dc:creator>Author {i}</dc:creator>"
        f"<category>{rng.choice(_WORDS)}</category>"
        f"<description>{escape(html)}</description></item>"
    ), len(html)


def _atom_entry(rng: random.Random, i: int, j: int, when: datetime, site: str) -> str:
    html = _html(rng, site, rng.randint(1000, 3000))
    stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    return (
        f"<entry><title>{escape(_sentence(rng, rng.randint(4, 10)))}</title>"
        f'<link rel="alternate" type="text/html" href="{when:%Y/%m}/entry-{j}"/>'
        f"<id>tag:farm.example,2026:{i}/{j}</id><published>{stamp}</published>"
        f"<updated>{stamp}</updated><author><name>Author {i}</name></author>"
        f'<category term="{rng.choice(_WORDS)}"/>'
        f'<content type="html">{escape(html)}</content></entry>'
    )


def make_feed_body(i: int, entries: int, *, seed: int, epoch: datetime) -> tuple[bytes, str]:
    """Feed number i as bytes, and its Content-Type.  Same inputs, same bytes."""
    rng = random.Random(seed * 1_000_003 + i)
    kind = feed_kind(i)
    site = f"https://site{i}.farm.example/"
    # Entries an hour or so apart, each feed at its own offset, newest first.
    start = epoch - timedelta(minutes=rng.randint(0, 600))
    times = [start - timedelta(minutes=j * rng.randint(30, 180)) for j in range(entries)]
    if kind == "atom":
        items = "".join(_atom_entry(rng, i, j, t, site) for j, t in enumerate(times))
        stamp = times[0].strftime("%Y-%m-%dT%H:%M:%SZ") if times else "2026-01-01T00:00:00Z"
        body = (
            '<?xml version="1.0" encoding="utf-8"?>\n'
            f'<feed xmlns="http://www.w3.org/2005/Atom" xml:base="{site}" xml:lang="en-GB">'
            f"<title>Farm blog {i}</title><id>{site}</id><updated>{stamp}</updated>"
            f'<link rel="alternate" href="{site}"/>{items}</feed>'
        )
        return body.encode(), "application/atom+xml"
    items = "".join(_rss_item(rng, i, j, t, kind, site)[0] for j, t in enumerate(times))
    title = {
        "rss": f"Farm blog {i}",
        "mastodon": f"Campaigner {i}",
        "bluesky": f"@campaigner{i}.farm.example - Campaigner {i}",
    }[kind]
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>'
        f"<title>{escape(title)}</title><link>{site}</link>"
        f"<description>Feed {i} of the benchmark farm</description>"
        f"<language>en-gb</language>{items}</channel></rss>"
    )
    return body.encode(), "application/rss+xml; charset=utf-8"


def make_feeds(options: FarmOptions) -> list[Feed]:
    """Every feed of the farm, with its failure or slowness decided by a seeded coin."""
    rng = random.Random(options.seed)
    feeds = []
    for i in range(options.feeds):
        body, content_type = make_feed_body(
            i, options.entries, seed=options.seed, epoch=options.epoch
        )
        roll = rng.random()
        failure = None
        slow = False
        if roll < options.fail:
            failure = FAILURES[i % len(FAILURES)]
        elif roll < options.fail + options.slow:
            slow = True
        feeds.append(
            Feed(
                index=i,
                kind=feed_kind(i),
                body=body,
                gz=gzip.compress(body, compresslevel=5, mtime=0) if options.gzip else None,
                etag='"' + hashlib.blake2b(body, digest_size=8).hexdigest() + '"',
                last_modified=format_datetime(options.epoch, usegmt=True),
                content_type=content_type,
                entries=options.entries,
                failure=failure,
                slow=slow,
            )
        )
    return feeds


# --------------------------------------------------------------------------- serving


class _State:
    def __init__(self, feeds: list[Feed], options: FarmOptions) -> None:
        self.feeds = feeds
        self.options = options
        self.conditional = True
        self.counts: Counter[str] = Counter()
        self.bytes_sent = 0
        self.started = time.monotonic()

    def stats(self) -> dict[str, object]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return {
            "requests": sum(v for k, v in self.counts.items() if not k.startswith("_")),
            "by_status": dict(self.counts),
            "bytes_sent": self.bytes_sent,
            "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 3),
            "uptime": round(time.monotonic() - self.started, 3),
            "conditional": self.conditional,
            "max_rss_mb": round(usage.ru_maxrss / 1024, 1),
        }


def _response(
    status: str, headers: list[tuple[str, str]], body: bytes = b"", *, close: bool = False
) -> bytes:
    lines = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers]
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class _FarmProtocol(asyncio.Protocol):
    """HTTP/1.1 with keep-alive: one request at a time per connection."""

    def __init__(self, state: _State) -> None:
        self.state = state
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.busy = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self._next()

    def _next(self) -> None:
        if self.busy or b"\r\n\r\n" not in self.buffer:
            if len(self.buffer) > 65536 and self.transport:
                self.transport.close()
            return
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        try:
            method, target, _version = lines[0].split(" ", 2)
        except ValueError:
            self._send(_response("400 Bad Request", [], close=True), close=True)
            return
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        self.busy = True
        delay = self.state.options.latency
        feed = self._feed(target)
        if feed is not None and feed.slow:
            delay += self.state.options.slow_delay
        if delay > 0:
            asyncio.get_running_loop().call_later(delay, self._answer, method, target, headers)
        else:
            self._answer(method, target, headers)

    def _feed(self, target: str) -> Feed | None:
        path = urlsplit(target).path
        if path.startswith("/feed/"):
            number = path.removeprefix("/feed/")
            if number.isdigit() and int(number) < len(self.state.feeds):
                return self.state.feeds[int(number)]
        return None

    def _send(self, data: bytes, *, close: bool = False) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.state.bytes_sent += len(data)
        self.transport.write(data)
        if close:
            self.transport.close()

    def _answer(self, method: str, target: str, headers: dict[str, str]) -> None:
        state = self.state
        parts = urlsplit(target)
        close = headers.get("connection", "").lower() == "close"
        if parts.path == "/_stats":
            state.counts["_control"] += 1
            body = json.dumps(state.stats()).encode()
            out = _response("200 OK", [("Content-Type", "application/json")], body, close=close)
        elif parts.path == "/_mode":
            state.counts["_control"] += 1
            query = parse_qs(parts.query)
            if "conditional" in query:
                state.conditional = query["conditional"][0] not in ("0", "false", "no")
            body = json.dumps(state.stats()).encode()
            out = _response("200 OK", [("Content-Type", "application/json")], body, close=close)
        else:
            out, close = self._feed_answer(method, target, headers, close)
        self._send(out, close=close)
        self.busy = False
        if not close:
            self._next()

    def _feed_answer(
        self, method: str, target: str, headers: dict[str, str], close: bool
    ) -> tuple[bytes, bool]:
        state = self.state
        feed = self._feed(target)
        if method != "GET" or feed is None:
            state.counts["404"] += 1
            return _response("404 Not Found", [("Content-Type", "text/plain")], b"no such feed"), (
                close
            )
        if feed.failure == "reset":
            state.counts["reset"] += 1
            return b"", True
        if feed.failure == "http500":
            state.counts["500"] += 1
            return _response("500 Internal Server Error", [], b"oops"), close
        if feed.failure == "http404":
            state.counts["404"] += 1
            return _response("404 Not Found", [], b"gone"), close
        if feed.failure == "broken":
            state.counts["200"] += 1
            body = b"<?xml version='1.0'?><rss version='2.0'><chan"
            return _response("200 OK", [("Content-Type", "application/rss+xml")], body), close
        validators = [("ETag", feed.etag), ("Last-Modified", feed.last_modified)]
        if state.conditional:
            match = headers.get("if-none-match")
            since = headers.get("if-modified-since")
            if (match is not None and feed.etag in match) or (
                match is None and since == feed.last_modified
            ):
                state.counts["304"] += 1
                return _response("304 Not Modified", validators), close
        else:
            validators = []
        out_headers = [("Content-Type", feed.content_type), *validators]
        body = feed.body
        if feed.gz is not None and "gzip" in headers.get("accept-encoding", ""):
            body = feed.gz
            out_headers.append(("Content-Encoding", "gzip"))
        state.counts["200"] += 1
        return _response("200 OK", out_headers, body), close


async def serve(
    options: FarmOptions, *, port: int = 0, ready: asyncio.Future[dict[str, object]] | None = None
) -> None:
    """Build the feeds, listen on the loopback hosts, and serve until cancelled."""
    feeds = make_feeds(options)
    state = _State(feeds, options)
    loop = asyncio.get_running_loop()
    hosts = [f"127.0.0.{h + 1}" for h in range(max(1, min(options.hosts, 254)))]
    servers: list[asyncio.Server] = []
    for attempt in range(20):
        try:
            first = await loop.create_server(
                lambda: _FarmProtocol(state), hosts[0], port, backlog=1024
            )
            servers = [first]
            chosen = first.sockets[0].getsockname()[1]
            for host in hosts[1:]:
                servers.append(
                    await loop.create_server(
                        lambda: _FarmProtocol(state), host, chosen, backlog=1024
                    )
                )
            break
        except OSError:
            for server in servers:
                server.close()
            servers = []
            if port or attempt == 19:
                raise
    info: dict[str, object] = {
        "port": chosen,
        "hosts": hosts,
        "feeds": len(feeds),
        "entries": options.entries,
        "bytes": sum(len(f.body) for f in feeds),
        "failing": sum(1 for f in feeds if f.failure),
        "slow": sum(1 for f in feeds if f.slow),
    }
    if ready is not None:
        ready.set_result(info)
    try:
        await asyncio.Event().wait()
    finally:
        for server in servers:
            server.close()


def feed_urls(info: dict[str, object]) -> list[str]:
    """Every feed's URL, spread across the farm's hosts."""
    hosts = info["hosts"]
    assert isinstance(hosts, list)
    port = info["port"]
    count = info["feeds"]
    assert isinstance(count, int)
    return [f"http://{hosts[i % len(hosts)]}:{port}{feed_path(i)}" for i in range(count)]


class FarmProcess:
    """The farm in a child process, for the benchmark and the tests: `with FarmProcess(...)`.

    Closing the child's stdin stops it; `stats()` and `mode()` talk to its control paths.
    """

    def __init__(self, *args: str, timeout: float = 120.0) -> None:
        self.args = args
        self.timeout = timeout
        self.process: subprocess.Popen[str] | None = None
        self.info: dict[str, object] = {}

    def __enter__(self) -> FarmProcess:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.farm", *self.args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            self.__exit__()
            raise RuntimeError(
                "The benchmark farm (bench/farm.py) exited before it was ready; "
                "see the error above, and check that 127.0.0.x addresses can be bound."
            )
        self.info = json.loads(line)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is None:
            return
        if self.process.stdin:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout:
            self.process.stdout.close()
        self.process = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.info['port']}"

    def urls(self) -> list[str]:
        return feed_urls(self.info)

    def _get(self, path: str) -> dict[str, object]:
        with urllib.request.urlopen(self.base + path, timeout=10) as response:
            data: dict[str, object] = json.loads(response.read())
            return data

    def stats(self) -> dict[str, object]:
        return self._get("/_stats")

    def mode(self, *, conditional: bool) -> dict[str, object]:
        return self._get(f"/_mode?conditional={int(conditional)}")


def _parse_args(argv: list[str] | None) -> tuple[FarmOptions, int]:
    parser = argparse.ArgumentParser(
        prog="python -m bench.farm", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--entries", type=int, default=50)
    parser.add_argument("--hosts", type=int, default=50, help="loopback addresses (1-254)")
    parser.add_argument("--gzip", action="store_true", help="gzip bodies for clients that ask")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before every answer")
    parser.add_argument("--slow", type=float, default=0.0, help="share of slow feeds (0-1)")
    parser.add_argument("--slow-delay", type=float, default=2.0)
    parser.add_argument("--fail", type=float, default=0.02, help="share of failing feeds (0-1)")
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    options = FarmOptions(
        feeds=args.feeds,
        entries=args.entries,
        hosts=args.hosts,
        gzip=args.gzip,
        latency=args.latency,
        slow=args.slow,
        slow_delay=args.slow_delay,
        fail=args.fail,
        seed=args.seed,
    )
    return options, args.port


def main(argv: list[str] | None = None) -> None:
    options, port = _parse_args(argv)

    async def run() -> None:
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[dict[str, object]] = loop.create_future()
        task = asyncio.create_task(serve(options, port=port, ready=ready))
        info = await ready
        print(json.dumps(info), flush=True)
        # Serve until whoever started us closes our stdin (or kills us).
        stop: asyncio.Future[object] = loop.create_future()

        def on_term() -> None:
            if not stop.done():
                stop.set_result(None)

        loop.add_signal_handler(signal.SIGTERM, on_term)
        stdin_closed = loop.run_in_executor(None, sys.stdin.read)
        await asyncio.wait([stdin_closed, stop], return_when=asyncio.FIRST_COMPLETED)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass
    os._exit(0)


if __name__ == "__main__":
    main()
