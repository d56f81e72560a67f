"""feeds.yaml -> a frozen Config, or a ConfigError listing every problem at once.

This is the only module that reads YAML.  It checks the *shape* of the file (which
keys are allowed where, what type each value is, that paths and intervals make
sense) and hands each feed shorthand to sources.py, which knows the platforms.  It
holds no business logic: nothing here decides what to fetch, when, or how.

Why collect every problem instead of stopping at the first: an organiser editing
feeds.yaml by hand should be able to fix everything in one pass.  Each problem
carries the line and column ruamel.yaml recorded while round-trip loading (its
``.lc`` positions are 0-based; ours are 1-based, as editors count), so messages read
``feeds.yaml:12:5: unknown key 'mastadon' in source 'Keep Our NHS Public' — did you
mean 'mastodon'?``.

Why hand-written checks rather than pydantic: pydantic is not a dependency of the
project, its messages are written for engineers, and its error locations are key
paths that would still have to be mapped back to ruamel positions.  The checks here
are a table per mapping (``_SETTINGS``, ``_FETCH``) plus small parsers.

Relative paths (database, output, templates) are resolved against the folder the
config file is in, so the aggregator behaves the same whatever directory cron or
systemd starts it from.
"""

from __future__ import annotations

import difflib
import email.utils
import os
import re
import zoneinfo
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any, cast, get_args
from urllib.parse import urlsplit

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from . import sources
from .errors import ConfigError, ConfigProblem
from .models import (
    Config,
    DigestSettings,
    FeedKind,
    FeedSpec,
    FetchLimits,
    FilterRules,
    PageSettings,
    Pinned,
    Platform,
    Position,
    ProfileLink,
    Settings,
    SmtpSettings,
    Source,
)

__all__ = [
    "DEFAULT_PATH",
    "ENV_VAR",
    "config_path",
    "format_interval",
    "load_config",
    "parse_duration",
    "parse_interval",
    "parse_size",
]

#: The environment variable that names the config file when -c/--config is not given.
ENV_VAR = "AGGREGATOR_CONFIG"
#: Where the config file is looked for last: the current directory.
DEFAULT_PATH = Path("feeds.yaml")

MIN_INTERVAL = 60  # seconds: polling more often than this is unkind to servers


def config_path(cli_value: str | None) -> Path:
    """Which config file to use: ``-c/--config``, else $AGGREGATOR_CONFIG, else ./feeds.yaml."""
    if cli_value:
        return Path(cli_value)
    env_value = os.environ.get(ENV_VAR, "").strip()
    if env_value:
        return Path(env_value)
    return DEFAULT_PATH


# --------------------------------------------------------------------------- value parsers
# Each takes a value as YAML gave it and returns the typed value, or raises ValueError
# with a message an organiser can act on.  They know nothing about positions.


def _describe(value: object) -> str:
    """Name a YAML value's type in plain words, for "should be X, but it is Y"."""
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return f"yes/no ({str(value).lower()})"
    if isinstance(value, int | float):
        return f"a number ({value})"
    if isinstance(value, str):
        return f'text ("{value}")'
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a set of key: value pairs"
    return type(value).__name__


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"should be text, but it is {_describe(value)}")
    return value.strip()


def _nonempty_text(value: object) -> str:
    text = _text(value)
    if not text:
        raise ValueError("is empty; write some text or remove the line")
    return text


_INTERVAL = re.compile(
    r"(?:(?P<d>\d+)\s*d)?\s*(?:(?P<h>\d+)\s*h)?\s*(?:(?P<m>\d+)\s*m)?\s*(?:(?P<s>\d+)\s*s)?",
    re.IGNORECASE,
)
_INTERVAL_EXAMPLES = "for example 30m, 2h, 90s, 1d or 1h30m"


def parse_interval(value: object) -> int:
    """An interval as written in feeds.yaml -> whole seconds, at least one minute.

    Accepts ``30m``, ``2h``, ``90s``, ``1d``, ``1h30m`` (units in that order, any case)
    or a whole number of seconds.  A bare number in quotes is refused because
    organisers often mean minutes by it.
    """
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(
            f"should be a time interval ({_INTERVAL_EXAMPLES}), but it is {_describe(value)}"
        )
    if isinstance(value, int):
        seconds = value
    else:
        match = _INTERVAL.fullmatch(value.strip())
        if not value.strip() or match is None:
            raise ValueError(
                f'"{value}" is not a time interval. Write a number and a unit '
                f"(d, h, m or s), {_INTERVAL_EXAMPLES}"
            )
        units = {"d": 86400, "h": 3600, "m": 60, "s": 1}
        seconds = sum(int(match[u] or 0) * mult for u, mult in units.items())
    if seconds < MIN_INTERVAL:
        raise ValueError(
            f"{value!s} is too often: the shortest interval allowed is 1m (one minute), "
            "so that the sites we read are not overloaded"
        )
    return seconds


def parse_duration(value: str | int) -> int:
    """The same rules as parse_interval, under the name the CLI's ``--threshold`` uses."""
    return parse_interval(value)


