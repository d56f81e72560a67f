"""Managing sources from the command line (issue 7): `add`, `import` and `export`.

    aggregator add URL [--name N] [--tag T]   a profile or blog address -> a new source
    aggregator import subscriptions.opml       a feed reader's list -> new sources
    aggregator export [-o FILE]                the configured feeds -> OPML 2.0

What `add` writes for each kind of address:

    https://mastodon.example/@name          mastodon: "@name@mastodon.example"   (no fetch)
    https://bsky.app/profile/name.example   bluesky: name.example                (no fetch)
    https://www.youtube.com/channel/UC...   youtube: UC...                        (no fetch)
    https://www.youtube.com/@handle         youtube: https://www.youtube.com/@handle
    https://www.threads.net/@name (TikTok, Instagram, X)   links: [...]  (no public feed)
    anything else                           url: the feed itself, or the feed the page
                                            names in <link rel="alternate"> (fetched)

feeds.yaml is edited with ruamel.yaml's round-trip mode, so its comments, quotes
and layout stay as the organiser wrote them.  Before anything is written the
result is checked twice: it must differ from the old file only by added lines
(otherwise we refuse and print the entry to paste by hand), and the whole new
file must pass `aggregator check`.  Then it replaces the old one in one rename.

What this module does not do: decide how a feed is fetched or parsed (fetch.py,
parse.py), or know platforms' URL rules (sources.py).
"""

from __future__ import annotations

import difflib
import io
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from lxml import etree
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.util import load_yaml_guess_indent

from . import sources, syndication
from .config import load_config
from .errors import AggregatorError, ConfigError, ParseError
from .fetch import fetch_all, user_agent
from .models import PLATFORM_LABELS, Config, Fetched, FetchFailed, FetchRequest, Source
from .parse import discover_feed_links, parse_feed
from .store import Store

__all__ = [
    "AddReport",
    "Found",
    "ImportReport",
    "ManageError",
    "add_source",
    "classify",
    "export_opml",
    "import_opml",
]

FoundKind = Literal["url", "mastodon", "mastodon_tag", "bluesky", "youtube", "links"]

# Hosts whose /@name pages are not Mastodon profiles.
_NOT_MASTODON = frozenset({"medium.com", "youtube.com", "substack.com", "tiktok.com"})
_MASTODON_PROFILE = re.compile(r"/(?:@|users/)(?P<user>[A-Za-z0-9_]+(?:[.-]+[A-Za-z0-9_]+)*)/?")
_MASTODON_TAG = re.compile(r"/tags/(?P<tag>[^\W]+)/?")
_BLUESKY_PROFILE = re.compile(r"/profile/(?P<actor>[^/]+)/?")
_YOUTUBE_HOSTS = frozenset({"youtube.com", "www.youtube.com", "m.youtube.com"})
_DISCOVERED_TRIED = 3  # feeds a page names that we try, in its order


class ManageError(AggregatorError):
    """add/import could not do what was asked; feeds.yaml is unchanged."""


@dataclass(frozen=True)
class Found:
    """What `add` will write for an address: one feed (`kind: value`) or a profile link."""

    kind: FoundKind
    value: str
    name: str | None  # a name to suggest when --name is not given
    description: str  # plain words for the report: "the Mastodon account @a@b"
    others: tuple[str, ...] = ()  # more feeds the page named, not added


def _host(url: str) -> str:
    return (urlsplit(url).hostname or "").lower().removeprefix("www.").removeprefix("m.")


