"""Every published feed through the W3C Feed Validator; JSON Feed and OPML against their specs.

The validator lives in ../shared/validators (skipped when absent) and runs as its
own process: `w3c_validate.py BASE_URL FILE...` exits 0 only when no file has an
error.  It checks each file's self link against BASE_URL + the file's name, so the
files are validated folder by folder with that folder's public URL.
"""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest
from sitebuilder import BASE_URL, NOW, make_config, open_filled

from aggregator.models import FeedSpec, ParsedFeed, Source, Validators
from aggregator.parse import parse_feed
from aggregator.render import build
from aggregator.sanitize import sanitize_entry
from aggregator.store import Store

SHARED = Path(__file__).resolve().parents[2] / "shared"
VALIDATOR = SHARED / "validators" / "w3c_validate.py"
REALWORLD = SHARED / "corpus" / "realworld"

# JSON Feed 1.1 (https://www.jsonfeed.org/version/1.1/), the parts a reader relies on.
JSON_FEED_SCHEMA = {
    "type": "object",
    "required": ["version", "title", "items"],
    "properties": {
        "version": {"const": "https://jsonfeed.org/version/1.1"},
        "title": {"type": "string", "minLength": 1},
        "home_page_url": {"type": "string", "pattern": "^https?://"},
        "feed_url": {"type": "string", "pattern": "^https?://"},
        "description": {"type": "string"},
        "icon": {"type": "string", "pattern": "^https?://"},
        "language": {"type": "string"},
        "authors": {"$ref": "#/$defs/authors"},
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id"],
                "anyOf": [{"required": ["content_html"]}, {"required": ["content_text"]}],
                "properties": {
                    "id": {"type": "string", "minLength": 1},
                    "url": {"type": "string", "pattern": "^https?://"},
                    "title": {"type": "string"},
                    "content_html": {"type": "string"},
                    "summary": {"type": "string"},
                    "image": {"type": "string", "pattern": "^https?://"},
                    "date_published": {"type": "string", "format": "date-time"},
                    "date_modified": {"type": "string", "format": "date-time"},
                    "authors": {"$ref": "#/$defs/authors"},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "language": {"type": "string"},
                    "attachments": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["url", "mime_type"],
                            "properties": {
                                "url": {"type": "string", "pattern": "^https?://"},
                                "mime_type": {"type": "string", "minLength": 3},
                                "title": {"type": "string"},
                                "size_in_bytes": {"type": "integer", "minimum": 0},
                            },
                            "additionalProperties": False,
                        },
                    },
                },
                "additionalProperties": False,
            },
        },
    },
    "additionalProperties": False,
    "$defs": {
        "authors": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "url": {"type": "string"}},
                "anyOf": [{"required": ["name"]}, {"required": ["url"]}],
            },
        }
    },
}


def feed_files(out: Path) -> list[Path]:
    return sorted(p for p in out.rglob("*") if p.suffix in (".atom", ".rss"))


