"""The daily digest: stored entries -> an email-ready HTML page, a text part and a .eml (issue 4).

The core is pure, a pipeline of values:

    digest_window   the local day (or days, catching up) in settings.timezone -> UTC window
    select_new      stored entries -> those new in the window
    build_digest    entries + config + window -> Digest (groups, fair share, "and M more")
    render_html     Digest -> email HTML (tables, 600 px, CSS inlined by css-inline)
    render_text     Digest -> the plain-text part (its own template, wrapped at 72)
    compose         Digest + both renderings -> EmailMessage (mail.build_message)

`run_digest` at the bottom is the edge: it reads the store, writes the files
into `<output>/digest/`, records each digest in the store's `digests` table
(its own migration set, so store.py's schema is untouched) and sends through
mail.send.  What this module does *not* do: sanitise (entries were sanitised
before they were stored; the email shows only plain-text excerpts of them) or
talk SMTP (mail.py).
"""

from __future__ import annotations

import hashlib
import json
import logging
import unicodedata
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import parseaddr
from pathlib import Path
from ssl import SSLContext
from typing import Any, Literal
from urllib.parse import urljoin, urlsplit
from zoneinfo import ZoneInfo

import css_inline
from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from . import mail, moderation
from .canonical import canonical_url
from .crosspost import AlsoOn, also_on, earliest_seen, join_names, merge
from .errors import AggregatorError, ConfigError, ConfigProblem
from .mail import SendError
from .models import PLATFORM_LABELS, Config, DigestSettings, Media, Pinned, Source, StoredEntry
from .render import Renderer, Sharer, sharers, write_atomic
from .sanitize import clean_text, excerpt, safe_url
from .store import Store, from_iso, iso

__all__ = [
    "Digest",
    "DigestError",
    "DigestGroup",
    "DigestItem",
    "DigestOutcome",
    "SendError",
    "Window",
    "build_digest",
    "compose",
    "digest_window",
    "render_html",
    "render_text",
    "run_digest",
    "select_new",
]

log = logging.getLogger(__name__)


class DigestError(AggregatorError):
    """The digest cannot be made as asked (a --date that has not finished yet)."""

    exit_code = 2


# An entry first seen in the window but published longer than this before it
# began is a newly added feed's back catalogue (or a long outage), not news.
BACKFILL_LIMIT = timedelta(days=3)
# Missed days are caught up in one digest, but never more than this many.
CATCH_UP_DAYS = 7
EMAIL_WIDTH = 600
IMAGE_WIDTH = EMAIL_WIDTH - 2 * 24  # inside the content cell's padding
TITLE_MAX = 160
TEXT_MAX = 280
OTHER_TOPIC = "Other posts"


# --------------------------------------------------------------------------- window


@dataclass(frozen=True)
class Window:
    """The stretch of time a digest covers: whole local days, as a UTC half-open interval.

    `day` names the digest (its files and subject); `first_day` is earlier only
    when missed days are caught up in one digest.
    """

    day: date
    first_day: date
    start: datetime  # UTC, inclusive
    end: datetime  # UTC, exclusive

    @property
    def hours(self) -> float:
        return (self.end - self.start).total_seconds() / 3600


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """The start of `day` in `zone`, in UTC.

    Computed by zoneinfo from the local date, never by adding 24 hours, so the
    spring-forward day is 23 hours long and the fall-back day 25.
    """
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def digest_window(
    now: datetime,
    zone: ZoneInfo,
    *,
    day: date | None = None,
    last_day: date | None = None,
) -> Window:
    """The window for `day`, or by default for yesterday (local time at `now`).

    By default, days missed since `last_day` (the last digest made) are caught
    up in the same digest, at most CATCH_UP_DAYS of them.  An explicit `day`
    covers that day alone.
    """
    today = now.astimezone(zone).date()
    if day is not None:
        if day >= today:
            raise ValueError(
                f"The digest for {day.isoformat()} can only be made once that day is over "
                f"(today is {today.isoformat()} in {zone.key}); try "
                f"--date {(today - timedelta(days=1)).isoformat()}."
            )
        first = day
    else:
        day = today - timedelta(days=1)
        first = day
        if last_day is not None and last_day < day - timedelta(days=1):
            first = max(last_day + timedelta(days=1), day - timedelta(days=CATCH_UP_DAYS - 1))
    return Window(
        day=day,
        first_day=first,
        start=local_midnight(first, zone),
        end=local_midnight(day + timedelta(days=1), zone),
    )