def classify(url: str) -> Found | None:
    """The platform address shapes that need no fetch; None for a page to load and read.

    Pure: Mastodon, Bluesky and YouTube addresses are mapped to feeds.yaml's
    shorthands by their shape alone, and platforms without public feeds become
    profile links.  Raises ManageError for something that is not a web address.
    """
    try:
        url = sources.http_url(url)
    except ValueError as exc:
        raise ManageError(f"Cannot add {url!r}: {exc}.") from None
    platform = sources.no_feed_platform(url)
    if platform is not None:
        return Found(
            "links",
            url,
            None,
            f"a {platform} profile. {platform} has no public feed, so it is added as a "
            "profile link only: shown in the directory, never read",
        )
    parts = urlsplit(url)
    host = _host(url)
    path = unquote(parts.path)
    if host == "bsky.app":
        match = _BLUESKY_PROFILE.fullmatch(path)
        if match is None:
            raise ManageError(
                f"{url} is a Bluesky address but not a profile. Give the profile's address, "
                "like https://bsky.app/profile/YOUR-HANDLE.bsky.social"
            )
        try:
            sources.bluesky_feed(url)
        except ValueError as exc:
            raise ManageError(f"Cannot add {url}: {exc}.") from None
        handle = match["actor"].removeprefix("@").lower()
        return Found("bluesky", handle, handle, f"the Bluesky account {handle}")
    if (parts.hostname or "").lower() in _YOUTUBE_HOSTS:
        try:
            feed = sources.youtube_feed(url)
        except ValueError as exc:
            raise ManageError(f"Cannot add {url}: {exc}.") from None
        channel = re.search(r"channel_id=(UC[A-Za-z0-9_-]{22})", feed)
        value = channel[1] if channel else feed
        handle = re.search(r"/(@[^/?#]+)", value)
        name = handle[1] if handle else f"YouTube channel {value}"
        return Found("youtube", value, name, f"the YouTube channel {value}")
    if host not in _NOT_MASTODON and not parts.query:
        match = _MASTODON_PROFILE.fullmatch(path.removesuffix(".rss"))
        if match:
            account = f"@{match['user']}@{(parts.hostname or '').lower()}"
            return Found("mastodon", account, account, f"the Mastodon account {account}")
        match = _MASTODON_TAG.fullmatch(path.removesuffix(".rss"))
        if match:
            tag = f"#{match['tag']}@{(parts.hostname or '').lower()}"
            return Found("mastodon_tag", tag, tag, f"the Mastodon hashtag {tag}")
    return None


def discover(url: str, config: Config) -> Found:
    """Load `url`: a feed is added as it is; a page, by the first feed it names that works.

    Raises ManageError, in plain words, when the address cannot be loaded or
    names no feed that can be read.
    """
    settings = config.settings
    agent = user_agent(settings.user_agent, settings.base_url)
    url = sources.http_url(url)

    def load(address: str) -> Fetched:
        [result] = fetch_all([FetchRequest(address, address)], settings.fetch, agent)
        if isinstance(result, FetchFailed):
            raise ManageError(f"Could not load {address}: {result.error.message}")
        assert isinstance(result, Fetched)  # no validators were sent, so never a 304
        return result

    page = load(url)
    now = datetime.now(UTC)
    try:
        parsed = parse_feed(page.body, url=page.final_url, content_type=page.content_type, now=now)
        return Found("url", page.permanent_redirect or url, parsed.title, f"the feed {url}")
    except ParseError as exc:
        if exc.info.kind != "not_a_feed":
            raise ManageError(f"{url} is not a feed we can read: {exc.info.message}") from exc
    links = discover_feed_links(page.body, page.final_url)
    problems: list[str] = []
    for index, link in enumerate(links[:_DISCOVERED_TRIED]):
        try:
            found = load(link)
            parsed = parse_feed(
                found.body, url=found.final_url, content_type=found.content_type, now=now
            )
        except ManageError as exc:
            problems.append(str(exc))
            continue
        except ParseError as exc:
            problems.append(f"{link}: {exc.info.message}")
            continue
        return Found(
            "url",
            link,
            parsed.title,
            f"the feed {link}, which the page {url} names",
            tuple(links[index + 1 :]),
        )
    if problems:
        raise ManageError(
            f"The page {url} names feeds, but none could be read:\n  "
            + "\n  ".join(problems)
            + "\nCheck the address, or add the feed's own address with `aggregator add FEED_URL`."
        )
    raise ManageError(
        f"The page {url} does not say where its feed is (it has no "
        '<link rel="alternate"> to an RSS, Atom or JSON feed). Look for an RSS or "Subscribe" '
        "link on the site and add that address instead; if the site has no feed, add it to a "
        "source's links: in feeds.yaml by hand."
    )


# --------------------------------------------------------------------------- feeds.yaml edits


def _flow(items: Sequence[str]) -> CommentedSeq:
    seq = CommentedSeq(items)
    seq.fa.set_flow_style()
    return seq


