"""One aggregator at a time per database.

`run`, `update`, `build` and `digest` all write the store or the output folder;
two of them at once would race on the same files.  They hold an exclusive lock
on `<database>.lock` (filelock: an OS-level lock, released by the kernel if the
process dies, so a crash never leaves a stale lock behind).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from .errors import LockError


def lock_path(database: Path) -> Path:
    return database.with_name(database.name + ".lock")


@contextmanager
def database_lock(database: Path, *, wait: float = 0) -> Iterator[None]:
    """Hold the database's lock, waiting up to `wait` seconds for another process."""
    path = lock_path(database)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(path))
        lock.acquire(timeout=wait)
    except Timeout as exc:
        raise LockError(
            f"Another aggregator is already running with the database {database} "
            f"(it holds {path}). Stop it first, or wait for it to finish: only one may "
            "update a database at a time."
        ) from exc
    except OSError as exc:
        raise LockError(f"Could not create the lock file {path}: {exc.strerror or exc}") from exc
    try:
        yield
    finally:
        lock.release()
