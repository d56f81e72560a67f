import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from aggregator.dedupe import entry_keys
from aggregator.errors import StoreError
from aggregator.models import ErrorInfo, FeedSpec, ParsedEntry, ParsedFeed, Validators
from aggregator.store import Store

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
FEED = FeedSpec(
    key="https://a.example/feed",
    url="https://a.example/feed",
    kind="url",
    platform="blog",
    source="alice",
)
OTHER = FeedSpec(
    key="https://b.example/feed",
    url="https://b.example/feed",
    kind="url",
    platform="mastodon",
    source="bob",
)


def entry(n: int, **kw) -> ParsedEntry:
    base = dict(
        guid=f"urn:post:{n}",
        link=f"https://a.example/post/{n}",
        title=f"Post {n}",
        title_derived=False,
        summary=f"Summary {n}",
        content=f"<p>Body {n}</p>",
        published=NOW - timedelta(hours=n),
    )
    base.update(kw)
    return ParsedEntry(**base)


def feed(*entries: ParsedEntry) -> ParsedFeed:
    return ParsedFeed(
        format="rss20", title="A", link="https://a.example/", language="en", entries=entries
    )


@pytest.fixture
def store(tmp_path):
    s = Store.open(tmp_path / "db" / "test.sqlite")
    s.sync_feeds([FEED, OTHER])
    yield s
    s.close()


def save(store, parsed, key=FEED.key, now=NOW):
    return store.save_fetched(
        key,
        parsed,
        validators=Validators("etag"),
        body_hash="h",
        now=now,
        next_poll=now + timedelta(minutes=30),
    )


def test_same_entries_twice_add_no_rows(store):
    assert save(store, feed(entry(1), entry(2))).new == 2
    counts = save(store, feed(entry(1), entry(2)))
    assert (counts.new, counts.updated) == (0, 0)
    assert store.entry_count() == 2


def test_keys_worked_out_in_the_parse_worker_store_what_the_store_would_work_out(tmp_path):
    # update.parse_and_sanitize fills ParsedFeed.keys in the worker process; a feed
    # without them (or with a stale count) gets them from the store itself.
    entries = (
        entry(1, link="https://www.a.example/post/1/?utm_source=x"),
        entry(2, link=None),
        entry(3, tags=("b", "a")),
    )
    worked_out = replace(feed(*entries), keys=tuple(entry_keys(e) for e in entries))
    stale = replace(feed(*entries), keys=worked_out.keys[:1])
    rows = []
    for n, parsed in enumerate((feed(*entries), worked_out, stale)):
        with Store.open(tmp_path / f"{n}.sqlite") as s:
            s.sync_feeds([FEED])
            assert save(s, parsed).new == 3
            rows.append(list(s.db.query("select * from entries order by id")))
    assert rows[0] == rows[1] == rows[2]
    assert {r["canonical_link"] for r in rows[0]} == {
        None,
        "https://www.a.example/post/1/",
        "https://a.example/post/3",
    }


def test_changed_entry_is_updated_in_place_keeping_id_and_first_seen(store):
    save(store, feed(entry(1)))
    [before] = store.entries()
    later = NOW + timedelta(hours=1)
    counts = save(store, feed(entry(1, content="<p>Corrected</p>", updated=later)), now=later)
    assert (counts.new, counts.updated) == (0, 1)
    [after] = store.entries()
    assert after.id == before.id
    assert after.first_seen == before.first_seen
    assert after.published == before.published
    assert after.content == "<p>Corrected</p>"
    assert after.updated == later


def test_guidless_entries_are_matched_by_link_then_text(store):
    by_link = entry(1, guid=None)
    by_text = entry(2, guid=None, link=None)
    assert save(store, feed(by_link, by_text)).new == 2
    assert save(store, feed(by_link, by_text)).new == 0
    assert store.entry_count() == 2


