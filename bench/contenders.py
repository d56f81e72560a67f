"""One contender of the benchmark, run in a process of its own: `python -m bench.contenders`.

    python -m bench.contenders NAME --urls FILE --workdir DIR [options]

Each run prints one JSON object on stdout: wall seconds, feeds by outcome,
entries, peak RSS of this process (and of its worker processes, if any), CPU
seconds, and for this project where the time went.  Running every contender in
a fresh process is what makes its peak RSS its own (ru_maxrss never goes down).

Contenders:

    project          aggregator.update.update over every URL (force: all due)
    reader           lemon24/reader's update_feeds over the same URLs
    fetch            the floor: concurrent GETs with a bare httpx.AsyncClient, nothing else
    fetch-parse      the floor plus feedparser.parse with its defaults, per body
    make-store       a store of --entries-total synthetic, sanitised entries (for build/digest)
    build            aggregator.render.build on that store
    digest           aggregator.digest.run_digest on that store

What this module does not do: start the farm, decide warm or cold (the farm's
mode and the work folder, kept between runs, do) or print tables (bench/run.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from html import escape
from pathlib import Path
from typing import Any

import httpx

CONCURRENCY = 20  # the project's default (FetchLimits.concurrency), given to every contender
PLATFORMS = {"rss": "blog", "atom": "blog", "mastodon": "mastodon", "bluesky": "bluesky"}
FEEDS_PER_SOURCE = 3  # a campaigner with a blog, Mastodon and Bluesky


def _usage() -> dict[str, float]:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "rss_mb": round(me.ru_maxrss / 1024, 1),
        "child_rss_mb": round(kids.ru_maxrss / 1024, 1),
        "cpu_s": round(me.ru_utime + me.ru_stime, 3),
        "child_cpu_s": round(kids.ru_utime + kids.ru_stime, 3),
    }


class TreeSampler:
    """Peak RSS and CPU of this process and all its descendants, sampled from /proc.

    ru_maxrss covers one process; the parse workers are children of a fork
    server, so their memory and CPU are read from /proc while they live.
    """

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.peak_kb = 0
        self.child_cpu: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._tick = os.sysconf("SC_CLK_TCK")

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def sample(self) -> None:
        me = os.getpid()
        parents: dict[int, int] = {}
        stats: dict[int, list[str]] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                text = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = text.rsplit(")", 1)[1].split()
            parents[int(entry)] = int(fields[1])
            stats[int(entry)] = fields
        tree = {me}
        changed = True
        while changed:
            changed = False
            for pid, parent in parents.items():
                if parent in tree and pid not in tree:
                    tree.add(pid)
                    changed = True
        total = 0
        for pid in tree:
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            except OSError:
                continue
            if pid != me and pid in stats:
                fields = stats[pid]
                self.child_cpu[pid] = (int(fields[11]) + int(fields[12])) / self._tick
        self.peak_kb = max(self.peak_kb, total)

    def result(self) -> dict[str, float]:
        return {
            "tree_rss_mb": round(self.peak_kb / 1024, 1),
            "tree_child_cpu_s": round(sum(self.child_cpu.values()), 2),
        }


# --------------------------------------------------------------------------- config


def make_config(urls: list[str], workdir: Path, *, output: Path | None = None) -> Any:
    """A Config for the farm's feeds: three feeds per campaigner, a few shared tags."""
    from aggregator.models import Config, FeedSpec, FetchLimits, Settings, Source

    sources = []
    tags = ("staffing", "funding", "waiting-lists", "mental-health", "strikes", "gp")
    for k in range(0, len(urls), FEEDS_PER_SOURCE):
        slug = f"campaigner-{k // FEEDS_PER_SOURCE}"
        feeds = []
        for i in range(k, min(k + FEEDS_PER_SOURCE, len(urls))):
            kind = ("rss", "atom", "mastodon", "bluesky")[i % 4]
            feeds.append(
                FeedSpec(
                    key=urls[i],
                    url=urls[i],
                    kind="url",
                    platform=PLATFORMS[kind],  # type: ignore[arg-type]
                    source=slug,
                )
            )
        sources.append(
            Source(
                slug=slug,
                name=f"Campaigner {k // FEEDS_PER_SOURCE}",
                feeds=tuple(feeds),
                tags=(tags[k % len(tags)], tags[(k // 7) % len(tags)]),
            )
        )
    settings = Settings(
        title="Benchmark campaigners",
        base_url="https://bench.example/",
        database=workdir / "aggregator.sqlite",
        output=output or workdir / "public",
        fetch=FetchLimits(concurrency=CONCURRENCY),
    )
    return Config(path=workdir / "feeds.yaml", settings=settings, sources=tuple(sources))


# --------------------------------------------------------------------------- project


class _Timer:
    """Adds up the wall time spent inside wrapped functions (main thread only)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start

        return timed


def run_project(
    urls: list[str], workdir: Path, transport: str, parse_workers: int | None
) -> dict[str, Any]:
    from aggregator import update as update_module
    from aggregator.store import Store

    timer = _Timer()
    for method in ("save_fetched", "save_unchanged", "save_error", "sync_feeds", "requests"):
        setattr(Store, method, timer.wrap("store", getattr(Store, method)))
    _choose_transport(transport)
    config = make_config(urls, workdir)
    start = time.perf_counter()
    options = update_module.UpdateOptions(force=True, parse_workers=parse_workers)
    with Store.open(config.settings.database) as store, TreeSampler() as tree:
        results = update_module.update(config, store, options=options)
        wall = time.perf_counter() - start
        entries = store.entry_count()
    db = config.settings.database
    db_bytes = sum(p.stat().st_size for p in db.parent.glob(db.name + "*"))
    counts = Counter(r.status for r in results)
    return {
        "wall": wall,
        "feeds": len(results),
        "ok": counts["ok"],
        "not_modified": counts["not_modified"],
        "errors": counts["error"],
        "entries_new": sum(r.new for r in results),
        "entries_stored": entries,
        "db_bytes": db_bytes,
        "store_s": round(timer.seconds.get("store", 0.0), 3),
        **tree.result(),
    }


def _choose_transport(name: str) -> None:
    """Swap the Fetcher's transport, for measuring transports side by side.

    "project" keeps the project's own choice (aggregator/transport.py).
    """
    if name == "project":
        return
    from aggregator import fetch

    original = fetch.Fetcher.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        if kwargs.get("transport") is None:
            kwargs["transport"] = _transport(name)
        original(self, *args, **kwargs)

    fetch.Fetcher.__init__ = init  # type: ignore[method-assign]


def _transport(name: str) -> httpx.AsyncBaseTransport:
    """httpx's own transport (HTTP/1.1 or with HTTP/2 allowed), httpx-aiohttp's, or ours."""
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    if name == "httpx":
        return httpx.AsyncHTTPTransport(limits=limits)
    if name == "http2":
        # Over plain http:// (the farm) httpx still speaks HTTP/1.1: h2 needs TLS (ALPN).
        return httpx.AsyncHTTPTransport(http2=True, limits=limits)
    if name == "aiohttp":
        from httpx_aiohttp import AiohttpTransport

        return AiohttpTransport(limits=limits)
    if name == "project":  # the update's own: httpx over aiohttp (aggregator/transport.py)
        from aggregator.transport import http_transport

        return http_transport(CONCURRENCY)
    raise SystemExit(f"Unknown transport {name!r}: use httpx, http2, aiohttp or project.")


def run_cycles(urls: list[str], workdir: Path, cycles: int) -> dict[str, Any]:
    """`cycles` updates in one process, as `aggregator run` does: does memory grow?"""
    from aggregator import update as update_module
    from aggregator.store import Store

    config = make_config(urls, workdir)
    options = update_module.UpdateOptions(force=True)
    rss: dict[str, float] = {}
    start = time.perf_counter()
    with Store.open(config.settings.database) as store:
        for cycle in range(1, cycles + 1):
            update_module.update(config, store, options=options)
            if cycle in (1, 2, 10, cycles // 2, cycles):
                rss[str(cycle)] = _current_rss_mb()
    return {"wall": time.perf_counter() - start, "cycles": cycles, "rss_after_cycle_mb": rss}


def _current_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


# --------------------------------------------------------------------------- reader


def run_reader(urls: list[str], workdir: Path) -> dict[str, Any]:
    from reader import make_reader

    db = workdir / "reader.sqlite"
    reader = make_reader(str(db))
    for url in urls:
        reader.add_feed(url, exist_ok=True)
    start = time.perf_counter()
    outcomes: Counter[str] = Counter()
    new = 0
    # The same concurrency as the others; scheduled=False: every feed now, as --all does.
    for result in reader.update_feeds_iter(workers=CONCURRENCY, scheduled=False):
        value = result.value
        if isinstance(value, Exception):
            outcomes["error"] += 1
        elif value is None:
            outcomes["not_modified"] += 1
        else:
            outcomes["ok"] += 1
            new += value.new
    wall = time.perf_counter() - start
    entries = reader.get_entry_counts().total
    reader.close()
    db_bytes = sum(p.stat().st_size for p in db.parent.glob(db.name + "*"))
    return {
        "wall": wall,
        "feeds": sum(outcomes.values()),
        "ok": outcomes["ok"],
        "not_modified": outcomes["not_modified"],
        "errors": outcomes["error"],
        "entries_new": new,
        "entries_stored": entries,
        "db_bytes": db_bytes,
    }


# --------------------------------------------------------------------------- floors


async def _fetch_all(
    urls: list[str], etags: dict[str, str], transport: str, on_body: Callable[[bytes], int] | None
) -> tuple[Counter[str], dict[str, str], int]:
    outcomes: Counter[str] = Counter()
    new_etags: dict[str, str] = {}
    entries = 0
    slots = asyncio.Semaphore(CONCURRENCY)
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    kwargs: dict[str, Any] = {"limits": limits, "timeout": 60}
    kwargs["transport"] = _transport(transport)
    async with httpx.AsyncClient(**kwargs) as client:

        async def one(url: str) -> None:
            nonlocal entries
            headers = {"If-None-Match": etags[url]} if url in etags else {}
            async with slots:
                try:
                    response = await client.get(url, headers=headers)
                except httpx.HTTPError:
                    outcomes["error"] += 1
                    return
            if response.status_code == 304:
                outcomes["not_modified"] += 1
            elif response.status_code == 200:
                outcomes["ok"] += 1
                if "etag" in response.headers:
                    new_etags[url] = response.headers["etag"]
                if on_body is not None:
                    entries += on_body(response.content)
            else:
                outcomes["error"] += 1

        await asyncio.gather(*(one(u) for u in urls))
    return outcomes, new_etags, entries


def run_fetch(urls: list[str], workdir: Path, transport: str, *, parse: bool) -> dict[str, Any]:
    """The floor: fetch (warm when an etags file from a cold run exists), maybe parse."""
    etag_file = workdir / f"etags-{transport}-{int(parse)}.json"
    etags: dict[str, str] = json.loads(etag_file.read_text()) if etag_file.exists() else {}
    on_body = None
    if parse:
        import feedparser

        def on_body(body: bytes) -> int:
            return len(feedparser.parse(body).entries)

    start = time.perf_counter()
    outcomes, new_etags, entries = asyncio.run(_fetch_all(urls, etags, transport, on_body))
    wall = time.perf_counter() - start
    etag_file.write_text(json.dumps({**etags, **new_etags}))
    return {
        "wall": wall,
        "feeds": sum(outcomes.values()),
        "ok": outcomes["ok"],
        "not_modified": outcomes["not_modified"],
        "errors": outcomes["error"],
        "entries_new": entries,
    }


# --------------------------------------------------------------------------- build, digest


def make_store(urls: list[str], workdir: Path, total: int) -> dict[str, Any]:
    """A store of `total` entries over a year, spread evenly across the farm's feeds.

    Entries are made directly (not fetched): this is the input of build and
    digest, and its contents are what a year of the farm's feeds would leave.
    """
    from aggregator.models import ParsedEntry, ParsedFeed, Validators
    from aggregator.sanitize import sanitize_html
    from aggregator.store import Store

    from .farm import _html, _sentence

    rng = random.Random(8)
    bodies = [
        sanitize_html(_html(rng, "https://x.example/", rng.randint(1000, 3000))) for _ in range(500)
    ]
    config = make_config(urls, workdir)
    now = datetime.now(UTC).replace(microsecond=0)
    per_feed = max(1, total // len(urls))
    start = time.perf_counter()
    with Store.open(config.settings.database) as store:
        store.sync_feeds(config.feeds())
        made = 0
        for f, spec in enumerate(config.feeds()):
            count = per_feed if f < len(urls) - 1 else total - made
            social = spec.platform != "blog"
            entries = []
            for j in range(count):
                when = now - timedelta(seconds=rng.randint(0, 365 * 86400))
                if social:  # a post of a few sentences, as Mastodon and Bluesky allow
                    text = " ".join(_sentence(rng, rng.randint(8, 20)) for _ in range(3))
                    title, content, summary = text[:80], f"<p>{escape(text)}</p>", text
                else:
                    title = _sentence(rng, 8)
                    content = bodies[(f * 31 + j) % len(bodies)]
                    summary = _sentence(rng, 40)
                entries.append(
                    ParsedEntry(
                        guid=f"{spec.key}#{j}",
                        link=f"https://site{f}.farm.example/post/{j}",
                        title=title,
                        title_derived=social,
                        summary=summary,
                        content=content,
                        author=f"Author {f}",
                        published=when,
                        updated=when,
                        language="en-gb",
                        tags=(rng.choice(("nhs", "staffing", "funding")),),
                    )
                )
            made += count
            parsed = ParsedFeed("rss20", f"Feed {f}", None, "en", tuple(entries))
            store.save_fetched(
                spec.key, parsed, validators=Validators(), body_hash=str(f), now=now, next_poll=now
            )
        # As if each entry had been fetched when it was published: the digest
        # picks entries by when they were first seen.
        with store.db.atomic():
            store.db.execute("update entries set first_seen = published")
        entries_stored = store.entry_count()
    db = config.settings.database
    return {
        "wall": time.perf_counter() - start,
        "entries_stored": entries_stored,
        "db_bytes": sum(p.stat().st_size for p in db.parent.glob(db.name + "*")),
    }


def add_post(urls: list[str], workdir: Path) -> dict[str, Any]:
    """One new post from the first campaigner, stored as an update stores it.

    What a scheduler cycle usually brings: the build after it should cost the
    pages that show the post, not a full build (issue 8).
    """
    from aggregator.models import ParsedEntry, ParsedFeed, Validators
    from aggregator.store import Store

    config = make_config(urls, workdir)
    spec = config.feeds()[0]
    now = datetime.now(UTC).replace(microsecond=0)
    start = time.perf_counter()
    with Store.open(config.settings.database) as store:
        number = store.entry_count()
        post = ParsedEntry(
            guid=f"{spec.key}#new-{number}",
            link=f"https://site0.farm.example/post/new-{number}",
            title=f"A new post, number {number}",
            title_derived=False,
            summary="Just published.",
            content="<p>Just published.</p>",
            published=now,
            updated=now,
        )
        parsed = ParsedFeed("rss20", "Feed 0", None, "en", (post,))
        counts = store.save_fetched(
            spec.key, parsed, validators=Validators(), body_hash="new", now=now, next_poll=now
        )
    return {"wall": time.perf_counter() - start, "entries_new": counts.new}


def run_build(urls: list[str], workdir: Path, output: Path) -> dict[str, Any]:
    from aggregator.render import build
    from aggregator.store import Store

    config = make_config(urls, workdir, output=output)
    start = time.perf_counter()
    with Store.open(config.settings.database) as store:
        report = build(config, store, now=datetime.now(UTC))
        entries = store.entry_count()
    return {
        "wall": time.perf_counter() - start,
        "written": len(report.written),
        "unchanged": report.unchanged,
        "entries_stored": entries,
    }


def run_digest_once(urls: list[str], workdir: Path, output: Path) -> dict[str, Any]:
    from aggregator.digest import run_digest
    from aggregator.store import Store

    config = make_config(urls, workdir, output=output)
    start = time.perf_counter()
    with Store.open(config.settings.database) as store:
        outcome = run_digest(
            config, store, date=None, send=False, force=False, now=datetime.now(UTC)
        )
    return {
        "wall": time.perf_counter() - start,
        "status": outcome.status,
        "entries_new": outcome.entry_count,
        "written": len(outcome.files),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.contenders")
    parser.add_argument(
        "name",
        choices=[
            "project",
            "reader",
            "fetch",
            "fetch-parse",
            "make-store",
            "add-post",
            "build",
            "digest",
            "cycles",
        ],
    )
    parser.add_argument("--urls", type=Path, required=True, help="file of feed URLs, one a line")
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument(
        "--transport", default="project", choices=["project", "httpx", "http2", "aiohttp"]
    )
    parser.add_argument("--output", type=Path, help="build/digest output folder")
    parser.add_argument("--entries-total", type=int, default=100_000)
    parser.add_argument("--cycles", type=int, default=100, help="cycles: how many updates")
    parser.add_argument("--parse-workers", type=int, help="project: UpdateOptions.parse_workers")
    args = parser.parse_args(argv)
    urls = args.urls.read_text().split()
    args.workdir.mkdir(parents=True, exist_ok=True)
    output = args.output or args.workdir / "public"
    if args.name == "project":
        result = run_project(urls, args.workdir, args.transport, args.parse_workers)
    elif args.name == "reader":
        result = run_reader(urls, args.workdir)
    elif args.name in ("fetch", "fetch-parse"):
        result = run_fetch(urls, args.workdir, args.transport, parse=args.name == "fetch-parse")
    elif args.name == "cycles":
        result = run_cycles(urls, args.workdir, args.cycles)
    elif args.name == "make-store":
        result = make_store(urls, args.workdir, args.entries_total)
    elif args.name == "add-post":
        result = add_post(urls, args.workdir)
    elif args.name == "build":
        result = run_build(urls, args.workdir, output)
    else:
        result = run_digest_once(urls, args.workdir, output)
    result.update(_usage())
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
