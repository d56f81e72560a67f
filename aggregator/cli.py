"""The `aggregator` command: argument handling only.

Each command loads and validates feeds.yaml first, calls one function, and turns
an AggregatorError into a plain message and an exit code (2 for a bad config,
1 for anything else that went wrong).  A feed that fails during `update` is not
an error of the command: it is recorded on the feed and shown by `status`.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from . import render
from .config import config_path, format_interval, load_config, parse_duration
from .errors import AggregatorError, ConfigError
from .lock import database_lock
from .models import Config, FeedStatus, UpdateResult
from .store import Store
from .update import UpdateOptions, update

log = logging.getLogger("aggregator")

# Failures that mean "could not reach the server at all" rather than a broken feed.
OFFLINE_KINDS = frozenset({"dns", "connect", "network", "timeout"})


def _load(args: argparse.Namespace) -> Config:
    return load_config(config_path(args.config))


def cmd_check(args: argparse.Namespace) -> int:
    config = _load(args)
    feeds = config.feeds()
    link_only = [s.name for s in config.sources if not s.feeds]
    print(
        f"{args.config_name}: OK — {len(config.sources)} sources, {len(feeds)} feeds, "
        f"output {config.settings.output}, database {config.settings.database}"
    )
    for name in link_only:
        print(
            f"  note: '{name}' has only profile links (no public feed to fetch); they are shown "
            "in the directory."
        )
    return 0


class Progress:
    """One updating line on a terminal; nothing when output goes to a log."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, result: UpdateResult, done: int, total: int) -> None:
        if not self.enabled:
            return
        mark = {"ok": "new " + str(result.new), "not_modified": "unchanged", "error": "FAILED"}
        line = f"[{done}/{total}] {mark[result.status]:>10}  {result.url}"
        sys.stderr.write("\r\x1b[2K" + line[:150])
        if done == total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def cmd_update(args: argparse.Namespace) -> int:
    config = _load(args)
    interactive = sys.stderr.isatty() and not args.quiet
    if interactive and not args.verbose:
        logging.getLogger("aggregator.update").setLevel(logging.ERROR)
    with (
        database_lock(config.settings.database, wait=args.wait),
        Store.open(config.settings.database) as store,
    ):
        results = update(
            config,
            store,
            options=UpdateOptions(force=args.all, only=args.feeds or None),
            on_result=Progress(interactive),
        )
    failed = [r for r in results if r.status == "error"]
    new = sum(r.new for r in results)
    updated = sum(r.updated for r in results)
    if not args.quiet:
        if not results:
            print("No feed was due; nothing fetched. Use --all to fetch every feed now.")
        else:
            print(
                f"Polled {len(results)} feeds: {new} new, {updated} updated entries; "
                f"{len(failed)} failed."
            )
        for r in failed:
            assert r.error is not None
            print(f"  failed: {r.url}\n          {r.error.message}")
        if failed and len(failed) == len(results) and all(
            r.error is not None and r.error.kind in OFFLINE_KINDS for r in failed
        ):
            print(
                "Every feed failed to connect. If this machine has no internet access, that is "
                "why: try `aggregator demo` to see the site built from bundled sample feeds."
            )
        if failed:
            print("Run `aggregator status` to see every feed's state.")
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    config = _load(args)
    with (
        database_lock(config.settings.database, wait=args.wait),
        Store.open(config.settings.database) as store,
    ):
        report = render.build(config, store)
    if not args.quiet:
        print(
            f"Built {config.settings.output}: {len(report.written)} files written, "
            f"{report.unchanged} unchanged, {report.entries} entries in the feed."
        )
    return 0


def _status_dict(status: FeedStatus, names: dict[str, str]) -> dict[str, object]:
    def when(moment: datetime | None) -> str | None:
        return moment.isoformat() if moment else None

    return {
        "source": status.source,
        "source_name": names.get(status.source, status.source),
        "feed": status.key,
        "url": status.url,
        "platform": status.platform,
        "title": status.title,
        "entries": status.entry_count,
        "last_fetched": when(status.last_fetched),
        "last_success": when(status.last_success),
        "next_poll": when(status.next_poll),
        "failing_since": when(status.failing_since),
        "redirected_to": status.redirected_to,
        "last_error": None
        if status.last_error is None
        else {
            "kind": status.last_error.kind,
            "message": status.last_error.message,
            "http_status": status.last_error.http_status,
            "at": when(status.last_error_at),
        },
    }


def cmd_status(args: argparse.Namespace) -> int:
    config = _load(args)
    keys = {f.key for f in config.feeds()}
    names = {s.slug: s.name for s in config.sources}
    with Store.open(config.settings.database) as store:
        store.sync_feeds(config.feeds())
        statuses = store.feed_statuses(keys)
    now = datetime.now(UTC)
    threshold = timedelta(seconds=args.threshold)
    long_failing = [
        s for s in statuses if s.failing_since is not None and now - s.failing_since >= threshold
    ]
    code = 1 if args.fail_on_error and long_failing else 0
    if args.json:
        json.dump([_status_dict(s, names) for s in statuses], sys.stdout, indent=2)
        print()
        return code
    zone = ZoneInfo(config.settings.timezone)

    def local(moment: datetime | None) -> str:
        return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M") if moment else "never"

    current = None
    for s in statuses:
        if s.source != current:
            current = s.source
            print(f"\n{names.get(s.source, s.source)}")
        state = "FAILING" if s.last_error else "ok"
        print(f"  [{state}] {s.url}")
        print(
            f"      {s.entry_count} entries · last success {local(s.last_success)}"
            f" · next poll {local(s.next_poll)}"
        )
        if s.redirected_to:
            print(f"      moved permanently: update feeds.yaml to {s.redirected_to}")
        if s.last_error:
            print(f"      last error ({local(s.last_error_at)}): {s.last_error.message}")
    failing = sum(1 for s in statuses if s.last_error)
    print(f"\n{len(statuses)} feeds, {failing} failing.")
    if code:
        print(
            f"{len(long_failing)} feed(s) have been failing for longer than "
            f"{format_interval(args.threshold)}.",
            file=sys.stderr,
        )
    return code


