"""A small, realistic site for the render, syndication, W3C and browser tests.

Fictional campaigners (reserved example domains only), stored the way the
pipeline stores them: ParsedEntry -> sanitize.sanitize_entry -> Store.save_fetched.
The clock is pinned to NOW; config is built in code (no feeds.yaml loader).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aggregator.models import (
    Config,
    ErrorInfo,
    FeedSpec,
    Media,
    PageSettings,
    ParsedEntry,
    ParsedFeed,
    ProfileLink,
    Settings,
    Source,
    Validators,
)
from aggregator.parse import derive_title
from aggregator.sanitize import sanitize_entry
from aggregator.store import Store

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
BASE_URL = "https://campaign.example/nhs/"


def spec(slug: str, platform: str, url: str) -> FeedSpec:
    kind = platform if platform in ("mastodon", "bluesky", "youtube") else "url"
    return FeedSpec(key=url, url=url, kind=kind, platform=platform, source=slug)


SIAN_MASTODON = spec("sian", "mastodon", "https://mastodon.example/@sian.rss")
SIAN_BLOG = spec("sian", "blog", "https://sian.example/feed/")
FAIRPAY = spec("fairpay", "blog", "https://fairpay.example/feed.xml")
SAM_BLUESKY = spec("sam", "bluesky", "https://bsky.example/profile/drsam.bsky.social/rss")
SAM_YOUTUBE = spec("sam", "youtube", "https://youtube.example/feeds/videos.xml?channel_id=UC1")
CYMRU = spec("cymru", "blog", "https://iechyd.example/feed.atom")

SOURCES = (
    Source(
        slug="sian",
        name="Siân Evans",
        feeds=(SIAN_MASTODON, SIAN_BLOG),
        tags=("Junior doctors", "staffing"),
        links=(ProfileLink("https://www.tiktok.com/@sian.example", "TikTok"),),
    ),
    Source(slug="fairpay", name="Fair Pay for Nurses", feeds=(FAIRPAY,), tags=("pay", "staffing")),
    Source(
        slug="sam",
        name="Dr Sam Okafor",
        feeds=(SAM_BLUESKY, SAM_YOUTUBE),
        tags=("GPs",),
        links=(ProfileLink("https://www.threads.example/@drsam", "Threads"),),
    ),
    Source(slug="cymru", name="Iechyd Cymru", feeds=(CYMRU,), tags=("Wales",)),
    Source(
        slug="links-only",
        name="Patients Together",
        feeds=(),
        links=(ProfileLink("https://www.tiktok.com/@patients.example", "TikTok"),),
    ),
)


def make_config(tmp_path: Path, *, base_url: str = BASE_URL, sources=SOURCES, **page) -> Config:
    settings = Settings(
        title="NHS campaigners",
        description="Posts from people campaigning for the NHS, in one place.",
        base_url=base_url,
        database=tmp_path / "data" / "site.sqlite",
        output=tmp_path / "public",
        page=PageSettings(**page),
    )
    return Config(path=tmp_path / "feeds.yaml", settings=settings, sources=tuple(sources))


def post(
    guid: str,
    published: datetime,
    *,
    title: str | None = None,
    text: str = "",
    html: str | None = None,
    link: str | None = None,
    **kw,
) -> ParsedEntry:
    """A ParsedEntry; no title means a social post (title derived from the text)."""
    derived = title is None
    return ParsedEntry(
        guid=guid,
        link=link if link is not None else guid,
        title=title if title is not None else derive_title(text),
        title_derived=derived,
        summary=text,
        content=html if html is not None else f"<p>{text}</p>",
        published=published,
        **kw,
    )


def save(store: Store, feed: FeedSpec, entries, *, now: datetime = NOW, base: str | None = None):
    """Store entries as the update pipeline does: sanitised, in one transaction."""
    safe = tuple(sanitize_entry(e, base or feed.url) for e in entries)
    parsed = ParsedFeed(
        format="rss20", title=feed.source, link=base or feed.url, language="en", entries=safe
    )
    return store.save_fetched(
        feed.key,
        parsed,
        validators=Validators("etag"),
        body_hash="h",
        now=now,
        next_poll=now + timedelta(minutes=30),
    )


def at(hours_ago: float) -> datetime:
    return NOW - timedelta(hours=hours_ago)


def fill(store: Store, config: Config) -> Store:
    """A week of posts: a prolific Mastodon day, blogs, Bluesky, a video, Welsh, media."""
    store.sync_feeds(config.feeds())
    busy = [
        post(
            f"https://mastodon.example/@sian/1135{n:02d}",
            at(1 + n * 0.5),
            text=[
                "Night shift done. Twelve patients, two of us on the ward. "
                "Safe staffing is not a luxury, it is patient safety. #SafeStaffing #NHS",
                "Thank you to everyone who came to the rally in Cardiff today.",
                "Rota gaps again this week. Write to your MP: it takes five minutes.",
                "Ward 7 has had no permanent sister for six months.",
                "Reading the new workforce plan so you don't have to. Thread below.",
                "Point 1: it assumes retention improves by itself. It won't.",
                "Point 2: no money for training places until 2028.",
                "Point 3: nothing on pay restoration at all.",
            ][n],
            tags=("SafeStaffing",),
            media=(
                (
                    Media(
                        "https://files.mastodon.example/rally.jpg",
                        "image/jpeg",
                        title="Nurses holding a banner outside the hospital",
                        width=1200,
                        height=800,
                    ),
                )
                if n == 1
                else ()
            ),
        )
        for n in range(8)
    ]
    save(store, SIAN_MASTODON, busy, base="https://mastodon.example/@sian")
    save(
        store,
        SIAN_BLOG,
        [
            post(
                "https://sian.example/2026/11/why-we-strike",
                at(30),
                title="Why we are balloting for strike action",
                text="Nobody wants to strike. But after fifteen years of real-terms pay cuts, "
                "junior doctors are leaving for Australia faster than we can train them.",
                tags=("pay",),
            )
        ],
        base="https://sian.example/",
    )
    save(
        store,
        FAIRPAY,
        [
            post(
                "https://fairpay.example/news/petition-100k",
                at(5),
                title="Our petition passed 100,000 signatures",
                text="Parliament must now consider a debate on nurses' pay. Thank you.",
                html="<p>Parliament must now consider a <a href='/debate'>debate</a>.</p>"
                "<p><img src='https://fairpay.example/img/petition.png' alt='Petition total'></p>",
            ),
            post(
                "https://fairpay.example/news/podcast-3",
                at(52),
                title="Podcast: a day in A&E",
                text="Episode 3 of our podcast follows a charge nurse through one shift.",
                media=(
                    Media(
                        "https://fairpay.example/audio/ep3.mp3",
                        "audio/mpeg",
                        length=23456789,
                        title="Episode 3",
                    ),
                ),
            ),
        ],
        base="https://fairpay.example/",
    )
    save(
        store,
        SAM_BLUESKY,
        [
            post(
                "at://did:plc:sam/app.bsky.feed.post/3k1",
                at(3),
                text="GP appointments: demand is up 20% since 2019, GP numbers are down. "
                "The maths does not work.",
                link="https://bsky.example/profile/drsam.bsky.social/post/3k1",
            ),
            post(
                "at://did:plc:sam/app.bsky.feed.post/3k0",
                at(75),
                text="Back at the surgery after a week off. 43 letters waiting.",
                link="https://bsky.example/profile/drsam.bsky.social/post/3k0",
            ),
        ],
        base="https://bsky.example/profile/drsam.bsky.social",
    )
    save(
        store,
        SAM_YOUTUBE,
        [
            post(
                "yt:video:abc123",
                at(26),
                title="What a GP does in a 10-minute appointment",
                text="I filmed a (pretend) morning clinic to show where the time goes.",
                link="https://youtube.example/watch?v=abc123",
                media=(
                    Media(
                        "https://youtube.example/v/abc123",
                        "application/x-shockwave-flash",
                        width=640,
                        height=390,
                    ),
                    Media(
                        "https://i.youtube.example/vi/abc123/hqdefault.jpg",
                        "image/jpeg",
                        width=480,
                        height=360,
                    ),
                    Media("https://youtube.example/video/abc123.mp4", "video/mp4", length=9000000),
                ),
            )
        ],
        base="https://youtube.example/channel/UC1",
    )
    save(
        store,
        CYMRU,
        [
            post(
                "tag:iechyd.example,2026:1",
                at(50),
                link="https://iechyd.example/cy/amseroedd-aros",
                title="Amseroedd aros yng Nghymru",
                text="Mae rhestrau aros wedi cyrraedd eu lefel uchaf erioed.",
                language="cy",
            ),
            post(
                "tag:iechyd.example,2026:0",
                at(100),
                link="https://iechyd.example/en/waiting-times",
                title="Waiting times in Wales",
                text="Waiting lists in Wales have reached a record high.",
                language="en-GB",
            ),
        ],
        base="https://iechyd.example/",
    )
    store.save_error(
        SAM_YOUTUBE.key,
        ErrorInfo(
            kind="http",
            message="The server says this feed does not exist (HTTP 404). Check the channel id.",
            http_status=404,
        ),
        now=NOW - timedelta(hours=2),
        next_poll=NOW + timedelta(hours=1),
    )
    store.set_fetch_url(CYMRU.key, "https://iechyd.example/newydd/feed.atom", redirected=True)
    return store


def open_filled(tmp_path: Path, **kw) -> tuple[Config, Store]:
    config = make_config(tmp_path, **kw)
    store = Store.open(config.settings.database)
    fill(store, config)
    return config, store


def with_base(config: Config, base_url: str) -> Config:
    return replace(config, settings=replace(config.settings, base_url=base_url))
