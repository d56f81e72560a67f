"""Every hostile case at once (tests/hostileserver.py), beside two good feeds.

One `update --all`, `build` and digest over a config listing all of them on a
loopback server, then: the good feeds' entries are all stored and published;
each hostile case is recorded as that feed's own error, or normalised and
stored; and no output file (page, Atom, RSS, JSON Feed, email) holds any
active content.  The run is done once per module (it takes a few seconds:
the 100,000-entry feed and the timeouts dominate) and each test reads it.
"""

from __future__ import annotations

import contextlib
import email
import io
import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import lxml.html
import pytest
from feedserver import FeedServer
from hostileserver import (
    MARKERS,
    MAX_BYTES,
    MAX_ENTRIES,
    PROBES,
    READ_TIMEOUT,
    SECRET,
    TOTAL_TIMEOUT,
    Case,
    good_feed,
    serve_hostile,
)
from lxml import etree

from aggregator.cli import main
from aggregator.config import load_config
from aggregator.digest import run_digest
from aggregator.models import FeedStatus
from aggregator.store import Store

pytestmark = pytest.mark.slow

GOOD = {"Good A": ("/good-a.xml", 5), "Good B": ("/good-b.xml", 4)}


@dataclass
class Run:
    cases: list[Case]
    config: Path
    output: Path
    database: Path
    server: FeedServer
    statuses: dict[str, FeedStatus]  # by feed URL
    update_output: str
    day: date


def _config(tmp: Path, feeds: dict[str, str]) -> Path:
    lines = [
        "settings:",
        '  title: "Hostile test"',
        '  base_url: "https://campaign.example.org/"',
        "  database: data/hostile.sqlite",
        "  output: public",
        "  timezone: UTC",
        "  fetch:",
        "    connect_timeout: 2",
        f"    read_timeout: {READ_TIMEOUT}",
        f"    total_timeout: {TOTAL_TIMEOUT}",
        f"    max_bytes: {MAX_BYTES}",
        "    max_redirects: 10",
        # Every case is on one loopback host: enough slots that no case waits
        # long for another's (the deadline runs while a redirect waits for one).
        "    per_host: 12",
        "    concurrency: 24",
        f"    max_entries: {MAX_ENTRIES}",
        "sources:",
    ]
    for name, url in feeds.items():
        lines += [f'  - name: "{name}"', f'    url: "{url}"']
    path = tmp / "feeds.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("hostile")
    secret = tmp / "secret.txt"
    secret.write_text(SECRET)
    # The digest covers what was first seen on a day: today's (UTC, as configured).
    day = datetime.now(UTC).date()
    yesterday = day - timedelta(days=1)
    when = datetime(yesterday.year, yesterday.month, yesterday.day, 12, 0, tzinfo=UTC)
    with FeedServer() as server:
        cases = serve_hostile(server, when, str(secret))
        feeds = {case.name: case.url for case in cases}
        for name, (path, count) in GOOD.items():
            feeds[name] = server.add(path, good_feed(name, count, when + timedelta(hours=1)))
        config = _config(tmp, feeds)
        argv = ["-c", str(config)]
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert main([*argv, "update", "--all"]) == 0
            assert main([*argv, "build"]) == 0
        loaded = load_config(config)
        with Store.open(loaded.settings.database) as store:
            outcome = run_digest(
                loaded,
                store,
                date=day,
                send=False,
                force=False,
                now=datetime.now(UTC) + timedelta(days=1),  # once the day is over
            )
            assert outcome.exit_code == 0, outcome.message
            statuses = {s.key: s for s in store.feed_statuses()}
        yield Run(
            cases=cases,
            config=config,
            output=loaded.settings.output,
            database=loaded.settings.database,
            server=server,
            statuses=statuses,
            update_output=out.getvalue(),
            day=day,
        )


def _case(run: Run, name: str) -> Case:
    return next(c for c in run.cases if c.name == name)


def _entries(run: Run, url: str) -> list:
    with Store.open(run.database) as store:
        return store.entries(feed_keys=[url])


# --------------------------------------------------------------------------- each case


