"""A broken database or output folder: a clear error naming the path, nothing lost.

Each case first builds a good site, then breaks one thing and runs the command
again: the command must exit non-zero with a message that names the path and
says what to do (no traceback), and the files of the previous build must still
be there, unchanged.  "Full disk" is a file-size limit (RLIMIT_FSIZE) on a
subprocess, which works even for root, who ignores file permissions.
"""

from __future__ import annotations

import os
import resource
import signal
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hostileserver import good_feed

from aggregator.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def site(tmp_path, feed_server):
    """A config with one good feed, updated and built once."""
    url = feed_server.add("/feed.xml", good_feed("good", 5, datetime.now(UTC)))
    config = tmp_path / "feeds.yaml"
    config.write_text(
        "settings:\n"
        '  title: "Failure test"\n'
        '  base_url: "https://campaign.example.org/"\n'
        "  database: data/site.sqlite\n"
        "  output: public\n"
        "sources:\n"
        f'  - name: "Good"\n    url: "{url}"\n',
        encoding="utf-8",
    )
    assert main(["-c", str(config), "-q", "update"]) == 0
    assert main(["-c", str(config), "-q", "build"]) == 0
    return config


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def _run(config: Path, *args: str, fsize: int | None = None) -> subprocess.CompletedProcess[str]:
    def limit() -> None:
        if fsize is not None:
            # Over the limit a write fails with EFBIG instead of killing us.
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    return subprocess.run(
        [sys.executable, "-m", "aggregator", "-c", str(config), *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=limit,
    )


def _clear_error(result: subprocess.CompletedProcess[str], path: Path) -> str:
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    assert str(path) in result.stderr, result.stderr
    return result.stderr


def test_full_disk_while_building_names_the_file_and_keeps_the_previous_site(site):
    output = site.parent / "public"
    before = _snapshot(output)
    # The next build changes every page (an edited post); no file may grow past 1 KB.
    with sqlite3.connect(site.parent / "data" / "site.sqlite") as conn:
        conn.execute("update entries set title = title || ' (edited)'")
    result = _run(site, "build", fsize=1024)
    message = _clear_error(result, output)
    assert "File too large" in message or "No space" in message, message
    assert "previous files are unchanged" in message
    assert _snapshot(output) == before
    assert not list(output.rglob("*.tmp")), "a temporary file was left behind"


def test_output_folder_that_cannot_be_created_is_named(site):
    blocker = site.parent / "blocker"
    blocker.write_text("a file where the output folder should be")
    text = site.read_text().replace("output: public", "output: blocker/public")
    site.write_text(text)
    result = _run(site, "build")
    _clear_error(result, blocker / "public")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write to a read-only folder")
def test_unwritable_output_folder_names_the_path_and_keeps_the_previous_site(site):
    output = site.parent / "public"
    before = _snapshot(output)
    with sqlite3.connect(site.parent / "data" / "site.sqlite") as conn:
        conn.execute("update entries set title = title || ' (edited)'")
    folders = [output, *(p for p in output.rglob("*") if p.is_dir())]
    for folder in folders:
        folder.chmod(0o555)
    try:
        result = _run(site, "build")
    finally:
        for folder in folders:
            folder.chmod(0o755)
    _clear_error(result, output)
    assert _snapshot(output) == before


def test_corrupt_database_names_the_path_and_keeps_the_previous_site(site):
    database = site.parent / "data" / "site.sqlite"
    output = site.parent / "public"
    before = _snapshot(output)
    with sqlite3.connect(database) as conn:
        conn.execute("pragma wal_checkpoint(truncate)")
    data = bytearray(database.read_bytes())
    # Keep the header (so it still opens as SQLite) and wreck every page after it.
    data[100:] = b"\xa5" * (len(data) - 100)
    database.write_bytes(bytes(data))
    for command in ("update", "build", "status"):
        message = _clear_error(_run(site, command), database)
        assert "move it aside" in message or "damaged" in message, message
    assert _snapshot(output) == before


def test_database_that_is_not_sqlite_names_the_path(site):
    database = site.parent / "data" / "site.sqlite"
    for suffix in ("-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    database.write_bytes(b"not a database at all " * 200)
    _clear_error(_run(site, "update"), database)


def test_database_that_cannot_be_written_names_the_path(site, feed_server):
    # A full disk for the database: it may not grow, and the feed has 300 new posts.
    database = site.parent / "data" / "site.sqlite"
    with sqlite3.connect(database) as conn:
        conn.execute("pragma wal_checkpoint(truncate)")
    feed_server.set_body("/feed.xml", good_feed("more", 300, datetime.now(UTC)))
    result = _run(site, "update", "--all", fsize=database.stat().st_size)
    _clear_error(result, database)
    with sqlite3.connect(database) as conn:
        assert conn.execute("pragma integrity_check").fetchone()[0] == "ok"


def test_database_path_that_is_a_folder_names_the_path(site):
    database = site.parent / "data" / "site.sqlite"
    text = site.read_text().replace("data/site.sqlite", "data/folder.sqlite")
    site.write_text(text)
    (database.parent / "folder.sqlite").mkdir()
    _clear_error(_run(site, "update"), database.parent / "folder.sqlite")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write to a read-only file")
def test_read_only_database_names_the_path(site, feed_server):
    database = site.parent / "data" / "site.sqlite"
    feed_server.set_body("/feed.xml", good_feed("more", 3, datetime.now(UTC)))
    folder = database.parent
    files = [database, *folder.glob("site.sqlite-*")]
    for path in files:
        path.chmod(0o444)
    folder.chmod(0o555)
    try:
        result = _run(site, "update", "--all")
    finally:
        folder.chmod(0o755)
        for path in files:
            path.chmod(0o644)
    _clear_error(result, database)
