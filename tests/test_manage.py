"""Managing sources (issue 7): `add`, `import`, `export`, and `check`'s links-only note.

Every edit of feeds.yaml must keep the organiser's file byte for byte outside
the lines added: the bundled feeds.yaml (all comments and commented examples)
is the file edited here.  Platform addresses are mapped without any fetch;
blogs are discovered from pages served on loopback.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from lxml import etree

from aggregator.cli import main
from aggregator.config import load_config
from aggregator.manage import classify

BUNDLED = Path(__file__).resolve().parents[1] / "feeds.yaml"

FEED = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Patients Together blog</title>
<link>https://blog.example/</link><description>d</description>
<item><title>Waiting lists</title><link>https://blog.example/w</link><guid>w</guid></item>
</channel></rss>"""


def page(*feeds: str) -> bytes:
    links = "".join(
        f'<link rel="alternate" type="application/rss+xml" href="{href}">' for href in feeds
    )
    html = f"<!doctype html><html><head><title>Blog</title>{links}</head><body>Hi</body></html>"
    return html.encode()


@pytest.fixture
def feeds_yaml(tmp_path) -> Path:
    path = tmp_path / "feeds.yaml"
    shutil.copyfile(BUNDLED, path)
    return path


def added(path: Path) -> str:
    """What was added to the bundled file; fails if anything else changed."""
    old = BUNDLED.read_text(encoding="utf-8")
    new = path.read_text(encoding="utf-8")
    assert new.startswith(old), "the organiser's file changed outside the added lines"
    return new[len(old) :]


def cli(path: Path, *args: str) -> int:
    return main(["-c", str(path), *args])


# --------------------------------------------------------------------------- URL shapes


@pytest.mark.parametrize(
    ("url", "kind", "value"),
    [
        ("https://mastodon.example/@nurse_jo", "mastodon", "@nurse_jo@mastodon.example"),
        ("https://Mastodon.Example/@nurse.jo/", "mastodon", "@nurse.jo@mastodon.example"),
        ("https://social.example/users/drsam", "mastodon", "@drsam@social.example"),
        ("https://mastodon.example/tags/NHS", "mastodon_tag", "#NHS@mastodon.example"),
        ("https://bsky.app/profile/drsam.bsky.social", "bluesky", "drsam.bsky.social"),
        ("https://bsky.app/profile/@Campaign.Example", "bluesky", "campaign.example"),
        (
            "https://www.youtube.com/channel/UCxxxxxxxxxxxxxxxxxxxxxx",
            "youtube",
            "UCxxxxxxxxxxxxxxxxxxxxxx",
        ),
        ("https://www.youtube.com/@nhsnurse", "youtube", "https://www.youtube.com/@nhsnurse"),
        ("https://www.threads.net/@nurse", "links", "https://www.threads.net/@nurse"),
        ("https://www.tiktok.com/@nurse", "links", "https://www.tiktok.com/@nurse"),
        ("https://www.instagram.com/nurse/", "links", "https://www.instagram.com/nurse/"),
        ("https://x.com/nurse", "links", "https://x.com/nurse"),
        ("https://twitter.com/nurse", "links", "https://twitter.com/nurse"),
    ],
)
def test_platform_addresses_map_to_shorthands_without_a_fetch(url, kind, value):
    found = classify(url)
    assert found is not None
    assert (found.kind, found.value) == (kind, value)


@pytest.mark.parametrize(
    "url", ["https://blog.example/", "https://medium.com/@writer", "https://blog.example/feed/"]
)
def test_other_addresses_are_loaded_to_find_their_feed(url):
    assert classify(url) is None


# --------------------------------------------------------------------------- add


@pytest.mark.parametrize(
    ("url", "args", "expected"),
    [
        (
            "https://mastodon.example/@nurse_jo",
            ["--name", "Nurse Jo", "--tag", "nurses", "--tag", "staffing"],
            "  - name: Nurse Jo\n    tags: [nurses, staffing]\n"
            "    mastodon: '@nurse_jo@mastodon.example'\n",
        ),
        (
            "https://bsky.app/profile/drsam.bsky.social",
            ["--name", "Dr Sam"],
            "  - name: Dr Sam\n    bluesky: drsam.bsky.social\n",
        ),
        (
            "https://www.youtube.com/channel/UCxxxxxxxxxxxxxxxxxxxxxx",
            ["--name", "GP videos"],
            "  - name: GP videos\n    youtube: UCxxxxxxxxxxxxxxxxxxxxxx\n",
        ),
        (
            "https://www.tiktok.com/@nurse",
            ["--name", "Nurse on TikTok"],
            "  - name: Nurse on TikTok\n    links:\n      - https://www.tiktok.com/@nurse\n",
        ),
    ],
)
def test_add_appends_one_source_and_keeps_every_other_byte(feeds_yaml, url, args, expected):
    assert cli(feeds_yaml, "add", url, *args) == 0
    assert added(feeds_yaml) == expected
    load_config(feeds_yaml)  # the result passes check


