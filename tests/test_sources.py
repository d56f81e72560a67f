"""Shorthands in feeds.yaml become the right feed URLs, and wrong ones are explained."""

from __future__ import annotations

import pytest

from aggregator.sources import (
    FeedTarget,
    bluesky_feed,
    link_label,
    mastodon_feed,
    mastodon_tag_feed,
    no_feed_platform,
    platform_for,
    resolve,
    site_page,
    slugify,
    url_feed,
    youtube_feed,
)

CHANNEL = "UC" + "a1B2c3D4e5F6g7H8i9J0k_"  # 24 characters, the shape of a channel id
DID = "did:plc:" + "abcdefghijklmnopqrstuvwx"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("@campaigner@mastodon.example", "https://mastodon.example/@campaigner.rss"),
        ("campaigner@mastodon.example", "https://mastodon.example/@campaigner.rss"),
        ("  @campaigner@Mastodon.Example ", "https://mastodon.example/@campaigner.rss"),
        ("@first.last@mastodon.example", "https://mastodon.example/@first.last.rss"),
        ("https://mastodon.example/@campaigner", "https://mastodon.example/@campaigner.rss"),
        ("https://mastodon.example/@campaigner/", "https://mastodon.example/@campaigner.rss"),
        ("https://mastodon.example/@campaigner.rss", "https://mastodon.example/@campaigner.rss"),
    ],
)
def test_mastodon_accounts_become_their_rss_url(value: str, expected: str) -> None:
    assert mastodon_feed(value) == expected


@pytest.mark.parametrize(
    "value",
    ["campaigner", "@campaigner", "@campaigner@", "@a@b", "https://mastodon.example/about", ""],
)
def test_wrong_mastodon_accounts_are_explained_with_an_example(value: str) -> None:
    with pytest.raises(ValueError, match="@yourname@mastodon.example"):
        mastodon_feed(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("#NHS@mastodon.example", "https://mastodon.example/tags/NHS.rss"),
        ("NHS@mastodon.example", "https://mastodon.example/tags/NHS.rss"),
        ("#junior_doctors@mastodon.example", "https://mastodon.example/tags/junior_doctors.rss"),
        ("https://mastodon.example/tags/NHS", "https://mastodon.example/tags/NHS.rss"),
    ],
)
def test_mastodon_hashtags_become_the_servers_tag_feed(value: str, expected: str) -> None:
    assert mastodon_tag_feed(value) == expected


@pytest.mark.parametrize("value", ["#NHS", "#save our NHS@mastodon.example", "#@mastodon.example"])
def test_wrong_mastodon_hashtags_are_explained(value: str) -> None:
    with pytest.raises(ValueError, match=r"#NHS@mastodon\.example"):
        mastodon_tag_feed(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("campaigner.bsky.social", "https://bsky.app/profile/campaigner.bsky.social/rss"),
        ("@campaigner.bsky.social", "https://bsky.app/profile/campaigner.bsky.social/rss"),
        ("Campaign.Example", "https://bsky.app/profile/campaign.example/rss"),
        (DID, f"https://bsky.app/profile/{DID}/rss"),
        (
            "https://bsky.app/profile/campaigner.bsky.social",
            "https://bsky.app/profile/campaigner.bsky.social/rss",
        ),
        (f"https://bsky.app/profile/{DID}/", f"https://bsky.app/profile/{DID}/rss"),
    ],
)
def test_bluesky_handles_become_the_profile_rss_url(value: str, expected: str) -> None:
    assert bluesky_feed(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "campaigner",
        "campaigner.",
        "-bad.bsky.social",
        "campaigner.bsky.123",
        "did:plc:short",
        "https://example.com/profile/campaigner.bsky.social",
        "https://bsky.app/search?q=nhs",
    ],
)
def test_wrong_bluesky_handles_are_explained_with_an_example(value: str) -> None:
    with pytest.raises(ValueError, match="YOUR-HANDLE.bsky.social"):
        bluesky_feed(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (CHANNEL, f"https://www.youtube.com/feeds/videos.xml?channel_id={CHANNEL}"),
        (
            f"https://www.youtube.com/channel/{CHANNEL}",
            f"https://www.youtube.com/feeds/videos.xml?channel_id={CHANNEL}",
        ),
        (
            f"https://youtube.com/channel/{CHANNEL}/videos",
            f"https://www.youtube.com/feeds/videos.xml?channel_id={CHANNEL}",
        ),
        (
            f"https://www.youtube.com/feeds/videos.xml?channel_id={CHANNEL}",
            f"https://www.youtube.com/feeds/videos.xml?channel_id={CHANNEL}",
        ),
        # Handles cannot be turned into a channel id without loading the page.
        ("https://www.youtube.com/@CampaignChannel", "https://www.youtube.com/@CampaignChannel"),
        ("https://m.youtube.com/@CampaignChannel", "https://www.youtube.com/@CampaignChannel"),
        ("@CampaignChannel", "https://www.youtube.com/@CampaignChannel"),
    ],
)
def test_youtube_channels_become_the_channel_feed_or_a_page(value: str, expected: str) -> None:
    assert youtube_feed(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "UCtooShort",
        "campaign channel",
        "https://www.youtube.com/watch?v=abc",
        f"https://vimeo.com/channel/{CHANNEL}",
    ],
)
def test_wrong_youtube_channels_are_explained_with_an_example(value: str) -> None:
    with pytest.raises(ValueError, match="UCxxxxxxxxxxxxxxxxxxxxxx"):
        youtube_feed(value)