def test_same_post_in_two_feeds_stays_two_entries_with_their_sources(store):
    save(store, feed(entry(1)))
    save(store, feed(entry(1)), key=OTHER.key)
    entries = store.entries()
    assert len(entries) == 2
    assert {e.source for e in entries} == {"alice", "bob"}
    assert len({e.id for e in entries}) == 2


def test_missing_dates_fall_back_to_first_seen(store):
    save(store, feed(entry(1, published=None, updated=None)))
    [stored] = store.entries()
    assert stored.published == NOW == stored.first_seen


def test_entries_are_newest_first_and_filterable(store):
    save(store, feed(*(entry(n) for n in range(1, 6))))
    titles = [e.title for e in store.entries()]
    assert titles == ["Post 1", "Post 2", "Post 3", "Post 4", "Post 5"]
    assert [e.title for e in store.entries(limit=2)] == ["Post 1", "Post 2"]
    assert store.entries(sources=["bob"]) == []
    since = store.entries(since=NOW - timedelta(hours=2, minutes=30))
    assert [e.title for e in since] == ["Post 1", "Post 2"]


def test_error_is_recorded_without_touching_entries(store):
    save(store, feed(entry(1)))
    err = ErrorInfo(
        kind="http", message="The server says this feed does not exist.", http_status=404
    )
    store.save_error(FEED.key, err, now=NOW, next_poll=NOW + timedelta(hours=1))
    store.save_error(
        FEED.key, err, now=NOW + timedelta(hours=1), next_poll=NOW + timedelta(hours=3)
    )
    status = {s.key: s for s in store.feed_statuses()}[FEED.key]
    assert status.entry_count == 1
    assert status.last_error == ErrorInfo(kind="http", message=err.message, http_status=404)
    assert status.failing_since == NOW
    assert store.error_count(FEED.key) == 2
    save(store, feed(entry(1)), now=NOW + timedelta(hours=4))
    status = {s.key: s for s in store.feed_statuses()}[FEED.key]
    assert status.last_error is None and status.failing_since is None
    assert status.last_success == NOW + timedelta(hours=4)


def test_due_feeds_respect_next_poll(store):
    keys = {FEED.key, OTHER.key}
    assert {r.key for r in store.requests(keys, now=NOW, due_only=True)} == keys
    save(store, feed(entry(1)))
    assert {r.key for r in store.requests(keys, now=NOW, due_only=True)} == {OTHER.key}
    [req] = [r for r in store.requests(keys, now=NOW, due_only=False) if r.key == FEED.key]
    assert req.validators == Validators("etag", None)


def test_schema_survives_reopen_and_database_is_consistent(tmp_path):
    path = tmp_path / "x.sqlite"
    with Store.open(path) as s:
        s.sync_feeds([FEED])
        save(s, feed(entry(1)))
    with Store.open(path) as s:
        assert s.entry_count() == 1
        assert s.db.execute("pragma integrity_check").fetchone()[0] == "ok"
        assert s.db.execute("pragma journal_mode").fetchone()[0] == "wal"


def test_corrupt_database_gives_a_clear_error_naming_the_path(tmp_path):
    path = tmp_path / "broken.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="broken.sqlite"):
        Store.open(path)


def test_a_failed_transaction_leaves_nothing_half_written(store):
    save(store, feed(entry(1)))
    with pytest.raises(sqlite3.IntegrityError):
        with store.db.atomic():
            store.db.table("entries").insert(
                {
                    "id": "x",
                    "feed_key": FEED.key,
                    "source": "alice",
                    "identity": "i",
                    "title": "t",
                    "published": "p",
                    "first_seen": "f",
                }
            )
            store.db.table("entries").insert(
                {
                    "id": "y",
                    "feed_key": FEED.key,
                    "source": "alice",
                    "identity": "i",
                    "title": "t",
                    "published": "p",
                    "first_seen": "f",
                }
            )
    assert store.entry_count() == 1
