"""`aggregator run`: the long-running scheduler (APScheduler, on asyncio).

Jobs call the same functions the CLI calls:

- `poll`, every `tick` seconds: update the feeds whose own next-poll time has
  come (update.next_poll_time: interval, jitter, adaptive slowing, backoff,
  Retry-After).  Polling once a minute and letting each feed's stored schedule
  decide keeps the schedule in the database, so a restart loses nothing.
- `build`, debounced: after a poll that stored new or changed entries, the
  outputs are rebuilt once things are quiet for `debounce` seconds (but never
  later than `max_build_delay` after the first change).  The deadline is kept
  on the Service (`build_due`, on the injected clock) so tests can drive it
  without APScheduler's timers.
- `digest`, daily at `settings.digest.time` in `settings.timezone`
  (APScheduler's CronTrigger is DST-aware).  A digest missed while the process
  was down is made once on start, and only if the digest store has no record
  of it (or it was due to be sent and was not), so a restart never makes or
  sends it twice.

Signals: SIGTERM/SIGINT stop the scheduler, let an in-flight poll finish for up
to `grace` seconds and then cancel it (each feed is stored in its own
transaction, so a cancelled poll leaves nothing half-written), and exit 0.
SIGHUP, or a change to feeds.yaml's modification time, reloads the config; an
invalid new config is reported and the old one keeps running.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from . import render
from .config import load_config
from .digest import digest_records
from .errors import AggregatorError, ConfigError
from .models import Config, UpdateResult
from .store import Store
from .update import UpdateOptions, Updater

log = logging.getLogger(__name__)

FAILING_WARN_AFTER = timedelta(days=1)


def digest_trigger(config: Config) -> CronTrigger | None:
    """The daily digest's trigger, or None when no digest is configured."""
    digest = config.settings.digest
    if digest is None:
        return None
    hour, minute = (int(part) for part in digest.time.split(":"))
    return CronTrigger(hour=hour, minute=minute, timezone=ZoneInfo(config.settings.timezone))


def digest_missed(config: Config, now: datetime) -> bool:
    """True when today's digest time has already passed (so a restart should catch up)."""
    digest = config.settings.digest
    if digest is None:
        return False
    zone = ZoneInfo(config.settings.timezone)
    local = now.astimezone(zone)
    hour, minute = (int(part) for part in digest.time.split(":"))
    return (local.hour, local.minute) >= (hour, minute)


def digest_catch_up_due(config: Config, store: Store, now: datetime) -> bool:
    """True when today's digest should have been made already and the store says it was not.

    Today's digest is named after yesterday (local time).  It is due on start
    when its time has passed and there is no record of it, or sending is
    configured and it was written but never sent (the send failed, or the
    process stopped in between).  A digest missed on earlier days is folded
    into the next one by `digest_window`, so this never makes more than one.
    """
    digest = config.settings.digest
    if digest is None or not digest_missed(config, now):
        return False
    yesterday = now.astimezone(ZoneInfo(config.settings.timezone)).date() - timedelta(days=1)
    record = next((r for r in digest_records(store) if r.day == yesterday), None)
    if record is None:
        return True
    return digest.smtp is not None and record.written and record.sent_at is None