def _entry(found: Found, name: str, tags: Sequence[str]) -> CommentedMap:
    item = CommentedMap()
    item["name"] = name
    if tags:
        item["tags"] = _flow(list(tags))
    if found.kind == "links":
        item["links"] = CommentedSeq([found.value])
    else:
        item[found.kind] = found.value
    return item


def _yaml(text: str) -> YAML:
    """A round-trip YAML set up to write the file back as it was laid out."""
    _, indent, block_seq_indent = load_yaml_guess_indent(text)
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap an organiser's long lines
    mapping = 2 if indent is None else max(2, indent - (block_seq_indent or 0))
    offset = block_seq_indent or 0
    yaml.indent(mapping=mapping, sequence=mapping + offset, offset=offset)
    return yaml


def append_sources(path: Path, items: Sequence[CommentedMap]) -> str:
    """Append `items` to `sources:` in feeds.yaml, keeping everything else byte for byte.

    Returns the added text.  First a ruamel.yaml round trip of the whole file;
    if that would rewrite any existing line (a file indented in two styles, a
    `sources: []`), the new entries are written by ruamel alone, in the list's
    own indentation, and put in as text at the end of the `sources:` list.
    Raises ConfigError (file unchanged) when the result would not pass
    `aggregator check`.
    """
    raw = path.read_bytes()
    bom = raw.startswith(b"\xef\xbb\xbf")
    text = raw.decode("utf-8-sig")
    if text and not text.endswith("\n"):
        text += "\n"  # the one change allowed: a last line gets its newline
    yaml = _yaml(text)
    try:
        document = yaml.load(text)
    except YAMLError as exc:  # load_config already read it; this is belt and braces
        raise ManageError(f"{path} could not be read as YAML: {exc}") from exc
    if not isinstance(document, CommentedMap):
        raise ManageError(f"{path} has no settings:/sources: sections; run `aggregator check`.")
    added = _round_trip(yaml, document, text, items)
    if added is not None:
        new_text, snippet = added
    else:
        new_text, snippet = _insert_as_text(text, items)
    _write_checked(path, new_text, bom)
    return snippet


def _round_trip(
    yaml: YAML, document: CommentedMap, text: str, items: Sequence[CommentedMap]
) -> tuple[str, str] | None:
    """(new file, added text) by a whole-file round trip, or None if it touched other lines."""
    existing = document.get("sources")
    if not isinstance(existing, CommentedSeq) or not existing:
        return None
    for item in items:
        existing.append(item)
    out = io.StringIO()
    yaml.dump(document, out)
    new_text = out.getvalue()
    old_lines = text.splitlines(keepends=True)
    new_lines = new_text.splitlines(keepends=True)
    matcher = difflib.SequenceMatcher(a=old_lines, b=new_lines, autojunk=False)
    added: list[str] = []
    for op, _a1, _a2, b1, b2 in matcher.get_opcodes():
        if op == "insert":
            added.extend(new_lines[b1:b2])
        elif op != "equal":
            return None
    return new_text, "".join(added)


_TOP_LEVEL = re.compile(r"[^\s#-][^:]*:(?:\s|$)")
_SOURCES_LINE = re.compile(r"sources:[ \t]*(?:\[[ \t]*\]|null|~)?[ \t]*(#.*)?\n?")


def _insert_as_text(text: str, items: Sequence[CommentedMap]) -> tuple[str, str]:
    """Put `items`, dumped by ruamel, as text at the end of the `sources:` list."""
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.startswith("sources:")), None)
    if start is None:  # no sources: at all; the list goes at the end of the file
        lines.append("sources:\n")
        start = len(lines) - 1
    # The list ends where the next top-level key starts (its own comments stay with it).
    end = next((i for i in range(start + 1, len(lines)) if _TOP_LEVEL.match(lines[i])), len(lines))
    while end > start + 1 and (not lines[end - 1].strip() or lines[end - 1].startswith("#")):
        end -= 1
    dash, content = 2, 4  # a new list: the bundled file's style
    for line in lines[start + 1 : end]:
        stripped = line.lstrip(" ")
        if stripped.startswith("- "):
            dash = len(line) - len(stripped)
            content = dash + 2 + (len(stripped[2:]) - len(stripped[2:].lstrip(" ")))
            break
    yaml = YAML(typ="rt")
    yaml.width = 4096
    yaml.indent(mapping=max(2, content - dash), sequence=content, offset=dash)
    out = io.StringIO()
    yaml.dump(CommentedMap(sources=CommentedSeq(items)), out)
    snippet = out.getvalue().split("\n", 1)[1]
    if _SOURCES_LINE.fullmatch(lines[start]) and "[" in lines[start]:
        lines[start] = "sources:\n"  # `sources: []` becomes a block list
    lines[end:end] = [snippet]
    return "".join(lines), snippet