def test_add_resolves_the_same_feed_the_shorthand_gives(feeds_yaml):
    assert cli(feeds_yaml, "add", "https://mastodon.example/@nurse_jo") == 0
    source = load_config(feeds_yaml).sources[-1]
    assert source.name == "@nurse_jo@mastodon.example"
    assert [f.url for f in source.feeds] == ["https://mastodon.example/@nurse_jo.rss"]


def test_a_platform_without_feeds_is_added_as_a_link_and_says_so(feeds_yaml, capsys):
    assert cli(feeds_yaml, "add", "https://www.threads.net/@nurse", "--name", "Nurse") == 0
    out = capsys.readouterr().out
    assert "Threads has no public feed, so it is added as a profile link only" in out
    assert not load_config(feeds_yaml).sources[-1].feeds


def test_add_finds_a_blogs_feed_from_its_page(feeds_yaml, feed_server, capsys):
    feed_server.add("/", page("/feed.xml", "/comments/feed.xml"), content_type="text/html")
    feed_server.add("/feed.xml", FEED)
    assert cli(feeds_yaml, "add", feed_server.url("/"), "--tag", "patients") == 0
    assert added(feeds_yaml) == (
        f"  - name: Patients Together blog\n    tags: [patients]\n"
        f"    url: {feed_server.url('/feed.xml')}\n"
    )
    out = capsys.readouterr().out
    assert f"The page also names {feed_server.url('/comments/feed.xml')}" in out
    assert "--name" in out  # the name came from the feed's title


def test_add_takes_a_feed_address_as_it_is(feeds_yaml, feed_server):
    feed_server.add("/feed.xml", FEED)
    assert cli(feeds_yaml, "add", feed_server.url("/feed.xml"), "--name", "PT") == 0
    assert added(feeds_yaml) == f"  - name: PT\n    url: {feed_server.url('/feed.xml')}\n"


def test_add_skips_a_named_feed_that_is_broken_for_the_next_one(feeds_yaml, feed_server):
    feed_server.add("/", page("/gone.xml", "/feed.xml"), content_type="text/html")
    feed_server.add("/gone.xml", b"not found", status=404, content_type="text/plain")
    feed_server.add("/feed.xml", FEED)
    assert cli(feeds_yaml, "add", feed_server.url("/"), "--name", "PT") == 0
    assert added(feeds_yaml).endswith(f"url: {feed_server.url('/feed.xml')}\n")


def test_a_page_without_a_feed_is_refused_plainly(feeds_yaml, feed_server, capsys):
    feed_server.add("/", page(), content_type="text/html")
    assert cli(feeds_yaml, "add", feed_server.url("/")) == 1
    err = capsys.readouterr().err
    assert "does not say where its feed is" in err and "links:" in err
    assert added(feeds_yaml) == ""


def test_a_duplicate_is_refused_and_names_the_source_and_line(feeds_yaml, capsys):
    assert cli(feeds_yaml, "add", "https://bsky.app/profile/drsam.bsky.social") == 0
    before = feeds_yaml.read_bytes()
    assert cli(feeds_yaml, "add", "https://bsky.app/profile/drsam.bsky.social/", "--name", "X") == 1
    err = capsys.readouterr().err
    assert "already in feeds.yaml: source 'drsam.bsky.social' (line " in err
    assert "Nothing was added" in err
    assert feeds_yaml.read_bytes() == before


def test_a_site_already_followed_by_its_page_is_a_duplicate(feeds_yaml, capsys):
    assert cli(feeds_yaml, "add", "https://keepournhspublic.com/") == 1
    assert "source 'Keep Our NHS Public' (line " in capsys.readouterr().err


def test_a_name_already_taken_is_refused(feeds_yaml, capsys):
    assert cli(feeds_yaml, "add", "https://x.com/konp", "--name", "Keep our NHS public") == 1
    assert "There is already a source called 'Keep Our NHS Public'" in capsys.readouterr().err


def test_add_refuses_to_edit_a_feeds_yaml_that_has_problems(tmp_path, capsys):
    path = tmp_path / "feeds.yaml"
    path.write_text("sources:\n  - name: A\n    mastadon: '@a@b.example'\n", encoding="utf-8")
    before = path.read_bytes()
    assert cli(path, "add", "https://x.com/a", "--name", "B") == 2
    assert "did you mean 'mastodon'?" in capsys.readouterr().err
    assert path.read_bytes() == before


def test_add_keeps_a_differently_indented_file_as_it_was(tmp_path):
    path = tmp_path / "feeds.yaml"
    text = (
        "# my campaign\n"
        "settings:\n"
        '    title: "Mine"   # four spaces here\n'
        "sources:\n"
        "- name: First\n"
        "  site: https://first.example/\n"
        "# the end"
    )
    path.write_text(text, encoding="utf-8")
    assert cli(path, "add", "https://bsky.app/profile/a.example", "--name", "A") == 0
    new = path.read_text(encoding="utf-8")
    head, tail = text.split("# the end")
    assert new == head + "- name: A\n  bluesky: a.example\n" + "# the end" + tail + "\n"


# --------------------------------------------------------------------------- import / export

