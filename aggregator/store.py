"""SQLite storage via sqlite-utils: schema, migrations, one transaction per write.

What lives here: the schema (as named migrations, applied in order), the
writes that record one feed's fetch, and the reads the renderers need.  What
does not: deciding whether two entries are the same (dedupe.py), making HTML
safe (sanitize.py), or scheduling policy beyond storing the next poll time.

Dates are stored as ISO 8601 UTC strings ("2026-11-25T06:55:58Z"), which sort
as text and read back with `datetime.fromisoformat`.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from .dedupe import (
    canonical_url,
    entry_id,
    entry_keys,
    guids_rewritten,
    identity_key,
    link_key,
    relinked,
)
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

log = logging.getLogger(__name__)
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


@migrations()
def m003_hidden_entries(db: Database) -> None:
    # Issue 7: entries an organiser hid with `aggregator hide`, kept out of every
    # output.  Keyed by entry id; the canonical link also hides the same post if
    # it comes back under another id.  Title, source and link are copied so that
    # `aggregator hidden` can list an entry even after it left the store.
    db.table("hidden_entries").create(
        {
            "entry_id": str,
            "canonical_link": str,
            "link": str,
            "title": str,
            "source": str,
            "reason": str,
            "hidden_at": str,
        },
        pk="entry_id",
        not_null=["hidden_at"],
    )
    db.table("hidden_entries").create_index(["canonical_link"])


@migrations()
def m004_canonical_links(db: Database) -> None:
    # Issue 7: links are canonicalised further (AMP, mobile hosts, Bridgy Fed
    # redirects; http and https compare equal).  Stored canonical links and the
    # link identities of entries without a GUID are recomputed so the next fetch
    # matches them; an identity that would collide with another in its feed keeps
    # its old value.  `identity_by` = "link" marks a feed that rewrites its GUIDs.
    db.table("feeds").add_column("identity_by", str)
    taken = {
        (row["feed_key"], row["identity"])
        for row in db.query("select feed_key, identity from entries")
    }
    changes = []
    for row in db.query("select id, feed_key, identity, link from entries where link is not null"):
        identity = row["identity"]
        if identity.startswith("link:"):
            wanted = "link:" + link_key(row["link"])
            if (row["feed_key"], wanted) not in taken:
                taken.discard((row["feed_key"], identity))
                taken.add((row["feed_key"], wanted))
                identity = wanted
        changes.append((canonical_url(row["link"]), identity, row["id"]))
    db.conn.executemany("update entries set canonical_link = ?, identity = ? where id = ?", changes)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def from_iso(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _link_key(link: str | None) -> str | None:
    return link_key(link) if link else None


@dataclass(frozen=True)
class SaveCounts:
    new: int
    updated: int


@dataclass(frozen=True)
class PollState:
    """What deciding a feed's next poll needs from its row (see `Store.poll_states`)."""

    unchanged_polls: int
    body_hash: str | None