def format_interval(seconds: int) -> str:
    """Seconds -> the shortest feeds.yaml spelling (5400 -> ``1h30m``), for messages.

    The inverse of parse_interval, so what we print can be pasted back into the file.
    """
    if seconds <= 0:
        return "0s"
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


_SIZE = re.compile(r"(?P<n>\d+(?:\.\d+)?)\s*(?P<unit>[KMG]i?B|B)?", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3}


def parse_size(value: object) -> int:
    """A size (``10MB``, ``500KB``, ``1.5MB`` or a whole number of bytes) -> bytes.

    KB/MB/GB are counted in 1024s, as the FetchLimits default (10 * 1024 * 1024) is.
    """
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"should be a size such as 10MB or 500KB, but it is {_describe(value)}")
    if isinstance(value, int):
        size = value
    else:
        match = _SIZE.fullmatch(value.strip())
        if match is None:
            raise ValueError(f'"{value}" is not a size. Write it like 10MB, 500KB or 2GB')
        unit = (match["unit"] or "").lower().replace("ib", "b")
        size = int(float(match["n"]) * _SIZE_UNITS[unit])
    if size < 1:
        raise ValueError(f"{value!s} is too small; write a size such as 10MB")
    return size


def _int_between(low: int, high: int) -> Callable[[object], int]:
    def parse(value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(
                f"should be a whole number from {low} to {high}, but it is {_describe(value)}"
            )
        if not low <= value <= high:
            raise ValueError(f"{value} is out of range; use a whole number from {low} to {high}")
        return value

    return parse


def _seconds(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"should be a number of seconds, such as 20, but it is {_describe(value)}")
    if not 0 < value <= 3600:
        raise ValueError(f"{value} is out of range; use a number of seconds from 1 to 3600")
    return float(value)


def _base_url(value: object) -> str:
    url = sources.http_url(_nonempty_text(value), "https://campaign.example/news/")
    return url if url.endswith("/") else url + "/"


_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def _contact(value: object) -> str:
    """The organiser's contact, so server owners who see our requests can reach us."""
    text = _nonempty_text(value)
    if _EMAIL.fullmatch(text):
        return text
    try:
        return sources.http_url(text)
    except ValueError:
        raise ValueError(
            f'"{text}" is not a way to contact you. Write an email address like '
            "campaign@campaign.example or a web address like https://campaign.example/contact"
        ) from None


@cache
def _timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _timezone(value: object) -> str:
    name = _nonempty_text(value)
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        close = difflib.get_close_matches(name, sorted(_timezones()), n=1)
        hint = f" — did you mean '{close[0]}'?" if close else "; use a name such as Europe/London"
        raise ValueError(f"'{name}' is not a time zone name{hint}") from None
    return name


def _path(base: Path) -> Callable[[object], Path]:
    def parse(value: object) -> Path:
        return (base / Path(_nonempty_text(value)).expanduser()).resolve()

    return parse


def _existing_folder(base: Path) -> Callable[[object], Path]:
    def parse(value: object) -> Path:
        folder = _path(base)(value)
        if not folder.is_dir():
            raise ValueError(
                f"there is no folder at {folder} (folders are found starting from the folder "
                "feeds.yaml is in); create it or remove this line to use the built-in templates"
            )
        return folder

    return parse


_FETCH: dict[str, Callable[[object], object]] = {
    "connect_timeout": _seconds,
    "read_timeout": _seconds,
    "total_timeout": _seconds,
    "max_bytes": parse_size,
    "max_redirects": _int_between(0, 30),
    "concurrency": _int_between(1, 200),
    "per_host": _int_between(1, 20),
    "max_entries": _int_between(1, 10000),
}


def _yes_no(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"should be true or false, but it is {_describe(value)}")
    return value


def _one_of(*choices: str) -> Callable[[object], str]:
    def parse(value: object) -> str:
        text = _nonempty_text(value).lower()
        if text not in choices:
            raise ValueError(f'"{value}" is not one of the choices: {", ".join(choices)}')
        return text

    return parse


_CLOCK = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")


def _clock_time(value: object) -> str:
    """``7:30`` / ``07:30`` -> ``"07:30"``, the 24-hour form the scheduler reads."""
    text = _text(value) if not isinstance(value, int) else str(value)
    match = _CLOCK.fullmatch(text)
    if match is None:
        raise ValueError(
            f'"{text}" is not a time of day. Write it as hours:minutes on the 24-hour clock, '
            'in quotes, e.g. "07:00" or "18:30"'
        )
    return f"{int(match[1]):02d}:{match[2]}"


def _email_address(value: object) -> str:
    """An address, optionally with a display name: ``Campaign News <news@campaign.example>``."""
    text = _nonempty_text(value)
    _, address = email.utils.parseaddr(text)
    if not _EMAIL.fullmatch(address):
        raise ValueError(
            f'"{text}" is not an email address. Write it like news@campaign.example '
            "or Campaign News <news@campaign.example>"
        )
    return text


def _email_list(value: object) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise ValueError(
            "should be one email address or a list of them, like "
            f"[supporters@lists.campaign.example], but it is {_describe(value)}"
        )
    return tuple(_email_address(item) for item in items)


def _unsubscribe(value: object) -> str:
    text = _nonempty_text(value)
    if text.lower().startswith("mailto:") and _EMAIL.fullmatch(text[7:].split("?")[0]):
        return text
    try:
        return sources.http_url(text)
    except ValueError:
        raise ValueError(
            f'"{text}" is not a way to unsubscribe. Write a web address like '
            "https://campaign.example/unsubscribe or mailto:unsubscribe@campaign.example"
        ) from None


def _env_name(value: object) -> str:
    text = _nonempty_text(value)
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", text):
        raise ValueError(
            f'"{text}" is not the name of an environment variable; use letters, digits '
            "and _ only, e.g. SMTP_PASSWORD"
        )
    return text


def _http_url_setting(value: object) -> str:
    return sources.http_url(_nonempty_text(value))


def _crosspost_window(value: object) -> int:
    """``crosspost_window``: a time interval, or ``off`` (0) to show every version (issue 7)."""
    if value is False or (isinstance(value, str) and value.strip().lower() in ("off", "no")):
        return 0
    return parse_interval(value)


_PAGE: dict[str, Callable[[object], object]] = {
    "days": _int_between(1, 365),
    "per_source_per_day": _int_between(1, 1000),
    "max_entries": _int_between(1, 10000),
    "allow_remote_images": _yes_no,
    "digest_signup_url": _http_url_setting,
    "shared_links": _yes_no,
}
_DIGEST: dict[str, Callable[[object], object]] = {
    "time": _clock_time,
    "from": _email_address,
    "to": _email_list,
    "unsubscribe": _unsubscribe,
    "group_by": _one_of("source", "tag"),
    "per_source": _int_between(1, 100),
    "send_empty": _yes_no,
    "individual": _yes_no,
    "shared_links": _yes_no,
}
_SMTP: dict[str, Callable[[object], object]] = {
    "host": _nonempty_text,
    "port": _int_between(1, 65535),
    "security": _one_of("starttls", "ssl", "none"),
    "username": _nonempty_text,
    "password_env": _env_name,
    "timeout": _seconds,
}


def _settings_table(base: Path) -> dict[str, Callable[[object], object]]:
    """The keys allowed under ``settings:`` and how each is checked.

    The nested sections (fetch:, page:, digest:) have their own tables.
    """
    return {
        "title": _nonempty_text,
        "description": _text,
        "base_url": _base_url,
        "database": _path(base),
        "output": _path(base),
        "timezone": _timezone,
        "poll_interval": parse_interval,
        "user_agent": _contact,
        "templates": _existing_folder(base),
        "feed_length": _int_between(1, 10000),
        "crosspost_window": _crosspost_window,
        "crosspost_primary": _one_of("blog", "earliest"),
    }


# --------------------------------------------------------------------------- positions


def _position(pair: Any) -> Position | None:
    """ruamel's 0-based (line, column) -> our 1-based Position."""
    if isinstance(pair, tuple | list) and len(pair) >= 2 and pair[0] is not None:
        return Position(int(pair[0]) + 1, int(pair[1]) + 1)
    return None


def _key_pos(mapping: CommentedMap, key: object) -> Position | None:
    try:
        return _position(mapping.lc.key(key))
    except (KeyError, AttributeError, TypeError):
        return _node_pos(mapping)


def _value_pos(mapping: CommentedMap, key: object) -> Position | None:
    if key is None:
        return _node_pos(mapping)
    try:
        return _position(mapping.lc.value(key))
    except (KeyError, AttributeError, TypeError):
        return _key_pos(mapping, key)


def _item_pos(seq: CommentedSeq, index: int) -> Position | None:
    try:
        return _position(seq.lc.item(index))
    except (KeyError, AttributeError, TypeError):
        return _node_pos(seq)


def _node_pos(node: object) -> Position | None:
    lc = getattr(node, "lc", None)
    if lc is None:
        return None
    return _position((lc.line, lc.col))


def _line(pos: Position | None) -> str:
    return f"line {pos.line}" if pos else "elsewhere in the file"


# --------------------------------------------------------------------------- the checker


@dataclass
class _Checker:
    """Walks the loaded YAML, collecting problems instead of raising at the first."""

    base: Path
    problems: list[ConfigProblem] = field(default_factory=list)
    slugs: dict[str, tuple[str, Position | None]] = field(default_factory=dict)
    feed_keys: dict[str, tuple[str, Position | None]] = field(default_factory=dict)

    def problem(self, message: str, position: Position | None) -> None:
        self.problems.append(ConfigProblem(message, position))

    def unknown_keys(self, mapping: CommentedMap, allowed: Iterable[str], where: str) -> None:
        """Report keys not in `allowed`, suggesting the closest allowed one."""
        allowed = list(allowed)
        for key in mapping:
            if key in allowed:
                continue
            close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
            if close:
                message = f"unknown key '{key}' in {where} — did you mean '{close[0]}'?"
            else:
                message = (
                    f"unknown key '{key}' in {where}; the keys allowed there are: "
                    + ", ".join(allowed)
                )
            self.problem(message, _key_pos(mapping, key))

    def parse_key(
        self, mapping: CommentedMap, key: str, parse: Callable[[object], Any], where: str
    ) -> Any:
        """Parse ``mapping[key]``; on failure record a problem and return None."""
        try:
            return parse(mapping[key])
        except ValueError as exc:
            self.problem(f"{where}: {key}: {exc}", _value_pos(mapping, key))
            return None

    # ----------------------------------------------------------------- top level

    def config(self, path: Path, document: object) -> Config:
        if document is None:
            document = CommentedMap()
        if not isinstance(document, CommentedMap):
            self.problem(
                "the file should be made of `settings:` and `sources:` sections, "
                f"but it is {_describe(document)}; see the example feeds.yaml",
                _node_pos(document) or Position(1, 1),
            )
            return Config(path=path, settings=self.settings(None), sources=())
        self.unknown_keys(document, ("settings", "sources", "pinned"), "the top level of the file")
        settings = self.settings(document.get("settings"))
        if document.get("settings") is not None and not isinstance(
            document["settings"], CommentedMap
        ):
            self.problem(
                "settings: should be a set of `key: value` lines indented under it, "
                f"but it is {_describe(document['settings'])}",
                _value_pos(document, "settings"),
            )
        found: list[Source] = []
        items = document.get("sources")
        if items is not None and not isinstance(items, CommentedSeq):
            self.problem(
                "sources: should be a list, one `- name: ...` per campaigner or organisation, "
                f"but it is {_describe(items)}",
                _value_pos(document, "sources"),
            )
        elif items is not None:
            for index, item in enumerate(items):
                source = self.source(items, index, item)
                if source is not None:
                    found.append(source)
        pinned = self.pinned(document) if "pinned" in document else ()
        return Config(path=path, settings=settings, sources=tuple(found), pinned=pinned)

    # ----------------------------------------------------------------- settings

    def settings(self, mapping: object) -> Settings:
        defaults = Settings()
        values: dict[str, Any] = {
            "database": (self.base / defaults.database).resolve(),
            "output": (self.base / defaults.output).resolve(),
        }
        if not isinstance(mapping, CommentedMap):
            return Settings(**values)
        values.update(
            self.section(
                mapping,
                None,
                _settings_table(self.base),
                "settings",
                ("fetch", "page", "digest", *_SETTINGS_LISTS),
            )
            or {}
        )
        if "filters" in mapping:
            values["filters"] = self.filters(mapping, "settings")
        if "blocked_domains" in mapping:
            values["blocked_domains"] = self.text_list(
                mapping, "blocked_domains", "settings", _domain, "[tabloid.example, spam.example]"
            )
        if "blocked_words" in mapping:
            values["blocked_words"] = self.text_list(
                mapping, "blocked_words", "settings", _nonempty_text, '[spam, "a phrase"]'
            )
        if "fetch" in mapping:
            values["fetch"] = FetchLimits(
                **(self.section(mapping, "fetch", _FETCH, "settings: fetch") or {})
            )
        if "page" in mapping:
            values["page"] = PageSettings(
                **(self.section(mapping, "page", _PAGE, "settings: page") or {})
            )
        if "digest" in mapping:
            values["digest"] = self.digest(mapping)
        return Settings(**values)

    def section(
        self,
        parent: CommentedMap,
        key: str | None,
        table: dict[str, Callable[[object], Any]],
        where: str,
        nested: Iterable[str] = (),
    ) -> dict[str, Any] | None:
        """Check one mapping against its table: ``parent[key]`` (or `parent` itself).

        Returns the parsed values of the keys that were given and valid (the dataclass
        supplies defaults for the rest), or None if the section is not a mapping at all.
        Keys in `nested` are allowed but left to the caller.
        """
        mapping = parent if key is None else parent[key]
        if not isinstance(mapping, CommentedMap):
            self.problem(
                f"{where}: should be `key: value` lines indented under it "
                f"({', '.join(table)}), but it is {_describe(mapping)}",
                _value_pos(parent, key),
            )
            return None
        self.unknown_keys(mapping, [*table, *nested], where)
        values: dict[str, Any] = {}
        for name, parse in table.items():
            if name in mapping:
                value = self.parse_key(mapping, name, parse, where)
                if value is not None:
                    values[name] = value
        return values

    def digest(self, settings: CommentedMap) -> DigestSettings | None:
        """``settings: digest:`` -> DigestSettings; ``from:`` is stored as `sender`."""
        values = self.section(settings, "digest", _DIGEST, "settings: digest", ("smtp",))
        if values is None:
            return None
        if "from" in values:
            values["sender"] = values.pop("from")
        mapping = settings["digest"]
        if "smtp" in mapping:
            values["smtp"] = self.smtp(mapping)
        return DigestSettings(**values)

    def smtp(self, digest: CommentedMap) -> SmtpSettings | None:
        where = "settings: digest: smtp"
        values = self.section(digest, "smtp", _SMTP, where, ("password",))
        if values is None:
            return None
        mapping = digest["smtp"]
        if "password" in mapping:
            self.problem(
                f"{where}: do not write the password in feeds.yaml (it is easy to share by "
                "mistake); put it in an environment variable and give that variable's name "
                "as password_env, e.g. password_env: SMTP_PASSWORD",
                _key_pos(mapping, "password"),
            )
        if "host" not in mapping:
            self.problem(
                f"{where}: needs host:, the name of your mail server (e.g. smtp.mail.example)",
                _value_pos(digest, "smtp"),
            )
            return None
        if "host" not in values:
            return None  # already reported
        return SmtpSettings(**values)

    # ----------------------------------------------------------------- filters (issue 7)

    def text_list(
        self,
        parent: CommentedMap,
        key: str,
        where: str,
        parse: Callable[[object], Any],
        example: str,
    ) -> tuple[Any, ...]:
        """``key: [a, b]`` (or one value) -> parsed items; each bad item reported at its line."""
        value = parent[key]
        if isinstance(value, CommentedSeq):
            items = [(item, _item_pos(value, i)) for i, item in enumerate(value)]
        elif isinstance(value, str | int) and not isinstance(value, bool):
            items = [(str(value), _value_pos(parent, key))]
        else:
            self.problem(
                f"{where}: {key}: should be a list, like `{key}: {example}`, "
                f"but it is {_describe(value)}",
                _value_pos(parent, key),
            )
            return ()
        out: list[Any] = []
        for item, position in items:
            try:
                parsed = parse(str(item) if isinstance(item, int) else item)
            except ValueError as exc:
                self.problem(f"{where}: {key}: {exc}", position)
                continue
            if parsed not in out:
                out.append(parsed)
        return tuple(out)

    def filters(self, parent: CommentedMap, where: str) -> FilterRules:
        """``filters:`` (of settings or of a source) -> FilterRules; problems are collected."""
        here = f"{where}: filters"
        mapping = parent["filters"]
        if not isinstance(mapping, CommentedMap):
            self.problem(
                f"{here}: should be `key: value` lines indented under it (include:, exclude:, "
                f"hide:), but it is {_describe(mapping)}",
                _value_pos(parent, "filters"),
            )
            return FilterRules()
        self.unknown_keys(mapping, _FILTER_KEYS, here)
        values: dict[str, Any] = {}
        for side in ("include", "exclude"):
            if side not in mapping:
                continue
            rules = mapping[side]
            if not isinstance(rules, CommentedMap):
                self.problem(
                    f"{here}: {side}: should be `key: value` lines indented under it "
                    f"(keywords:, hashtags:, regex:), but it is {_describe(rules)}",
                    _value_pos(mapping, side),
                )
                continue
            self.unknown_keys(rules, _FILTER_MATCHERS, f"{here}: {side}")
            context = f"{here}: {side}"
            if "keywords" in rules:
                values[f"{side}_keywords"] = self.text_list(
                    rules, "keywords", context, _nonempty_text, '[strike, "waiting list"]'
                )
            if "hashtags" in rules:
                values[f"{side}_hashtags"] = self.text_list(
                    rules, "hashtags", context, _hashtag, "[NHS, SaveOurNHS]"
                )
            if "regex" in rules:
                values[f"{side}_patterns"] = self.text_list(
                    rules, "regex", context, _pattern, "['ward \\d+ clos(ed|ure)']"
                )
        if "hide" in mapping:
            for kind in self.text_list(
                mapping, "hide", here, _hide_kind, "[replies, boosts, media_only]"
            ):
                values[f"hide_{kind}"] = True
        return FilterRules(**values)

    def pinned(self, document: CommentedMap) -> tuple[Pinned, ...]:
        """Top-level ``pinned:`` -> announcements; each needs a title and an until: date."""
        items = document["pinned"]
        if items is None:
            return ()
        if not isinstance(items, CommentedSeq):
            self.problem(
                "pinned: should be a list, one `- title: ...` per announcement, "
                f"but it is {_describe(items)}",
                _value_pos(document, "pinned"),
            )
            return ()
        found: list[Pinned] = []
        for index, item in enumerate(items):
            position = _item_pos(items, index)
            where = f"pinned announcement number {index + 1}"
            if not isinstance(item, CommentedMap):
                self.problem(
                    f"{where} should be `key: value` lines starting with `- title: ...`, "
                    f"but it is {_describe(item)}",
                    position,
                )
                continue
            self.unknown_keys(item, ("title", "text", "link", "until"), where)
            values: dict[str, Any] = {"position": position}
            for key, parse in (
                ("title", _nonempty_text),
                ("text", _text),
                ("link", _http_url_setting),
                ("until", _until),
            ):
                if key in item:
                    value = self.parse_key(item, key, parse, where)
                    if value is not None:
                        values[key] = value
            for key, hint in (
                ("title", "the announcement's headline"),
                ("until", "the last day to show it, as YYYY-MM-DD, e.g. until: 2026-12-31"),
            ):
                if key not in item:
                    self.problem(f"{where} has no {key}: add `{key}:` with {hint}", position)
            if "title" in values and "until" in values:
                found.append(Pinned(**values))
        return tuple(found)

    # ----------------------------------------------------------------- sources

    def source(self, items: CommentedSeq, index: int, item: object) -> Source | None:
        position = _item_pos(items, index)
        if not isinstance(item, CommentedMap):
            self.problem(
                f"source number {index + 1} should be `key: value` lines starting with "
                f"`- name: ...`, but it is {_describe(item)}",
                position,
            )
            return None
        name = self.source_name(item, index, position)
        where = f"source '{name}'" if name else f"source number {index + 1}"
        self.unknown_keys(item, _SOURCE_KEYS, where)
        slug = sources.slugify(name) if name else ""
        if name and not slug:
            self.problem(
                f"{where}: the name needs at least one letter A-Z or digit, "
                "so it can be part of a web address",
                _value_pos(item, "name"),
            )
        elif slug in self.slugs:
            other, other_pos = self.slugs[slug]
            self.problem(
                f"{where}: the name is the same as source '{other}' ({_line(other_pos)}) "
                f"once made into a web address ('{slug}'); give each source its own name",
                _value_pos(item, "name"),
            )
        elif slug:
            self.slugs[slug] = (name, _value_pos(item, "name"))

        tags = self.tags(item, where) if "tags" in item else ()
        links = self.links(item, where) if "links" in item else ()
        interval = (
            self.parse_key(item, "poll_interval", parse_interval, where)
            if "poll_interval" in item
            else None
        )
        feeds = self.source_feeds(item, where, slug)
        rules = self.filters(item, where) if "filters" in item else FilterRules()
        # A misspelt key is usually a misspelt feed, and is already reported as unknown.
        misspelt = any(key not in _SOURCE_KEYS for key in item)
        if not feeds and not links and not self.has_feed_keys(item) and not misspelt:
            self.problem(
                f"{where} has no feed and no links: add a feed (one of "
                f"{', '.join(k + ':' for k in sources.FEED_KINDS)}) or a `links:` list",
                position,
            )
        if not name or not slug:
            return None
        return Source(
            slug=slug,
            name=name,
            feeds=feeds,
            tags=tags,
            links=links,
            poll_interval=interval,
            position=position,
            filters=rules,
        )

    @staticmethod
    def has_feed_keys(item: CommentedMap) -> bool:
        """True if the source tried to give a feed (even a broken one, already reported)."""
        return "feeds" in item or any(kind in item for kind in sources.FEED_KINDS)

    def source_name(self, item: CommentedMap, index: int, position: Position | None) -> str:
        if "name" not in item:
            self.problem(
                f"source number {index + 1} has no name: add `name:` with the campaigner's "
                "or organisation's name, as supporters should see it",
                position,
            )
            return ""
        name = self.parse_key(item, "name", _nonempty_text, f"source number {index + 1}")
        return name if isinstance(name, str) else ""

    def tags(self, item: CommentedMap, where: str) -> tuple[str, ...]:
        value = item["tags"]
        if not isinstance(value, CommentedSeq):
            self.problem(
                f"{where}: tags: should be a list, like `tags: [junior-doctors, pay]`, "
                f"but it is {_describe(value)}",
                _value_pos(item, "tags"),
            )
            return ()
        tags: list[str] = []
        for index, tag in enumerate(value):
            text = str(tag) if isinstance(tag, int) and not isinstance(tag, bool) else tag
            slug = sources.slugify(text) if isinstance(text, str) else ""
            if not slug:
                self.problem(
                    f"{where}: tags: each tag should be a word or words, like junior-doctors, "
                    f"but this one is {_describe(tag)}",
                    _item_pos(value, index),
                )
            elif slug not in tags:
                tags.append(slug)
        return tuple(tags)

    def links(self, item: CommentedMap, where: str) -> tuple[ProfileLink, ...]:
        value = item["links"]
        if not isinstance(value, CommentedSeq):
            self.problem(
                f"{where}: links: should be a list of web addresses, one `- https://...` per "
                f"line, but it is {_describe(value)}",
                _value_pos(item, "links"),
            )
            return ()
        links: list[ProfileLink] = []
        for index, entry in enumerate(value):
            position = _item_pos(value, index)
            url: str | None = None
            label: str | None = None
            if isinstance(entry, CommentedMap):
                self.unknown_keys(entry, ("url", "label"), f"a link of {where}")
                if "url" not in entry:
                    self.problem(f"{where}: this link has no url:", position)
                else:
                    url = self.parse_key(entry, "url", _link_url, f"{where}: links")
                if "label" in entry:
                    label = self.parse_key(entry, "label", _nonempty_text, f"{where}: links")
            else:
                try:
                    url = _link_url(entry)
                except ValueError as exc:
                    self.problem(f"{where}: links: {exc}", position)
            if url is not None:
                links.append(ProfileLink(url=url, label=label or sources.link_label(url)))
        return tuple(links)

    def source_feeds(self, item: CommentedMap, where: str, slug: str) -> tuple[FeedSpec, ...]:
        direct = [key for key in item if key in sources.FEED_KINDS]  # in the file's order
        if "feeds" in item and direct:
            self.problem(
                f"{where} has both feeds: and {direct[0]}: — put every feed of this source "
                "under feeds:, one per `- ` line",
                _key_pos(item, direct[0]),
            )
        if len(direct) > 1:
            self.problem(
                f"{where} has both {direct[0]}: and {direct[1]}:, but a source can give only "
                "one feed directly; to follow several, list them under feeds:, one per `- ` line",
                _key_pos(item, direct[1]),
            )
        if direct and "feeds" not in item and len(direct) == 1:
            spec = self.feed(item, direct[0], where, slug, title=None)
            return (spec,) if spec else ()
        if "feeds" not in item:
            return ()
        value = item["feeds"]
        if not isinstance(value, CommentedSeq):
            self.problem(
                f"{where}: feeds: should be a list, one `- url: ...` (or mastodon:, bluesky:, "
                f"...) per line, but it is {_describe(value)}",
                _value_pos(item, "feeds"),
            )
            return ()
        specs: list[FeedSpec] = []
        for index, entry in enumerate(value):
            spec = self.listed_feed(value, index, entry, where, slug)
            if spec is not None:
                specs.append(spec)
        return tuple(specs)

    def listed_feed(
        self, seq: CommentedSeq, index: int, entry: object, where: str, slug: str
    ) -> FeedSpec | None:
        position = _item_pos(seq, index)
        if not isinstance(entry, CommentedMap):
            self.problem(
                f"{where}: feeds: each feed should say what kind it is, like "
                f"`- url: https://campaign.example/feed/`, but this one is {_describe(entry)}",
                position,
            )
            return None
        self.unknown_keys(entry, [*sources.FEED_KINDS, "title", "platform"], f"a feed of {where}")
        kinds = [kind for kind in sources.FEED_KINDS if kind in entry]
        if not kinds:
            self.problem(
                f"{where}: this feed has no address: give one of "
                + ", ".join(k + ":" for k in sources.FEED_KINDS),
                position,
            )
            return None
        if len(kinds) > 1:
            self.problem(
                f"{where}: this feed has both {kinds[0]}: and {kinds[1]}:; give each its own "
                "`- ` line under feeds:",
                _key_pos(entry, kinds[1]),
            )
            return None
        title = self.parse_key(entry, "title", _nonempty_text, where) if "title" in entry else None
        platform = (
            self.parse_key(entry, "platform", _platform, where) if "platform" in entry else None
        )
        return self.feed(entry, kinds[0], where, slug, title=title, platform=platform)

    def feed(
        self,
        mapping: CommentedMap,
        kind: FeedKind,
        where: str,
        slug: str,
        title: str | None,
        platform: Platform | None = None,
    ) -> FeedSpec | None:
        """One feed -> FeedSpec; `platform` overrides the label guessed from the URL."""
        position = _key_pos(mapping, kind)
        target = self.parse_key(mapping, kind, lambda v: sources.resolve(kind, _text(v)), where)
        if not isinstance(target, sources.FeedTarget):
            return None
        if target.url in self.feed_keys:
            other, other_pos = self.feed_keys[target.url]
            self.problem(
                f"{where}: {kind}: gives the feed {target.url}, which {other} already has "
                f"({_line(other_pos)}); list each feed only once",
                _value_pos(mapping, kind),
            )
            return None
        self.feed_keys[target.url] = (where, position)
        return FeedSpec(
            key=target.url,
            url=target.url,
            kind=target.kind,
            platform=platform or target.platform,
            source=slug,
            title=title,
            position=position,
        )


_SOURCE_KEYS = (
    "name",
    "tags",
    "links",
    "poll_interval",
    "feeds",
    "filters",
    *sources.FEED_KINDS,
)


def _platform(value: object) -> Platform:
    """An explicit platform label, for feeds whose address does not show it (mirrors, demos)."""
    text = _nonempty_text(value).lower()
    for platform in get_args(Platform):
        if text == platform:
            return cast(Platform, platform)
    raise ValueError(f'"{value}" is not one of: {", ".join(get_args(Platform))}')


def _link_url(value: object) -> str:
    return sources.http_url(_text(value), "https://www.tiktok.com/@YOUR-HANDLE")


# --------------------------------------------------------------------------- filters (issue 7)

_SETTINGS_LISTS = ("filters", "blocked_domains", "blocked_words")
_FILTER_KEYS = ("include", "exclude", "hide")
_FILTER_MATCHERS = ("keywords", "hashtags", "regex")
_HIDE_KINDS = {
    "replies": "replies",
    "boosts": "boosts",
    "reposts": "boosts",
    "media_only": "media_only",
    "media-only": "media_only",
}
_DOMAIN = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]*")