def test_every_hostile_case_is_its_own_feeds_error_or_is_normalised(run):
    outcomes = {}
    for case in run.cases:
        status = run.statuses[case.url]
        if case.error is not None:
            assert status.last_error is not None, case.name
            outcomes[case.name] = status.last_error.kind
            assert status.last_error.kind == case.error, (case.name, status.last_error)
            assert status.entry_count == 0, case.name
        else:
            assert status.last_error is None, (case.name, status.last_error)
            assert status.entry_count == case.stored, case.name
    # Every error message is plain English that names what to do or when we retry.
    for case in run.cases:
        error = run.statuses[case.url].last_error
        if error is not None:
            assert len(error.message) > 40 and "Traceback" not in error.message, case.name


def test_good_feeds_are_all_stored_and_published(run):
    atom = (run.output / "feed.atom").read_text(encoding="utf-8")
    feed_json = json.loads((run.output / "feed.json").read_text(encoding="utf-8"))
    json_titles = {item.get("title") for item in feed_json["items"]}
    for name, (path, count) in GOOD.items():
        status = run.statuses[run.server.url(path)]
        assert status.last_error is None
        assert status.entry_count == count
        for i in range(count):
            title = f"{name} post {i}"
            assert title in atom, title
            assert title in json_titles, title


def test_slow_drip_is_cut_off_by_the_total_deadline(run):
    error = run.statuses[_case(run, "slow drip").url].last_error
    assert f"longer than {TOTAL_TIMEOUT} seconds" in error.message
    assert "total_timeout" in error.message


def test_huge_body_and_gzip_bomb_stop_at_max_bytes(run):
    for name in ("huge body", "gzip bomb"):
        error = run.statuses[_case(run, name).url].last_error
        assert "max_bytes" in error.message, name
    huge = [r for r in run.server.requests if r.path == "/huge.xml"]
    # The client hung up: the server never sent the whole body.
    assert all(not r.complete for r in huge)


def test_retry_after_pushes_the_next_poll_back(run):
    for name, seconds in (("429 with Retry-After", 7200), ("503 with Retry-After", 600)):
        status = run.statuses[_case(run, name).url]
        assert status.last_error.retry_after == seconds
        assert status.next_poll - status.last_fetched >= timedelta(seconds=seconds), name


def test_gone_feed_is_not_polled_again_and_status_says_so(run, capsys):
    url = _case(run, "410 Gone").url
    before = run.server.count("/410.xml")
    assert main(["-c", str(run.config), "update", "--all"]) == 0
    assert run.server.count("/410.xml") == before
    capsys.readouterr()
    assert main(["-c", str(run.config), "status"]) == 0
    out = capsys.readouterr().out
    assert f"[GONE] {url}" in out
    assert "stopped polling" in out
    assert main(["-c", str(run.config), "build"]) == 0
    health = (run.output / "health.html").read_text(encoding="utf-8")
    assert "no longer polled" in health
    # Naming it on the command line tries it once more (the organiser's choice).
    assert main(["-c", str(run.config), "-q", "update", url]) == 0
    assert run.server.count("/410.xml") == before + 1


def test_permanent_redirect_is_followed_and_status_and_health_page_say_so(run, capsys):
    case = _case(run, "permanent redirect")
    new = run.server.url("/new.xml")
    assert run.statuses[case.url].redirected_to == new
    capsys.readouterr()
    assert main(["-c", str(run.config), "status"]) == 0
    assert f"moved permanently: update feeds.yaml to {new}" in capsys.readouterr().out
    health = (run.output / "health.html").read_text(encoding="utf-8")
    assert "moved permanently" in health and new in health


def test_failing_feeds_back_off(run):
    with Store.open(run.database) as store:
        rows = {r["key"]: r for r in store.db.table("feeds").rows}
    for name in ("404", "500", "stalled server"):
        row = rows[_case(run, name).url]
        assert row["error_count"] >= 1, name
        assert row["next_poll"] > row["last_fetched"], name


def test_redirects_and_discovery_cannot_reach_this_machines_network(run):
    for name in (
        "redirect to cloud metadata",
        "redirect to another loopback host",
        "discovered feed on cloud metadata",
        "discovered feed on loopback",
    ):
        assert "private or local network" in run.statuses[_case(run, name).url].last_error.message
    # The loopback feed the page pointed at was never requested through it.
    assert not [r for r in run.server.requests if r.host == "localhost"]


def test_xml_entities_read_no_file_and_request_nothing(run):
    for probe in PROBES:
        assert run.server.count(probe) == 0, probe
    with Store.open(run.database) as store:
        dump = "\n".join(store.db.iterdump())
    assert SECRET not in dump
    for path in _output_files(run):
        assert SECRET not in path.read_text(encoding="utf-8", errors="replace"), path