def _write_checked(path: Path, text: str, bom: bool) -> None:
    """Write `text` next to `path`, check it as feeds.yaml, then rename it into place."""
    folder = path.absolute().parent
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".yaml")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
        try:
            load_config(Path(tmp))
        except ConfigError as exc:
            # Name the real file in the problems, not the temporary one.
            raise ConfigError(str(path), exc.problems) from None
        os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------- add


@dataclass(frozen=True)
class AddReport:
    name: str
    found: Found
    added_text: str
    named_by_us: bool  # no --name was given


def _feed_url(kind: FoundKind, value: str) -> str | None:
    if kind == "links":
        return None
    return sources.resolve(kind, value).url


def _duplicate(config: Config, found: Found, given: str) -> str | None:
    """Which existing source already has this feed or link, in plain words, or None."""
    url = _feed_url(found.kind, found.value)
    candidates = {given.rstrip("/"), *(u.rstrip("/") for u in (url,) if u)}
    for source in config.sources:
        for spec in source.feeds:
            if spec.key.rstrip("/") in candidates or spec.url.rstrip("/") in candidates:
                return f"source '{source.name}'{_at(source)} already has the feed {spec.key}"
        for link in source.links:
            if link.url.rstrip("/") in candidates:
                return f"source '{source.name}'{_at(source)} already has the link {link.url}"
    return None


def _duplicate_url(config: Config, given: str) -> str | None:
    return _duplicate(config, Found("links", given, None, ""), given)


def _at(source: Source) -> str:
    return f" (line {source.position.line})" if source.position else ""


def _check_name(config: Config, name: str) -> None:
    slug = sources.slugify(name)
    if not slug:
        raise ManageError(
            f"The name '{name}' needs at least one letter A-Z or digit, so it can be part of a "
            "web address; give another with --name."
        )
    for source in config.sources:
        if source.slug == slug:
            raise ManageError(
                f"There is already a source called '{source.name}'{_at(source)}; give this one "
                "another name with --name."
            )


def add_source(
    path: Path,
    url: str,
    *,
    name: str | None = None,
    tags: Sequence[str] = (),
    found: Found | None = None,
) -> AddReport:
    """Add the campaigner at `url` to feeds.yaml as a new source (see the module docstring).

    `found` skips discovery (for callers that already know the feed).  Raises
    ConfigError when feeds.yaml is wrong before or would be wrong after, and
    ManageError for a duplicate, an address with no feed, or a fetch failure.
    """
    config = load_config(path)
    found = found or classify(url)
    given = sources.http_url(url)
    # An address already followed is refused before anything is fetched.
    duplicate = _duplicate(config, found, given) if found else _duplicate_url(config, given)
    if found is None and duplicate is None:
        found = discover(url, config)
        duplicate = _duplicate(config, found, given)
    if duplicate:
        raise ManageError(f"{url} is already in {path.name}: {duplicate}. Nothing was added.")
    assert found is not None
    chosen = (name or "").strip() or (found.name or "").strip() or _host(url) or url
    _check_name(config, chosen)
    text = append_sources(path, [_entry(found, chosen, tags)])
    return AddReport(chosen, found, text, named_by_us=not name)


# --------------------------------------------------------------------------- import / export


@dataclass
class ImportReport:
    added: list[str] = field(default_factory=list)  # names of new sources
    skipped: list[str] = field(default_factory=list)  # plain-words reasons
    added_text: str = ""


@dataclass(frozen=True)
class _OpmlFeed:
    title: str
    url: str
    folder: str | None