def _domain(value: object) -> str:
    """``tabloid.example`` (or a pasted address on it) -> the domain, lower case, no www."""
    text = _nonempty_text(value).lower()
    host = text
    if "://" in text:
        host = (urlsplit(text).hostname or "").lower()
    host = host.removeprefix("www.").rstrip(".")
    if not _DOMAIN.fullmatch(host):
        raise ValueError(
            f'"{text}" is not a website name; write it like tabloid.example '
            "(its subdomains are blocked too)"
        )
    return host


def _hashtag(value: object) -> str:
    text = _nonempty_text(value)
    if not re.fullmatch(r"#?\w+", text):
        raise ValueError(
            f'"{text}" is not a hashtag; write it without spaces, like NHS or SaveOurNHS '
            "(the # is optional; in quotes if you write it)"
        )
    return text.lstrip("#")


def _pattern(value: object) -> re.Pattern[str]:
    """A regular expression, compiled case-insensitive, or a message saying where it breaks."""
    text = _nonempty_text(value)
    try:
        return re.compile(text, re.IGNORECASE)
    except re.error as exc:
        where = f" at character {exc.pos + 1}" if exc.pos is not None else ""
        raise ValueError(
            f"'{text}' is not a valid regular expression: {exc.msg}{where}. Check its brackets "
            "and backslashes, and write it in 'single quotes' so backslashes stay as typed; "
            "to match plain words, use keywords: instead"
        ) from None


