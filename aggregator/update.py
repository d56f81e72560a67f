"""The update pipeline: for every due feed, fetch -> parse -> sanitise -> store.

    store.requests | fetch (concurrent) | parse + sanitize (on every core) | store (per feed)

Fetching is concurrent, and parsing runs in worker processes (`_ParserPool`,
issue 8); the store is written from this thread only, one transaction per
feed that brought entries or failed, and one per `Updater.BATCH` feeds that
brought nothing new (304s, unchanged bodies: most of a run).  Each feed ends
with exactly one UpdateResult and one log line; a feed's failure is recorded
on that feed and never stops the others.  Anything that is not a FeedError is
a bug and propagates, after what the feeds before it brought is saved.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import multiprocessing
import os
from collections.abc import Callable, Collection
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from urllib.parse import urlsplit

from .dedupe import entry_keys
from .errors import FeedError, ParseError
from .fetch import Fetcher, user_agent
from .models import (
    Config,
    FeedSpec,
    Fetched,
    FetchFailed,
    FetchRequest,
    FetchResult,
    NotModified,
    ParsedFeed,
    UpdateResult,
    Validators,
)
from .parse import discover_feed_links, parse_feed
from .sanitize import sanitize_entry
from .schedule import next_poll_time
from .store import PollState, Store, Unchanged

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UpdateOptions:
    force: bool = False  # poll every feed, due or not
    only: Collection[str] | None = None  # feed keys or source slugs
    # Autodiscovered and redirected URLs come from pages we do not control: by
    # default they may not point at this machine's own network (issue 6).
    block_private_discovered: bool = True
    # Processes that parse feeds: None for one per CPU core; 0 or 1 parses in a
    # thread of this process (issue 8: parsing is CPU work, a pool uses every core).
    parse_workers: int | None = None


def parse_and_sanitize(
    body: bytes, *, url: str, content_type: str | None, now: datetime, max_entries: int
) -> ParsedFeed:
    """Parse a body and pass every entry through the one sanitising door."""
    parsed = parse_feed(body, url=url, content_type=content_type, now=now, max_entries=max_entries)
    entries = tuple(sanitize_entry(e, e.link or url) for e in parsed.entries)
    return ParsedFeed(
        format=parsed.format,
        title=parsed.title,
        link=parsed.link,
        language=parsed.language,
        entries=entries,
        warnings=parsed.warnings,
        # In the worker, beside the parse: the store process only compares.
        keys=tuple(entry_keys(e) for e in entries),
    )


class _ParserPool:
    """Runs `parse_and_sanitize` in worker processes, or in a thread when that is cheaper.

    Parsing and sanitising is pure CPU work (feedparser, lxml, nh3), so threads
    share one core; worker processes use them all.  Starting the workers costs
    a fraction of a second, so the first `POOL_AFTER` bodies of a run are parsed
    in a thread, and the pool starts only for a run that has more (a cold start,
    `update --all` after a quiet spell); a run of 304s never starts it.  The
    workers are started by a fork server (not forked from this process, whose
    threads could hold locks), and stopped at the end of each run.
    """

    POOL_AFTER = 8

    def __init__(self, workers: int | None) -> None:
        if workers is None:
            workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
        self.workers = max(1, workers)
        self._seen = 0
        self._pool: ProcessPoolExecutor | None = None

    async def parse(
        self, body: bytes, *, url: str, content_type: str | None, now: datetime, max_entries: int
    ) -> ParsedFeed:
        self._seen += 1
        job = partial(
            parse_and_sanitize,
            body,
            url=url,
            content_type=content_type,
            now=now,
            max_entries=max_entries,
        )
        if self.workers < 2 or self._seen <= self.POOL_AFTER:
            return await asyncio.to_thread(job)
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                self.workers, mp_context=multiprocessing.get_context("forkserver")
            )
        return await asyncio.get_running_loop().run_in_executor(self._pool, job)

    def close(self) -> None:
        """Stop the workers; the next run starts counting bodies afresh."""
        self._seen = 0
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


class _OnDemand:
    """A Fetcher opened on first use, for feed discovery, which most runs never need.

    Opening one costs an HTTP client; a run of 304s discovers nothing (issue 8).
    """

    def __init__(self, open_fetcher: Callable[[], Fetcher]) -> None:
        self._open = open_fetcher
        self._fetcher: Fetcher | None = None

    def get(self) -> Fetcher:
        if self._fetcher is None:
            self._fetcher = self._open()
        return self._fetcher

    async def aclose(self) -> None:
        if self._fetcher is not None:
            await self._fetcher.aclose()
            self._fetcher = None


class Updater:
    """Runs one update over a config and a store.  Holds no state between runs."""

    # Feeds that brought nothing new, saved together in one transaction: a kill
    # -9 loses at most this many, and those are simply polled again next time.
    BATCH = 64

    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        options: UpdateOptions = UpdateOptions(),
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_result: Callable[[UpdateResult, int, int], None] | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.options = options
        self.now = now
        self.on_result = on_result
        self.specs = {spec.key: spec for spec in config.feeds()}
        self.intervals = {
            spec.key: source.poll_interval or config.settings.poll_interval
            for source in config.sources
            for spec in source.feeds
        }
        settings = config.settings
        self.user_agent = user_agent(settings.user_agent, settings.base_url)
        self._parser = _ParserPool(options.parse_workers)
        self._states: dict[str, PollState] = {}
        self._unchanged: list[Unchanged] = []

    def selected_keys(self) -> set[str]:
        only = self.options.only
        if not only:
            return set(self.specs)
        return {k for k, spec in self.specs.items() if k in only or spec.source in only}

    async def run(self) -> list[UpdateResult]:
        self.store.sync_feeds(self.specs.values())
        requests = self.store.requests(
            self.selected_keys(),
            now=self.now(),
            due_only=not self.options.force,
            include_gone=bool(self.options.only),
        )
        if self.options.block_private_discovered:
            requests = [self._guarded(r) for r in requests]
        results: list[UpdateResult] = []
        if not requests:
            # Nothing due: the scheduler asks every tick, and opening two HTTP
            # clients (TLS contexts included) for nothing costs a few hundred ms.
            return results
        limits = self.config.settings.fetch
        self._states = self.store.poll_states()
        guarded = _OnDemand(lambda: Fetcher(limits, self.user_agent, block_private=True))
        async with Fetcher(
            limits,
            self.user_agent,
            block_private_redirects=self.options.block_private_discovered,
        ) as fetcher:
            discovery = guarded.get if self.options.block_private_discovered else lambda: fetcher
            # Feeds are fetched and parsed several at once, so both cores work
            # (issue 8), by `lanes` tasks taking the next feed in turn: at most
            # that many fetched bodies are held at any time, so memory stays
            # flat however many feeds there are, and a run costs a few tasks,
            # not one per feed.
            lanes = max(2 * limits.concurrency, 4 * self._parser.workers)
            queue = iter(requests)

            async def lane() -> None:
                for request in queue:
                    fetched = await fetcher.fetch(request)
                    result = await self._process(fetched, discovery)
                    results.append(result)
                    self._report(result)
                    if self.on_result:
                        self.on_result(result, len(results), len(requests))

            tasks = [
                asyncio.create_task(lane(), name=f"update lane {n}")
                for n in range(min(lanes, len(requests)))
            ]
            try:
                for done in asyncio.as_completed(tasks):
                    await done  # a bug in one feed propagates as it is, and stops the rest
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                try:
                    self._save_unchanged()
                finally:
                    self._parser.close()
                    await guarded.aclose()
        return results

    def _guarded(self, request: FetchRequest) -> FetchRequest:
        """Guard a stored address on another host than feeds.yaml's (issue 6).

        A discovered feed or a permanent redirect was checked when we found it;
        checking again on every poll keeps a later DNS change from turning it
        toward this machine's own network.
        """
        try:
            same = urlsplit(request.url).hostname == urlsplit(self.specs[request.key].url).hostname
        except ValueError:  # an address fetch.py will refuse anyway
            same = False
        return request if same else replace(request, guard=True)

    def _report(self, r: UpdateResult) -> None:
        line = (
            f"event=feed_updated feed={r.url} status={r.status} new={r.new} "
            f"updated={r.updated} ms={r.elapsed_ms}"
        )
        if r.error:
            line += f" error={r.error.kind} message={r.error.message!r}"
            log.warning(line)
        else:
            log.info(line)

    async def _process(self, result: FetchResult, discovery: Callable[[], Fetcher]) -> UpdateResult:
        spec = self.specs[result.key]
        now = self.now()
        interval = self.intervals[spec.key]
        try:
            if isinstance(result, FetchFailed):
                raise FeedError(result.url, result.error)
            if isinstance(result, NotModified):
                self._quiet(spec.key, result.validators, now, interval, result.max_age)
                return UpdateResult(
                    spec.key, result.url, "not_modified", elapsed_ms=result.elapsed_ms
                )
            return await self._store_body(spec, result, discovery, now, interval)
        except FeedError as exc:
            errors = self.store.error_count(spec.key) + 1
            self.store.save_error(
                spec.key,
                exc.info,
                now=now,
                next_poll=next_poll_time(
                    now,
                    interval,
                    key=spec.key,
                    error_count=errors,
                    retry_after=exc.info.retry_after,
                ),
            )
            return UpdateResult(
                spec.key, result.url, "error", error=exc.info, elapsed_ms=result.elapsed_ms
            )

    async def _store_body(
        self,
        spec: FeedSpec,
        result: Fetched,
        discovery: Callable[[], Fetcher],
        now: datetime,
        interval: int,
    ) -> UpdateResult:
        if result.permanent_redirect and result.permanent_redirect != result.url:
            self.store.set_fetch_url(spec.key, result.permanent_redirect, redirected=True)
        body_hash = hashlib.sha256(result.body).hexdigest()
        if body_hash == self._states[spec.key].body_hash:
            # A server without validators sent the same bytes again: nothing to parse.
            self._quiet(spec.key, result.validators, now, interval, result.max_age)
            return UpdateResult(spec.key, result.url, "not_modified", elapsed_ms=result.elapsed_ms)
        try:
            parsed = await self._parse(result)
        except ParseError as exc:
            if exc.info.kind != "not_a_feed":
                raise
            found = await self._discover(spec, result, discovery())
            if found is None:
                raise
            result = found
            body_hash = hashlib.sha256(result.body).hexdigest()
            parsed = await self._parse(result)
        # The poll interval is decided before we know whether anything changed;
        # a poll that stores entries resets the quiet count, so assume it will.
        next_poll = self._next_poll(spec.key, now, interval, result.max_age, quiet=None)
        counts = self.store.save_fetched(
            spec.key,
            parsed,
            validators=result.validators,
            body_hash=body_hash,
            now=now,
            next_poll=next_poll,
        )
        return UpdateResult(
            spec.key,
            result.url,
            "ok",
            new=counts.new,
            updated=counts.updated,
            elapsed_ms=result.elapsed_ms,
        )

    def _quiet(
        self,
        key: str,
        validators: Validators,
        now: datetime,
        interval: int,
        max_age: int | None,
    ) -> None:
        """A feed brought nothing new: queue its new state, saving every `BATCH` feeds."""
        next_poll = self._next_poll(key, now, interval, max_age, quiet=1)
        self._unchanged.append(Unchanged(key, validators, now, next_poll))
        if len(self._unchanged) >= self.BATCH:
            self._save_unchanged()

    def _save_unchanged(self) -> None:
        queued, self._unchanged = self._unchanged, []
        self.store.save_unchanged(queued)

    def _next_poll(
        self, key: str, now: datetime, interval: int, max_age: int | None, *, quiet: int | None
    ) -> datetime:
        """Next poll after a success; `quiet` is 1 when this poll brought nothing new."""
        unchanged = self._states[key].unchanged_polls + quiet if quiet else 0
        return next_poll_time(
            now, interval, key=key, unchanged_polls=unchanged, retry_after=max_age
        )

    async def _parse(self, result: Fetched) -> ParsedFeed:
        limits = self.config.settings.fetch
        return await self._parser.parse(
            result.body,
            url=result.final_url,
            content_type=result.content_type,
            now=self.now(),
            max_entries=limits.max_entries,
        )

    async def _discover(self, spec: FeedSpec, page: Fetched, fetcher: Fetcher) -> Fetched | None:
        """A web page came back instead of a feed: follow its <link rel="alternate"> feed.

        The discovered URL is remembered, so the page is not fetched again.  A page
        that advertises no feed leaves the original "not a feed" error in place.
        """
        for link in discover_feed_links(page.body, page.final_url)[:3]:
            found = await fetcher.fetch(FetchRequest(spec.key, link))
            if isinstance(found, FetchFailed):
                raise FeedError(link, found.error)
            if isinstance(found, Fetched):
                log.info("event=feed_discovered feed=%s page=%s", link, page.final_url)
                self.store.set_fetch_url(spec.key, link)
                return found
        return None


def update(
    config: Config,
    store: Store,
    *,
    options: UpdateOptions = UpdateOptions(),
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    on_result: Callable[[UpdateResult, int, int], None] | None = None,
) -> list[UpdateResult]:
    """Run one update from synchronous code (the CLI)."""
    updater = Updater(config, store, options=options, now=now, on_result=on_result)
    return asyncio.run(updater.run())
