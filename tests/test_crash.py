"""kill -9 during `aggregator update` loses nothing and leaves no damage.

A real `python -m aggregator update --all` runs against loopback feeds and is
SIGKILLed at seeded random moments, several times in a row.  Each feed's update
is one transaction (store.py; feeds with nothing new share one), so after
every kill the database must pass `PRAGMA integrity_check`, and one run to
completion must then hold every entry of every feed exactly once.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hostileserver import good_feed

pytestmark = pytest.mark.slow

FEEDS = 8
PER_ROUND = 10
KILLS = 5
ROOT = Path(__file__).resolve().parents[1]


def _config(tmp: Path, urls: list[str]) -> Path:
    lines = [
        "settings:",
        '  title: "Crash test"',
        '  base_url: "https://campaign.example.org/"',
        "  database: data/crash.sqlite",
        "  output: public",
        "  fetch:",
        "    per_host: 2",
        "sources:",
    ]
    for i, url in enumerate(urls):
        lines += [f'  - name: "Feed {i}"', f'    url: "{url}"']
    path = tmp / "feeds.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _update(config: Path, stderr: Path) -> subprocess.Popen[bytes]:
    """Start `aggregator update --all` in its own process group, output to a file.

    Files, not pipes: a killed parent's worker processes would hold a pipe open.
    """
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with stderr.open("wb") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "aggregator", "-c", str(config), "-q", "update", "--all"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
        )


def _integrity(database: Path) -> str:
    with sqlite3.connect(database) as conn:
        (result,) = conn.execute("PRAGMA integrity_check").fetchone()
        conn.execute("PRAGMA foreign_key_check").fetchall()
    return str(result)


def _count(database: Path) -> int:
    if not database.exists():
        return 0
    try:
        with sqlite3.connect(database, timeout=5) as conn:
            return int(conn.execute("select count(*) from entries").fetchone()[0])
    except sqlite3.OperationalError:  # no table yet: the first run is still migrating
        return 0


def _wait_until_storing(process, database: Path, before: int, timeout: float = 30.0) -> None:
    """Until the update has stored something new (or ended): it is in mid-run."""
    deadline = time.monotonic() + timeout
    while _count(database) <= before and process.poll() is None:
        assert time.monotonic() < deadline, "the update never stored anything"
        time.sleep(0.01)


def test_kill_9_at_random_points_loses_nothing_and_stores_each_entry_once(tmp_path, feed_server):
    now = datetime.now(UTC)
    paths = [f"/feed-{i}.xml" for i in range(FEEDS)]

    def publish(round_: int) -> None:
        # Each round the feeds grow by PER_ROUND entries, so every run has new
        # entries to store (and old ones to recognise) when it is killed.
        for i, path in enumerate(paths):
            feed_server.add(path, good_feed(f"f{i}", PER_ROUND * (round_ + 1), now), delay=0.1)

    publish(0)
    urls = [feed_server.url(path) for path in paths]
    config = _config(tmp_path, urls)
    database = tmp_path / "data" / "crash.sqlite"
    rng = random.Random(6)  # seeded: the same kill moments every run
    stored: list[int] = []  # entries after each kill: where in the run it landed
    for round_ in range(KILLS):
        publish(round_)
        before = _count(database)
        process = _update(config, tmp_path / f"stderr-{round_}.txt")
        try:
            # Kill while it stores: once the first new entries are in, at a
            # random moment among the feeds still being written.
            _wait_until_storing(process, database, before)
            process.wait(timeout=rng.uniform(0.0, 0.4))
        except subprocess.TimeoutExpired:
            pass
        finally:
            # The whole process group, as systemd or a container runtime kills
            # it: the update and any parse workers it started.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        if database.exists():
            assert _integrity(database) == "ok"
            with sqlite3.connect(database) as conn:
                stored.append(conn.execute("select count(*) from entries").fetchone()[0])
    print(f"entries stored after each kill: {stored}")
    # Some kills landed mid-run: with entries of that round stored and others not.
    partial = [
        count
        for round_, count in enumerate(stored)
        if PER_ROUND * FEEDS * round_ < count < PER_ROUND * FEEDS * (round_ + 1)
    ]
    assert partial, stored

    publish(KILLS)
    log = tmp_path / "stderr-final.txt"
    final = _update(config, log)
    try:
        final.wait(timeout=60)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(final.pid, signal.SIGKILL)
    assert final.returncode == 0, log.read_text()
    assert _integrity(database) == "ok"
    expected = PER_ROUND * (KILLS + 1)
    with sqlite3.connect(database) as conn:
        rows = conn.execute(
            "select feed_key, count(*), count(distinct guid) from entries group by feed_key"
        ).fetchall()
        total = conn.execute("select count(*) from entries").fetchone()[0]
    assert total == FEEDS * expected
    assert sorted(r[0] for r in rows) == sorted(urls)
    for key, count, distinct in rows:
        assert count == distinct == expected, key