def validate_with_w3c(out: Path, base_url: str) -> None:
    if not VALIDATOR.is_file():
        pytest.skip(f"the W3C Feed Validator is not at {VALIDATOR}")
    folders: dict[Path, list[Path]] = {}
    for path in feed_files(out):
        folders.setdefault(path.parent, []).append(path)
    assert folders
    for folder, files in folders.items():
        relative = folder.relative_to(out).as_posix()
        base = base_url + ("" if relative == "." else relative + "/")
        result = subprocess.run(
            [sys.executable, str(VALIDATOR), base, *map(str, files)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stdout + result.stderr


def check_json_feeds(out: Path) -> None:
    files = sorted(out.rglob("feed.json"))
    assert files
    for path in files:
        data = json.loads(path.read_text())
        jsonschema.validate(data, JSON_FEED_SCHEMA, format_checker=jsonschema.FormatChecker())
        folder = path.parent.relative_to(out).as_posix()
        assert data["feed_url"].endswith(("" if folder == "." else folder + "/") + "feed.json")
        assert len({item["id"] for item in data["items"]}) == len(data["items"])


def check_opml(path: Path) -> ET.Element:
    root = ET.fromstring(path.read_bytes())
    assert root.tag == "opml" and root.get("version") == "2.0"
    assert root.findtext("head/title")
    body = root.find("body")
    assert body is not None and len(body) > 0
    for group in body:
        assert group.tag == "outline" and group.get("text")
        for feed in group:
            assert feed.get("text") and feed.get("type") == "rss"
            assert feed.get("xmlUrl", "").startswith(("https://", "http://"))
    return root


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("w3c")
    config, store = open_filled(tmp)
    build(config, store, now=NOW)
    store.close()
    return config.settings.output


def test_every_published_feed_passes_the_w3c_validator(site):
    names = {p.relative_to(site).as_posix() for p in feed_files(site)}
    assert {"feed.atom", "feed.rss", "sources/sian/feed.atom", "tags/pay/feed.rss"} <= names
    validate_with_w3c(site, BASE_URL)


def test_every_json_feed_follows_json_feed_1_1(site):
    check_json_feeds(site)


def test_opml_lists_every_original_feed_by_campaigner(site):
    root = check_opml(site / "sources.opml")
    groups = {g.get("text"): [f.get("xmlUrl") for f in g] for g in root.find("body")}
    assert groups["Siân Evans"] == [
        "https://mastodon.example/@sian.rss",
        "https://sian.example/feed/",
    ]
    # A permanent redirect is followed: subscribers get the feed's new address.
    assert groups["Iechyd Cymru"] == ["https://iechyd.example/newydd/feed.atom"]
    assert "Patients Together" not in groups  # links only, no feeds


def test_every_feed_url_is_absolute_on_the_base_url(site):
    for path in feed_files(site):
        root = ET.fromstring(path.read_bytes())
        selfs = [
            link.get("href")
            for link in root.iter("{http://www.w3.org/2005/Atom}link")
            if link.get("rel") == "self"
        ]
        assert len(selfs) == 1 and selfs[0].startswith(BASE_URL), path


# --------------------------------------------------------------------------- real world


def platform_for(name: str) -> str:
    for platform in ("mastodon", "bluesky", "youtube"):
        if name.startswith(platform):
            return platform
    return "blog"


@pytest.mark.slow
def test_the_real_world_corpus_builds_into_valid_feeds_and_pages(tmp_path):
    if not REALWORLD.is_dir():
        pytest.skip(f"the real-world corpus is not at {REALWORLD}")
    files = sorted(p for p in REALWORLD.iterdir() if p.is_file() and p.suffix != ".md")
    sources = []
    for path in files:
        slug = path.stem.replace("_", "-")
        url = f"https://feeds.example.org/{path.name}"
        spec = FeedSpec(key=url, url=url, kind="url", platform=platform_for(path.name), source=slug)
        sources.append(Source(slug=slug, name=path.stem.replace("_", " ").title(), feeds=(spec,),
                              tags=(platform_for(path.name),)))  # fmt: skip
    config = make_config(tmp_path, sources=sources)
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    with Store.open(config.settings.database) as store:
        store.sync_feeds(config.feeds())
        for source, path in zip(sources, files, strict=True):
            [spec] = source.feeds
            parsed = parse_feed(path.read_bytes(), url=spec.url, now=now)
            safe = tuple(sanitize_entry(e, e.link or spec.url) for e in parsed.entries)
            store.save_fetched(
                spec.key,
                ParsedFeed(parsed.format, parsed.title, parsed.link, parsed.language, safe),
                validators=Validators(),
                body_hash="h",
                now=now,
                next_poll=now,
            )
        report = build(config, store, now=now)
        assert report.entries > 50
    out = config.settings.output
    for source in sources:
        assert (out / "sources" / source.slug / "index.html").is_file()
        assert (out / "sources" / source.slug / "feed.atom").is_file()
    for name in ("index.html", "sources/index.html", "tags/index.html", "archive/index.html",
                 "health.html"):  # fmt: skip
        assert (out / name).is_file()
    assert list((out / "archive").rglob("*/*/*/index.html"))
    validate_with_w3c(out, BASE_URL)
    check_json_feeds(out)
    check_opml(out / "sources.opml")
