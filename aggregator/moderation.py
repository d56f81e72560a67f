"""Organisers in control (issue 7): hiding posts, and what a build may publish.

    aggregator hide URL_OR_ID [--reason ...]   -> a row in `hidden_entries`
    aggregator unhide URL_OR_ID                -> the row removed
    aggregator hidden                          -> the rows, with reason and when

and, for render.py and digest.py, the one question asked before publishing:
`policy(config, store)` (hidden ids + block lists + filters, see filters.py) and
`excluded_ids(config, store)`, the ids a build leaves out, found in one pass.
`active_pinned` chooses the announcements still shown on a given day.

Hidden entries are kept in the database (store.py's m003 migration), not in
feeds.yaml: hiding is a quick moderation act, often by someone who should not
have to edit the config, and it must survive refetching the post.  A hidden
entry stays in the store (unhide brings it back at the next build); it is left
out of every output the next time that output is made, and a digest not yet
sent is made afresh from the store, so it leaves it out too.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from .dedupe import canonical_url
from .errors import AggregatorError
from .filters import Policy
from .models import Config, Pinned
from .store import Store, from_iso, iso, row_to_entry

__all__ = [
    "HiddenEntry",
    "ModerationError",
    "active_pinned",
    "excluded_ids",
    "hidden",
    "hidden_ids",
    "hide",
    "policy",
    "unhide",
]

HOW_TO_FIND = (
    "Give the post's own address (the link under it on the page, such as "
    '"View on Mastodon" or "Read the post"), or its id: the part after urn:uuid: in the '
    'post\'s <id> in feed.atom (or "id" in feed.json).'
)


class ModerationError(AggregatorError):
    """hide/unhide was given something that matches nothing."""


@dataclass(frozen=True)
class HiddenEntry:
    """One hidden post, as `aggregator hidden` lists it."""

    entry_id: str
    title: str
    source: str
    link: str | None
    reason: str | None
    hidden_at: datetime


def _entry_id(ref: str) -> str:
    return ref.strip().removeprefix("urn:uuid:")


def _canonical(ref: str) -> str | None:
    if not ref.startswith(("http://", "https://")):
        return None
    try:
        return canonical_url(ref)
    except ValueError:
        return None


def _matching_entries(store: Store, ref: str) -> list[dict[str, Any]]:
    """Stored entries that `ref` names: by id, GUID, link or canonical link."""
    text = ref.strip()
    canonical = _canonical(text) or text
    return list(
        store.db.query(
            "select id, title, source, link, canonical_link from entries"
            " where id = ? or guid = ? or link = ? or canonical_link = ?"
            " order by published desc, id",
            [_entry_id(text), text, text, canonical],
        )
    )


def _record(row: dict[str, Any]) -> HiddenEntry:
    when = from_iso(row["hidden_at"])
    assert when is not None  # NOT NULL column
    return HiddenEntry(
        entry_id=row["entry_id"],
        title=row["title"] or "",
        source=row["source"] or "",
        link=row["link"],
        reason=row["reason"],
        hidden_at=when,
    )


def hide(store: Store, ref: str, *, reason: str | None, now: datetime) -> list[HiddenEntry]:
    """Hide every stored entry `ref` names; returns the ones newly hidden.

    A URL shared by several feeds (the same article, or one post fetched twice)
    names them all, and all are hidden.  Raises ModerationError when `ref`
    names nothing, or only entries already hidden.
    """
    rows = _matching_entries(store, ref)
    if not rows:
        raise ModerationError(
            f"Nothing in the database matches '{ref}', so nothing was hidden. {HOW_TO_FIND} "
            "If the post is new, run `aggregator update` first."
        )
    table = store.db.table("hidden_entries")
    already = {
        r["entry_id"]
        for r in table.rows_where(
            "entry_id in (select value from json_each(?))", [_json(r["id"] for r in rows)]
        )
    }
    fresh = [r for r in rows if r["id"] not in already]
    if not fresh:
        raise ModerationError(
            f"'{ref}' is already hidden; `aggregator hidden` lists every hidden post."
        )
    records = [
        {
            "entry_id": r["id"],
            "canonical_link": r["canonical_link"],
            "link": r["link"],
            "title": r["title"],
            "source": r["source"],
            "reason": (reason or "").strip() or None,
            "hidden_at": iso(now),
        }
        for r in fresh
    ]
    with store.db.atomic():
        table.insert_all(records, pk="entry_id")
    return [_record(r) for r in records]


def _json(values: Iterable[str]) -> str:
    return json.dumps(sorted(values))


def unhide(store: Store, ref: str) -> list[HiddenEntry]:
    """Show again what `ref` names (a hidden entry's id or link); returns what was unhidden."""
    text = ref.strip()
    ids = {r["id"] for r in _matching_entries(store, text)} | {_entry_id(text)}
    canonical = _canonical(text)
    table = store.db.table("hidden_entries")
    rows = list(
        table.rows_where(
            "entry_id in (select value from json_each(?)) or link = ? or canonical_link = ?",
            [_json(ids), text, canonical],
        )
    )
    if not rows:
        raise ModerationError(
            f"No hidden post matches '{ref}', so nothing changed. `aggregator hidden` lists "
            "every hidden post with the id to give `aggregator unhide`."
        )
    with store.db.atomic():
        for row in rows:
            table.delete(row["entry_id"])
    return [_record(r) for r in rows]


def hidden(store: Store) -> list[HiddenEntry]:
    """Every hidden entry, most recently hidden first."""
    rows = store.db.table("hidden_entries").rows_where(order_by="hidden_at desc, entry_id")
    return [_record(r) for r in rows]


def hidden_ids(store: Store) -> frozenset[str]:
    """Ids of stored entries that are hidden: by their own id, or by a hidden canonical link."""
    rows = store.db.query(
        "select id from entries where id in (select entry_id from hidden_entries)"
        " or canonical_link in (select canonical_link from hidden_entries"
        " where canonical_link is not null)"
    )
    return frozenset(row["id"] for row in rows)


def policy(config: Config, store: Store) -> Policy:
    """What may be published now: feeds.yaml's filters and block lists, and hidden posts."""
    return Policy(config, hidden_ids(store))


def excluded_ids(config: Config, store: Store, rules: Policy | None = None) -> frozenset[str]:
    """The ids of the configured sources' entries that a build must leave out.

    Only hidden ids when feeds.yaml has no filters or block lists; otherwise one
    pass over the sources' entries (filters are applied at publish time, see
    filters.py), so every page, feed and the archive agree on what is left out.
    """
    rules = rules or policy(config, store)
    if not rules.checks_content:
        return rules.hidden
    slugs = [s.slug for s in config.sources]
    if not slugs:
        return rules.hidden
    marks = ",".join("?" * len(slugs))
    out = set(rules.hidden)
    for row in store.db.query(f"select * from entries where source in ({marks})", slugs):
        entry = row_to_entry(row)
        if entry.id not in out and not rules.allows(entry):
            out.add(entry.id)
    return frozenset(out)


def active_pinned(pinned: Iterable[Pinned], day: date) -> tuple[Pinned, ...]:
    """The announcements still shown on local `day`: those whose until: is that day or later."""
    return tuple(p for p in pinned if p.until >= day)