def test_a_youtube_handle_resolves_to_a_page_whose_feed_is_discovered() -> None:
    assert resolve("youtube", "https://www.youtube.com/@CampaignChannel") == FeedTarget(
        "https://www.youtube.com/@CampaignChannel", "site", "youtube"
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://campaign.example/feed/", "https://campaign.example/feed/"),
        ("HTTP://Campaign.Example/Feed.XML", "http://campaign.example/Feed.XML"),
        ("https://campaign.example:8443/feed?x=1", "https://campaign.example:8443/feed?x=1"),
    ],
)
def test_feed_urls_keep_their_path_and_lower_case_the_host(value: str, expected: str) -> None:
    assert url_feed(value) == expected
    assert site_page(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("campaign.example/feed", "does not start with https:// or http://"),
        ("ftp://campaign.example/feed", "starts with ftp://"),
        ("https:///feed", "no website name"),
        ("https://campaign.example/my feed", "has a space"),
        ("", "empty"),
    ],
)
def test_urls_that_are_not_full_web_addresses_are_explained(value: str, message: str) -> None:
    for check in (url_feed, site_page):
        with pytest.raises(ValueError, match=message) as info:
            check(value)
        assert "https://campaign.example/" in str(info.value)


@pytest.mark.parametrize(
    ("url", "platform"),
    [
        ("https://www.threads.net/@someone", "Threads"),
        ("https://threads.com/@someone", "Threads"),
        ("https://www.tiktok.com/@someone", "TikTok"),
        ("https://instagram.com/someone", "Instagram"),
        ("https://x.com/someone", "X"),
        ("https://mobile.twitter.com/someone", "X"),
    ],
)
def test_feeds_on_platforms_without_feeds_are_sent_to_links(url: str, platform: str) -> None:
    assert no_feed_platform(url) == platform
    with pytest.raises(
        ValueError, match=f"^{platform} has no public feed; put this under `links:`"
    ):
        url_feed(url)


@pytest.mark.parametrize(
    ("kind", "url", "platform"),
    [
        ("url", "https://campaign.example/feed/", "blog"),
        ("site", "https://campaign.example/", "blog"),
        ("url", "https://mastodon.example/@campaigner.rss", "mastodon"),
        ("url", "https://mastodon.example/tags/NHS.rss", "mastodon"),
        ("url", "https://bsky.app/profile/campaigner.bsky.social/rss", "bluesky"),
        ("url", f"https://www.youtube.com/feeds/videos.xml?channel_id={CHANNEL}", "youtube"),
        ("mastodon", "https://mastodon.example/@campaigner.rss", "mastodon"),
        ("mastodon_tag", "https://mastodon.example/tags/NHS.rss", "mastodon"),
        ("bluesky", "https://bsky.app/profile/campaigner.bsky.social/rss", "bluesky"),
        ("youtube", "https://www.youtube.com/@CampaignChannel", "youtube"),
    ],
)
def test_each_feed_gets_the_platform_supporters_see(kind: str, url: str, platform: str) -> None:
    assert platform_for(kind, url) == platform  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kind", "value", "expected"),
    [
        (
            "url",
            "https://campaign.example/feed/",
            ("https://campaign.example/feed/", "url", "blog"),
        ),
        ("site", "https://campaign.example/", ("https://campaign.example/", "site", "blog")),
        (
            "mastodon",
            "@campaigner@mastodon.example",
            ("https://mastodon.example/@campaigner.rss", "mastodon", "mastodon"),
        ),
        (
            "mastodon_tag",
            "#NHS@mastodon.example",
            ("https://mastodon.example/tags/NHS.rss", "mastodon_tag", "mastodon"),
        ),
        (
            "bluesky",
            "campaigner.bsky.social",
            ("https://bsky.app/profile/campaigner.bsky.social/rss", "bluesky", "bluesky"),
        ),
        (
            "youtube",
            CHANNEL,
            (
                f"https://www.youtube.com/feeds/videos.xml?channel_id={CHANNEL}",
                "youtube",
                "youtube",
            ),
        ),
    ],
)
def test_resolve_gives_url_kind_and_platform(
    kind: str, value: str, expected: tuple[str, str, str]
) -> None:
    assert resolve(kind, value) == FeedTarget(*expected)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Siân Jones", "sian-jones"),
        ("Keep Our NHS Public", "keep-our-nhs-public"),
        ("The King's Fund", "the-kings-fund"),
        ("  Junior Doctors  ", "junior-doctors"),
        ("junior_doctors", "junior-doctors"),
        ("Nurses & Midwives", "nurses-and-midwives"),
        ("Zoë Ó Briain", "zoe-o-briain"),
        ("NHS 75", "nhs-75"),
        ("日本", ""),
    ],
)
def test_slugify_makes_ascii_lower_case_hyphenated_names(name: str, slug: str) -> None:
    assert slugify(name) == slug


@pytest.mark.parametrize(
    ("url", "label"),
    [
        ("https://www.tiktok.com/@someone", "TikTok"),
        ("https://www.threads.net/@someone", "Threads"),
        ("https://www.threads.com/@someone", "Threads"),
        ("https://www.instagram.com/someone/", "Instagram"),
        ("https://x.com/someone", "X"),
        ("https://twitter.com/someone", "X"),
        ("https://www.facebook.com/someone", "Facebook"),
        ("https://uk.linkedin.com/in/someone", "LinkedIn"),
        ("https://www.campaign.example/about", "campaign.example"),
    ],
)
def test_profile_links_are_labelled_by_their_site(url: str, label: str) -> None:
    assert link_label(url) == label
