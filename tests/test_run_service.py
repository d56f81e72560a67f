"""A real `aggregator run` process against loopback feeds.

It fetches and builds, logs one JSON object per line, refuses a second
instance on the same database, survives a broken edit of feeds.yaml, picks up
a good one, and stops cleanly on SIGTERM with the store intact.  Every wait is
bounded; each test stops its process even when it fails.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import feedparser
import pytest
from test_scheduler import rss, write_config

WAIT = 20.0  # seconds: the most any step may take before the test fails


class Running:
    """An `aggregator run` subprocess; its log goes to a file, read on demand."""

    def __init__(self, config: Path, *extra: str) -> None:
        self.config = config
        self.log_path = config.parent / f"run-{time.monotonic_ns()}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "aggregator", "-c", str(config), "run", *extra],
            cwd=config.parent,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def events(self) -> list[dict]:
        return [json.loads(line) for line in self.log().splitlines() if line.strip()]

    def wait_for(self, what: str, check: Callable[[], bool]) -> None:
        deadline = time.monotonic() + WAIT
        while not check():
            if self.proc.poll() is not None:
                pytest.fail(
                    f"aggregator run exited ({self.proc.returncode}) before {what}:\n{self.log()}"
                )
            if time.monotonic() > deadline:
                pytest.fail(f"gave up waiting for {what}:\n{self.log()}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._log.close()


@pytest.fixture
def start() -> Iterator[Callable[..., Running]]:
    started: list[Running] = []

    def run(config: Path, *extra: str) -> Running:
        process = Running(
            config, "--tick", "0.2", "--debounce", "0.2", "--log-format", "json", *extra
        )
        started.append(process)
        return process

    yield run
    for process in started:
        process.stop()


def titles(tmp_path: Path) -> list[str]:
    atom = tmp_path / "public" / "feed.atom"
    if not atom.exists():
        return []
    return sorted(e.title for e in feedparser.parse(atom.read_bytes()).entries)


@pytest.fixture
def campaign(tmp_path, feed_server) -> Path:
    return write_config(
        tmp_path,
        [
            ("Blog", feed_server.add("/blog.rss", rss("blog", 1, 2), etag='"b"'), None),
            ("Nurse", feed_server.add("/nurse.rss", rss("nurse", 1), etag='"n"'), None),
        ],
    )


EXPECTED = ["blog post 1", "blog post 2", "nurse post 1"]


def test_run_fetches_builds_and_stops_cleanly_on_sigterm(tmp_path, campaign, start):
    run = start(campaign)
    run.wait_for("feed.atom with every entry", lambda: titles(tmp_path) == EXPECTED)
    run.proc.send_signal(signal.SIGTERM)
    assert run.proc.wait(timeout=5) == 0

    db = sqlite3.connect(tmp_path / "data" / "test.sqlite")
    assert db.execute("pragma integrity_check").fetchone() == ("ok",)
    rows = db.execute("select count(*), count(distinct link) from entries").fetchone()
    db.close()
    assert rows == (3, 3)

    events = run.events()  # every line is one JSON object, or this raises
    polls = [e for e in events if e.get("event") == "feed_updated"]
    assert {p["feed"].rsplit("/", 1)[-1] for p in polls} == {"blog.rss", "nurse.rss"}
    for p in polls:
        assert p["status"] == "ok"
        assert isinstance(p["new"], int) and isinstance(p["updated"], int)
        assert isinstance(p["ms"], int)
        assert p["level"] == "info" and p["logger"] == "aggregator.update"
    assert sum(p["new"] for p in polls) == 3
    assert [e["event"] for e in events if e.get("event") in ("started", "stopped")] == [
        "started",
        "stopped",
    ]


def test_a_second_run_on_the_same_database_is_refused(tmp_path, campaign, start):
    first = start(campaign)
    first.wait_for("the first build", lambda: titles(tmp_path) == EXPECTED)
    second = subprocess.run(
        [sys.executable, "-m", "aggregator", "-c", str(campaign), "run"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert second.returncode == 1
    assert "already running" in second.stderr
    assert str(tmp_path / "data" / "test.sqlite") in second.stderr
    assert first.proc.poll() is None  # the first one is untouched
    first.proc.send_signal(signal.SIGTERM)
    assert first.proc.wait(timeout=5) == 0


def test_a_broken_edit_keeps_the_old_config_and_a_good_edit_adds_a_feed(
    tmp_path, campaign, feed_server, start
):
    run = start(campaign)
    run.wait_for("the first build", lambda: titles(tmp_path) == EXPECTED)
    good = campaign.read_text()

    def save(text: str) -> None:
        # As editors do: write a new file, then move it into place.
        new = campaign.with_suffix(".new")
        new.write_text(text, encoding="utf-8")
        new.replace(campaign)

    broken = good.replace(
        '  - name: "Nurse"', '  - name: "Nurse"\n    mastadon: "@nurse@x.example"'
    )
    line = broken.splitlines().index('    mastadon: "@nurse@x.example"') + 1
    save(broken)
    run.proc.send_signal(signal.SIGHUP)

    def failures() -> list[dict]:
        return [e for e in run.events() if e.get("event") == "config_reload_failed"]

    run.wait_for("the reload to fail", lambda: bool(failures()))
    failure = failures()[0]
    assert failure["level"] == "error"
    assert "keeps running with the previous configuration" in failure["message"]
    assert f"feeds.yaml:{line}:" in failure["details"]
    assert "mastadon" in failure["details"]
    assert run.proc.poll() is None

    extra = feed_server.add("/gp.rss", rss("gp", 7), etag='"g"')
    save(good + f'  - name: "GP"\n    url: {extra}\n')
    run.wait_for("the new feed in feed.atom", lambda: "gp post 7" in titles(tmp_path))
    assert any(e.get("event") == "config_reloaded" for e in run.events())
    run.proc.send_signal(signal.SIGTERM)
    assert run.proc.wait(timeout=5) == 0
    assert feed_server.count("/gp.rss") >= 1


def test_json_log_lines_keep_messages_with_any_quotes_and_their_details():
    import logging

    from aggregator.cli import JsonFormatter

    problem = 'The feed\'s title says "NHS" \\ and more'
    record = logging.LogRecord(
        "aggregator.update",
        logging.WARNING,
        __file__,
        1,
        "event=feed_updated feed=%s status=error new=0 updated=0 ms=12 message=%r\n%s",
        ("http://127.0.0.1:1/a.rss?x=1", problem, "feeds.yaml:3:5: second line"),
        None,
    )
    fields = json.loads(JsonFormatter().format(record))
    assert fields["event"] == "feed_updated"
    assert fields["feed"] == "http://127.0.0.1:1/a.rss?x=1"
    assert (fields["status"], fields["new"], fields["ms"]) == ("error", 0, 12)
    assert fields["message"] == problem
    assert fields["details"] == "feeds.yaml:3:5: second line"
    assert fields["level"] == "warning"