class Service:
    """The scheduler process: owns the store, the config and the APScheduler jobs."""

    def __init__(
        self,
        config_path: Path,
        *,
        tick: float = 60.0,
        debounce: float = 15.0,
        max_build_delay: float = 120.0,
        grace: float = 4.0,
        options: UpdateOptions | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.config_path = config_path
        self.tick = tick
        self.debounce = debounce
        self.max_build_delay = max_build_delay
        self.grace = grace
        self.options = options or UpdateOptions()
        self.now = now
        self.config: Config = load_config(config_path)
        self.config_mtime = self._mtime()
        self.store = Store.open(self.config.settings.database)
        self.stopping = asyncio.Event()
        self.polling: asyncio.Task[list[UpdateResult]] | None = None
        # Debounced rebuild: when the first unbuilt change came, and when to build.
        self.build_pending_since: datetime | None = None
        self.build_due: datetime | None = None
        self.scheduler: AsyncIOScheduler | None = None
        self.builds = 0
        self.polls = 0
        self.warned: dict[str, datetime] = {}

    def _mtime(self) -> tuple[int, int]:
        """The config file's signature.  The size is part of it because a file
        truncated and rewritten within one clock tick keeps its mtime, and we
        may have read it in between."""
        try:
            stat = self.config_path.stat()
        except OSError:
            return (0, 0)
        return (stat.st_mtime_ns, stat.st_size)

    # ---------------------------------------------------------------- lifecycle

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)
        loop.add_signal_handler(signal.SIGHUP, self.reload)
        zone = ZoneInfo(self.config.settings.timezone)
        self.scheduler = AsyncIOScheduler(timezone=zone)
        self.scheduler.add_job(
            self.poll,
            IntervalTrigger(seconds=self.tick, timezone=zone),
            id="poll",
            next_run_time=datetime.now(zone),
            # A tick that comes while a poll is still running returns at once (see
            # `poll`); allowing it to start keeps APScheduler from logging a
            # "skipped: maximum number of running instances" warning every tick.
            max_instances=2,
            coalesce=True,
        )
        self._schedule_digest()
        self.scheduler.start()
        log.info("event=started config=%s feeds=%d", self.config_path, len(self.config.feeds()))
        self.scheduler.add_job(self.catch_up_digest, id="digest-catch-up")
        try:
            await self.stopping.wait()
        finally:
            await self._shutdown()
        return 0

    def stop(self) -> None:
        log.info("event=stopping")
        self.stopping.set()

    async def _shutdown(self) -> None:
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
        task = self.polling
        if task is not None and not task.done():
            try:
                await asyncio.wait_for(asyncio.shield(task), timeout=self.grace)
            except TimeoutError:
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    log.info("event=poll_abandoned reason=shutdown")
            except asyncio.CancelledError:
                pass
        self.store.close()
        log.info("event=stopped")

    def reload(self) -> None:
        """Load feeds.yaml again; keep the running config if the new one is invalid.

        Called on SIGHUP and when the file's modification time changes.  The
        problems are logged with their line numbers (the same text `aggregator
        check` prints), so an organiser who saved a typo can see what to fix.
        """
        self.config_mtime = self._mtime()
        try:
            config = load_config(self.config_path)
        except ConfigError as exc:
            count = len(exc.problems)
            log.error(
                "event=config_reload_failed file=%s problems=%d message=%r\n%s",
                self.config_path,
                count,
                f"{self.config_path} was changed but cannot be used ({count} problem(s), "
                "listed below), so the aggregator keeps running with the previous "
                "configuration. Fix the file and save it again.",
                exc,
            )
            return
        if config.settings.database != self.config.settings.database:
            log.error(
                "event=config_reload_failed file=%s message=%r",
                self.config_path,
                f"settings.database changed to {config.settings.database}, so the aggregator "
                "keeps running with the previous configuration. Restart it to switch databases.",
            )
            return
        self.config = config
        self._schedule_digest()
        log.info("event=config_reloaded file=%s feeds=%d", self.config_path, len(config.feeds()))
        # Titles, sources or tags may have changed: the pages should show it.
        self.request_build()

    def _schedule_digest(self) -> None:
        if self.scheduler is None:
            return
        trigger = digest_trigger(self.config)
        if self.scheduler.get_job("digest"):
            self.scheduler.remove_job("digest")
        if trigger is not None:
            self.scheduler.add_job(
                self.digest,
                trigger,
                id="digest",
                coalesce=True,
                max_instances=1,
                misfire_grace_time=3600,
            )

    # ---------------------------------------------------------------- jobs

    async def poll(self) -> list[UpdateResult]:
        """Poll the feeds that are due, then ask for a (debounced) build if anything changed.

        The whole step runs as one task (`self.polling`) so that shutdown can
        wait for it, or cancel it, as a unit: after a stop nothing touches the
        store.  A tick that comes while a poll is running returns at once.
        """
        if self.stopping.is_set():
            return []
        if self.polling is not None and not self.polling.done():
            return []
        self.polling = asyncio.ensure_future(self._poll_once())
        try:
            return await asyncio.shield(self.polling)
        except asyncio.CancelledError:
            return []

    async def _poll_once(self) -> list[UpdateResult]:
        if self._mtime() != self.config_mtime:
            self.reload()
        self.polls += 1
        updater = Updater(self.config, self.store, options=self.options, now=self.now)
        results = await updater.run()
        if self.stopping.is_set():
            return results
        changed = any(r.new or r.updated for r in results)
        if changed or self.polls == 1:
            self.request_build(immediately=self.polls == 1)
        self._warn_long_failures()
        return results

    def request_build(self, *, immediately: bool = False) -> None:
        """Debounce rebuilds: one build after a burst of updates, not one per feed.

        Each request moves the build `debounce` seconds later, but never later
        than `max_build_delay` after the first unbuilt change, so a feed that
        changes on every poll cannot hold the pages back for ever.
        """
        now = self.now()
        if self.build_pending_since is None:
            self.build_pending_since = now
        waited = (now - self.build_pending_since).total_seconds()
        delay = 0.0 if immediately else min(self.debounce, max(0.0, self.max_build_delay - waited))
        self.build_due = now + timedelta(seconds=delay)
        if self.scheduler is None:
            return
        self.scheduler.add_job(
            self.build,
            DateTrigger(run_date=datetime.now(UTC) + timedelta(seconds=delay)),
            id="build",
            replace_existing=True,
        )

    async def build_if_due(self) -> bool:
        """Build now if a requested build's time has come on the Service's clock."""
        if self.build_due is None or self.now() < self.build_due:
            return False
        await self.build()
        return True

    async def build(self) -> None:
        self.build_pending_since = None
        self.build_due = None
        try:
            report = render.build(self.config, self.store, now=self.now())
        except AggregatorError as exc:
            log.error("event=build_failed message=%r", str(exc))
            return
        self.builds += 1
        log.info(
            "event=built written=%d unchanged=%d entries=%d",
            len(report.written),
            report.unchanged,
            report.entries,
        )

    async def catch_up_digest(self) -> bool:
        """On start: make today's digest if its time passed while we were stopped."""
        if not digest_catch_up_due(self.config, self.store, self.now()):
            return False
        log.info(
            "event=digest_catch_up message=%r",
            "The digest time passed while the aggregator was stopped; making it now.",
        )
        await self.digest()
        return True

    async def digest(self) -> None:
        from .digest import run_digest

        settings = self.config.settings.digest
        if settings is None:
            return
        try:
            outcome = run_digest(
                self.config,
                self.store,
                date=None,
                send=settings.smtp is not None,
                force=False,
                now=self.now(),
            )
        except AggregatorError as exc:
            log.error("event=digest_failed message=%r", str(exc))
            return
        log.info("event=digest message=%r", getattr(outcome, "message", str(outcome)))

    def _warn_long_failures(self) -> None:
        now = self.now()
        keys = {f.key for f in self.config.feeds()}
        for status in self.store.feed_statuses(keys):
            if status.failing_since is None:
                self.warned.pop(status.key, None)
                continue
            last = self.warned.get(status.key)
            if now - status.failing_since > FAILING_WARN_AFTER and (
                last is None or now - last > FAILING_WARN_AFTER
            ):
                self.warned[status.key] = now
                assert status.last_error is not None
                log.warning(
                    "event=feed_failing feed=%s since=%s message=%r",
                    status.url,
                    status.failing_since.isoformat(),
                    status.last_error.message,
                )


def run_service(config_path: Path, **kwargs: Any) -> int:
    service = Service(config_path, **kwargs)
    return asyncio.run(service.run())
