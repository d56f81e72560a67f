"""The benchmark of issue 8 (bench/): the farm serves what it claims, the benchmark
runs end to end, and what it relies on behaves.  No timing is asserted here:
the benchmark measures, these tests only prove it measures the right thing."""

import gzip
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import feedparser
import httpx
import pytest

from aggregator.models import ParsedEntry, ParsedFeed, Validators
from aggregator.store import Store
from aggregator.update import UpdateOptions, update
from bench.contenders import make_config, make_store, run_build
from bench.farm import FarmProcess

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def farm():
    with FarmProcess(
        "--feeds", "8", "--entries", "3", "--fail", "0", "--gzip", "--hosts", "3"
    ) as f:
        yield f


def test_farm_serves_every_feed_with_the_entries_it_claims(farm):
    urls = farm.urls()
    assert len(urls) == farm.info["feeds"] == 8
    kinds = []
    for url in urls:
        response = httpx.get(url)
        assert response.status_code == 200
        parsed = feedparser.parse(response.content)
        assert len(parsed.entries) == 3
        kinds.append(parsed.version)
        # Every entry carries 1-3 KB of HTML (or text, for Bluesky).
        entry = parsed.entries[0]
        texts = [entry.get("summary", "")] + [c.value for c in entry.get("content", [])]
        assert 900 <= max(len(t) for t in texts) <= 4000
    assert kinds[:4] == ["rss20", "atom10", "rss20", "rss20"]
    # The feeds are spread over the loopback hosts the farm listens on.
    assert {httpx.URL(u).host for u in urls} == {"127.0.0.1", "127.0.0.2", "127.0.0.3"}


def test_farm_answers_a_conditional_get_with_304_unless_told_to_ignore_it(farm):
    url = farm.urls()[1]
    first = httpx.get(url)
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    assert httpx.get(url, headers={"If-None-Match": etag}).status_code == 304
    assert httpx.get(url, headers={"If-Modified-Since": modified}).status_code == 304
    assert httpx.get(url, headers={"If-None-Match": '"other"'}).status_code == 200
    farm.mode(conditional=False)
    try:
        again = httpx.get(url, headers={"If-None-Match": etag})
        assert again.status_code == 200
        assert again.content == first.content
        assert "etag" not in again.headers and "last-modified" not in again.headers
    finally:
        farm.mode(conditional=True)


def test_farm_gzips_bodies_for_clients_that_ask_and_counts_its_requests(farm):
    url = farm.urls()[2]
    before = farm.stats()["requests"]
    plain = httpx.get(url, headers={"Accept-Encoding": "identity"})
    with httpx.stream("GET", url, headers={"Accept-Encoding": "gzip"}) as zipped:
        raw = b"".join(zipped.iter_raw())
        assert zipped.headers["content-encoding"] == "gzip"
    assert "content-encoding" not in plain.headers
    assert gzip.decompress(raw) == plain.content
    assert len(raw) < len(plain.content)
    assert farm.stats()["requests"] == before + 2


def test_farm_fails_the_feeds_it_says_fail():
    with FarmProcess("--feeds", "12", "--entries", "1", "--fail", "0.5") as failing:
        failed = 0
        for url in failing.urls():
            try:
                response = httpx.get(url)
                ok = response.status_code == 200 and feedparser.parse(response.content).entries
            except httpx.HTTPError:
                ok = False
            failed += not ok
        assert failing.info["failing"] > 0
        assert failed == failing.info["failing"]


def test_parsing_in_worker_processes_stores_what_a_thread_stores(farm, tmp_path):
    # More feeds than _ParserPool.POOL_AFTER, so the worker processes really start.
    with FarmProcess("--feeds", "12", "--entries", "3", "--fail", "0") as twelve:
        urls = twelve.urls()
        stored = []
        for workers in (1, 2):
            config = make_config(urls, tmp_path / f"w{workers}")
            with Store.open(config.settings.database) as store:
                results = update(
                    config, store, options=UpdateOptions(force=True, parse_workers=workers)
                )
                assert [r.status for r in results] == ["ok"] * 12
                stored.append(
                    {(e.feed_key, e.title, e.content, e.published) for e in store.entries()}
                )
    assert len(stored[0]) == 36
    assert stored[0] == stored[1]