def test_billion_laughs_is_not_expanded(run):
    (entry,) = _entries(run, _case(run, "billion laughs").url)
    assert "lollollol" not in entry.title
    assert len(entry.title) < 100
    (quadratic,) = _entries(run, _case(run, "quadratic blowup").url)
    assert "x" * 1000 not in quadratic.content  # "&big;" stays a literal reference


def test_huge_feed_keeps_only_the_newest_entries(run):
    entries = _entries(run, _case(run, "100,000 entries").url)
    # feedparser resolves the bare guids against the feed's address.
    assert sorted(e.guid.rpartition("/")[2] for e in entries) == sorted(
        f"m{i}" for i in range(100_000 - MAX_ENTRIES, 100_000)
    )


def test_broken_text_is_normalised(run):
    (latin,) = _entries(run, _case(run, "wrong charset").url)
    assert "Caf" in latin.title and "cr" in latin.title
    (cp1252,) = _entries(run, _case(run, "no charset at all").url)
    assert "quotes" in cp1252.title
    (bad,) = _entries(run, _case(run, "invalid UTF-8").url)
    assert bad.title.startswith("Bad") and bad.title.endswith("here")
    (nul,) = _entries(run, _case(run, "NUL and control characters").url)
    for text in (nul.title, nul.content, nul.summary):
        assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]", text), repr(text)
    assert nul.title.startswith("Nul")
    (big,) = _entries(run, _case(run, "1 MB title").url)
    assert len(big.title) <= 300
    dates = _entries(run, _case(run, "absurd and unparseable dates").url)
    assert len(dates) == 3
    for entry in dates:
        assert datetime(1990, 1, 1, tzinfo=UTC) <= entry.published
        assert entry.published <= datetime.now(UTC) + timedelta(days=1)
    (dupe,) = _entries(run, _case(run, "duplicate GUIDs").url)
    assert dupe.title == "Dupe 0"


# --------------------------------------------------------------------------- outputs

TEXT_SUFFIXES = {".html", ".atom", ".rss", ".xml", ".json", ".eml", ".txt", ".opml"}
BAD_TAGS = {"script", "iframe", "object", "embed", "form", "base", "applet", "frame", "frameset"}
BAD_SCHEMES = re.compile(r"^\s*(?:javascript|vbscript|data|file):", re.I)
OVERLAY = re.compile(r"position\s*:|z-index|expression\(|url\(", re.I)


def _output_files(run: Run) -> list[Path]:
    return sorted(p for p in run.output.rglob("*") if p.is_file() and p.suffix in TEXT_SUFFIXES)


def _html_problems(markup: str, where: str, *, ours: bool) -> list[str]:
    """Active content in an HTML document or fragment.

    `ours` is True for whole pages and emails, whose own templates may carry a
    CSP meta tag and style attributes; fragments from feeds may carry neither.
    """
    if not markup.strip():
        return []
    root = lxml.html.fromstring(f"<div>{markup}</div>" if not ours else markup)
    problems = []
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        tag = element.tag.lower().rpartition("}")[2]
        if tag in BAD_TAGS or tag in ("svg", "math") and not ours:
            problems.append(f"{where}: <{tag}>")
        if tag == "meta" and (element.get("http-equiv") or "").lower() == "refresh":
            problems.append(f"{where}: meta refresh")
        if tag == "link" and not ours:
            problems.append(f"{where}: <link>")
        if tag == "style" and not ours:
            problems.append(f"{where}: <style>")
        for name, value in element.attrib.items():
            name = name.lower()
            if name.startswith("on"):
                problems.append(f"{where}: {name}= on <{tag}>")
            if name in ("href", "src", "action", "formaction", "data", "srcset", "poster"):
                if BAD_SCHEMES.match(value):
                    problems.append(f"{where}: {name}={value[:40]}")
            if name == "style" and (not ours or OVERLAY.search(value)):
                problems.append(f"{where}: style={value[:60]}")
        if tag == "a" and element.get("href") and not ours:
            rel = set((element.get("rel") or "").split())
            if not {"nofollow", "ugc", "noopener"} <= rel:
                problems.append(f"{where}: link without rel=nofollow ugc noopener")
        if tag == "img" and not ours:
            if element.get("width") == "1" and element.get("height") == "1":
                problems.append(f"{where}: tracking pixel")
    return problems


