"""Fixtures shared by every test module.  Keep this small: module-specific
fixtures live in their test module."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from feedserver import FeedServer


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    """A scripted HTTP server on 127.0.0.1, fresh for each test (see feedserver.py)."""
    with FeedServer() as server:
        yield server


@pytest.fixture
def data_dir() -> Path:
    """tests/data: sample feeds and other fixtures on disk."""
    return Path(__file__).parent / "data"
