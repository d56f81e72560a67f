"""Stored entries -> the published site: feeds, web pages, OPML (issue 3).

What `build` writes into `settings.output`:

    feed.atom  feed.rss  feed.json           every campaigner, newest first
    sources.opml                              every original feed, by campaigner
    index.html                                the latest days, fair share per campaigner
    sources/index.html                        the campaigner directory
    sources/<slug>/index.html  feed.*         one campaigner
    tags/index.html  tags/<tag>/index.html  feed.*   one topic (the tags of feeds.yaml)
    archive/index.html  archive/YYYY/MM/DD/index.html   every day, uncapped
    health.html                               each feed's last success and last error
    style.css  favicon.svg                    from templates/static/

Rendering is pure (values in, strings out); each finished file is staged on
disk beside its place (a hidden temporary file, so a build of 100,000 entries
does not hold the whole site in memory), and only when every file is made are
they all moved into place, one rename each: a build that fails part-way, on a
full disk say, leaves the previous site as it was.  A file whose bytes are
unchanged is not staged, so a rebuild with nothing new writes nothing.  The
feed documents themselves come from syndication.py; this module chooses what
goes in each and builds the pages.  Entry HTML was sanitised before it was
stored (sanitize.py); pages show plain-text excerpts of it, and templates run
with autoescape on.

For big stores each page queries only what it shows: the front page its days,
a campaigner page their latest posts, and the day archive is read through one
light query (ids and dates) so that only days whose entries changed are
rendered again (`_day_signature`).

Templates come from the package's `templates/` folder; `settings.templates`
may name an organiser's folder whose files override any of them (theming).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import urljoin
from zoneinfo import ZoneInfo

import jinja2
from markupsafe import Markup

from . import moderation, syndication
from .canonical import canonical_url
from .crosspost import AlsoOn, Comparisons, Post, also_on, merge
from .errors import OutputError
from .models import PLATFORM_LABELS, Config, FeedStatus, Source, StoredEntry
from .resources import resource_dir
from .sanitize import clean_text, excerpt
from .store import Store, from_iso
from .syndication import (
    FeedInfo,
    FeedItem,
    MediaItem,
    RelatedLink,
    rfc3339,
    valid_language,
    xml_safe,
)

__all__ = [
    "BuildReport",
    "EntryView",
    "Renderer",
    "build",
    "environment",
    "rfc3339",
    "tag_slug",
    "write_atomic",
    "xml_safe",
]

_AUTOESCAPE = ("html", "htm", "xml", "atom", "rss", "opml")
PAGE_LANGUAGE = "en-GB"
# The front page must stay under 100 KB without images (issue 3); we aim a little lower.
PAGE_BUDGET = 95_000
SOURCE_PAGE_ENTRIES = 50
TAG_PAGE_ENTRIES = 50
DIRECTORY_ENTRIES = 3
SHORT_POST_MAX = 500  # social posts up to this long are shown in full
EXCERPT_MAX = 220
MEDIA_SHOWN = 4
FEED_FORMATS = (
    ("atom", "feed.atom", "application/atom+xml", "Atom"),
    ("rss", "feed.rss", "application/rss+xml", "RSS"),
    ("json", "feed.json", "application/feed+json", "JSON Feed"),
)
_SIGNATURE = re.compile(rb"<!-- signature:([0-9a-f]{64}) -->\s*$")


def environment(template_dir: Path | None = None) -> jinja2.Environment:
    """A Jinja environment: the organiser's templates first, then ours."""
    loaders: list[jinja2.BaseLoader] = []
    if template_dir is not None:
        loaders.append(jinja2.FileSystemLoader(str(template_dir)))
    loaders.append(jinja2.FileSystemLoader(str(resource_dir("templates"))))
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=jinja2.select_autoescape(_AUTOESCAPE, default_for_string=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["rfc3339"] = rfc3339
    env.filters["xml_safe"] = xml_safe
    return env


def tag_slug(tag: str) -> str:
    """The URL folder of a topic: "Junior doctors" -> "junior-doctors"."""
    text = unicodedata.normalize("NFKD", tag.strip().lstrip("#")).casefold()
    text = "".join(c for c in text if not unicodedata.combining(c))
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-") or "tag"


def day_path(day: date) -> str:
    return f"archive/{day:%Y/%m/%d}/"


def day_label(day: date) -> str:
    return f"{day:%A} {day.day} {day:%B %Y}"


# --------------------------------------------------------------------------- views


@dataclass(frozen=True)
class MediaView:
    """A picture or video of a post: shown inline only when remote images are allowed."""

    url: str
    kind: str  # image, video, audio, file
    label: str  # "[image: a nurse at a rally]"
    alt: str
    inline: bool
    width: int | None = None
    height: int | None = None


@dataclass(frozen=True)
class EntryView:
    """An entry as pages show it: who, where, when locally, and plain text to read."""

    entry: StoredEntry
    source: Source | None
    author_name: str
    platform_label: str
    local_published: datetime
    heading: str | None = None  # the post's title; None for social posts, shown in full
    text: str = ""
    link_label: str = "Read the post"
    lang: str | None = None
    media: tuple[MediaView, ...] = ()
    also: tuple[AlsoOn, ...] = ()  # the same post on the campaigner's other platforms
    shared_by: tuple[Sharer, ...] = ()  # everyone who shared this article, when merged

    @property
    def source_slug(self) -> str:
        return self.entry.source

    @property
    def link(self) -> str | None:
        """The post's link as published: canonical, tracking parameters removed (issue 7)."""
        return canonical_url(self.entry.link) if self.entry.link else None

    @property
    def content_html(self) -> Markup:
        # Sanitised by sanitize.sanitize_html before it was stored: the one door.
        return Markup(xml_safe(self.entry.content))

    @property
    def atom_id(self) -> str:
        return f"urn:uuid:{self.entry.id}"


def _media_views(entry: StoredEntry, who: str, allow_images: bool) -> tuple[MediaView, ...]:
    """Pictures, videos and sound files worth a mention (plugins and other files are not).

    Without `page.allow_remote_images` a picture becomes a link "[image: alt]":
    loading it would be a request to another site as the page is read.
    """
    views: list[MediaView] = []
    for media in entry.media:
        kind = (media.type or "").split("/")[0]
        if kind not in ("image", "video", "audio") or len(views) >= MEDIA_SHOWN:
            continue
        alt = clean_text(media.title or "", 200)
        if not alt and kind == "image":
            alt = f"picture from {who}'s post"
        inline = allow_images and kind == "image" and media.url.startswith("https://")
        views.append(
            MediaView(
                url=media.url,
                kind=kind,
                label=f"[{kind}: {alt}]" if alt else f"[{kind}]",
                alt=alt,
                inline=inline,
                width=media.width,
                height=media.height,
            )
        )
    return tuple(views)


@dataclass(frozen=True)
class Sharer:
    """One campaigner who shared an article, linking to their own post of it."""

    name: str
    href: str | None


def sharers(post: Post, config: Config) -> tuple[Sharer, ...]:
    """Everyone in a shared-links post, the shown post's campaigner first; () when alone."""
    if not post.shared:
        return ()
    out = []
    for member in (post, *post.shared):
        source = config.source(member.entry.source)
        name = source.name if source else (member.entry.author or member.entry.source)
        link = member.entry.link
        out.append(Sharer(name, canonical_url(link) if link else None))
    return tuple(out)


def entry_view(
    entry: StoredEntry, config: Config, zone: ZoneInfo, post: Post | None = None
) -> EntryView:
    """What a page shows of one entry: a title and excerpt, or a short post in full.

    `post` is the entry's cross-posts and shares (crosspost.merge), when merged.
    """
    source = config.source(entry.source)
    name = source.name if source else (entry.author or entry.source)
    platform = PLATFORM_LABELS.get(entry.platform, entry.platform)
    if entry.title_derived or not entry.title.strip():
        heading = None
        text = excerpt(entry.content or entry.summary, SHORT_POST_MAX) or entry.title
    else:
        heading = entry.title
        text = excerpt(entry.summary or entry.content, EXCERPT_MAX)
        if text.rstrip("…").strip() in heading or heading.startswith(text.rstrip("…")):
            text = ""  # the excerpt only repeats the title
    if entry.platform == "blog":
        label = "Read the post"
    elif entry.platform == "youtube":
        label = "Watch on YouTube"
    else:
        label = f"View on {platform}"
    return EntryView(
        entry=entry,
        source=source,
        author_name=name,
        platform_label=platform,
        local_published=entry.published.astimezone(zone),
        heading=heading,
        text=text,
        link_label=label,
        lang=valid_language(entry.language),
        media=_media_views(entry, name, config.settings.page.allow_remote_images),
        also=also_on(post) if post else (),
        shared_by=sharers(post, config) if post else (),
    )


def entry_views(entries: Iterable[StoredEntry], config: Config) -> list[EntryView]:
    zone = ZoneInfo(config.settings.timezone)
    return [entry_view(e, config, zone) for e in entries]


@dataclass(frozen=True)
class MoreLink:
    """ "3 more from Siân": the posts a fair share left out, on the campaigner's page."""

    name: str
    count: int
    href: str  # relative to the site's root


@dataclass(frozen=True)
class DayGroup:
    day: date
    label: str
    entries: tuple[EntryView, ...]
    more: tuple[MoreLink, ...] = ()

    @property
    def anchor(self) -> str:
        return f"d{self.day:%Y-%m-%d}"

    @property
    def archive_href(self) -> str:
        return day_path(self.day)


def group_by_day(views: Sequence[EntryView], *, per_source: int | None = None) -> list[DayGroup]:
    """Newest-first views -> local days, each capped at `per_source` posts per campaigner.

    The cap is the fair share of issue 3: one prolific source cannot push the
    others off a page.  What it leaves out is counted in a MoreLink to the
    campaigner's page, at that day.
    """
    days: dict[date, list[EntryView]] = {}
    for view in views:
        days.setdefault(view.local_published.date(), []).append(view)
    groups = []
    for day, members in days.items():
        shown: list[EntryView] = []
        counts: dict[str, int] = {}
        names: dict[str, str] = {}
        for view in members:
            counts[view.source_slug] = counts.get(view.source_slug, 0) + 1
            names[view.source_slug] = view.author_name
            if per_source is None or counts[view.source_slug] <= per_source:
                shown.append(view)
        more = tuple(
            MoreLink(names[slug], n - per_source, f"sources/{slug}/#d{day:%Y-%m-%d}")
            for slug, n in counts.items()
            if per_source is not None and n > per_source
        )
        groups.append(DayGroup(day, day_label(day), tuple(shown), more))
    return groups


def _truncate_groups(groups: Sequence[DayGroup], limit: int) -> list[DayGroup]:
    """At most `limit` entries in all, whole days first; a cut day keeps its newest."""
    out: list[DayGroup] = []
    left = limit
    for group in groups:
        if left <= 0:
            break
        out.append(DayGroup(group.day, group.label, group.entries[:left], group.more))
        left -= len(group.entries)
    return out


# --------------------------------------------------------------------------- renderer


@dataclass(frozen=True)
class FeedLink:
    """One format of one of our feeds, for <link rel="alternate"> and subscribe boxes."""

    label: str  # "NHS campaigners (Atom)"
    format: str  # "Atom"
    type: str
    href: str  # absolute, from settings.base_url


class Renderer:
    """Renders templates for one config; pure apart from reading templates."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.env = environment(config.settings.templates)

    def url(self, path: str) -> str:
        """An absolute URL on the published site (settings.base_url)."""
        return urljoin(self.config.settings.base_url, path)

    def feed_links(self, folder: str, title: str) -> list[FeedLink]:
        return [
            FeedLink(f"{title} ({label})", label, mime, self.url(folder + name))
            for _, name, mime, label in FEED_FORMATS
        ]

    def render(self, template: str, **context: object) -> str:
        """Render `template`; pages pass `root` (the relative way back to the site's root).

        Templates outside this module (the digest's) get working defaults: links
        absolute from settings.base_url and the site-wide feeds.
        """
        settings = self.config.settings
        context.setdefault("root", self.url(""))
        context.setdefault("alternates", self.feed_links("", settings.title))
        context.setdefault("nav", "")
        context.setdefault("csp", self.csp())
        context.setdefault("canonical", None)
        return self.env.get_template(template).render(
            settings=settings, config=self.config, url=self.url, **context
        )

    def csp(self) -> str:
        """Content-Security-Policy: no scripts at all; styles and pictures from this site only.

        Remote pictures are allowed only with `page.allow_remote_images`, because
        each one is a request to another site as the page is read.
        """
        images = "'self' https:" if self.config.settings.page.allow_remote_images else "'self'"
        return (
            "default-src 'none'; script-src 'none'; style-src 'self'; "
            f"img-src {images}; base-uri 'none'; form-action 'none'"
        )

    def static(self, name: str) -> str:
        """A file of templates/static/ (an organiser's copy overrides ours)."""
        loader = self.env.loader
        assert loader is not None
        source, _, _ = loader.get_source(self.env, f"static/{name}")
        return source

    def fingerprint(self) -> str:
        """What, besides entries, a page depends on: templates, config and the code.

        Part of every page signature, so that changing any of them (or upgrading
        the aggregator) renders every page again.
        """
        digest = hashlib.sha256()
        for module in sorted(Path(__file__).parent.glob("*.py")):
            digest.update(module.read_bytes())
        digest.update(repr(self.config.settings).encode())
        digest.update(repr(self.config.sources).encode())
        for name in sorted(self.env.list_templates()):
            loader = self.env.loader
            assert loader is not None
            digest.update(name.encode())
            digest.update(loader.get_source(self.env, name)[0].encode())
        return digest.hexdigest()


# --------------------------------------------------------------------------- writing


def write_atomic(path: Path, content: str | bytes) -> bool:
    """Replace `path` in one rename; return False when it already held exactly this.

    Skipping identical files keeps unchanged builds cheap and keeps the files'
    modification times (and so HTTP caches) honest.
    """
    staged = _stage(path, content)
    if staged is None:
        return False
    _commit([(staged, path)])
    return True


# mkstemp's names for the files `_stage` writes: ".<name>.<8 characters>.tmp".
_STAGED = re.compile(r"\..+\.[a-z0-9_]{8}\.tmp")


def _stage(path: Path, content: str | bytes) -> Path | None:
    """Write `content` to a hidden file beside `path`, flushed to disk; None if `path`
    already holds exactly this.  `_commit` puts it in place, `_discard` removes it.
    """
    data = content.encode("utf-8") if isinstance(content, str) else content
    try:
        if path.exists() and path.read_bytes() == data:
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o644)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise OutputError(
            f"Could not write {path}: {exc.strerror or exc}. Check that `settings.output` in "
            "feeds.yaml points to a folder this user can write; the previous files are unchanged."
        ) from exc
    return Path(tmp)


def _commit(staged: Sequence[tuple[Path, Path]]) -> None:
    """Move staged files into place, one rename each (renames need no disk space)."""
    for done, (tmp, path) in enumerate(staged):
        try:
            os.replace(tmp, path)
        except OSError as exc:
            _discard(staged[done:])
            raise OutputError(
                f"Could not put the new {path} in place: {exc.strerror or exc}. The files "
                "before it in this build were updated and the rest were not; check that this "
                "user can write the output folder, then build again."
            ) from exc


def _discard(staged: Iterable[tuple[Path, Path]]) -> None:
    """Remove staged files that will not be committed."""
    for tmp, _ in staged:
        tmp.unlink(missing_ok=True)


def _remove_leftover_staged(output: Path) -> None:
    """Delete staged files a build killed part-way (kill -9, power loss) left behind."""
    if not output.is_dir():
        return
    for path in output.rglob(".*.tmp"):
        if _STAGED.fullmatch(path.name):
            path.unlink(missing_ok=True)


def _existing_signature(path: Path) -> str | None:
    """The signature a day page was written with (its last line), or None."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 200))
            match = _SIGNATURE.search(f.read())
    except OSError:
        return None
    return match.group(1).decode() if match else None


def _remove_stale_days(output: Path, keep: set[str]) -> None:
    """Delete day pages of days that no longer have a post to show.

    A day whose only posts were hidden or filtered out (issue 7) must not keep
    its old page in the archive.
    """
    for page in output.glob("archive/[0-9]*/[0-9]*/[0-9]*/index.html"):
        if page.relative_to(output).as_posix() not in keep:
            try:
                page.unlink()
            except OSError as exc:
                raise OutputError(
                    f"Could not remove {page}, a day page with no posts left: "
                    f"{exc.strerror or exc}. Delete it by hand."
                ) from exc


@dataclass(frozen=True)
class BuildReport:
    written: tuple[Path, ...]
    unchanged: int
    entries: int  # in the combined feed


# --------------------------------------------------------------------------- build


@dataclass
class _Site:
    """One build: the config, the store, the clock, and the files made so far."""

    config: Config
    store: Store
    now: datetime
    fingerprint: str  # Renderer.fingerprint: code, templates and config
    renderer: Renderer = field(init=False)
    zone: ZoneInfo = field(init=False)
    # Finished files wait on disk, beside where they go, until the build commits:
    # a full build no longer holds every page in memory (issue 8), and a failure
    # part-way (a full disk) still leaves the previous site as it was.
    staged: list[tuple[Path, Path]] = field(default_factory=list)
    paths: set[str] = field(default_factory=set)  # every file this build made
    identical: int = 0  # made, but equal to what was there
    # Signatures of the pages the last build made (page key -> signature).
    previous: dict[str, str] = field(default_factory=dict)
    signatures: dict[str, str] = field(default_factory=dict)  # this build's
    kept: set[str] = field(default_factory=set)  # files left as the last build made them
    skipped: int = 0  # day pages left alone because their signature matched
    # Every merge of this build shares what it worked out about each entry.
    comparisons: Comparisons = field(default_factory=Comparisons)

    def __post_init__(self) -> None:
        self.renderer = Renderer(self.config)
        self.zone = ZoneInfo(self.config.settings.timezone)
        self.slugs = [s.slug for s in self.config.sources]
        self.statuses = self.store.feed_statuses({f.key for f in self.config.feeds()})
        # Hidden and filtered entries (issue 7) are left out of every query below.
        self.excluded = moderation.excluded_ids(self.config, self.store)
        # Newest change anywhere: a feed with no entries of its own says this,
        # never "now", so an unchanged store builds unchanged files.
        newest = self.entries(self.slugs, limit=1)
        self.newest = newest[0].updated if newest else self.now
        self.tags = self._tags()

    # ------------------------------------------------------------------ helpers

    def _tags(self) -> dict[str, tuple[str, list[Source]]]:
        """slug -> (the tag as first written in feeds.yaml, its campaigners)."""
        tags: dict[str, tuple[str, list[Source]]] = {}
        for source in self.config.sources:
            for tag in source.tags:
                label, members = tags.setdefault(tag_slug(tag), (tag, []))
                if source not in members:
                    members.append(source)
        return tags

    def entries(
        self,
        slugs: Sequence[str],
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> list[StoredEntry]:
        if not slugs:
            return []
        return self.store.entries(
            sources=slugs, since=since, until=until, limit=limit, exclude_ids=self.excluded
        )

    def posts(
        self,
        slugs: Sequence[str],
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
        shared: bool = False,
    ) -> list[Post]:
        """Like `entries`, with each cross-post shown once (crosspost.merge, issue 7).

        Entries up to one cross-post window either side are read too, so a post
        whose versions straddle the edge of a day is shown once, on the day of
        its primary; `shared` also merges other campaigners' shares of one
        article (settings.page.shared_links).  Hidden entries are read too, so
        that hiding one version of a cross-post hides all of them.
        """
        if not slugs:
            return []
        settings = self.config.settings
        window = timedelta(seconds=settings.crosspost_window)
        hidden = self.hidden
        raw = self.store.entries(**self._read(slugs, since, until, limit))
        merged = merge(
            raw,
            window=window,
            primary=settings.crosspost_primary,
            shared_links=shared,
            hidden=hidden,
            comparisons=self.comparisons,
        )
        posts = [
            p
            for p in merged
            if (since is None or p.entry.published >= since)
            and (until is None or p.entry.published < until)
        ]
        return posts if limit is None else posts[:limit]

    def unchanged(self, key: str, paths: Sequence[str], *inputs: object) -> bool:
        """Whether the files at `paths` were made by the last build from these very inputs.

        `inputs` must be everything the pages show that the fingerprint (code,
        templates, config) does not cover: then equal signatures mean equal
        files, and rendering them again can be skipped (issue 8: one new post
        then costs the pages it is on, not every page).
        """
        signature = hashlib.sha256(repr((self.fingerprint, key, inputs)).encode()).hexdigest()
        self.signatures[key] = signature
        output = self.config.settings.output
        if self.previous.get(key) != signature or not all(
            (output / path).is_file() for path in paths
        ):
            return False
        self.kept.update(paths)
        self.skipped += len(paths)
        return True

    def _read(
        self,
        slugs: Sequence[str],
        since: datetime | None,
        until: datetime | None,
        limit: int | None,
    ) -> dict[str, Any]:
        """The store query behind `posts` (and `marks`, which must read the same rows)."""
        window = timedelta(seconds=self.config.settings.crosspost_window)
        return {
            "sources": slugs,
            "since": since - window if since is not None else None,
            "until": until + window if until is not None else None,
            # Each post may stand for a few entries (one per platform).
            "limit": None if limit is None else limit * 4 + 10,
            "exclude_ids": self.excluded - self.hidden,
        }

    def marks(self, slugs: Sequence[str], *, limit: int) -> list[tuple[object, ...]]:
        """What `posts(slugs, limit=limit)` reads, in short: equal marks, equal posts."""
        rows = self.store.entry_marks(**self._read(slugs, None, None, limit))
        return [(*row, row[0] in self.hidden) for row in rows]

    @cached_property
    def hidden(self) -> frozenset[str]:
        """Entries an organiser hid (`aggregator hide`): their cross-posts go with them."""
        return moderation.hidden_ids(self.store)

    def views(self, posts: Iterable[Post]) -> list[EntryView]:
        return [entry_view(p.entry, self.config, self.zone, p) for p in posts]

    def put(self, path: str, content: str) -> None:
        """Stage one finished file at `path` (relative to the output folder)."""
        if path in self.paths:
            raise AssertionError(f"{path} was made twice in one build")
        self.paths.add(path)
        target = self.config.settings.output / path
        staged = _stage(target, content)
        if staged is None:
            self.identical += 1
        else:
            self.staged.append((staged, target))

    def render_page(self, path: str, template: str, **context: object) -> str:
        """One page for `path` (relative to the output folder), as text."""
        depth = path.count("/")
        context.setdefault("root", "../" * depth)
        context.setdefault("canonical", self.renderer.url(path.removesuffix("index.html")))
        return self.renderer.render(template, **context)

    def page(self, path: str, template: str, **context: object) -> None:
        """Render one page at `path` and stage it."""
        self.put(path, self.render_page(path, template, **context))

    def feeds(self, folder: str, title: str, home: str, posts: Sequence[Post]) -> None:
        """feed.atom, feed.rss and feed.json in `folder` ("" for the site's own)."""
        settings = self.config.settings
        items = [self.feed_item(p) for p in posts]
        fallback = max((p.entry.updated for p in posts), default=self.newest)
        urls = {kind: self.renderer.url(folder + name) for kind, name, _, _ in FEED_FORMATS}
        for kind, name, _, _ in FEED_FORMATS:
            info = FeedInfo(
                id=urls["atom"],
                title=title,
                self_url=urls[kind],
                home_url=self.renderer.url(home),
                description=settings.description or f"Posts from {title}, newest first.",
                language=PAGE_LANGUAGE,
                author_name=settings.title,
                icon_url=self.renderer.url("favicon.svg") if kind != "rss" else None,
                fallback_updated=fallback,
                alternates=urls,
            )
            make = {"atom": syndication.atom, "rss": syndication.rss, "json": syndication.json_feed}
            self.put(folder + name, make[kind](info, items))

    def feed_item(self, post: Post) -> FeedItem:
        """One post in the feeds: its primary's text, canonical link, and its other platforms."""
        entry = post.entry
        source = self.config.source(entry.source)
        tags: list[str] = []
        for tag in (*(source.tags if source else ()), *entry.tags):
            if tag.casefold() not in (t.casefold() for t in tags):
                tags.append(tag)
        summary = "" if entry.title_derived or entry.summary == entry.title else entry.summary
        return FeedItem(
            id=f"urn:uuid:{entry.id}",
            title=entry.title,
            content_html=xml_safe(entry.content),  # sanitised before it was stored
            published=entry.published,
            updated=entry.updated,
            author_name=source.name if source else (entry.author or entry.source),
            author_url=self.renderer.url(f"sources/{entry.source}/"),
            url=canonical_url(entry.link) if entry.link else None,
            summary=summary,
            language=entry.language,
            tags=tuple(tags),
            related=tuple(RelatedLink(a.url, a.label) for a in also_on(post)),
            media=tuple(
                MediaItem(m.url, m.type, m.length, m.title, m.width, m.height)
                for m in entry.media
                if m.url.startswith(("https://", "http://"))
            ),
        )

    def feed_links(self, folder: str, title: str) -> list[FeedLink]:
        """This page's own feeds first, then the whole site's."""
        site = self.renderer.feed_links("", self.config.settings.title)
        return (self.renderer.feed_links(folder, title) if folder else []) + site

    # ------------------------------------------------------------------ outputs

    def build_feeds(self) -> int:
        settings = self.config.settings
        entries = self.posts(self.slugs, limit=settings.feed_length)
        self.feeds("", settings.title, "", entries)
        sets = [
            (f"sources/{source.slug}/", f"{source.name} · {settings.title}", [source.slug])
            for source in self.config.sources
        ] + [
            (f"tags/{slug}/", f"{label} · {settings.title}", [s.slug for s in members])
            for slug, (label, members) in self.tags.items()
        ]
        for folder, title, slugs in sets:
            marks = self.marks(slugs, limit=settings.feed_length)
            paths = [folder + name for _, name, _, _ in FEED_FORMATS]
            # With no posts, a feed's date is the newest change anywhere.
            newest = None if marks else self.newest
            if self.unchanged("feeds " + folder, paths, title, marks, newest):
                continue
            posts = self.posts(slugs, limit=settings.feed_length)
            self.feeds(folder, title, folder, posts)
        self.put(
            "sources.opml",
            syndication.opml(
                f"{settings.title}: every campaigner's own feeds",
                self.opml_groups(),
                owner_url=self.renderer.url(""),
            ),
        )
        return len(entries)

    def site_links(self) -> dict[str, str | None]:
        """Feed key -> the web page the feed belongs to, as the feed itself said."""
        rows = self.store.db.query("select key, site_link from feeds")
        return {row["key"]: row["site_link"] for row in rows}

    def opml_groups(self) -> list[syndication.OpmlGroup]:
        status = {s.key: s for s in self.statuses}
        pages = self.site_links()
        groups = []
        for source in self.config.sources:
            feeds = []
            for spec in source.feeds:
                known = status.get(spec.key)
                label = PLATFORM_LABELS.get(spec.platform, spec.platform)
                feeds.append(
                    syndication.OpmlFeed(
                        title=f"{source.name} ({label})",
                        xml_url=known.url if known else spec.url,
                        html_url=pages.get(spec.key),
                    )
                )
            groups.append(
                syndication.OpmlGroup(
                    source.name, tuple(feeds), self.renderer.url(f"sources/{source.slug}/")
                )
            )
        return groups

    def front_page(self) -> None:
        settings = self.config.settings
        options = settings.page
        today = self.now.astimezone(self.zone).date()
        first = today - timedelta(days=max(options.days, 1) - 1)
        since = datetime.combine(first, time(0), tzinfo=self.zone).astimezone(UTC)
        entries = self.posts(
            self.slugs,
            since=since,
            until=self.now + timedelta(days=1),
            shared=options.shared_links,
        )
        groups = group_by_day(self.views(entries), per_source=options.per_source_per_day)
        older = self.entries(self.slugs, until=since, limit=1)
        context = {
            "older": day_path(older[0].published.astimezone(self.zone).date()) if older else None,
            "alternates": self.feed_links("", settings.title),
            "nav": "latest",
            "digest_archive": (settings.output / "digest" / "index.html").exists(),
            "pinned": moderation.active_pinned(self.config.pinned, today),
        }
        # Fair share first, then the configured maximum, then the page-weight budget:
        # with very many (or very long) posts, the oldest days move to the archive.
        limit = options.max_entries
        while True:
            shown = _truncate_groups(groups, limit)
            text = self.render_page("index.html", "index.html", groups=shown, **context)
            size = len(text.encode())
            if size <= PAGE_BUDGET or limit <= 10:
                break
            limit = max(10, int(limit * PAGE_BUDGET / size * 0.95))
        self.put("index.html", text)

    def source_pages(self) -> None:
        status_by_source: dict[str, list[FeedStatus]] = {}
        for status in self.statuses:
            status_by_source.setdefault(status.source, []).append(status)
        pages = self.site_links()
        directory = []
        for source in self.config.sources:
            places = self.places(source, status_by_source.get(source.slug, []), pages)
            folder = f"sources/{source.slug}/"
            directory.append(
                {
                    "source": source,
                    "places": places,
                    "tags": [(t, tag_slug(t)) for t in source.tags],
                    "latest": self.views(self.posts([source.slug], limit=DIRECTORY_ENTRIES)),
                }
            )
            marks = self.marks([source.slug], limit=SOURCE_PAGE_ENTRIES)
            if self.unchanged("page " + folder, [folder + "index.html"], places, marks):
                continue
            latest = self.posts([source.slug], limit=SOURCE_PAGE_ENTRIES)
            self.page(
                folder + "index.html",
                "source.html",
                source=source,
                places=places,
                tags=[(t, tag_slug(t)) for t in source.tags],
                groups=group_by_day(self.views(latest)),
                alternates=self.feed_links(folder, source.name),
                own_feeds=self.renderer.feed_links(folder, source.name),
                nav="sources",
            )
        self.page("sources/index.html", "sources.html", sources=directory, nav="sources")

    def places(
        self, source: Source, statuses: Sequence[FeedStatus], pages: dict[str, str | None]
    ) -> list[dict[str, str | None]]:
        """Every place to find a campaigner: their feeds' pages, then links without feeds."""
        by_key = {s.key: s for s in statuses}
        out: list[dict[str, str | None]] = []
        for spec in source.feeds:
            status = by_key.get(spec.key)
            out.append(
                {
                    "label": PLATFORM_LABELS.get(spec.platform, spec.platform),
                    "href": pages.get(spec.key) or None,
                    "feed": status.url if status else spec.url,
                }
            )
        for link in source.links:
            out.append({"label": link.label, "href": link.url, "feed": None})
        return out

    def tag_pages(self) -> None:
        settings = self.config.settings
        listing = []
        for slug, (label, members) in sorted(self.tags.items(), key=lambda t: t[1][0].casefold()):
            folder = f"tags/{slug}/"
            listing.append({"label": label, "slug": slug, "members": members})
            slugs = [s.slug for s in members]
            marks = self.marks(slugs, limit=TAG_PAGE_ENTRIES)
            if self.unchanged("page " + folder, [folder + "index.html"], label, members, marks):
                continue
            entries = self.posts(slugs, limit=TAG_PAGE_ENTRIES, shared=settings.page.shared_links)
            groups = group_by_day(self.views(entries), per_source=settings.page.per_source_per_day)
            self.page(
                folder + "index.html",
                "tag.html",
                tag=label,
                members=members,
                groups=groups,
                alternates=self.feed_links(folder, label),
                own_feeds=self.renderer.feed_links(folder, label),
                nav="tags",
            )
        self.page("tags/index.html", "tags.html", tags=listing, nav="tags")

    def archive(self) -> None:
        """One page per local day with posts, uncapped, and an index of them by month.

        A day page is rendered only when its signature (its entries' ids, update
        times and content hashes, its neighbours, the fingerprint of templates,
        config and code) differs from the one it was last written with: an archive of
        years costs one light query, not years of rendering.
        """
        # day -> (published, source, "id updated") of each entry published that day
        days: dict[date, list[tuple[datetime, str, str]]] = {}
        if self.slugs:
            marks = ",".join("?" * len(self.slugs))
            rows = self.store.db.query(
                "select id, source, published, updated, content_hash from entries"
                f" where source in ({marks})"
                " order by published desc, id",
                self.slugs,
            )
            for row in rows:
                if row["id"] in self.excluded:
                    continue
                published = from_iso(row["published"])
                assert published is not None  # NOT NULL column
                day = published.astimezone(self.zone).date()
                days.setdefault(day, []).append(
                    (
                        published,
                        row["source"],
                        f"{row['id']} {row['updated']} {row['content_hash']}",
                    )
                )
        ordered = sorted(days, reverse=True)
        fingerprint = self.fingerprint
        settings = self.config.settings
        window = timedelta(seconds=settings.crosspost_window)
        output = self.config.settings.output
        _remove_stale_days(output, {day_path(day) + "index.html" for day in ordered})
        for i, day in enumerate(ordered):
            newer = ordered[i - 1] if i > 0 else None
            older = ordered[i + 1] if i + 1 < len(ordered) else None
            path = day_path(day) + "index.html"
            signature = hashlib.sha256(
                "\n".join(
                    [
                        fingerprint,
                        str(newer),
                        str(older),
                        *self._day_marks(days, day, window, settings.page.shared_links),
                    ]
                ).encode()
            ).hexdigest()
            if _existing_signature(output / path) == signature:
                self.skipped += 1
                continue
            start, end = self._day_bounds(day)
            entries = self.posts(
                self.slugs, since=start, until=end, shared=settings.page.shared_links
            )
            text = self.render_page(
                path,
                "day.html",
                groups=group_by_day(self.views(entries)),
                day=day,
                label=day_label(day),
                newer=(day_path(newer), day_label(newer)) if newer else None,
                older=(day_path(older), day_label(older)) if older else None,
                nav="archive",
            )
            self.put(path, text + f"<!-- signature:{signature} -->\n")
        months: dict[tuple[int, int], list[dict[str, object]]] = {}
        for day in ordered:
            months.setdefault((day.year, day.month), []).append(
                {"day": day, "href": day_path(day), "count": len(days[day])}
            )
        listing = [
            {"label": f"{date(y, m, 1):%B %Y}", "days": members}
            for (y, m), members in months.items()
        ]
        self.page("archive/index.html", "archive.html", months=listing, nav="archive")

    def _day_bounds(self, day: date) -> tuple[datetime, datetime]:
        """A local day as a UTC half-open interval."""
        start = datetime.combine(day, time(0), tzinfo=self.zone).astimezone(UTC)
        end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=self.zone)
        return start, end.astimezone(UTC)

    def _day_marks(
        self,
        days: dict[date, list[tuple[datetime, str, str]]],
        day: date,
        window: timedelta,
        shared: bool,
    ) -> list[str]:
        """What a day page shows depends on: its entries, and (issue 7) the entries
        within a cross-post window of it, from the same campaigners (any campaigner
        with shared links), whose versions may merge with them."""
        own = days[day]
        sources = {source for _, source, _ in own}
        start, end = self._day_bounds(day)
        out = [mark for _, _, mark in own]
        reach = -(-int(window.total_seconds()) // 86400)
        for offset in (*range(-reach, 0), *range(1, reach + 1)):
            for published, source, mark in days.get(day + timedelta(days=offset), []):
                near = start - window <= published < end + window
                if near and (shared or source in sources):
                    out.append(mark)
        return out

    def health(self) -> None:
        names = {s.slug: s.name for s in self.config.sources}
        order = {s.slug: i for i, s in enumerate(self.config.sources)}
        feeds = []
        for status in sorted(self.statuses, key=lambda s: (order.get(s.source, 0), s.key)):
            feeds.append(
                {
                    "status": status,
                    "name": names.get(status.source, status.source),
                    "platform": PLATFORM_LABELS.get(status.platform, status.platform),
                    "last_success": self.local(status.last_success),
                    "last_error_at": self.local(status.last_error_at),
                    "failing_since": self.local(status.failing_since),
                }
            )
        failing = sum(1 for s in self.statuses if s.last_error is not None)
        self.page("health.html", "health.html", feeds=feeds, failing=failing, nav="health")

    def local(self, moment: datetime | None) -> str | None:
        if moment is None:
            return None
        local = moment.astimezone(self.zone)
        return f"{local:%a} {local.day} {local:%b %Y}, {local:%H:%M} {local:%Z}"

    def static_files(self) -> None:
        for name in ("style.css", "favicon.svg"):
            self.put(name, self.renderer.static(name))


def build(config: Config, store: Store, *, now: datetime | None = None) -> BuildReport:
    """Write every feed, page and the OPML list into the output folder.

    Files whose content is unchanged are not rewritten (`BuildReport.written`
    lists only those that were), so a rebuild with nothing new writes nothing.
    `now` decides which days the front page shows; nothing else depends on it.
    """
    now = now or datetime.now(UTC)
    state_file = _state_file(config)
    # Read the code and templates once: the whole build's state and every page
    # signature start from it.
    fingerprint = Renderer(config).fingerprint()
    state = _build_state(config, store, now, fingerprint)
    last = _last_build(state_file, config.settings.output)
    if last is not None and last.get("state") == state:
        # Nothing a build reads has changed since the last one (issue 8).
        return BuildReport((), int(last["files"]), int(last["entries"]))
    previous = last.get("signatures") if last is not None else None
    _remove_leftover_staged(config.settings.output)
    site = _Site(
        config,
        store,
        now,
        fingerprint,
        previous=previous if isinstance(previous, dict) else {},
    )
    try:
        count = site.build_feeds()
        site.front_page()
        site.source_pages()
        site.tag_pages()
        site.archive()
        site.health()
        site.static_files()
    except BaseException:
        _discard(site.staged)
        raise
    _commit(site.staged)
    written = [target for _, target in site.staged]
    unchanged = site.skipped + site.identical
    record = {
        "state": state,
        "files": len(written) + unchanged,
        "entries": count,
        "paths": sorted({*site.paths, *site.kept}),
        "signatures": site.signatures,
    }
    write_atomic(state_file, json.dumps(record))
    return BuildReport(tuple(written), unchanged, count)


def _state_file(config: Config) -> Path:
    """Where the last build's state is kept: beside the database, not in the published folder."""
    database = config.settings.database
    return database.with_name(database.name + ".build-state.json")


def _last_build(path: Path, output: Path) -> dict[str, Any] | None:
    """What the last build recorded, if every file it wrote is still in `output`."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or not isinstance(record.get("paths"), list):
        return None
    if not all((output / name).is_file() for name in record["paths"]):
        return None
    return record


def _build_state(config: Config, store: Store, now: datetime, fingerprint: str) -> str:
    """A hash of everything a build reads; equal hashes mean equal output.

    The code, templates and config (`fingerprint`, `Renderer.fingerprint`); the output
    folder's path and whether the digest archive exists (the front page links
    it); the local day and how many entries are published before now + 1 day
    (the front page's window); and every row of every table, where entries count
    by their content hash instead of their (large) content and summary.  Reading
    100,000 entries' small columns takes a fraction of a second, against minutes
    to render them.
    """
    digest = hashlib.sha256()
    digest.update(fingerprint.encode())
    output = config.settings.output
    zone = ZoneInfo(config.settings.timezone)
    digest.update(f"{output.resolve()}|{(output / 'digest' / 'index.html').exists()}".encode())
    digest.update(now.astimezone(zone).date().isoformat().encode())
    db = store.db
    tables = [
        row[0]
        for row in db.execute("select name from sqlite_master where type = 'table' order by name")
    ]
    for table in tables:
        if table.startswith("sqlite_"):
            continue
        columns = [row[1] for row in db.execute(f"pragma table_info([{table}])")]
        if table == "entries":
            window = db.execute(
                "select count(*) from entries where published < ?",
                [(now + timedelta(days=1)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")],
            ).fetchone()[0]
            digest.update(f"window {window}".encode())
            if "content_hash" in columns:
                columns = [c for c in columns if c not in ("content", "summary")]
        digest.update(f"table {table} {columns}".encode())
        names = ", ".join(f"[{c}]" for c in columns)
        for row in db.execute(f"select {names} from [{table}] order by rowid"):
            digest.update(repr(row).encode())
    return digest.hexdigest()
