"""The lxml fast path (aggregator/fastparse.py) gives exactly what feedparser gives.

For every feed of ../shared/corpus (real-world feeds and feedparser's own 2,107
test files; skipped when absent), tests/data/feeds and the benchmark farm's
four shapes: where the fast path accepts the body, parse_feed's result with it
equals parse_feed's result with feedparser alone, field by field.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import aggregator.parse as parse_module
from aggregator.errors import ParseError
from aggregator.fastparse import extract
from aggregator.models import ParsedFeed
from bench.farm import feed_kind, make_feed_body

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
FEEDS = Path(__file__).parent / "data" / "feeds"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
URL = "https://example.org/feed"


def corpus_files() -> list[Path]:
    files = [p for p in FEEDS.iterdir() if p.suffix != ".md"]
    if CORPUS.is_dir():
        files += [p for p in CORPUS.rglob("*") if p.is_file() and p.suffix != ".md"]
    return sorted(files)


def farm_bodies() -> Iterator[tuple[str, bytes, str]]:
    """One feed of each kind the benchmark farm serves (RSS, Atom, Mastodon, Bluesky)."""
    kinds: set[str] = set()
    for i in range(40):
        kind = feed_kind(i)
        if kind in kinds:
            continue
        kinds.add(kind)
        body, content_type = make_feed_body(i, 12, seed=7, epoch=NOW)
        yield kind, body, content_type


def outcome(body: bytes, content_type: str | None) -> ParsedFeed | tuple[str, str]:
    try:
        return parse_module.parse_feed(body, url=URL, content_type=content_type, now=NOW)
    except ParseError as exc:
        return (exc.info.kind, exc.info.message)


def both_ways(
    monkeypatch: pytest.MonkeyPatch, body: bytes, content_type: str | None
) -> tuple[bool, Any, Any]:
    """(fast path taken, result with it, result with feedparser alone)."""
    taken: list[bool] = []

    def recording(*args: Any, **kwargs: Any) -> Any:
        result = extract(*args, **kwargs)
        taken.append(result is not None)
        return result

    never: Callable[..., None] = lambda *args, **kwargs: None  # noqa: E731
    monkeypatch.setattr(parse_module, "extract", recording)
    fast = outcome(body, content_type)
    if not any(taken):
        return False, fast, fast
    monkeypatch.setattr(parse_module, "extract", never)
    slow = outcome(body, content_type)
    return True, fast, slow


def differences(fast: Any, slow: Any) -> list[str]:
    """What differs, by field and entry, so a failure says where to look."""
    if not (isinstance(fast, ParsedFeed) and isinstance(slow, ParsedFeed)):
        return [] if fast == slow else [f"outcome: {fast!r} != {slow!r}"]
    found = [
        f"feed.{field.name}: {getattr(fast, field.name)!r} != {getattr(slow, field.name)!r}"
        for field in dataclasses.fields(ParsedFeed)
        if field.name != "entries" and getattr(fast, field.name) != getattr(slow, field.name)
    ]
    if len(fast.entries) != len(slow.entries):
        found.append(f"entries: {len(fast.entries)} != {len(slow.entries)}")
    for index, (a, b) in enumerate(zip(fast.entries, slow.entries, strict=False)):
        for field in dataclasses.fields(a):
            left, right = getattr(a, field.name), getattr(b, field.name)
            if left != right:
                found.append(f"entry {index}.{field.name}: {left!r:.200} != {right!r:.200}")
    return found


def test_fast_path_matches_feedparser_on_every_feed_it_accepts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    accepted: list[str] = []
    failures: list[str] = []
    for path in corpus_files():
        taken, fast, slow = both_ways(monkeypatch, path.read_bytes(), None)
        if taken:
            accepted.append(path.name)
            failures += [f"{path}: {d}" for d in differences(fast, slow)]
    print(f"fast path taken by {len(accepted)} of {len(corpus_files())} corpus files")
    assert not failures, "\n".join(failures[:40])
    assert "campaign-blog.rss" in accepted  # the fast path is not simply always declining


@pytest.mark.parametrize("kind", ["rss", "atom", "mastodon", "bluesky"])
def test_fast_path_reads_the_benchmark_farm_feeds_as_feedparser_does(
    monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    bodies = {k: (body, content_type) for k, body, content_type in farm_bodies()}
    body, content_type = bodies[kind]
    taken, fast, slow = both_ways(monkeypatch, body, content_type)
    assert taken, f"the fast path declined the farm's {kind} feed"
    assert differences(fast, slow) == []
    assert isinstance(fast, ParsedFeed) and len(fast.entries) == 12


def rss_item(inner: str) -> bytes:
    return f'<rss version="2.0"><channel><item>{inner}</item></channel></rss>'.encode()


XHTML = '<div xmlns="http://www.w3.org/1999/xhtml">x</div>'
DECLINED = {
    "latin-1": (b'<?xml version="1.0" encoding="iso-8859-1"?><rss version="2.0"/>', None),
    "rss-0.91": (b'<rss version="0.91"><channel><title>t</title></channel></rss>', None),
    "text-plain": (rss_item("<title>t</title>"), "text/plain"),
    "author-email": (rss_item("<author>a@b.org (A)</author>"), None),
    "unknown-element": (rss_item('<x:y xmlns:x="urn:x"/>'), None),
    "two-titles": (rss_item("<title>a</title><title>b</title>"), None),
    "xhtml": (
        f'<feed xmlns="http://www.w3.org/2005/Atom"><entry><content type="xhtml">{XHTML}'
        "</content></entry></feed>".encode(),
        None,
    ),
    "atom-0.3": (b'<feed xmlns="http://purl.org/atom/ns#" version="0.3"></feed>', None),
    "not-well-formed": (b'<rss version="2.0"><channel><item><title>a</title></item>', None),
    "markup-in-description": (rss_item("<description>a <b>b</b></description>"), None),
    "external-dtd": (b'<!DOCTYPE rss SYSTEM "rss.dtd">' + rss_item("<title>a&nbsp;</title>"), None),
    "entry-inside-skipped": (
        b'<rss version="2.0"><channel><image><item><title>x</title></item></image></channel></rss>',
        None,
    ),
}


@pytest.mark.parametrize(("body", "content_type"), DECLINED.values(), ids=DECLINED.keys())
def test_fast_path_declines_what_it_does_not_copy_exactly(
    body: bytes, content_type: str | None
) -> None:
    assert extract(body, url=URL, content_type=content_type) is None


def test_fast_path_never_resolves_entities_or_reads_files(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET")
    body = (
        f'<!DOCTYPE rss [<!ENTITY x SYSTEM "file://{secret}">]>'
        '<rss version="2.0"><channel><title>&x;</title></channel></rss>'
    ).encode()
    result = extract(body, url=URL, content_type=None)
    assert result is None or "TOPSECRET" not in repr(result)
