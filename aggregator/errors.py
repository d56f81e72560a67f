"""The exceptions the aggregator raises, in one hierarchy.

    AggregatorError            anything the CLI turns into a message and an exit code
    +-- ConfigError            feeds.yaml is wrong; carries every problem found
    +-- StoreError             the database cannot be opened or written
    +-- OutputError            the output folder cannot be written
    +-- FeedError(url)         one feed failed; recorded on that feed, never fatal
        +-- FetchError         the network or the server
        +-- ParseError         the body is not a feed we can read

Third-party exceptions (httpx, feedparser, sqlite3) are translated once, in the
module that calls the library, and chained (`raise FetchError(...) from exc`).
Anything that is not an AggregatorError is a bug and is allowed to propagate.
"""

from __future__ import annotations

from dataclasses import dataclass

from .models import ErrorInfo, Position


class AggregatorError(Exception):
    """Base class: the message is shown to organisers as it is."""

    exit_code = 1


@dataclass(frozen=True)
class ConfigProblem:
    """One problem in feeds.yaml, at a line and column when we know them."""

    message: str
    position: Position | None = None

    def format(self, filename: str) -> str:
        if self.position is None:
            return f"{filename}: {self.message}"
        return f"{filename}:{self.position.line}:{self.position.column}: {self.message}"


class ConfigError(AggregatorError):
    """feeds.yaml could not be used.  Lists every problem, not just the first."""

    exit_code = 2

    def __init__(self, filename: str, problems: list[ConfigProblem]) -> None:
        self.filename = filename
        self.problems = problems
        super().__init__("\n".join(p.format(filename) for p in problems))


class StoreError(AggregatorError):
    """The SQLite database is missing, corrupt, locked or unwritable."""


class OutputError(AggregatorError):
    """The output folder cannot be written; the previous outputs are left in place."""


class LockError(AggregatorError):
    """Another aggregator process holds this database."""


class FeedError(AggregatorError):
    """One feed failed.  Carries the feed's URL and an ErrorInfo for the store."""

    def __init__(self, url: str, info: ErrorInfo) -> None:
        self.url = url
        self.info = info
        super().__init__(f"{url}: {info.message}")

    def __reduce__(self) -> tuple[type[FeedError], tuple[str, ErrorInfo]]:
        # Pickled with its real arguments: feeds are parsed in worker processes.
        return (type(self), (self.url, self.info))


class FetchError(FeedError):
    pass


class ParseError(FeedError):
    pass
