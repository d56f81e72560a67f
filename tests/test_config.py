"""feeds.yaml becomes a Config, or every problem is reported with its line and column."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from aggregator.config import (
    config_path,
    format_interval,
    load_config,
    parse_duration,
    parse_interval,
    parse_size,
)
from aggregator.errors import ConfigError
from aggregator.models import (
    Config,
    FeedSpec,
    FetchLimits,
    Position,
    ProfileLink,
    Settings,
)

REPO = Path(__file__).resolve().parent.parent
CHANNEL = "UC" + "a1B2c3D4e5F6g7H8i9J0k_"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "feeds.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def load(tmp_path: Path, text: str) -> Config:
    return load_config(write(tmp_path, text))


def problems(tmp_path: Path, text: str) -> list[str]:
    """The formatted problems, with the filename as the tests write it."""
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    return [p.format("feeds.yaml") for p in info.value.problems]


# --------------------------------------------------------------------------- good files


def test_the_bundled_feeds_yaml_loads_without_problems() -> None:
    config = load_config(REPO / "feeds.yaml")
    assert config.sources, "the starting point should follow some organisations"
    assert config.settings.base_url == "http://localhost:8000/"
    assert config.settings.database == REPO / "data" / "aggregator.sqlite"
    assert config.settings.output == REPO / "public"
    assert all(source.feeds or source.links for source in config.sources)


def test_a_full_source_becomes_frozen_values(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        f"""
        sources:
          - name: Siân Jones
            tags: [Junior Doctors, pay, pay]
            poll_interval: 1h
            feeds:
              - mastodon: "@sian@mastodon.example"
              - bluesky: sian.bsky.social
                title: On Bluesky
              - youtube: {CHANNEL}
            links:
              - https://www.tiktok.com/@someone
              - url: https://www.instagram.com/someone/
                label: Photos
        """,
    )
    (source,) = config.sources
    assert source.slug == "sian-jones"
    assert source.name == "Siân Jones"
    assert source.tags == ("junior-doctors", "pay")
    assert source.poll_interval == 3600
    assert source.position == Position(2, 5)
    assert source.links == (
        ProfileLink("https://www.tiktok.com/@someone", "TikTok"),
        ProfileLink("https://www.instagram.com/someone/", "Photos"),
    )
    assert source.feeds == (
        FeedSpec(
            key="https://mastodon.example/@sian.rss",
            url="https://mastodon.example/@sian.rss",
            kind="mastodon",
            platform="mastodon",
            source="sian-jones",
            position=Position(6, 9),
        ),
        FeedSpec(
            key="https://bsky.app/profile/sian.bsky.social/rss",
            url="https://bsky.app/profile/sian.bsky.social/rss",
            kind="bluesky",
            platform="bluesky",
            source="sian-jones",
            title="On Bluesky",
            position=Position(7, 9),
        ),
        FeedSpec(
            key=f"https://www.youtube.com/feeds/videos.xml?channel_id={CHANNEL}",
            url=f"https://www.youtube.com/feeds/videos.xml?channel_id={CHANNEL}",
            kind="youtube",
            platform="youtube",
            source="sian-jones",
            position=Position(9, 9),
        ),
    )
    assert config.feeds() == source.feeds


def test_a_feed_can_be_given_directly_on_the_source(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
        sources:
          - name: Keep Our NHS Public
            site: https://keepournhspublic.com/
          - name: A channel
            youtube: https://www.youtube.com/@CampaignChannel
        """,
    )
    site, channel = config.feeds()
    assert (site.key, site.kind, site.platform, site.source) == (
        "https://keepournhspublic.com/",
        "site",
        "blog",
        "keep-our-nhs-public",
    )
    assert site.position == Position(3, 5)
    assert (channel.key, channel.kind, channel.platform) == (
        "https://www.youtube.com/@CampaignChannel",
        "site",
        "youtube",
    )


