"""parse + sanitize against the shared corpus of real and hostile feeds.

../shared/corpus/realworld: 19 feeds as Mastodon, Bluesky, YouTube, WordPress,
Substack, Medium, Blogger and JSON Feed publish them; every one must give
entries with titles and links.  ../shared/corpus/feedparser: feedparser's own
2,107 test files (broken encodings, entities, ill-formed XML); none may raise
anything but ParseError.  Both are skipped when the corpus is absent.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from aggregator.errors import ParseError
from aggregator.parse import parse_feed
from aggregator.sanitize import sanitize_entry

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def corpus_files(folder: str) -> list[Path]:
    root = CORPUS / folder
    if not root.is_dir():
        return []
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix != ".md")


REALWORLD = corpus_files("realworld")


@pytest.fixture(scope="module", autouse=True)
def corpus_present() -> None:
    if not CORPUS.is_dir():
        pytest.skip(f"the shared corpus is not at {CORPUS}")


@pytest.mark.parametrize("path", REALWORLD, ids=[p.name for p in REALWORLD])
def test_real_world_feed_gives_titled_linked_entries(path: Path) -> None:
    url = f"https://feeds.example.org/{path.name}"
    parsed = parse_feed(path.read_bytes(), url=url, now=NOW)
    assert parsed.entries, path.name
    for entry in parsed.entries:
        safe = sanitize_entry(entry, entry.link or url)
        assert safe.title.strip(), (path.name, entry.guid)
        assert safe.title != "Untitled"
        assert safe.link and safe.link.startswith(("http://", "https://")), (path.name, entry)
        assert "<script" not in safe.content
        if entry.published is not None:
            assert entry.published.tzinfo is UTC
            assert entry.published <= NOW


def test_real_world_social_posts_get_derived_titles() -> None:
    if not REALWORLD:
        pytest.skip("no realworld corpus")
    for path in REALWORLD:
        if path.name.startswith(("mastodon", "bluesky")):
            parsed = parse_feed(path.read_bytes(), url="https://feeds.example.org/", now=NOW)
            assert all(e.title_derived for e in parsed.entries), path.name
            assert all(len(e.title) <= 80 for e in parsed.entries), path.name


def test_bluesky_date_without_weekday_parses() -> None:
    path = CORPUS / "realworld" / "bluesky_1.xml"
    if not path.exists():
        pytest.skip("bluesky_1.xml is not in the corpus")
    (entry,) = parse_feed(path.read_bytes(), url="https://bsky.example/", now=NOW).entries
    assert entry.published == datetime(2026, 1, 14, 16, 33, tzinfo=UTC)
    assert entry.title == "But the Starlink hardware must be somehow acquired …"


@pytest.mark.slow
def test_feedparser_corpus_raises_nothing_but_parse_error() -> None:
    """All of feedparser's test files in one loop (a few seconds), with a clear failure list."""
    files = corpus_files("feedparser")
    if not files:
        pytest.skip("no feedparser corpus")
    failures: list[str] = []
    parsed_count = 0
    for path in files:
        url = f"https://feeds.example.org/{path.relative_to(CORPUS).as_posix()}"
        try:
            parsed = parse_feed(path.read_bytes(), url=url, now=NOW)
            for entry in parsed.entries:
                safe = sanitize_entry(entry, entry.link or url)
                if not safe.title or "<script" in safe.content.lower():
                    failures.append(f"{path.relative_to(CORPUS)}: bad entry {safe.title!r}")
            parsed_count += 1
        except ParseError as exc:
            if not exc.info.message or exc.info.kind not in ("parse", "not_a_feed"):
                failures.append(f"{path.relative_to(CORPUS)}: unclear error {exc.info}")
        except Exception as exc:  # collect every bug, then fail once
            failures.append(f"{path.relative_to(CORPUS)}: {type(exc).__name__}: {exc}")
    assert not failures, "\n".join(failures)
    assert parsed_count > len(files) * 0.9  # nearly all of them are feeds we can read