def test_incremental_build_rewrites_nothing_when_nothing_changed(tmp_path):
    urls = [f"http://127.0.0.1:9/feed/{i}" for i in range(6)]
    made = make_store(urls, tmp_path, 60)
    assert made["entries_stored"] == 60
    output = tmp_path / "public"
    full = run_build(urls, tmp_path, output)
    assert full["written"] > 0
    files = {p: p.stat().st_mtime_ns for p in output.rglob("*") if p.is_file()}
    again = run_build(urls, tmp_path, output)
    assert again["written"] == 0
    assert again["unchanged"] == full["written"]
    assert {p: p.stat().st_mtime_ns for p in output.rglob("*") if p.is_file()} == files


def test_a_build_after_a_change_rewrites_what_changed(tmp_path):
    urls = [f"http://127.0.0.1:9/feed/{i}" for i in range(3)]
    make_store(urls, tmp_path, 30)
    output = tmp_path / "public"
    run_build(urls, tmp_path, output)
    assert run_build(urls, tmp_path, output)["written"] == 0
    config = make_config(urls, tmp_path, output=output)
    now = datetime.now(UTC).replace(microsecond=0)
    entry = ParsedEntry(
        guid="new-post", link="https://site0.farm.example/new", title="A brand new post",
        title_derived=False, summary="News.", content="<p>News.</p>", published=now,
    )  # fmt: skip
    with Store.open(config.settings.database) as store:
        store.save_fetched(
            urls[0], ParsedFeed("rss20", "Feed 0", None, "en", (entry,)),
            validators=Validators(), body_hash="changed", now=now, next_poll=now,
        )  # fmt: skip
    written = {p.relative_to(output).as_posix() for p in build_written(urls, tmp_path, output)}
    assert {"feed.atom", "index.html"} <= written
    assert "A brand new post" in (output / "feed.atom").read_text()
    # Deleting a published file is a change too: the next build puts it back.
    (output / "feed.rss").unlink()
    assert run_build(urls, tmp_path, output)["written"] > 0
    assert (output / "feed.rss").is_file()


def build_written(urls, workdir, output):
    from aggregator.render import build

    config = make_config(urls, workdir, output=output)
    with Store.open(config.settings.database) as store:
        return build(config, store).written


@pytest.mark.slow
def test_benchmark_runs_end_to_end_on_a_tiny_farm(tmp_path):
    report = tmp_path / "results.json"
    table = tmp_path / "RESULTS.md"
    completed = subprocess.run(
        [sys.executable, "-m", "bench", "--feeds", "5", "--entries", "3", "--fail", "0",
         "--store-entries", "100", "--cycles", "3", "--workdir", str(tmp_path / "work"),
         "--json", str(report), "--markdown", str(table)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    data = json.loads(report.read_text())
    rows = {row["name"]: row["result"] for row in data["rows"]}
    assert rows["project cold"]["entries_new"] == 15
    assert rows["project cold"]["entries_stored"] == 15
    assert rows["project warm (304)"]["not_modified"] == 5
    assert rows["project warm (no validators)"]["not_modified"] == 5  # same bytes: not parsed
    assert rows["fetch httpx cold"]["ok"] == 5
    assert rows["fetch httpx warm"]["not_modified"] == 5
    assert rows["fetch httpx+project transport warm"]["not_modified"] == 5
    assert rows["fetch+feedparser cold"]["entries_new"] == 15
    assert rows["build unchanged"]["written"] == 0
    # One new post rewrites the pages that show it, not the whole site.
    assert 0 < rows["build one new post"]["written"] < rows["build full"]["written"]
    assert rows["digest"]["status"] in ("written", "empty")
    if "reader cold" in rows:  # lemon24/reader is optional: pip install -e '.[bench]'
        assert rows["reader cold"]["entries_stored"] == 15
    assert "project cold / raw httpx fetch cold" in {r[0] for r in data["ratios"]}
    assert set(data["cycles"]["rss_after_cycle_mb"]) >= {"1", "3"}
    assert "| project cold |" in table.read_text()
    assert data["machine"]["nproc"]
    assert datetime.now(UTC).strftime("%Y-%m-%d") in data["machine"]["date"]