def test_a_source_with_only_links_is_allowed(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
        sources:
          - name: Only on TikTok
            links: [https://www.tiktok.com/@someone, https://www.threads.net/@someone]
        """,
    )
    (source,) = config.sources
    assert source.feeds == ()
    assert [link.label for link in source.links] == ["TikTok", "Threads"]


def test_a_feed_may_name_its_platform_when_the_address_does_not_show_it(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
        sources:
          - name: Mirror
            feeds:
              - url: http://127.0.0.1:8080/nurse.rss
                platform: Mastodon
              - url: http://127.0.0.1:8080/blog.rss
        """,
    )
    assert [feed.platform for feed in config.feeds()] == ["mastodon", "blog"]


@pytest.mark.parametrize("text", ["", "sources: []\n", "sources:\n", "settings: {}\n"])
def test_an_empty_sources_list_is_allowed(tmp_path: Path, text: str) -> None:
    config = load(tmp_path, text)
    assert config.sources == ()
    assert config.feeds() == ()


def test_settings_default_to_the_models_defaults(tmp_path: Path) -> None:
    config = load(tmp_path, "sources: []\n")
    defaults = Settings()
    assert config.settings == Settings(
        database=(tmp_path / defaults.database).resolve(),
        output=(tmp_path / defaults.output).resolve(),
    )
    assert config.path == tmp_path / "feeds.yaml"


def test_every_setting_is_read_and_normalised(tmp_path: Path) -> None:
    (tmp_path / "my-templates").mkdir()
    config = load(
        tmp_path,
        """
        settings:
          title: Campaign news
          description: All in one place
          base_url: https://campaign.example/news
          database: state/news.sqlite
          output: ../site
          timezone: Europe/Belfast
          poll_interval: 1h30m
          user_agent: organiser@campaign.example
          templates: my-templates
          feed_length: 50
          fetch:
            connect_timeout: 5
            read_timeout: 7.5
            total_timeout: 30
            max_bytes: 2MB
            max_redirects: 3
            concurrency: 4
            per_host: 1
            max_entries: 50
        """,
    )
    settings = config.settings
    assert settings.title == "Campaign news"
    assert settings.description == "All in one place"
    assert settings.base_url == "https://campaign.example/news/"
    assert settings.database == tmp_path / "state" / "news.sqlite"
    assert settings.output == tmp_path.parent / "site"
    assert settings.timezone == "Europe/Belfast"
    assert settings.poll_interval == 5400
    assert settings.user_agent == "organiser@campaign.example"
    assert settings.templates == tmp_path / "my-templates"
    assert settings.feed_length == 50
    assert settings.fetch == FetchLimits(
        connect_timeout=5.0,
        read_timeout=7.5,
        total_timeout=30.0,
        max_bytes=2 * 1024 * 1024,
        max_redirects=3,
        concurrency=4,
        per_host=1,
        max_entries=50,
    )


def test_relative_paths_are_found_from_the_config_files_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "campaign"
    folder.mkdir()
    (folder / "feeds.yaml").write_text("settings:\n  database: db.sqlite\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    config = load_config(Path("campaign/feeds.yaml"))
    assert config.settings.database == folder / "db.sqlite"
    assert config.settings.output == folder / "public"
    assert config.path.is_absolute()


def test_page_and_digest_settings_are_read(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
        settings:
          page:
            days: 3
            allow_remote_images: true
            digest_signup_url: https://campaign.example/signup
          digest:
            time: "7:05"
            from: Campaign News <news@campaign.example>
            to: supporters@lists.campaign.example
            unsubscribe: mailto:leave@campaign.example
            group_by: tag
            smtp:
              host: smtp.campaign.example
              port: 465
              security: ssl
              password_env: SMTP_PASSWORD
        """,
    )
    page, digest = config.settings.page, config.settings.digest
    assert (page.days, page.allow_remote_images, page.per_source_per_day) == (3, True, 3)
    assert page.digest_signup_url == "https://campaign.example/signup"
    assert digest is not None
    assert digest.time == "07:05"
    assert digest.sender == "Campaign News <news@campaign.example>"
    assert digest.to == ("supporters@lists.campaign.example",)
    assert digest.group_by == "tag"
    assert digest.smtp is not None
    assert (digest.smtp.host, digest.smtp.port, digest.smtp.security) == (
        "smtp.campaign.example",
        465,
        "ssl",
    )


# --------------------------------------------------------------------------- intervals, sizes


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("30m", 1800),
        ("2h", 7200),
        ("90s", 90),
        ("1d", 86400),
        ("1h30m", 5400),
        ("1H 30M", 5400),
        ("1d2h3m4s", 93784),
        (60, 60),
        (3600, 3600),
    ],
)
def test_intervals_are_read_as_seconds(value: str | int, seconds: int) -> None:
    assert parse_interval(value) == seconds
    assert parse_duration(value) == seconds


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("30", "not a time interval"),
        ("half an hour", "not a time interval"),
        ("30m1h", "not a time interval"),
        ("", "not a time interval"),
        ("-5m", "not a time interval"),
        ("1.5h", "not a time interval"),
        ("30s", "too often"),
        (59, "too often"),
        (0, "too often"),
        (True, "should be a time interval"),
        (1.5, "should be a time interval"),
        (None, "should be a time interval"),
    ],
)
def test_bad_intervals_are_explained(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_interval(value)


@pytest.mark.parametrize(("seconds", "text"), [(5400, "1h30m"), (86400, "1d"), (90, "1m30s")])
def test_intervals_are_written_back_the_way_feeds_yaml_spells_them(seconds: int, text: str) -> None:
    assert format_interval(seconds) == text
    assert parse_interval(text) == seconds


@pytest.mark.parametrize(
    ("value", "size"),
    [
        ("10MB", 10 * 1024 * 1024),
        ("500KB", 500 * 1024),
        ("500 kb", 500 * 1024),
        ("1.5MB", 1536 * 1024),
        ("2MiB", 2 * 1024 * 1024),
        ("1GB", 1024**3),
        (4096, 4096),
    ],
)
def test_sizes_are_read_as_bytes(value: str | int, size: int) -> None:
    assert parse_size(value) == size


@pytest.mark.parametrize("value", ["ten megabytes", "10TB", 0, "0KB", True, [1]])
def test_bad_sizes_are_explained(value: object) -> None:
    with pytest.raises(ValueError, match="size"):
        parse_size(value)


# --------------------------------------------------------------------------- finding the file


def test_the_command_line_value_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGGREGATOR_CONFIG", "/from/env.yaml")
    assert config_path("cli.yaml") == Path("cli.yaml")


def test_the_environment_variable_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGGREGATOR_CONFIG", "/from/env.yaml")
    assert config_path(None) == Path("/from/env.yaml")


def test_feeds_yaml_in_the_current_folder_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AGGREGATOR_CONFIG", raising=False)
    assert config_path(None) == Path("feeds.yaml")
    monkeypatch.setenv("AGGREGATOR_CONFIG", "  ")
    assert config_path(None) == Path("feeds.yaml")


def test_the_environment_variable_file_is_the_one_loaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, "settings:\n  title: From the environment\n")
    monkeypatch.setenv("AGGREGATOR_CONFIG", str(path))
    assert load_config(config_path(None)).settings.title == "From the environment"


def test_a_missing_file_says_how_to_point_at_another(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nowhere.yaml")
    message = str(info.value)
    assert "nowhere.yaml" in message
    assert "-c/--config" in message
    assert "AGGREGATOR_CONFIG" in message
    assert info.value.exit_code == 2


def test_a_folder_instead_of_a_file_is_explained(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a folder, not a file"):
        load_config(tmp_path)


def test_a_file_not_saved_as_utf8_is_explained(tmp_path: Path) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_bytes("sources:\n  - name: Si\xe2n\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="save it as UTF-8"):
        load_config(path)


# --------------------------------------------------------------------------- YAML syntax


@pytest.mark.parametrize(
    ("text", "where", "words"),
    [
        ("sources:\n  - name: A: B\n", "feeds.yaml:2:12:", "put the whole value in quotes"),
        ("sources:\n\t- name: A\n", "feeds.yaml:2:1:", "tab"),
        ("settings:\n  title: a\n  title: b\n", "feeds.yaml:3:3:", "same key appears twice"),
        ("sources: [\n  {name: A}\nsettings: {}\n", "feeds.yaml:3:", "not valid YAML"),
        ("sources:\n  - name: A\n   url: x\n", "feeds.yaml:3:", ""),
    ],
)
def test_yaml_syntax_errors_give_line_column_and_plain_words(
    tmp_path: Path, text: str, where: str, words: str
) -> None:
    (problem,) = problems(tmp_path, text)
    assert problem.startswith(where), problem
    assert words in problem


# --------------------------------------------------------------------------- problems


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            """
            sources:
              - name: Keep Our NHS Public
                mastadon: "@konp@mastodon.example"
            """,
            "feeds.yaml:3:5: unknown key 'mastadon' in source 'Keep Our NHS Public'"
            " — did you mean 'mastodon'?",
        ),
        (
            """
            settings:
              pol_interval: 30m
            """,
            "feeds.yaml:2:3: unknown key 'pol_interval' in settings"
            " — did you mean 'poll_interval'?",
        ),
        (
            """
            setings:
              title: x
            """,
            "feeds.yaml:1:1: unknown key 'setings' in the top level of the file"
            " — did you mean 'settings'?",
        ),
        (
            """
            settings:
              fetch:
                max_byte: 1MB
            """,
            "feeds.yaml:3:5: unknown key 'max_byte' in settings: fetch — did you mean 'max_bytes'?",
        ),
        (
            """
            sources:
              - name: A
                feeds:
                  - url: https://a.example/feed
                    titel: A's blog
            """,
            "feeds.yaml:5:9: unknown key 'titel' in a feed of source 'A' — did you mean 'title'?",
        ),
        (
            """
            sources:
              - name: A
                colour: red
                site: https://a.example/
            """,
            "feeds.yaml:3:5: unknown key 'colour' in source 'A'; the keys allowed there are:",
        ),
        (
            """
            sources:
              - name: A
                mastodon: "@a@mastodon.example"
                url: https://a.example/feed
            """,
            "feeds.yaml:4:5: source 'A' has both mastodon: and url:",
        ),
        (
            """
            sources:
              - name: A
                url: https://a.example/feed
                feeds:
                  - site: https://a.example/
            """,
            "feeds.yaml:3:5: source 'A' has both feeds: and url:",
        ),
        (
            """
            sources:
              - name: A
                feeds:
                  - title: Nothing here
            """,
            "feeds.yaml:4:9: source 'A': this feed has no address",
        ),
        (
            """
            sources:
              - name: A
                feeds:
                  - url: https://a.example/feed
                    bluesky: a.bsky.social
            """,
            "feeds.yaml:5:9: source 'A': this feed has both url: and bluesky:",
        ),
        (
            """
            sources:
              - name: A
                feeds:
                  - url: https://a.example/feed
                    platform: tiktok
            """,
            "feeds.yaml:5:19: source 'A': platform: \"tiktok\" is not one of: blog, mastodon,",
        ),
        (
            """
            sources:
              - name: A
            """,
            "feeds.yaml:2:5: source 'A' has no feed and no links",
        ),
        (
            """
            sources:
              - name: A
                url: www.a.example/feed
            """,
            "feeds.yaml:3:10: source 'A': url: \"www.a.example/feed\" is not a full web address",
        ),
        (
            """
            sources:
              - name: A
                url: https://www.threads.net/@someone
            """,
            "feeds.yaml:3:10: source 'A': url: Threads has no public feed; "
            "put this under `links:` instead",
        ),
        (
            """
            sources:
              - name: A
                mastodon: konp
            """,
            "feeds.yaml:3:15: source 'A': mastodon: \"konp\" is not a Mastodon account",
        ),
        (
            """
            sources:
              - name: A
                bluesky: konp
            """,
            "feeds.yaml:3:14: source 'A': bluesky: \"konp\" is not a Bluesky handle",
        ),
        (
            """
            sources:
              - name: A
                youtube: konp
            """,
            "feeds.yaml:3:14: source 'A': youtube: \"konp\" is not a YouTube channel",
        ),
        (
            """
            sources:
              - name: A
                mastodon_tag: NHS
            """,
            "feeds.yaml:3:19: source 'A': mastodon_tag: \"NHS\" is not a Mastodon hashtag",
        ),
        (
            """
            sources:
              - name: A
                site: [https://a.example/]
            """,
            "feeds.yaml:3:11: source 'A': site: should be text, but it is a list",
        ),
        (
            """
            sources:
              - name: A
                tags: junior-doctors
                site: https://a.example/
            """,
            "feeds.yaml:3:11: source 'A': tags: should be a list,"
            " like `tags: [junior-doctors, pay]`",
        ),
        (
            """
            sources:
              - name: A
                tags: [ok, {bad: tag}]
                site: https://a.example/
            """,
            "feeds.yaml:3:16: source 'A': tags: each tag should be a word or words",
        ),
        (
            """
            sources:
              - name: A
                links: https://www.tiktok.com/@someone
            """,
            "feeds.yaml:3:12: source 'A': links: should be a list of web addresses",
        ),
        (
            """
            sources:
              - name: A
                links:
                  - tiktok.com/@someone
            """,
            "feeds.yaml:4:9: source 'A': links: \"tiktok.com/@someone\" is not a full web address",
        ),
        (
            """
            sources:
              - name: A
                feeds: https://a.example/feed
            """,
            "feeds.yaml:3:12: source 'A': feeds: should be a list",
        ),
        (
            """
            sources:
              - name: A
                feeds:
                  - https://a.example/feed
            """,
            "feeds.yaml:4:9: source 'A': feeds: each feed should say what kind it is",
        ),
        (
            """
            sources:
              - site: https://a.example/
            """,
            "feeds.yaml:2:5: source number 1 has no name",
        ),
        (
            """
            sources:
              - name: 日本
                site: https://a.example/
            """,
            "feeds.yaml:2:11: source '日本': the name needs at least one letter A-Z or digit",
        ),
        (
            """
            sources:
              - just a name
            """,
            "feeds.yaml:2:5: source number 1 should be `key: value` lines",
        ),
        (
            """
            sources:
              name: A
            """,
            "feeds.yaml:2:3: sources: should be a list",
        ),
        (
            """
            - name: A
            """,
            "feeds.yaml:1:1: the file should be made of `settings:` and `sources:` sections",
        ),
        (
            """
            sources:
              - name: A
                poll_interval: often
                site: https://a.example/
            """,
            "feeds.yaml:3:20: source 'A': poll_interval: \"often\" is not a time interval",
        ),
        (
            """
            settings:
              poll_interval: 10s
            """,
            "feeds.yaml:2:18: settings: poll_interval: 10s is too often",
        ),
        (
            """
            settings:
              timezone: Europe/Londn
            """,
            "feeds.yaml:2:13: settings: timezone: 'Europe/Londn' is not a time zone name"
            " — did you mean 'Europe/London'?",
        ),
        (
            """
            settings:
              base_url: campaign.example
            """,
            'feeds.yaml:2:13: settings: base_url: "campaign.example" is not a full web address',
        ),
        (
            """
            settings:
              feed_length: 0
            """,
            "feeds.yaml:2:16: settings: feed_length: 0 is out of range",
        ),
        (
            """
            settings:
              feed_length: lots
            """,
            "feeds.yaml:2:16: settings: feed_length: should be a whole number from 1 to 10000",
        ),
        (
            """
            settings:
              user_agent: just me
            """,
            'feeds.yaml:2:15: settings: user_agent: "just me" is not a way to contact you',
        ),
        (
            """
            settings:
              templates: no-such-folder
            """,
            "feeds.yaml:2:14: settings: templates: there is no folder at",
        ),
        (
            """
            settings:
              fetch:
                max_bytes: huge
            """,
            'feeds.yaml:3:16: settings: fetch: max_bytes: "huge" is not a size',
        ),
        (
            """
            settings:
              fetch: 10
            """,
            "feeds.yaml:2:10: settings: fetch: should be `key: value` lines indented under it",
        ),
        (
            """
            settings:
              digest:
                time: "25:00"
            """,
            'feeds.yaml:3:11: settings: digest: time: "25:00" is not a time of day',
        ),
        (
            """
            settings:
              digest:
                smtp:
                  host: smtp.campaign.example
                  password: hunter2
            """,
            "feeds.yaml:5:7: settings: digest: smtp: do not write the password in feeds.yaml",
        ),
        (
            """
            settings:
              page:
                allow_remote_images: sometimes
            """,
            "feeds.yaml:3:26: settings: page: allow_remote_images: should be true or false",
        ),
    ],
)
def test_each_problem_names_its_line_and_column(tmp_path: Path, text: str, expected: str) -> None:
    found = problems(tmp_path, text)
    assert any(problem.startswith(expected) for problem in found), found


def test_a_feed_listed_twice_names_both_places(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """
        sources:
          - name: A
            mastodon: "@a@mastodon.example"
          - name: B
            url: https://mastodon.example/@a.rss
        """,
    )
    assert found == [
        "feeds.yaml:5:10: source 'B': url: gives the feed https://mastodon.example/@a.rss, "
        "which source 'A' already has (line 3); list each feed only once"
    ]


def test_two_sources_with_the_same_web_name_name_both_places(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """
        sources:
          - name: Siân Jones
            site: https://a.example/
          - name: Sian Jones
            site: https://b.example/
        """,
    )
    assert found == [
        "feeds.yaml:4:11: source 'Sian Jones': the name is the same as source 'Siân Jones' "
        "(line 2) once made into a web address ('sian-jones'); give each source its own name"
    ]


def test_every_problem_is_reported_at_once_in_file_order(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """
        settings:
          timezone: Mars/Olympus
          poll_interval: sometimes
        sources:
          - name: Keep Our NHS Public
            mastadon: "@konp@mastodon.example"
          - name: B
            url: https://www.tiktok.com/@someone
          - name: C
            bluesky: not-a-handle
        """,
    )
    assert [problem.split(": ")[0] for problem in found] == [
        "feeds.yaml:2:13",
        "feeds.yaml:3:18",
        "feeds.yaml:6:5",
        "feeds.yaml:8:10",
        "feeds.yaml:10:14",
    ]
    assert "mastadon" in found[2]
    assert "TikTok has no public feed" in found[3]


def test_the_error_message_lists_every_problem_with_the_filename(tmp_path: Path) -> None:
    path = write(tmp_path, "settings:\n  feed_length: 0\n  timezone: Nowhere\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    lines = str(info.value).splitlines()
    assert len(lines) == 2
    assert all(line.startswith(f"{path}:") for line in lines)
    assert info.value.filename == str(path)
