"""Stored entries -> the published files: Atom feed and web page.

Rendering is pure (values in, strings out) until `write_atomic`, which replaces
each file in one rename so a reader never sees half a page.  Entry HTML was
sanitised before it was stored (sanitize.py); templates run with autoescape on
and mark nothing safe except that stored, sanitised content.

Templates come from the package's `templates/` folder; `settings.templates`
may name an organiser's folder whose files override any of them (theming).
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urljoin
from zoneinfo import ZoneInfo

import jinja2
from markupsafe import Markup

from .errors import OutputError
from .models import PLATFORM_LABELS, Config, Source, StoredEntry
from .resources import resource_dir
from .store import Store

# Characters XML 1.0 forbids; a feed that contains one is rejected by every reader.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_AUTOESCAPE = ("html", "htm", "xml", "atom", "rss", "opml")


def xml_safe(text: str | None) -> str:
    return _XML_INVALID.sub("", text or "")


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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


@dataclass(frozen=True)
class EntryView:
    """An entry with what templates need beside it: who posted it, where, when locally."""

    entry: StoredEntry
    source: Source | None
    author_name: str
    platform_label: str
    local_published: datetime

    @property
    def content_html(self) -> Markup:
        # Sanitised by sanitize.sanitize_html before it was stored: the one door.
        return Markup(xml_safe(self.entry.content))

    @property
    def atom_id(self) -> str:
        return f"urn:uuid:{self.entry.id}"


def entry_views(entries: Iterable[StoredEntry], config: Config) -> list[EntryView]:
    zone = ZoneInfo(config.settings.timezone)
    sources = {s.slug: s for s in config.sources}
    views = []
    for entry in entries:
        source = sources.get(entry.source)
        views.append(
            EntryView(
                entry=entry,
                source=source,
                author_name=source.name if source else (entry.author or entry.source),
                platform_label=PLATFORM_LABELS.get(entry.platform, entry.platform),
                local_published=entry.published.astimezone(zone),
            )
        )
    return views


class Renderer:
    """Renders templates for one config; pure apart from reading templates."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.env = environment(config.settings.templates)

    def url(self, path: str) -> str:
        return urljoin(self.config.settings.base_url, path)

    def render(self, template: str, **context: object) -> str:
        settings = self.config.settings
        return self.env.get_template(template).render(
            settings=settings, config=self.config, url=self.url, **context
        )

    def atom(
        self,
        views: Sequence[EntryView],
        *,
        path: str,
        title: str,
        alternate: str,
        now: datetime,
    ) -> str:
        updated = max((v.entry.updated for v in views), default=now)
        return self.render(
            "feed.atom",
            entries=views,
            title=title,
            self_url=self.url(path),
            alternate_url=self.url(alternate),
            feed_id=self.url(path),
            updated=updated,
        )


def write_atomic(path: Path, content: str | bytes) -> bool:
    """Replace `path` in one rename; return False when it already held exactly this.

    Skipping identical files keeps unchanged builds cheap and keeps the files'
    modification times (and so HTTP caches) honest.
    """
    data = content.encode("utf-8") if isinstance(content, str) else content
    try:
        if path.exists() and path.read_bytes() == data:
            return False
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise OutputError(
            f"Could not write {path}: {exc.strerror or exc}. Check that `settings.output` in "
            "feeds.yaml points to a folder this user can write; the previous files are unchanged."
        ) from exc
    return True


@dataclass(frozen=True)
class BuildReport:
    written: tuple[Path, ...]
    unchanged: int
    entries: int


def build(config: Config, store: Store, *, now: datetime | None = None) -> BuildReport:
    """Write the combined feed and the web page into the output folder."""
    now = now or datetime.now(UTC)
    settings = config.settings
    renderer = Renderer(config)
    slugs = [s.slug for s in config.sources]
    entries = store.entries(sources=slugs, limit=settings.feed_length) if slugs else []
    views = entry_views(entries, config)
    outputs = {
        "feed.atom": renderer.atom(
            views, path="feed.atom", title=settings.title, alternate="", now=now
        ),
        "index.html": renderer.render("index.html", entries=views, now=now),
    }
    written: list[Path] = []
    unchanged = 0
    for name, text in outputs.items():
        target = settings.output / name
        if write_atomic(target, text):
            written.append(target)
        else:
            unchanged += 1
    return BuildReport(tuple(written), unchanged, len(entries))