def _feed_fragments(path: Path) -> list[str]:
    """The HTML that an Atom or RSS file carries (escaped) in its content elements."""
    tree = etree.parse(str(path), etree.XMLParser(resolve_entities=False, no_network=True))
    names = {"content", "summary", "description", "encoded", "subtitle"}
    return [
        element.text
        for element in tree.iter()
        if isinstance(element.tag, str) and etree.QName(element).localname in names and element.text
    ]


def test_no_active_content_in_any_output_file(run):
    files = _output_files(run)
    suffixes = {p.suffix for p in files}
    assert {".html", ".atom", ".json", ".eml"} <= suffixes, suffixes
    assert any(p.suffix in (".rss", ".xml") for p in files)
    problems: list[str] = []
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        where = str(path.relative_to(run.output))
        for marker in MARKERS:
            if marker in text:
                problems.append(f"{where}: payload {marker} survived")
        if path.suffix == ".html":
            problems += _html_problems(text, where, ours=True)
        elif path.suffix in (".atom", ".rss", ".xml"):
            for fragment in _feed_fragments(path):
                problems += _html_problems(fragment, where, ours=False)
        elif path.suffix == ".json":
            data = json.loads(text)
            items = data.get("items", []) if isinstance(data, dict) else []
            for item in items:
                problems += _html_problems(item.get("content_html") or "", where, ours=False)
                for key in ("url", "external_url", "image", "banner_image"):
                    if item.get(key) and BAD_SCHEMES.match(item[key]):
                        problems.append(f"{where}: {key}={item[key][:40]}")
        elif path.suffix == ".eml":
            message = email.message_from_string(text)
            for part in message.walk():
                if part.get_content_type() == "text/html":
                    payload = part.get_payload(decode=True).decode("utf-8", "replace")
                    for marker in MARKERS:
                        if marker in payload:
                            problems.append(f"{where}: payload {marker} survived")
                    problems += _html_problems(payload, where, ours=True)
    assert not problems, "\n".join(problems)


def test_hostile_posts_are_published_without_their_payloads(run):
    # The sanitised posts are there (so the checks above looked at them)...
    atom = (run.output / "feed.atom").read_text(encoding="utf-8")
    assert "Active script" in atom and "JSON style overlay" in atom
    # ...and so is the text around the removed markup.
    assert "overlay text" in atom
    digest = run.output / "digest" / f"{run.day.isoformat()}.html"
    assert digest.exists()
    assert "Active script" in digest.read_text(encoding="utf-8")


def test_links_in_published_posts_get_rel_nofollow_ugc_noopener(run):
    feed_json = json.loads((run.output / "feed.json").read_text(encoding="utf-8"))
    fragments = [i.get("content_html") or "" for i in feed_json["items"]]
    links = [a for f in fragments if f for a in lxml.html.fromstring(f"<div>{f}</div>").iter("a")]
    assert links
    for link in links:
        assert link.get("rel") == "nofollow ugc noopener"


# --------------------------------------------------------------------------- stored addresses


def test_stored_address_on_another_host_is_checked_on_every_poll(tmp_path, feed_server):
    """A discovered or redirected address is re-checked: DNS may change after discovery."""
    when = datetime.now(UTC) - timedelta(hours=1)
    url = feed_server.add("/listed.xml", good_feed("listed", 2, when))
    feed_server.add("/moved.xml", good_feed("moved", 2, when))
    config = _config(tmp_path, {"Listed": url})
    argv = ["-c", str(config), "-q"]
    assert main([*argv, "update"]) == 0
    loaded = load_config(config)
    with Store.open(loaded.settings.database) as store:
        # As if discovery had found it on a public address that now resolves to loopback.
        store.set_fetch_url(url, feed_server.url("/moved.xml", host="localhost"))
    assert main([*argv, "update", "--all"]) == 0
    with Store.open(loaded.settings.database) as store:
        (status,) = store.feed_statuses()
    assert status.last_error is not None and status.last_error.kind == "blocked_address"
    assert feed_server.count("/moved.xml") == 0
    # A stored address on the listed feed's own host is trusted like the listed one.
    with Store.open(loaded.settings.database) as store:
        store.set_fetch_url(url, feed_server.url("/moved.xml"))
    assert main([*argv, "update", "--all"]) == 0
    assert feed_server.count("/moved.xml") == 1