def cmd_digest(args: argparse.Namespace) -> int:
    from .digest import run_digest

    config = _load(args)
    with (
        database_lock(config.settings.database, wait=args.wait),
        Store.open(config.settings.database) as store,
    ):
        outcome = run_digest(
            config,
            store,
            date=args.date,
            send=args.send,
            force=args.force,
            now=datetime.now(UTC),
        )
    if not args.quiet or outcome.exit_code:
        print(outcome.message)
    return outcome.exit_code


def _iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"'{text}' is not a date; write it as YYYY-MM-DD, e.g. 2026-11-24"
        ) from None


def cmd_run(args: argparse.Namespace) -> int:
    from .scheduler import run_service

    path = config_path(args.config)
    config = load_config(path)
    with database_lock(config.settings.database):
        return run_service(path, tick=args.tick)


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(Path(args.output), serve_after=args.serve, port=args.port)


def cmd_serve(args: argparse.Namespace) -> int:
    from .serve import serve

    config = _load(args)
    serve(config.settings.output, port=args.port, host=args.host)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aggregator",
        description="Follow NHS campaigners across blogs, Mastodon, Bluesky and YouTube in one "
        "place: a combined feed, a web page and a daily email.",
    )
    parser.add_argument(
        "-c",
        "--config",
        help="the feeds.yaml to use (default: $AGGREGATOR_CONFIG, else ./feeds.yaml)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more detail")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only errors")
    parser.add_argument(
        "--log-format",
        choices=["text", "json"],
        default="text",
        help="log lines as plain text (default) or one JSON object per line",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(
        name: str, func: Callable[[argparse.Namespace], int], help: str
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(func=func)
        return p

    add("check", cmd_check, "check feeds.yaml and report every problem with its line")
    p = add("update", cmd_update, "fetch the feeds that are due and store new entries")
    p.add_argument("--all", action="store_true", help="fetch every feed now, due or not")
    p.add_argument(
        "--wait",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="wait this long for another aggregator using the same database (default: 60)",
    )
    p.add_argument(
        "feeds", nargs="*", metavar="FEED", help="only these feeds (feed URL or source slug)"
    )
    p = add("build", cmd_build, "write the combined feed and web page into the output folder")
    p.add_argument("--wait", type=float, default=60.0, help=argparse.SUPPRESS)
    p = add("status", cmd_status, "show each feed's last success, last error and entry count")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument(
        "--fail-on-error",
        action="store_true",
        help="exit 1 when any feed has been failing longer than --threshold (for monitors)",
    )
    p.add_argument(
        "--threshold",
        type=parse_duration,
        default=24 * 3600,
        metavar="DURATION",
        help="how long a feed may fail before --fail-on-error counts it (default: 24h)",
    )
    p = add(
        "digest", cmd_digest, "write the daily email digest (HTML, text, .eml); --send mails it"
    )
    p.add_argument(
        "--date",
        type=_iso_date,
        metavar="YYYY-MM-DD",
        help="the day to digest (default: yesterday, catching up days missed since the last one)",
    )
    p.add_argument("--send", action="store_true", help="send it over SMTP to settings.digest.to")
    p.add_argument(
        "--force", action="store_true", help="with --send: send again a day already sent"
    )
    p.add_argument("--wait", type=float, default=60.0, help=argparse.SUPPRESS)
    p = add("run", cmd_run, "keep running: poll feeds on schedule, rebuild, send the daily digest")
    p.add_argument(
        "--tick", type=float, default=60.0, help="seconds between schedule checks (default: 60)"
    )
    p = add("demo", cmd_demo, "build the whole site from bundled sample feeds served on loopback")
    p.add_argument(
        "--output", default="aggregator-demo", help="folder for the demo (default: %(default)s)"
    )
    p.add_argument("--serve", action="store_true", help="then serve the page on loopback")
    p.add_argument("--port", type=int, default=8000)
    p = add("serve", cmd_serve, "preview the output folder in a browser on this machine")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--host", default="127.0.0.1")
    return parser


class JsonFormatter(logging.Formatter):
    """One JSON object per line; `key=value` pairs in the message become fields."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        fields: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        fields.update(parse_logfmt(message))
        fields["message"] = message
        return json.dumps(fields, ensure_ascii=False)


def parse_logfmt(message: str) -> dict[str, object]:
    """`event=x feed=y message='a b'` -> fields; values may be Python-quoted strings."""
    import shlex

    out: dict[str, object] = {}
    try:
        parts = shlex.split(message.split("\n", 1)[0])
    except ValueError:
        return out
    for part in parts:
        key, sep, value = part.partition("=")
        if not sep or not key.isidentifier():
            continue
        out[key] = int(value) if value.isdigit() else value
    return out


def configure_logging(verbose: bool, quiet: bool, fmt: str = "text") -> None:
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter()
        if fmt == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(message)s")
    )
    root = logging.getLogger("aggregator")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.config_name = Path(config_path(args.config)).name
    configure_logging(args.verbose, args.quiet, args.log_format)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        print(
            f"{len(exc.problems)} problem(s) in {exc.filename}. Fix them and run "
            "`aggregator check` again.",
            file=sys.stderr,
        )
        return exc.exit_code
    except AggregatorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130
