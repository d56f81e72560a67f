"""The `aggregator` command: argument handling only.

Each command loads and validates feeds.yaml first, calls one function, and turns
an AggregatorError into a plain message and an exit code (2 for a bad config,
1 for anything else that went wrong).  A feed that fails during `update` is not
an error of the command: it is recorded on the feed and shown by `status`.
"""

from __future__ import annotations

import argparse
import ast
import json
import logging
import re
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
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


@contextmanager
def _locked_store(config: Config, args: argparse.Namespace) -> Iterator[Store]:
    """The store, opened under the database lock (waiting up to --wait seconds for
    another aggregator): every command that writes goes through here."""
    with (
        database_lock(config.settings.database, wait=args.wait),
        Store.open(config.settings.database) as store,
    ):
        yield store


def cmd_check(args: argparse.Namespace) -> int:
    config = _load(args)
    feeds = config.feeds()
    link_only = [s for s in config.sources if not s.feeds]
    print(
        f"{args.config_name}: OK — {len(config.sources)} sources, {len(feeds)} feeds, "
        f"output {config.settings.output}, database {config.settings.database}"
    )
    for source in link_only:
        places = ", ".join(dict.fromkeys(link.label for link in source.links))
        print(
            f"  note: '{source.name}' has only profile links ({places}) and no public feed, so "
            "nothing is fetched for it; supporters see the links in the directory. Threads, "
            "TikTok, Instagram and X publish no feeds we can read."
        )
    today = datetime.now(ZoneInfo(config.settings.timezone)).date()
    for pinned in config.pinned:
        if pinned.until < today:
            line = f" (line {pinned.position.line})" if pinned.position else ""
            print(
                f"  note: the pinned announcement '{pinned.title}'{line} ended on "
                f"{pinned.until.isoformat()} and is no longer shown; remove it or change until:."
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
    with _locked_store(config, args) as store:
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
        if (
            failed
            and len(failed) == len(results)
            and all(r.error is not None and r.error.kind in OFFLINE_KINDS for r in failed)
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
    with _locked_store(config, args) as store:
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
        gone = s.last_error is not None and s.last_error.kind == "gone"
        state = "GONE" if gone else "FAILING" if s.last_error else "ok"
        print(f"  [{state}] {s.url}")
        print(
            f"      {s.entry_count} entries · last success {local(s.last_success)}"
            + (" · not polled any more" if gone else f" · next poll {local(s.next_poll)}")
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
    with _locked_store(config, args) as store:
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


class _StoppedEarly(Exception):
    """SIGTERM arrived before the scheduler installed its own handlers."""


def _stop_early(signum: int, frame: object) -> None:
    raise _StoppedEarly


def cmd_run(args: argparse.Namespace) -> int:
    # Until the scheduler's event loop takes over SIGTERM, a stop request (systemd,
    # docker stop) must still end in a clean exit 0, not a kill by signal.
    signal.signal(signal.SIGTERM, _stop_early)
    try:
        from .scheduler import run_service

        path = config_path(args.config)
        config = load_config(path)
        # No waiting: a second `run` on the same database is a mistake to report at once.
        with database_lock(config.settings.database):
            return run_service(path, tick=args.tick, debounce=args.debounce)
    except _StoppedEarly:
        log.info("event=stopped message='Stopped before the scheduler had started.'")
        return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(Path(args.output), serve_after=args.serve, port=args.port)


def cmd_serve(args: argparse.Namespace) -> int:
    from .serve import serve

    config = _load(args)
    serve(config.settings.output, port=args.port, host=args.host)
    return 0


def cmd_hide(args: argparse.Namespace) -> int:
    from .moderation import hide

    config = _load(args)
    with _locked_store(config, args) as store:
        done = hide(store, args.entry, reason=args.reason, now=datetime.now(UTC))
    names = {s.slug: s.name for s in config.sources}
    for item in done:
        print(
            f"Hidden: {item.title!r} by {names.get(item.source, item.source)} (id {item.entry_id})"
        )
    print(
        "It disappears from the page, the feeds and any digest not yet sent at the next "
        "`aggregator build`. `aggregator unhide` brings it back."
    )
    return 0


def cmd_unhide(args: argparse.Namespace) -> int:
    from .moderation import unhide

    config = _load(args)
    with _locked_store(config, args) as store:
        done = unhide(store, args.entry)
    for item in done:
        print(f"Shown again: {item.title!r} (id {item.entry_id})")
    print("It comes back at the next `aggregator build`, unless a filter in feeds.yaml holds it.")
    return 0


def cmd_hidden(args: argparse.Namespace) -> int:
    from .moderation import hidden

    config = _load(args)
    with Store.open(config.settings.database) as store:
        rows = hidden(store)
    if args.json:
        json.dump(
            [
                {
                    "id": r.entry_id,
                    "title": r.title,
                    "source": r.source,
                    "link": r.link,
                    "reason": r.reason,
                    "hidden_at": r.hidden_at.isoformat(),
                }
                for r in rows
            ],
            sys.stdout,
            indent=2,
        )
        print()
        return 0
    if not rows:
        print("Nothing is hidden. Hide a post with `aggregator hide URL_OR_ID --reason ...`.")
        return 0
    zone = ZoneInfo(config.settings.timezone)
    names = {s.slug: s.name for s in config.sources}
    for r in rows:
        print(f"{r.title!r} by {names.get(r.source, r.source)}")
        print(f"    id {r.entry_id}")
        if r.link:
            print(f"    {r.link}")
        when = r.hidden_at.astimezone(zone).strftime("%Y-%m-%d %H:%M")
        print(f"    hidden {when}: {r.reason or '(no reason given)'}")
    print(f"{len(rows)} hidden. `aggregator unhide ID` shows one again.")
    return 0


def cmd_add(args: argparse.Namespace) -> int:
    from .manage import add_source

    path = config_path(args.config)
    report = add_source(path, args.url, name=args.name, tags=args.tag or ())
    print(f"Added '{report.name}' to {path}: {report.found.description}.")
    print("".join(f"  | {line}" for line in report.added_text.splitlines(keepends=True)), end="")
    if report.found.others:
        print(f"The page also names {', '.join(report.found.others)}; add those by hand if wanted.")
    if report.named_by_us:
        print("Choose how supporters see the name with --name, or edit it in feeds.yaml.")
    if report.found.kind != "links":
        print("Run `aggregator update` to fetch it.")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from .manage import import_opml

    path = config_path(args.config)
    report = import_opml(path, Path(args.file))
    for reason in report.skipped:
        print(f"  skipped {reason}")
    if report.added:
        print(f"Added {len(report.added)} source(s) to {path}: {', '.join(report.added)}.")
        print("Run `aggregator update` to fetch them.")
    else:
        print(f"Nothing new to add from {args.file}; {path} is unchanged.")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from .manage import export_opml
    from .render import write_atomic

    text = export_opml(_load(args))
    if args.output in (None, "-"):
        sys.stdout.write(text)
    else:
        write_atomic(Path(args.output), text)
        if not args.quiet:
            print(f"Wrote the OPML list of every configured feed to {args.output}.")
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
    p.add_argument(
        "--debounce",
        type=float,
        default=15.0,
        metavar="SECONDS",
        help="rebuild once no feed has changed for this long (default: 15)",
    )
    # Also accepted after `run` (where a service file naturally puts it); the
    # global option before the command works too.
    p.add_argument(
        "--log-format",
        choices=["text", "json"],
        default=argparse.SUPPRESS,
        help="log lines as plain text (default) or one JSON object per line",
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
    p = add("hide", cmd_hide, "keep one post off the page, feeds and digest (by its URL or id)")
    p.add_argument("entry", metavar="URL_OR_ID", help="the post's own address, or its id")
    p.add_argument("--reason", help="why, for the record (shown by `aggregator hidden`)")
    p.add_argument("--wait", type=float, default=60.0, help=argparse.SUPPRESS)
    p = add("unhide", cmd_unhide, "show a hidden post again from the next build")
    p.add_argument("entry", metavar="URL_OR_ID", help="as `aggregator hidden` lists it")
    p.add_argument("--wait", type=float, default=60.0, help=argparse.SUPPRESS)
    p = add("hidden", cmd_hidden, "list hidden posts, with the reason and when")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p = add(
        "add",
        cmd_add,
        "add a campaigner to feeds.yaml from a blog, Mastodon, Bluesky or YouTube address",
    )
    p.add_argument("url", metavar="URL", help="a profile, channel, blog or feed address")
    p.add_argument("--name", help="how supporters see this source (default: the feed's title)")
    p.add_argument(
        "--tag", action="append", metavar="TAG", help="a topic for this source (repeatable)"
    )
    p = add("import", cmd_import, "add every feed of an OPML file (from a feed reader) as sources")
    p.add_argument("file", metavar="FILE.opml")
    p = add("export", cmd_export, "write every configured feed as an OPML 2.0 list")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE (default: print it)")
    return parser


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log collectors.

    The `key=value` pairs of the message's first line become fields
    (`event`, `feed`, `status`, `new`, `updated`, `ms`, ...).  `message` is the
    plain-English text: the `message=` value when the line has one, else the
    whole line.  Further lines (a config's problems) go in `details`, a
    traceback in `exception`.
    """

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        first, _, rest = text.partition("\n")
        fields: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        fields.update(parse_logfmt(first))
        fields.setdefault("message", first)
        if rest:
            fields["details"] = rest
        if record.exc_info:
            fields["exception"] = self.formatException(record.exc_info)
        return json.dumps(fields, ensure_ascii=False)


# key=value, where value is a Python repr of a string ('...' or "...") or a bare word.
_LOGFMT = re.compile(r"""(?<!\S)([A-Za-z_]\w*)=('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|\S*)""")


def parse_logfmt(line: str) -> dict[str, object]:
    """`event=x feed=y new=3 message='a b'` -> fields.

    Quoted values are the `%r` of a string, so they are read back with
    `ast.literal_eval` (any quotes or backslashes inside survive); whole
    numbers become ints.  Words that are not `key=value` are skipped.
    """
    out: dict[str, object] = {}
    for key, raw in _LOGFMT.findall(line):
        value: object = raw
        if raw[:1] in ("'", '"'):
            try:
                value = ast.literal_eval(raw)
            except (ValueError, SyntaxError):
                value = raw
        elif raw.isdigit():
            value = int(raw)
        out[key] = value
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
    # APScheduler's own warnings (a job that raised, a missed run) go the same
    # way, so `--log-format json` stays one JSON object per line.
    scheduler = logging.getLogger("apscheduler")
    scheduler.handlers[:] = [handler]
    scheduler.setLevel(logging.DEBUG if verbose else logging.WARNING)
    scheduler.propagate = False


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