def _hide_kind(value: object) -> str:
    text = _nonempty_text(value).lower()
    if text in _HIDE_KINDS:
        return _HIDE_KINDS[text]
    close = difflib.get_close_matches(text, list(_HIDE_KINDS), n=1)
    hint = f" — did you mean '{close[0]}'?" if close else "."
    raise ValueError(
        f'"{text}" is not something filters can hide{hint} The choices are: replies, '
        "boosts (or reposts) and media_only"
    )


def _until(value: object) -> date:
    """The last day to show a pinned announcement: YYYY-MM-DD (YAML may already give a date)."""
    if isinstance(value, date):
        return value
    text = _nonempty_text(value) if not isinstance(value, int) else str(value)
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f'"{text}" is not a date; write the last day to show it as YYYY-MM-DD, e.g. 2026-12-31'
        ) from None


# --------------------------------------------------------------------------- loading

# Plain words for the YAML syntax errors organisers meet most, keyed by the start of
# ruamel's own wording; anything else is shown as ruamel words it.
_YAML_HINTS: tuple[tuple[str, str], ...] = (
    (
        "mapping values are not allowed",
        "there is a colon (:) where one is not expected — if a value contains ': ', "
        "put the whole value in quotes; otherwise check the indentation",
    ),
    (
        "found character '\\t'",
        "there is a tab character; indent with spaces only",
    ),
    (
        "could not find expected ':'",
        "a line is missing its colon — each line should be `key: value` or `- item`",
    ),
    (
        "expected <block end>",
        "the indentation is wrong here; line this up with the lines it belongs with",
    ),
    (
        "found duplicate key",
        "the same key appears twice in one place; keep only one",
    ),
    (
        "found undefined alias",
        "there is a * (alias) with no matching & (anchor); put values that start with * in quotes",
    ),
)