def select_new(entries: Iterable[StoredEntry], window: Window) -> list[StoredEntry]:
    """The entries that are news in `window`, newest first.

    An entry is new when we first saw it inside the window.  That partitions
    time: every entry is in exactly one day's digest, and an entry that was
    only updated later (same id, same first_seen) is never repeated.  Entries
    published more than BACKFILL_LIMIT before the window are a new feed's old
    posts and are left out.
    """
    oldest = window.start - BACKFILL_LIMIT
    chosen = [
        e for e in entries if window.start <= e.first_seen < window.end and e.published >= oldest
    ]
    return sorted(chosen, key=lambda e: (e.published, e.id), reverse=True)


def _not_sent_before(
    stored: Sequence[StoredEntry], window: Window, config: Config
) -> list[StoredEntry]:
    """`select_new`, less the cross-posts of a post that was news before the window.

    A campaigner's Mastodon post is in Monday's digest; the same words on their
    blog, first seen on Tuesday, must not be news again (issue 7).  Shared links
    are not dropped this way: another campaigner sharing an article is news.
    """
    settings = config.settings
    earlier = {
        e.id
        for post in merge(
            stored,
            window=timedelta(seconds=settings.crosspost_window),
            primary=settings.crosspost_primary,
        )
        if earliest_seen(post).first_seen < window.start
        for e in post.members
    }
    return [e for e in select_new(stored, window) if e.id not in earlier]


# --------------------------------------------------------------------------- the Digest value


@dataclass(frozen=True)
class DigestImage:
    url: str
    width: int
    height: int
    alt: str


@dataclass(frozen=True)
class DigestItem:
    """One post as the email shows it: plain text only."""

    entry_id: str
    headline: str  # the post's title, or its opening words when it has none
    text: str  # a short excerpt under the headline ("" when the headline is the post)
    link: str | None
    source_name: str
    platform: str  # "Mastodon"
    when: str  # local time: "14:05", or "Sat 28 Mar, 23:50" when not on the digest's day
    link_label: str = "Read the post"  # "View on Mastodon", "Watch on YouTube"
    image: DigestImage | None = None
    also: tuple[AlsoOn, ...] = ()  # the same post on the campaigner's other platforms
    shared_by: tuple[Sharer, ...] = ()  # everyone who shared this article (shared links)


@dataclass(frozen=True)
class MoreLink:
    """Fair share: "and 4 more from Siân" linking to that campaigner's page."""

    source_name: str
    count: int
    url: str


@dataclass(frozen=True)
class DigestGroup:
    heading: str
    url: str | None  # the campaigner's page on the web site, when grouped by campaigner
    items: tuple[DigestItem, ...]
    more: tuple[MoreLink, ...] = ()


@dataclass(frozen=True)
class Digest:
    title: str  # settings.title
    window: Window
    date_label: str  # "Sunday 29 March 2026", or "Friday 27 to Sunday 29 March 2026"
    subject: str
    groups: tuple[DigestGroup, ...]
    entry_count: int
    source_count: int
    group_by: Literal["source", "tag"]
    site_url: str
    web_url: str  # this digest on the web site
    archive_url: str
    unsubscribe_url: str | None
    signup_url: str | None
    pinned: tuple[Pinned, ...] = ()  # announcements from feeds.yaml, shown first (issue 7)

    @property
    def empty(self) -> bool:
        return self.entry_count == 0

    @property
    def summary(self) -> str:
        """ "12 new posts from 4 campaigners" (or "No new posts")."""
        if self.empty:
            return "No new posts"
        posts = _plural(self.entry_count, "new post")
        return f"{posts} from {_plural(self.source_count, 'campaigner')}"


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def day_label(day: date) -> str:
    return f"{day:%A} {day.day} {day:%B %Y}"