@dataclass(frozen=True)
class Unchanged:
    """A 304, or a body identical to the last one: the feed's new state, to be saved."""

    key: str
    validators: Validators
    now: datetime
    next_poll: datetime


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
                f"Could not open the database {path}: {exc}. Check that `settings.database` in "
                "feeds.yaml names a file this user can write; if the file is damaged, move it "
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
            raise StoreError(
                f"Could not write to the database {self.path}: {exc}. Nothing of this change "
                "was saved. Check that the disk is not full and that this user can write the "
                "file and its folder, then run the command again."
            ) from exc

    # ------------------------------------------------------------------ feeds

    def sync_feeds(self, feeds: Iterable[FeedSpec]) -> None:
        """Make sure every configured feed has a row; keep what we learnt about existing ones."""
        # Plain SQL, here and in `requests`: sqlite-utils' Table.rows builds a
        # dict of every column of every row, each run (issue 8).
        existing = {
            key: (source, platform, kind)
            for key, source, platform, kind in self.db.execute(
                "select key, source, platform, kind from feeds"
            )
        }
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
            elif row != (spec.source, spec.platform, spec.kind):
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
        self, keys: Collection[str], *, now: datetime, due_only: bool, include_gone: bool = False
    ) -> list[FetchRequest]:
        """What to fetch: the given feeds, only those whose next poll has come when `due_only`.

        A feed whose server last said 410 Gone is not polled again (issue 6)
        unless `include_gone` (the organiser named it on the command line), and
        then at once, due or not.
        """
        out = []
        rows = self.db.execute(
            "select key, url, etag, last_modified, last_error_kind, failing_since, next_poll"
            " from feeds order by rowid"
        )
        for key, url, etag, last_modified, error_kind, failing_since, polled_next in rows:
            if key not in keys:
                continue
            gone = error_kind == "gone" and bool(failing_since)
            if gone and not include_gone:
                continue
            next_poll = from_iso(polled_next)
            if due_only and not gone and next_poll is not None and next_poll > now:
                continue
            out.append(FetchRequest(key=key, url=url, validators=Validators(etag, last_modified)))
        return out

    def feed_row(self, key: str) -> dict[str, Any]:
        # Plain SQL: sqlite-utils' Table.get and Table.update inspect the schema on
        # every call, which was most of the cost of a 304 (issue 8).
        cursor = self.db.execute("select * from feeds where key = ?", [key])
        row = cursor.fetchone()
        if row is None:
            raise StoreError(
                f"The feed {key} has no row in the database {self.path}; this is a bug, "
                "please report it. Running `aggregator update` again recreates the row."
            )
        return dict(zip((c[0] for c in cursor.description), row, strict=True))

    def _upsert_entries(self, rows: list[dict[str, Any]]) -> None:
        """Insert entry rows, or update the columns they name; one statement per shape.

        What `upsert_all(rows, pk="id")` does, without its per-value conversion
        and per-chunk query building: with feeds of 50 entries that was a third
        of a cold update's store time (issue 8).  Values are already plain
        (str, int, None); the column names are ours, never a feed's.
        """
        shapes: dict[tuple[str, ...], list[list[Any]]] = {}
        for row in rows:
            shapes.setdefault(tuple(row), []).append(list(row.values()))
        for columns, values in shapes.items():
            names = ", ".join(f"[{c}]" for c in columns)
            updates = ", ".join(f"[{c}] = excluded.[{c}]" for c in columns if c != "id")
            self.db.conn.executemany(
                f"insert into entries ({names}) values ({', '.join('?' * len(columns))})"
                f" on conflict(id) do update set {updates}",
                values,
            )

    def _update_feed(self, key: str, changes: dict[str, Any]) -> None:
        """Set some columns of one feed's row (the names are ours, never a feed's)."""
        columns = ", ".join(f"[{name}] = ?" for name in changes)
        self.db.execute(f"update feeds set {columns} where key = ?", [*changes.values(), key])

    def set_fetch_url(self, key: str, url: str, *, redirected: bool = False) -> None:
        """Remember a discovered feed URL, or a permanent redirect (also shown to organisers)."""
        changes: dict[str, Any] = {"url": url, "etag": None, "last_modified": None}
        if redirected:
            changes["redirected_to"] = url
        with self._transaction():
            self._update_feed(key, changes)

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

        Feeds that give an entry a new GUID when they republish it (issue 7):
        a new GUID whose link belongs to a stored entry gone from the feed is
        that entry, updated, not a new one (dedupe.relinked); when a whole
        re-fetch looks like that, the feed is marked `identity_by = "link"` and
        matched by link from then on (dedupe.guids_rewritten).
        """
        feed = self.feed_row(key)
        stored = list(
            self.db.query(
                "select id, identity, link, content_hash, published, first_seen"
                " from entries where feed_key = ?",
                [key],
            )
        )
        existing = {row["identity"]: row for row in stored}
        stored_keys = [(row["identity"], _link_key(row["link"])) for row in stored]
        by_link = feed.get("identity_by") == "link"
        keys = parsed.keys
        if len(keys) != len(parsed.entries):
            keys = tuple(entry_keys(e) for e in parsed.entries)
        fetched_keys = [
            (identity_key(e), k.link_key) for e, k in zip(parsed.entries, keys, strict=True)
        ]
        newly_by_link = not by_link and guids_rewritten(fetched_keys, stored_keys)
        if newly_by_link:
            by_link = True
            log.warning(
                "event=guids_rewritten feed=%s message=%r",
                key,
                "This feed gives its posts new ids on every fetch; "
                "its posts are now told apart by their links.",
            )
        if by_link:
            fetched_keys = [
                (identity_key(e, by_link=True), k.link_key)
                for e, k in zip(parsed.entries, keys, strict=True)
            ]
            owners: dict[str, list[str]] = {}
            for identity, link in stored_keys:
                if link:
                    owners.setdefault(link, []).append(identity)
            replaced = {
                identity: owners[link][0]
                for identity, link in fetched_keys
                if identity not in existing and link and len(owners.get(link, ())) == 1
            }
        else:
            replaced = relinked(fetched_keys, stored_keys)
        rows = []
        new = updated = 0
        seen: set[str] = set()
        for entry, entry_key, (identity, _) in zip(parsed.entries, keys, fetched_keys, strict=True):
            if identity in seen:
                continue
            seen.add(identity)
            digest = entry_key.content_hash
            old = existing.get(identity) or existing.get(replaced.get(identity, ""))
            if old is not None and old["content_hash"] == digest and old["identity"] == identity:
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
                "canonical_link": entry_key.canonical_link,
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
            if old is None:
                new += 1
            elif old["content_hash"] != digest:
                updated += 1
        with self._transaction():
            if rows:
                self._upsert_entries(rows)
            self._update_feed(
                key,
                {
                    **({"identity_by": "link"} if newly_by_link else {}),
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

    def save_unchanged(self, polls: Iterable[Unchanged]) -> None:
        """Feeds that brought nothing new: only their state changes, all in one transaction.

        A run of 304s is most of an update, and one transaction (and a read of
        the row) per feed was most of what a 304 cost (issue 8).  The count of
        quiet polls goes up in SQL, so nothing is read first.
        """
        changes = [
            (
                poll.key,
                {
                    "etag": poll.validators.etag,
                    "last_modified": poll.validators.last_modified,
                    **self._success_fields(poll.now, poll.next_poll),
                },
            )
            for poll in polls
        ]
        if not changes:
            return
        columns = ", ".join(f"[{name}] = ?" for name in changes[0][1])
        with self._transaction():
            self.db.conn.executemany(
                f"update feeds set {columns},"
                " unchanged_polls = coalesce(unchanged_polls, 0) + 1 where key = ?",
                [[*values.values(), key] for key, values in changes],
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
            self._update_feed(
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

    def poll_states(self) -> dict[str, PollState]:
        """Every feed's count of quiet polls and last body hash, in one query.

        An update reads them once, before fetching, instead of once per feed:
        nothing else writes a feed's row while its update runs (lock.py).
        """
        return {
            key: PollState(int(unchanged or 0), body_hash or None)
            for key, unchanged, body_hash in self.db.execute(
                "select key, unchanged_polls, body_hash from feeds"
            )
        }

    def error_count(self, key: str) -> int:
        return int(self.feed_row(key)["error_count"] or 0)

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
        exclude_ids: Collection[str] = (),
    ) -> list[StoredEntry]:
        """Entries newest first (by publication date, then id for a stable order).

        `exclude_ids` are left out before `limit` applies (hidden or filtered
        entries, issue 7), so a page still gets its full count.
        """
        sql, params = _entries_query(
            _ENTRY_SELECT, sources, feed_keys, since, until, limit, exclude_ids
        )
        # Rows as tuples straight from sqlite3: a build reads about five entries
        # per entry stored, and sqlite-utils' dict per row was a tenth of it (issue 8).
        return [_tuple_to_entry(row) for row in self.db.execute(sql, params)]

    def entry_marks(
        self,
        *,
        sources: Collection[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
        exclude_ids: Collection[str] = (),
    ) -> list[tuple[str, ...]]:
        """What `entries` with the same arguments would give, in a few short columns.

        Two calls give equal lists only if the entries would be equal in all that
        a page shows (the content hash stands for the text): render.py compares
        them to leave a page alone that nothing it shows has changed on (issue 8).
        """
        columns = (
            "id, feed_key, source, platform, published, updated, first_seen,"
            " title_derived, content_hash"
        )
        sql, params = _entries_query(columns, sources, None, since, until, limit, exclude_ids)
        return [tuple(str(v) for v in row) for row in self.db.execute(sql, params)]

    def entry_count(self) -> int:
        return self.db.table("entries").count


def _entries_query(
    columns: str,
    sources: Collection[str] | None,
    feed_keys: Collection[str] | None,
    since: datetime | None,
    until: datetime | None,
    limit: int | None,
    exclude_ids: Collection[str],
) -> tuple[str, list[Any]]:
    """The select of `Store.entries` and `Store.entry_marks`: the same rows, in the same order."""
    where: list[str] = []
    params: list[Any] = []
    if exclude_ids:
        where.append("id not in (select value from json_each(?))")
        params.append(json.dumps(sorted(exclude_ids)))
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
    sql = f"select {columns} from entries"
    if where:
        sql += " where " + " and ".join(where)
    sql += " order by published desc, id"
    if limit is not None:
        sql += " limit ?"
        params.append(limit)
    return sql, params


_ENTRY_COLUMNS = (
    "id", "feed_key", "source", "platform", "guid", "link", "title", "title_derived",
    "summary", "content", "author", "published", "updated", "first_seen", "language",
    "media", "tags",
)  # fmt: skip
_ENTRY_SELECT = ", ".join(f"[{c}]" for c in _ENTRY_COLUMNS)


def _tuple_to_entry(row: tuple[Any, ...]) -> StoredEntry:
    """`row_to_entry` for a row of `_ENTRY_COLUMNS`, in that order."""
    (id_, feed_key, source, platform, guid, link, title, title_derived, summary, content,
     author, published, updated, first_seen, language, media, tags) = row  # fmt: skip
    published_at = datetime.fromisoformat(published)
    return StoredEntry(
        id=id_,
        feed_key=feed_key,
        source=source,
        platform=platform,
        guid=guid,
        link=link,
        title=title,
        title_derived=bool(title_derived),
        summary=summary or "",
        content=content or "",
        author=author,
        published=published_at,
        updated=datetime.fromisoformat(updated) if updated else published_at,
        first_seen=datetime.fromisoformat(first_seen),
        language=language,
        media=_media(media),
        tags=tuple(json.loads(tags)) if tags and tags != "[]" else (),
    )


def _media(text: str | None) -> tuple[Media, ...]:
    if not text or text == "[]":
        return ()
    return tuple(Media(**m) for m in json.loads(text))


def row_to_entry(row: dict[str, Any]) -> StoredEntry:
    """A stored entry from a row of the entries table, as a dict."""
    return _tuple_to_entry(tuple(row[c] for c in _ENTRY_COLUMNS))