def _yaml_problem(exc: YAMLError) -> ConfigProblem:
    """A YAML syntax error -> one problem, at its line and column, in plain words."""
    if not isinstance(exc, MarkedYAMLError):
        return ConfigProblem(f"the file could not be read as YAML: {exc}")
    raw = exc.problem or exc.context or "the file is not valid YAML"
    message = next((hint for start, hint in _YAML_HINTS if raw.startswith(start)), None)
    if message is None:
        message = f"this is not valid YAML: {raw}"
    if raw.startswith("found duplicate key"):
        message = f"{message} ({raw.split(' with value')[0].removeprefix('found ')})"
    mark = exc.problem_mark or exc.context_mark
    context = exc.context_mark
    if context is not None and mark is not None and context.line != mark.line:
        message += f" (the part that is not closed properly starts on line {context.line + 1})"
    position = Position(mark.line + 1, mark.column + 1) if mark is not None else None
    return ConfigProblem(message, position)


def _read(path: Path) -> str:
    """The file's text, or a ConfigError saying plainly why it cannot be read."""
    filename = str(path)
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        message = (
            f"there is no config file at {path.absolute()}. Give the file's location "
            f"with -c/--config PATH, or set the {ENV_VAR} environment variable to it"
        )
    except IsADirectoryError:
        message = f"{path.absolute()} is a folder, not a file; give the path of feeds.yaml itself"
    except PermissionError:
        message = f"{path.absolute()} cannot be read: permission denied"
    except UnicodeDecodeError as exc:
        message = (
            f"the file is not UTF-8 text (unreadable byte at position {exc.start}); "
            "save it as UTF-8 in your editor"
        )
    except OSError as exc:
        message = f"{path.absolute()} cannot be read: {exc.strerror or exc}"
    raise ConfigError(filename, [ConfigProblem(message)])


def load_config(path: Path) -> Config:
    """Read and check feeds.yaml; return a Config or raise ConfigError with every problem.

    Problems are sorted by their place in the file.  Nothing is fetched and no file is
    written; only the templates folder (if given) is checked to exist.
    """
    filename = str(path)
    text = _read(path)
    try:
        document = YAML(typ="rt").load(text)
    except YAMLError as exc:
        raise ConfigError(filename, [_yaml_problem(exc)]) from exc
    checker = _Checker(base=path.absolute().parent)
    config = checker.config(path.absolute(), document)
    if checker.problems:
        ordered = sorted(
            checker.problems,
            key=lambda p: (p.position.line, p.position.column) if p.position else (0, 0),
        )
        raise ConfigError(filename, ordered)
    return config