def window_label(window: Window) -> str:
    if window.first_day == window.day:
        return day_label(window.day)
    first = window.first_day
    if (first.year, first.month) == (window.day.year, window.day.month):
        start = f"{first:%A} {first.day}"
    elif first.year == window.day.year:
        start = f"{first:%A} {first.day} {first:%B}"
    else:
        start = day_label(first)
    return f"{start} to {day_label(window.day)}"


def build_digest(
    entries: Sequence[StoredEntry],
    config: Config,
    window: Window,
    *,
    hidden: Collection[str] = (),
) -> Digest:
    """Group the window's new entries (as chosen by select_new) into a Digest value.

    Each cross-post is one item, with its other platforms; an article several
    campaigners shared is one item, "shared by" (crosspost.merge, issue 7).  A
    cross-post with a `hidden` entry among its versions is left out whole.

    Groups follow the order of feeds.yaml (campaigners, or their topic tags);
    within a group, newest first, at most `per_source` posts per campaigner,
    the rest counted in a "more" link to the campaigner's web page.  Entries
    from campaigners no longer in feeds.yaml are left out.
    """
    settings = config.settings
    options = settings.digest or DigestSettings()
    zone = ZoneInfo(settings.timezone)
    sources = {s.slug: s for s in config.sources}
    everyone = [e for e in entries if e.source in sources]
    # Cross-posts once, with their other platforms; shared links once, "shared by" (issue 7).
    posts = {
        p.entry.id: p
        for p in merge(
            everyone,
            window=timedelta(seconds=settings.crosspost_window),
            primary=settings.crosspost_primary,
            shared_links=options.shared_links,
            hidden=hidden,
        )
    }
    known = [p.entry for p in posts.values()]

    def item(entry: StoredEntry) -> DigestItem:
        post = posts[entry.id]
        shown = _item(entry, sources[entry.source], window, zone, settings.page.allow_remote_images)
        return replace(shown, also=also_on(post), shared_by=sharers(post, config))

    def source_url(slug: str) -> str:
        return urljoin(settings.base_url, f"sources/{slug}/")

    def fair_share(group: Sequence[StoredEntry]) -> tuple[list[DigestItem], list[MoreLink]]:
        shown: list[DigestItem] = []
        counts: dict[str, int] = {}
        for entry in group:
            counts[entry.source] = counts.get(entry.source, 0) + 1
            if counts[entry.source] <= options.per_source:
                shown.append(item(entry))
        more = [
            MoreLink(sources[slug].name, n - options.per_source, source_url(slug))
            for slug, n in counts.items()
            if n > options.per_source
        ]
        return shown, more

    groups: list[DigestGroup] = []
    if options.group_by == "tag":
        for topic, members in _by_topic(known, config.sources):
            shown, more = fair_share(members)
            groups.append(DigestGroup(topic, None, tuple(shown), tuple(more)))
    else:
        for source in config.sources:
            members = [e for e in known if e.source == source.slug]
            if members:
                shown, more = fair_share(members)
                groups.append(
                    DigestGroup(source.name, source_url(source.slug), tuple(shown), tuple(more))
                )

    label = window_label(window)
    unsubscribe = options.unsubscribe
    if unsubscribe and "@" in unsubscribe and ":" not in unsubscribe:
        unsubscribe = f"mailto:{unsubscribe}"
    return Digest(
        title=settings.title,
        window=window,
        date_label=label,
        subject=f"{settings.title}: {label}",
        groups=tuple(groups),
        entry_count=len(known),
        source_count=len({e.source for p in posts.values() for e in p.members}),
        group_by=options.group_by,
        site_url=urljoin(settings.base_url, "./"),
        web_url=urljoin(settings.base_url, f"digest/{window.day.isoformat()}.html"),
        archive_url=urljoin(settings.base_url, "digest/"),
        unsubscribe_url=unsubscribe,
        signup_url=settings.page.digest_signup_url,
        # Shown if still pinned on the day the digest goes out (the day after its window).
        pinned=moderation.active_pinned(config.pinned, window.day + timedelta(days=1)),
    )


def _topic_key(tag: str) -> str:
    return tag.strip().lstrip("#").casefold()