OPML = """<?xml version="1.0" encoding="utf-8"?>
<opml version="2.0"><head><title>My reader</title></head><body>
<outline text="Campaigners" title="Campaigners">
  <outline type="rss" text="Nurse Jo" xmlUrl="https://mastodon.example/@nurse_jo.rss"/>
  <outline type="rss" text="Keep Our NHS Public" xmlUrl="https://keepournhspublic.com/"/>
</outline>
<outline type="rss" text="Health blog" xmlUrl="https://health.example/feed/"/>
<outline type="rss" text="Not a feed" xmlUrl="ftp://files.example/feed"/>
</body></opml>"""


def test_import_adds_new_feeds_skips_duplicates_and_keeps_the_file(feeds_yaml, tmp_path, capsys):
    opml = tmp_path / "subscriptions.opml"
    opml.write_text(OPML, encoding="utf-8")
    assert cli(feeds_yaml, "import", str(opml)) == 0
    assert added(feeds_yaml) == (
        "  - name: Nurse Jo\n    tags: [campaigners]\n"
        "    url: https://mastodon.example/@nurse_jo.rss\n"
        "  - name: Health blog\n    url: https://health.example/feed/\n"
    )
    out = capsys.readouterr().out
    assert "skipped 'Keep Our NHS Public': https://keepournhspublic.com/ is already in" in out
    assert "skipped 'Not a feed'" in out
    assert "Added 2 source(s)" in out
    config = load_config(feeds_yaml)
    assert config.sources[-2].feeds[0].platform == "mastodon"
    # Importing again adds nothing and leaves the file alone.
    before = feeds_yaml.read_bytes()
    assert cli(feeds_yaml, "import", str(opml)) == 0
    assert "Nothing new to add" in capsys.readouterr().out
    assert feeds_yaml.read_bytes() == before


def test_import_refuses_a_file_that_is_not_opml(feeds_yaml, tmp_path, capsys):
    bad = tmp_path / "list.opml"
    bad.write_text("<html><body>not opml</body></html>", encoding="utf-8")
    assert cli(feeds_yaml, "import", str(bad)) == 1
    assert "is XML but not OPML" in capsys.readouterr().err
    bad.write_text("name,url\n", encoding="utf-8")
    assert cli(feeds_yaml, "import", str(bad)) == 1
    assert "is not an OPML file" in capsys.readouterr().err
    assert added(feeds_yaml) == ""


def test_export_writes_opml_that_imports_back_as_the_same_sources(tmp_path, capsys):
    source = tmp_path / "a" / "feeds.yaml"
    source.parent.mkdir()
    source.write_text(
        "sources:\n"
        "  - name: Siân Evans\n"
        "    feeds:\n"
        "      - mastodon: '@sian@mastodon.example'\n"
        "      - url: https://sian.example/feed/\n"
        "  - name: Fair Pay\n"
        "    url: https://fairpay.example/feed.xml\n"
        "  - name: Links only\n"
        "    links: [https://x.com/links]\n",
        encoding="utf-8",
    )
    out = tmp_path / "list.opml"
    assert cli(source, "export", "-o", str(out)) == 0
    root = etree.fromstring(out.read_bytes())
    assert root.get("version") == "2.0"
    urls = [o.get("xmlUrl") for o in root.iter("outline") if o.get("xmlUrl")]
    assert urls == [
        "https://mastodon.example/@sian.rss",
        "https://sian.example/feed/",
        "https://fairpay.example/feed.xml",
    ]
    assert not (source.parent / "data").exists()  # export never creates a database
    capsys.readouterr()
    assert cli(source, "export") == 0
    assert capsys.readouterr().out == out.read_text(encoding="utf-8")

    target = tmp_path / "b" / "feeds.yaml"
    target.parent.mkdir()
    target.write_text("# moved here\nsources: []\n", encoding="utf-8")
    assert cli(target, "import", str(out)) == 0
    config = load_config(target)
    assert [(s.name, [f.url for f in s.feeds]) for s in config.sources] == [
        ("Siân Evans", ["https://mastodon.example/@sian.rss", "https://sian.example/feed/"]),
        ("Fair Pay", ["https://fairpay.example/feed.xml"]),
    ]
    assert target.read_text(encoding="utf-8").startswith("# moved here\n")


# --------------------------------------------------------------------------- check


def test_check_says_plainly_when_a_source_has_only_platform_links(tmp_path, capsys):
    path = tmp_path / "feeds.yaml"
    path.write_text(
        "sources:\n"
        "  - name: Nurse Jo\n"
        "    links:\n"
        "      - https://www.threads.net/@jo\n"
        "      - https://www.tiktok.com/@jo\n"
        "      - https://www.instagram.com/jo/\n"
        "      - https://x.com/jo\n",
        encoding="utf-8",
    )
    assert cli(path, "check") == 0
    out = capsys.readouterr().out
    assert (
        "note: 'Nurse Jo' has only profile links (Threads, TikTok, Instagram, X) and no public "
        "feed, so nothing is fetched for it" in out
    )