def _read_opml(path: Path) -> list[_OpmlFeed]:
    """Every outline with an xmlUrl, with the folder (parent outline) it is in."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ManageError(f"Cannot read {path}: {exc.strerror or exc}.") from exc
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise ManageError(
            f"{path} is not an OPML file (it is not valid XML: {exc.msg}, line {exc.lineno}). "
            "Export the subscription list from your feed reader as OPML and try again."
        ) from exc
    if etree.QName(root).localname != "opml":
        raise ManageError(f"{path} is XML but not OPML (it should start with <opml>).")
    feeds = []
    for outline in root.iter("outline"):
        url = (outline.get("xmlUrl") or outline.get("xmlurl") or "").strip()
        if not url:
            continue
        title = (outline.get("text") or outline.get("title") or "").strip()
        parent = outline.getparent()
        folder = None
        if parent is not None and parent.tag == "outline" and not parent.get("xmlUrl"):
            folder = (parent.get("text") or parent.get("title") or "").strip() or None
        feeds.append(_OpmlFeed(title or _host(url) or url, url, folder))
    return feeds


def import_opml(path: Path, opml_path: Path) -> ImportReport:
    """Add every feed of an OPML file as a source, skipping those already in feeds.yaml.

    A folder becomes the sources' tag.  A folder whose feeds are titled
    "Folder (Platform)", as `aggregator export` writes them, becomes one source
    with several feeds, so lists move between aggregators unchanged.
    """
    config = load_config(path)
    report = ImportReport()
    known = {spec.key.rstrip("/") for spec in config.feeds()}
    slugs = {s.slug for s in config.sources}
    groups: dict[str, list[_OpmlFeed]] = {}
    for feed in _read_opml(opml_path):
        folder = feed.folder
        own = folder is not None and feed.title.startswith(f"{folder} (")
        key = f"source:{folder}" if own else f"feed:{feed.url}:{len(groups)}"
        groups.setdefault(key, []).append(feed)
    items: list[CommentedMap] = []
    for key, members in groups.items():
        first = members[0]
        grouped = key.startswith("source:")
        name = first.folder if grouped and first.folder else first.title
        urls: list[str] = []
        for feed in members:
            try:
                url = sources.url_feed(feed.url)
            except ValueError as exc:
                report.skipped.append(f"'{feed.title}': {exc}")
                continue
            if url.rstrip("/") in known:
                report.skipped.append(f"'{feed.title}': {url} is already in {path.name}")
                continue
            known.add(url.rstrip("/"))
            urls.append(url)
        if not urls:
            continue
        slug = sources.slugify(name)
        if not slug or slug in slugs:
            name = f"{name} ({_host(urls[0])})"
            slug = sources.slugify(name)
        if not slug or slug in slugs:
            report.skipped.append(f"'{first.title}': a source with this name already exists")
            continue
        slugs.add(slug)
        item = CommentedMap()
        item["name"] = name
        tag = sources.slugify(first.folder) if first.folder and not grouped else ""
        if tag:
            item["tags"] = _flow([tag])
        if len(urls) == 1:
            item["url"] = urls[0]
        else:
            item["feeds"] = CommentedSeq([CommentedMap(url=u) for u in urls])
        items.append(item)
        report.added.append(name)
    if items:
        report.added_text = append_sources(path, items)
    return report


def export_opml(config: Config) -> str:
    """OPML 2.0 of every configured feed, grouped by campaigner (syndication.opml, as the build).

    Where the database already knows better (a feed found on a page, a site
    that moved) its address is used; the database is only read, never created.
    """
    current: dict[str, str] = {}
    pages: dict[str, str | None] = {}
    if config.settings.database.exists():
        with Store.open(config.settings.database) as store:
            for row in store.db.query("select key, url, site_link from feeds"):
                current[row["key"]] = row["url"]
                pages[row["key"]] = row["site_link"]
    groups = []
    for source in config.sources:
        feeds = tuple(
            syndication.OpmlFeed(
                title=f"{source.name} ({PLATFORM_LABELS.get(spec.platform, spec.platform)})",
                xml_url=current.get(spec.key, spec.url),
                html_url=pages.get(spec.key),
            )
            for spec in source.feeds
        )
        groups.append(syndication.OpmlGroup(source.name, feeds))
    settings = config.settings
    return syndication.opml(
        f"{settings.title}: every campaigner's own feeds", groups, owner_url=settings.base_url
    )
