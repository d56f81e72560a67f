"""The whole shared corpus through fetch (loopback) + parse + store + render.

../shared/corpus holds 19 real-world feeds and feedparser's 2,106 test files
(broken encodings, entities, ill-formed XML).  Every file is served on a
loopback FeedServer and listed in one feeds.yaml; one `update --all` and one
`build` must finish with no uncaught exception, every feed ending in a stored
result or its own recorded error, and every real-world feed stored.  Skipped
when the corpus is absent.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from feedserver import FeedServer

from aggregator import render
from aggregator.config import load_config
from aggregator.store import Store
from aggregator.update import UpdateOptions, update

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"

pytestmark = pytest.mark.slow

GROUP = 100  # feeds per source


def _files() -> list[Path]:
    if not CORPUS.is_dir():
        return []
    return sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.suffix in (".xml", ".json"))


def test_whole_corpus_goes_through_fetch_parse_store_and_render(tmp_path):
    files = _files()
    if not files:
        pytest.skip(f"the shared corpus is not at {CORPUS}")
    with FeedServer() as server:
        urls: dict[str, Path] = {}
        for index, path in enumerate(files):
            kind = "application/feed+json" if path.suffix == ".json" else "application/xml"
            urls[
                server.add(f"/corpus/{index}{path.suffix}", path.read_bytes(), content_type=kind)
            ] = path
        lines = [
            "settings:",
            '  title: "Corpus"',
            '  base_url: "https://campaign.example.org/"',
            "  database: data/corpus.sqlite",
            "  output: public",
            "  fetch:",
            "    concurrency: 40",
            "    per_host: 20",
            "    total_timeout: 30",
            "sources:",
        ]
        # A few sources with many feeds each, as a big campaign would list them.
        listed = list(urls)
        for group in range(0, len(listed), GROUP):
            lines += [f'  - name: "Corpus {group // GROUP}"', "    feeds:"]
            lines += [f'      - url: "{url}"' for url in listed[group : group + GROUP]]
        config_path = tmp_path / "feeds.yaml"
        config_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        config = load_config(config_path)
        with Store.open(config.settings.database) as store:
            results = update(config, store, options=UpdateOptions(force=True))
            report = render.build(config, store)
            statuses = {s.key: s for s in store.feed_statuses()}

    assert len(results) == len(files)
    by_status: dict[str, int] = {}
    for result in results:
        by_status[result.status] = by_status.get(result.status, 0) + 1
        # Whatever went wrong is the feed's own, in words: never a network fault here.
        if result.error is not None:
            assert result.error.kind in {"parse", "not_a_feed", "unsafe_xml"}, (
                urls[result.url],
                result.error,
            )
            assert result.error.message
    print(f"corpus: {len(files)} feeds, {by_status}, {report.entries} entries published")
    for url, path in urls.items():
        if path.parent.name == "realworld":
            status = statuses[url]
            assert status.last_error is None, (path.name, status.last_error)
            assert status.entry_count > 0, path.name
    assert (config.settings.output / "index.html").exists()
    assert (config.settings.output / "feed.atom").exists()