def _by_topic(
    entries: Sequence[StoredEntry], sources: Sequence[Source]
) -> list[tuple[str, list[StoredEntry]]]:
    """Each entry under one topic: the first organiser's tag (feeds.yaml order) it carries.

    The topics are the tags given to campaigners in feeds.yaml.  An entry's own
    tags (hashtags, categories) pick among them; failing that, its campaigner's
    first tag; failing that, "Other posts".  No entry appears twice.
    """
    topics: dict[str, str] = {}  # key -> tag as the organiser wrote it
    for source in sources:
        for tag in source.tags:
            topics.setdefault(_topic_key(tag), tag)
    order = list(topics)
    source_tags = {s.slug: [_topic_key(t) for t in s.tags] for s in sources}
    grouped: dict[str, list[StoredEntry]] = {}
    for entry in entries:
        own = {_topic_key(t) for t in entry.tags}
        topic = next((k for k in order if k in own), None)
        if topic is None:
            topic = next(iter(source_tags.get(entry.source, [])), OTHER_TOPIC)
        grouped.setdefault(topic, []).append(entry)
    ordered = [(topics[k], grouped[k]) for k in order if k in grouped]
    if OTHER_TOPIC in grouped:
        ordered.append((OTHER_TOPIC, grouped[OTHER_TOPIC]))
    return ordered


def _item(
    entry: StoredEntry, source: Source, window: Window, zone: ZoneInfo, images: bool
) -> DigestItem:
    # Plain text only: the stored HTML was sanitised, but an email needs none of it.
    body = excerpt(entry.content or entry.summary, TEXT_MAX)
    if entry.title_derived or not entry.title.strip():
        headline = body or clean_text(entry.title, TEXT_MAX)
        text = ""
    else:
        headline = clean_text(entry.title, TITLE_MAX)
        text = excerpt(entry.summary or entry.content, TEXT_MAX)
        if text and text.rstrip("…").startswith(headline.rstrip("…")):
            text = ""  # the summary only repeats the title
    local = entry.published.astimezone(zone)
    if local.date() == window.day:
        when = f"{local:%H:%M}"
    else:
        when = f"{local:%a} {local.day} {local:%b}, {local:%H:%M}"
    image = _image(entry.media, source.name) if images else None
    platform = PLATFORM_LABELS.get(entry.platform, entry.platform)
    if entry.platform == "youtube":
        link_label = "Watch on YouTube"
    elif entry.platform == "blog":
        link_label = "Read the post"
    else:
        link_label = f"View on {platform}"
    return DigestItem(
        entry_id=entry.id,
        headline=headline,
        text=text,
        link=safe_url(canonical_url(entry.link), allow_mailto=False) if entry.link else None,
        source_name=source.name,
        platform=platform,
        when=when,
        link_label=link_label,
        image=image,
    )


def _image(media: Sequence[Media], source_name: str) -> DigestImage | None:
    """The first picture whose size the feed gave, scaled to fit; None otherwise.

    Only with `page.allow_remote_images`: a remote image in an email is a
    request to another site when it is opened.  Without a known size an image
    would reflow the email as it loads, so such images are left out.
    """
    for m in media:
        if not (m.type or "").startswith("image/") or not m.width or not m.height:
            continue
        url = safe_url(m.url, allow_mailto=False)
        if url is None or not url.startswith("https://"):
            continue
        width = min(m.width, IMAGE_WIDTH)
        height = max(1, round(m.height * width / m.width))
        alt = clean_text(m.title or "", 200) or f"Picture from {source_name}'s post"
        return DigestImage(url, width, height, alt)
    return None


# --------------------------------------------------------------------------- rendering


def render_html(digest: Digest, renderer: Renderer) -> str:
    """The email's HTML part, which is also the web version: CSS inlined, no scripts.

    The rules in digest/email.css become style attributes (many email clients
    drop <style>); the template's own <style>, which holds only @media rules
    for dark mode and phones, is kept where it is, after <meta charset>.
    """
    html = renderer.render("digest/digest.html", d=digest, width=EMAIL_WIDTH)
    css = renderer.env.get_template("digest/email.css").render()
    inliner = css_inline.CSSInliner(
        inline_style_tags=False,
        keep_style_tags=True,
        load_remote_stylesheets=False,
        extra_css=css,
    )
    return inliner.inline(html)


