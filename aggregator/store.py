"""SQLite storage via sqlite-utils: schema, migrations, one transaction per feed.

What lives here: the schema (as named migrations, applied in order), the
writes that record one feed's fetch, and the reads the renderers need.  What
does not: deciding whether two entries are the same (dedupe.py), making HTML
safe (sanitize.py), or scheduling policy beyond storing the next poll time.

Dates are stored as ISO 8601 UTC strings ("2026-11-25T06:55:58Z"), which sort
as text and read back with `datetime.fromisoformat`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from .dedupe import canonical_url, content_hash, entry_id, identity_key
from .errors import StoreError
from .models import (
    ErrorInfo,
    FeedSpec,
    FeedStatus,
    FetchRequest,
    Media,
    ParsedFeed,
    Platform,
    StoredEntry,
    Validators,
)

migrations = Migrations("aggregator")


@migrations()
def m001_initial(db: Database) -> None:
    db.table("feeds").create(
        {
            "key": str,  # the URL feeds.yaml produced; never changes
            "url": str,  # where we fetch it now (after discovery or a permanent redirect)
            "source": str,
            "platform": str,
            "kind": str,
            "title": str,
            "site_link": str,
            "etag": str,
            "last_modified": str,
            "body_hash": str,
            "last_fetched": str,
            "last_success": str,
            "last_error_kind": str,
            "last_error_message": str,
            "last_error_status": int,
            "last_error_at": str,
            "failing_since": str,
            "error_count": int,
            "retry_after": int,
            "next_poll": str,
            "redirected_to": str,
        },
        pk="key",
        not_null=["url", "source", "platform", "kind"],
        defaults={"error_count": 0},
    )
    db.table("entries").create(
        {
            "id": str,
            "feed_key": str,
            "source": str,
            "platform": str,
            "identity": str,
            "guid": str,
            "link": str,
            "canonical_link": str,
            "title": str,
            "title_derived": int,
            "summary": str,
            "content": str,
            "author": str,
            "published": str,
            "updated": str,
            "first_seen": str,
            "language": str,
            "media": str,  # JSON list of Media fields
            "tags": str,  # JSON list of strings
            "content_hash": str,
        },
        pk="id",
        not_null=["feed_key", "source", "identity", "title", "published", "first_seen"],
        foreign_keys=[("feed_key", "feeds", "key")],
    )
    db.table("entries").create_index(["feed_key", "identity"], unique=True)
    db.table("entries").create_index(["published"])
    db.table("entries").create_index(["source", "published"])
    db.table("entries").create_index(["canonical_link"])


@migrations()
def m002_adaptive_polling(db: Database) -> None:
    # How many polls in a row brought nothing new: quiet feeds are polled less often.
    db.table("feeds").add_column("unchanged_polls", int, not_null_default=0)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def from_iso(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(frozen=True)
class SaveCounts:
    new: int
    updated: int


class Store:
    """The aggregator's database.  Open with `Store.open(path)`; use as a context manager."""

    def __init__(self, db: Database, path: Path) -> None:
        self.db = db
        self.path = path

    @classmethod
    def open(cls, path: Path) -> Store:
        """Open (creating if needed) the database at `path` and bring its schema up to date."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(path), timeout=30)
            db = Database(conn)
            db.enable_wal()
            db.execute("PRAGMA foreign_keys = ON")
            db.execute("PRAGMA synchronous = NORMAL")
            migrations.apply(db)
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"Could not open the database {path}: {exc}. If the file is damaged, move it "
                "aside and run `aggregator update --all` to fetch everything again."
            ) from exc
        except OSError as exc:
            raise StoreError(
                f"Could not create the database folder {path.parent}: {exc.strerror}. "
                "Check that `settings.database` in feeds.yaml points somewhere writable."
            ) from exc
        return cls(db, path)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        try:
            with self.db.atomic():
                yield
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"Could not write to the database {self.path}: {exc}") from exc

    # ------------------------------------------------------------------ feeds

    def sync_feeds(self, feeds: Iterable[FeedSpec]) -> None:
        """Make sure every configured feed has a row; keep what we learnt about existing ones."""
        existing = {row["key"]: row for row in self.db.table("feeds").rows}
        rows = []
        for spec in feeds:
            row = existing.get(spec.key)
            if row is None:
                rows.append(
                    {
                        "key": spec.key,
                        "url": spec.url,
                        "source": spec.source,
                        "platform": spec.platform,
                        "kind": spec.kind,
                        "error_count": 0,
                    }
                )
            elif (row["source"], row["platform"], row["kind"]) != (
                spec.source,
                spec.platform,
                spec.kind,
            ):
                rows.append(
                    {
                        "key": spec.key,
                        "source": spec.source,
                        "platform": spec.platform,
                        "kind": spec.kind,
                    }
                )
        if rows:
            with self._transaction():
                self.db.table("feeds").upsert_all(rows, pk="key")

    def requests(
        self, keys: Collection[str], *, now: datetime, due_only: bool
    ) -> list[FetchRequest]:
        """What to fetch: the given feeds, only those whose next poll has come when `due_only`."""
        out = []
        for row in self.db.table("feeds").rows:
            if row["key"] not in keys:
                continue
            next_poll = from_iso(row["next_poll"])
            if due_only and next_poll is not None and next_poll > now:
                continue
            out.append(
                FetchRequest(
                    key=row["key"],
                    url=row["url"],
                    validators=Validators(row["etag"], row["last_modified"]),
                )
            )
        return out

    def feed_row(self, key: str) -> dict[str, Any]:
        return cast(dict[str, Any], self.db.table("feeds").get(key))

    def set_fetch_url(self, key: str, url: str, *, redirected: bool = False) -> None:
        """Remember a discovered feed URL, or a permanent redirect (also shown to organisers)."""
        changes: dict[str, Any] = {"url": url, "etag": None, "last_modified": None}
        if redirected:
            changes["redirected_to"] = url
        with self._transaction():
            self.db.table("feeds").update(key, changes)

    def save_fetched(
        self,
        key: str,
        parsed: ParsedFeed,
        *,
        validators: Validators,
        body_hash: str,
        now: datetime,
        next_poll: datetime,
    ) -> SaveCounts:
        """Store one feed's entries and its new state, in one transaction.

        `parsed` must already have been through sanitize.py.  An entry whose key
        is already stored for this feed is updated in place when its content
        changed (keeping its id, first-seen time and original publication date),
        and left alone when it did not.
        """
        feed = self.feed_row(key)
        existing = {
            row["identity"]: row
            for row in self.db.query(
                "select id, identity, content_hash, published, first_seen"
                " from entries where feed_key = ?",
                [key],
            )
        }
        rows = []
        new = updated = 0
        seen: set[str] = set()
        for entry in parsed.entries:
            identity = identity_key(entry)
            if identity in seen:
                continue
            seen.add(identity)
            digest = content_hash(entry)
            old = existing.get(identity)
            if old is not None and old["content_hash"] == digest:
                continue
            published = entry.published or entry.updated or now
            record = {
                "id": old["id"] if old else entry_id(key, identity),
                "feed_key": key,
                "source": feed["source"],
                "platform": feed["platform"],
                "identity": identity,
                "guid": entry.guid,
                "link": entry.link,
                "canonical_link": canonical_url(entry.link) if entry.link else None,
                "title": entry.title,
                "title_derived": int(entry.title_derived),
                "summary": entry.summary,
                "content": entry.content,
                "author": entry.author,
                "published": old["published"] if old else iso(published),
                "updated": iso(entry.updated or published),
                "first_seen": old["first_seen"] if old else iso(now),
                "language": entry.language,
                "media": json.dumps([m.__dict__ for m in entry.media]),
                "tags": json.dumps(list(entry.tags)),
                "content_hash": digest,
            }
            rows.append(record)
            if old:
                updated += 1
            else:
                new += 1
        with self._transaction():
            if rows:
                self.db.table("entries").upsert_all(rows, pk="id")
            self.db.table("feeds").update(
                key,
                {
                    "title": parsed.title,
                    "site_link": parsed.link,
                    "etag": validators.etag,
                    "last_modified": validators.last_modified,
                    "body_hash": body_hash,
                    "unchanged_polls": 0 if rows else (feed["unchanged_polls"] or 0) + 1,
                    **self._success_fields(now, next_poll),
                },
            )
        return SaveCounts(new, updated)

    def save_unchanged(
        self,
        key: str,
        *,
        validators: Validators,
        now: datetime,
        next_poll: datetime,
    ) -> None:
        """A 304, or a body identical to the last one: only the feed's state changes."""
        unchanged = int(self.feed_row(key)["unchanged_polls"] or 0) + 1
        with self._transaction():
            self.db.table("feeds").update(
                key,
                {
                    "etag": validators.etag,
                    "last_modified": validators.last_modified,
                    "unchanged_polls": unchanged,
                    **self._success_fields(now, next_poll),
                },
            )

    @staticmethod
    def _success_fields(now: datetime, next_poll: datetime) -> dict[str, Any]:
        return {
            "last_fetched": iso(now),
            "last_success": iso(now),
            "failing_since": None,
            "error_count": 0,
            "retry_after": None,
            "next_poll": iso(next_poll),
        }

    def save_error(self, key: str, error: ErrorInfo, *, now: datetime, next_poll: datetime) -> None:
        """Record a feed's failure; its stored entries are untouched."""
        feed = self.feed_row(key)
        with self._transaction():
            self.db.table("feeds").update(
                key,
                {
                    "last_fetched": iso(now),
                    "last_error_kind": error.kind,
                    "last_error_message": error.message,
                    "last_error_status": error.http_status,
                    "last_error_at": iso(now),
                    "failing_since": feed["failing_since"] or iso(now),
                    "error_count": (feed["error_count"] or 0) + 1,
                    "retry_after": error.retry_after,
                    "next_poll": iso(next_poll),
                },
            )

    def error_count(self, key: str) -> int:
        return int(self.feed_row(key)["error_count"] or 0)

    def unchanged_polls(self, key: str) -> int:
        return int(self.feed_row(key)["unchanged_polls"] or 0)

    def body_hash(self, key: str) -> str | None:
        value = self.feed_row(key)["body_hash"]
        return str(value) if value else None

    def feed_statuses(self, keys: Collection[str] | None = None) -> list[FeedStatus]:
        counts = {
            row["feed_key"]: row["n"]
            for row in self.db.query(
                "select feed_key, count(*) as n from entries group by feed_key"
            )
        }
        out = []
        for row in self.db.table("feeds").rows_where(order_by="source, key"):
            if keys is not None and row["key"] not in keys:
                continue
            error = None
            if row["last_error_kind"] and row["failing_since"]:
                error = ErrorInfo(
                    kind=row["last_error_kind"],
                    message=row["last_error_message"] or "",
                    http_status=row["last_error_status"],
                    retry_after=row["retry_after"],
                )
            out.append(
                FeedStatus(
                    key=row["key"],
                    url=row["url"],
                    source=row["source"],
                    platform=cast(Platform, row["platform"]),
                    title=row["title"],
                    entry_count=counts.get(row["key"], 0),
                    last_fetched=from_iso(row["last_fetched"]),
                    last_success=from_iso(row["last_success"]),
                    last_error=error,
                    last_error_at=from_iso(row["last_error_at"]),
                    failing_since=from_iso(row["failing_since"]),
                    next_poll=from_iso(row["next_poll"]),
                    redirected_to=row["redirected_to"],
                )
            )
        return out

    # ------------------------------------------------------------------ entries

    def entries(
        self,
        *,
        sources: Collection[str] | None = None,
        feed_keys: Collection[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> list[StoredEntry]:
        """Entries newest first (by publication date, then id for a stable order)."""
        where: list[str] = []
        params: list[Any] = []
        if sources is not None:
            where.append(f"source in ({','.join('?' * len(sources))})")
            params.extend(sources)
        if feed_keys is not None:
            where.append(f"feed_key in ({','.join('?' * len(feed_keys))})")
            params.extend(feed_keys)
        if since is not None:
            where.append("published >= ?")
            params.append(iso(since))
        if until is not None:
            where.append("published < ?")
            params.append(iso(until))
        sql = "select * from entries"
        if where:
            sql += " where " + " and ".join(where)
        sql += " order by published desc, id"
        if limit is not None:
            sql += " limit ?"
            params.append(limit)
        return [row_to_entry(row) for row in self.db.query(sql, params)]

    def entry_count(self) -> int:
        return self.db.table("entries").count


def row_to_entry(row: dict[str, Any]) -> StoredEntry:
    published = from_iso(row["published"])
    first_seen = from_iso(row["first_seen"])
    assert published is not None and first_seen is not None  # NOT NULL columns
    return StoredEntry(
        id=row["id"],
        feed_key=row["feed_key"],
        source=row["source"],
        platform=cast(Platform, row["platform"]),
        guid=row["guid"],
        link=row["link"],
        title=row["title"],
        title_derived=bool(row["title_derived"]),
        summary=row["summary"] or "",
        content=row["content"] or "",
        author=row["author"],
        published=published,
        updated=from_iso(row["updated"]) or published,
        first_seen=first_seen,
        language=row["language"],
        media=tuple(Media(**m) for m in json.loads(row["media"] or "[]")),
        tags=tuple(json.loads(row["tags"] or "[]")),
    )