def render_text(digest: Digest, renderer: Renderer) -> str:
    """The plain-text part: its own template, wrapped at 72 columns, URLs on their own line."""
    text = renderer.render(
        "digest/digest.txt", d=digest, columns=display_width, join_names=join_names
    )
    lines = [line.rstrip() for line in text.splitlines()]
    return "\n".join(lines).strip() + "\n"


def display_width(text: str) -> int:
    """Columns `text` takes in a monospaced font: emoji and CJK take two, accents none."""
    return sum(
        0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
        for c in text
    )


def message_id(digest: Digest, sender: str, now: datetime) -> str:
    """A Message-ID unique to this digest and this moment (RFC 5322 section 3.6.4)."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    seed = f"{digest.window.day.isoformat()}|{now.isoformat()}|{digest.entry_count}"
    token = hashlib.sha256(seed.encode()).hexdigest()[:16]
    return f"<digest.{digest.window.day.isoformat()}.{token}@{domain}>"


def default_sender(config: Config) -> str:
    host = urlsplit(config.settings.base_url).hostname or "localhost"
    return str(Address(display_name=config.settings.title, addr_spec=f"noreply@{host}"))


def compose(digest: Digest, html: str, text: str, config: Config, *, now: datetime) -> EmailMessage:
    """The complete message, addressed for the .eml file and for sending.

    To is the one configured address when there is one (a list's own address),
    otherwise "undisclosed-recipients:;" (RFC 5322 group syntax): recipients
    sent to one by one get their own address in To as it goes out.
    """
    options = config.settings.digest or DigestSettings()
    sender = options.sender or default_sender(config)
    if "<" not in sender and parseaddr(sender)[1] == sender:
        sender = str(Address(display_name=config.settings.title, addr_spec=sender))
    to = options.to[0] if len(options.to) == 1 else "undisclosed-recipients:;"
    host = urlsplit(config.settings.base_url).hostname or "localhost"
    return mail.build_message(
        subject=digest.subject,
        sender=sender,
        to=to,
        html=html,
        text=text,
        date=now,
        message_id=message_id(digest, sender, now),
        unsubscribe=options.unsubscribe,
        list_id=f"{_header_text(config.settings.title)} <digest.{host}>",
    )


def _header_text(text: str) -> str:
    return clean_text(text.replace('"', "'"), 100)


# --------------------------------------------------------------------------- the store's record

digest_migrations = Migrations("aggregator-digest")


@digest_migrations()
def m001_digests(db: Database) -> None:
    db.table("digests").create(
        {
            "date": str,  # the local day the digest is named after, YYYY-MM-DD
            "first_day": str,  # earlier than date when missed days were caught up
            "window_start": str,
            "window_end": str,
            "entry_count": int,
            "source_count": int,
            "written": int,  # 1 when files were written (an empty day writes none)
            "written_at": str,
            "message_id": str,
            "sent_at": str,
            "recipients": str,  # JSON list of the addresses the server accepted
            "send_count": int,
        },
        pk="date",
        not_null=["window_start", "window_end", "written_at"],
        defaults={"written": 0, "send_count": 0, "entry_count": 0, "source_count": 0},
    )


def ensure_schema(store: Store) -> None:
    """Create or update the `digests` table (a migration set of its own)."""
    digest_migrations.apply(store.db)


@dataclass(frozen=True)
class DigestRecord:
    day: date
    entry_count: int
    written: bool
    sent_at: datetime | None
    recipients: tuple[str, ...]


def _record(row: dict[str, Any]) -> DigestRecord:
    return DigestRecord(
        day=date.fromisoformat(row["date"]),
        entry_count=int(row["entry_count"] or 0),
        written=bool(row["written"]),
        sent_at=from_iso(row["sent_at"]),
        recipients=tuple(json.loads(row["recipients"] or "[]")),
    )


def digest_records(store: Store) -> list[DigestRecord]:
    """Every digest made, newest first."""
    ensure_schema(store)
    return [_record(r) for r in store.db.table("digests").rows_where(order_by="date desc")]


def _find(store: Store, day: date) -> DigestRecord | None:
    rows = list(store.db.table("digests").rows_where("date = ?", [day.isoformat()]))
    return _record(rows[0]) if rows else None


# --------------------------------------------------------------------------- the edge


@dataclass(frozen=True)
class DigestOutcome:
    """What `aggregator digest` did, for the CLI and the scheduler."""

    day: date
    status: Literal["written", "empty", "sent", "partly_sent", "already_sent"]
    entry_count: int
    source_count: int
    files: tuple[Path, ...]
    message: str  # plain English, several lines
    recipients: tuple[str, ...] = ()
    refused: tuple[str, ...] = ()
    exit_code: int = 0


def run_digest(
    config: Config,
    store: Store,
    *,
    date: date | None,
    send: bool,
    force: bool,
    now: datetime,
    ssl_context: SSLContext | None = None,
) -> DigestOutcome:
    """Make the digest for `date` (default: yesterday, catching up missed days); maybe send it.

    Writes digest/DATE.html (email HTML and web version), DATE.txt, DATE.eml,
    latest.html and the archive page index.html into the output folder, then,
    with `send`, sends over SMTP unless this date was sent before (`force`
    sends again).  An empty day writes and sends nothing unless
    settings.digest.send_empty.  Raises SendError when sending fails (the files
    stay written, so a rerun retries), ConfigError when sending is asked for
    without the settings it needs, OutputError/StoreError as the rest of the
    aggregator does.
    """
    ensure_schema(store)
    settings = config.settings
    options = settings.digest or DigestSettings()
    zone = ZoneInfo(settings.timezone)
    if send:
        _check_send_settings(config, options)
    records = digest_records(store)
    last_day = records[0].day if records else None
    try:
        window = digest_window(now, zone, day=date, last_day=last_day)
    except ValueError as exc:
        raise DigestError(str(exc)) from None
    day = window.day
    previous = _find(store, day)

    if send and not force and previous is not None and previous.sent_at is not None:
        sent_at = previous.sent_at.astimezone(zone)
        message = (
            f"The digest for {day_label(day)} was already sent on {sent_at:%d %b %Y at %H:%M} "
            f"to {_plural(len(previous.recipients), 'recipient')}; not sending it again. "
            "Add --force to send it once more."
        )
        return _finish(day, "already_sent", previous.entry_count, 0, (), message)

    slugs = [s.slug for s in config.sources]
    stored = store.entries(sources=slugs, since=window.start - BACKFILL_LIMIT) if slugs else []
    # Hidden, blocked and filtered posts (issue 7), as the store and feeds.yaml say now.
    allowed = moderation.policy(config, store)
    # Hidden entries stay in until merged, so hiding one version of a cross-post hides all.
    stored = [e for e in stored if allowed.allows(e) or e.id in allowed.hidden]
    fresh = _not_sent_before(stored, window, config)
    digest = build_digest(fresh, config, window, hidden=allowed.hidden)
    row: dict[str, Any] = {
        "date": day.isoformat(),
        "first_day": window.first_day.isoformat(),
        "window_start": iso(window.start),
        "window_end": iso(window.end),
        "entry_count": digest.entry_count,
        "source_count": digest.source_count,
        "written_at": iso(now),
    }

    if digest.empty and not options.send_empty:
        with store.db.atomic():
            store.db.table("digests").upsert({**row, "written": 0}, pk="date")
        message = (
            f"No new posts for {digest.date_label}, so no digest was written or sent. "
            "(Set send_empty: true under settings.digest in feeds.yaml to send one anyway.)"
        )
        return _finish(day, "empty", 0, 0, (), message)

    renderer = Renderer(config)
    html = render_html(digest, renderer)
    text = render_text(digest, renderer)
    email = compose(digest, html, text, config, now=now)
    folder = settings.output / "digest"
    name = day.isoformat()
    files = [folder / f"{name}.html", folder / f"{name}.txt", folder / f"{name}.eml"]
    write_atomic(files[0], html)
    write_atomic(files[1], text)
    write_atomic(files[2], mail.message_bytes(email))
    newest = max([day, *(r.day for r in records if r.written)])
    if newest == day:
        write_atomic(folder / "latest.html", html)
        files.append(folder / "latest.html")
    with store.db.atomic():
        store.db.table("digests").upsert(
            {**row, "written": 1, "message_id": str(email["Message-ID"])}, pk="date"
        )
    files.append(_write_archive(config, store, renderer, folder))
    what = f"{digest.date_label}: {digest.summary.lower()}"
    written = f"Wrote the digest for {what}, in {folder}/ ({name}.html, .txt, .eml)."
    if not send:
        return _finish(day, "written", digest.entry_count, digest.source_count, files, written)

    smtp = options.smtp
    assert smtp is not None  # _check_send_settings
    try:
        report = mail.send(
            email, smtp, options.to, individual=options.individual, ssl_context=ssl_context
        )
    except SendError as exc:
        if exc.accepted:
            _record_sent(store, day, exc.accepted, str(email["Message-ID"]), now)
        reached = f" It did reach {', '.join(exc.accepted)}." if exc.accepted else ""
        raise SendError(
            f"The digest for {digest.date_label} was not sent: {exc}{reached} The files are "
            f"written in {folder}/; run `aggregator digest --date {name} --send` to try again"
            f"{' (with --force, as some copies went out)' if exc.accepted else ''}.",
            accepted=exc.accepted,
        ) from exc
    _record_sent(store, day, report.accepted, str(email["Message-ID"]), now)
    how = "one by one" if options.individual else "as Bcc"
    sent = f"Sent it to {_plural(len(report.accepted), 'recipient')} ({how}) via {smtp.host}."
    if report.refused:
        refused = "; ".join(f"{a} ({why})" for a, why in report.refused.items())
        return _finish(
            day,
            "partly_sent",
            digest.entry_count,
            digest.source_count,
            files,
            f"{written}\n{sent}\nThe mail server refused: {refused}. Check these addresses "
            "under settings.digest.to in feeds.yaml.",
            recipients=report.accepted,
            refused=tuple(report.refused),
            exit_code=1,
        )
    return _finish(
        day,
        "sent",
        digest.entry_count,
        digest.source_count,
        files,
        f"{written}\n{sent}",
        recipients=report.accepted,
    )


def _finish(
    day: date,
    status: Literal["written", "empty", "sent", "partly_sent", "already_sent"],
    entries: int,
    sources: int,
    files: Sequence[Path],
    message: str,
    *,
    recipients: tuple[str, ...] = (),
    refused: tuple[str, ...] = (),
    exit_code: int = 0,
) -> DigestOutcome:
    log.info(
        "event=digest date=%s status=%s entries=%d sources=%d recipients=%d",
        day.isoformat(),
        status,
        entries,
        sources,
        len(recipients),
    )
    return DigestOutcome(
        day, status, entries, sources, tuple(files), message, recipients, refused, exit_code
    )


def _check_send_settings(config: Config, options: DigestSettings) -> None:
    problems = []
    if config.settings.digest is None:
        problems.append("to send the digest, add a `digest:` section under `settings:`")
    else:
        if options.smtp is None:
            problems.append(
                "settings: digest: needs smtp: (host, port, security, username, password_env) "
                "to send the digest"
            )
        if not options.to:
            problems.append("settings: digest: needs to: with at least one address")
        if not options.sender:
            problems.append("settings: digest: needs from: the address the digest comes from")
    if problems:
        raise ConfigError(str(config.path), [ConfigProblem(p) for p in problems])


def _record_sent(
    store: Store, day: date, recipients: Sequence[str], message_id: str, now: datetime
) -> None:
    table = store.db.table("digests")
    count = next(iter(table.rows_where("date = ?", [day.isoformat()])), {}).get("send_count")
    with store.db.atomic():
        table.update(
            day.isoformat(),
            {
                "sent_at": iso(now),
                "recipients": json.dumps(list(recipients)),
                "message_id": message_id,
                "send_count": int(count or 0) + 1,
            },
        )


def _write_archive(config: Config, store: Store, renderer: Renderer, folder: Path) -> Path:
    """digest/index.html: every digest whose files are in the output folder, newest first."""
    records = [
        r
        for r in digest_records(store)
        if r.written and (folder / f"{r.day.isoformat()}.html").exists()
    ]
    archive = [
        {
            "href": f"{r.day.isoformat()}.html",
            "label": day_label(r.day),
            "summary": _plural(r.entry_count, "new post"),
        }
        for r in records
    ]
    html = renderer.render("digest/index.html", digests=archive)
    path = folder / "index.html"
    write_atomic(path, html)
    return path
