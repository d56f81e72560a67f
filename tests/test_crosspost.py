"""Cross-posts and shared links on plain StoredEntry values (issue 7)."""

from datetime import UTC, datetime, timedelta

import pytest

from aggregator.crosspost import also_on, article_keys, earliest_seen, join_names, merge, normalise
from aggregator.models import StoredEntry

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
DAY = timedelta(hours=24)


def entry(
    id,
    *,
    source="sian",
    platform="mastodon",
    feed=None,
    minutes=0,
    text="",
    html=None,
    title=None,
    link=None,
    seen=None,
):
    published = T0 + timedelta(minutes=minutes)
    return StoredEntry(
        id=id,
        feed_key=feed or f"https://{platform}.example/{source}.rss",
        source=source,
        platform=platform,
        guid=id,
        link=link or f"https://{platform}.example/{source}/{id}",
        title=title or text[:60],
        title_derived=title is None,
        summary=text,
        content=html if html is not None else f"<p>{text}</p>",
        author=None,
        published=published,
        updated=published,
        first_seen=seen or published,
        language="en",
        media=(),
        tags=(),
    )


def shown(posts):
    return [(p.entry.id, sorted(e.id for e in p.copies)) for p in posts]


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (
            "Twelve-hour shift, three nurses short. #NHS #SafeStaffing",
            "Twelve-hour shift, three nurses short 🦋 crossposted",
        ),
        (
            "Write to your MP today: https://write.example/mp?utm_source=x",
            "Write to your MP today! write.example/mp… (crossposted from Mastodon)",
        ),
        (
            "@sam@mastodon.example is right about rota gaps",
            "@sam.bsky.social is right about rota gaps",
        ),
        ("Safe   staffing\n\nsaves lives.", "safe staffing saves lives"),
        ("Cross-posted from my blog: waiting lists are up", "waiting lists are up"),
    ],
)
def test_normalised_text_ignores_links_tags_mentions_markers_and_spacing(a, b):
    assert normalise(a) == normalise(b)
    assert normalise(a)


def test_normalised_text_keeps_the_words_that_differ():
    assert normalise("Rota gaps on ward 7") != normalise("Rota gaps on ward 8")


def test_the_same_words_on_mastodon_and_bluesky_are_one_post_linking_the_other():
    toot = entry("m1", text="Night shift done. Twelve patients, two of us on the ward. #NHS")
    skeet = entry(
        "b1",
        platform="bluesky",
        minutes=3,
        text="Night shift done. Twelve patients, two of us on the ward. 🦋 crossposted",
    )
    [post] = merge([skeet, toot], window=DAY)
    assert post.entry.id == "m1"  # no blog version: the earliest
    assert [e.id for e in post.copies] == ["b1"]
    [also] = also_on(post)
    assert also.label == "Bluesky"
    assert also.url == "https://bluesky.example/sian/b1"


def test_near_identical_text_is_the_same_post_but_different_text_is_not():
    a = entry("m1", text="Thank you to everyone who came to the rally in Cardiff today.")
    typo = entry(
        "b1",
        platform="bluesky",
        minutes=2,
        text="Thank you to everyone who came to the rally in Cardif today!",
    )
    other = entry(
        "b2",
        platform="bluesky",
        minutes=4,
        text="Thank you to everyone who signed the petition this week.",
    )
    posts = merge([a, typo, other], window=DAY)
    assert shown(posts) == [("b2", []), ("m1", ["b1"])]


def test_a_version_cut_short_for_bluesky_is_the_same_post():
    long = (
        "Reading the new workforce plan so you don't have to. It assumes retention improves "
        "by itself, puts no money into training places until 2028 and says nothing about pay."
    )
    short = long[:110] + "…"
    posts = merge(
        [entry("m1", text=long), entry("b1", platform="bluesky", minutes=1, text=short)],
        window=DAY,
    )
    assert shown(posts) == [("m1", ["b1"])]


def test_posts_linking_the_same_blog_post_merge_with_it_and_the_blog_is_primary():
    blog = entry(
        "blog1",
        platform="blog",
        minutes=30,
        title="Why we are balloting",
        text="Nobody wants to strike. But...",
        link="https://sian.example/2026/11/why-we-strike/",
    )
    toot = entry(
        "m1",
        text="New on the blog",
        html='<p>New on the blog: <a href="https://sian.example/2026/11/why-we-strike?utm_source=mastodon">'
        'sian.example/2026/11/why…</a> <a href="https://mastodon.example/tags/NHS">#NHS</a></p>',
    )
    skeet = entry(
        "b1", platform="bluesky", minutes=5, text="Blog: http://sian.example/2026/11/why-we-strike"
    )
    [post] = merge([toot, skeet, blog], window=DAY)
    assert post.entry.id == "blog1"
    assert [a.label for a in also_on(post)] == ["Mastodon", "Bluesky"]
    [earliest] = merge([toot, skeet, blog], window=DAY, primary="earliest")
    assert earliest.entry.id == "m1"
    assert sorted(e.id for e in earliest.copies) == ["b1", "blog1"]


def test_hashtag_and_mention_links_are_not_articles():
    toot = entry(
        "m1",
        html='<p><a href="https://mastodon.example/tags/NHS">#NHS</a> '
        '<a href="https://mastodon.example/@sam">@sam</a> '
        '<a href="https://news.example/report">the report</a></p>',
    )
    assert article_keys(toot) == {"https://news.example/report"}


def test_different_campaigners_saying_the_same_thing_stay_apart():
    a = entry("m1", text="Join the march on Saturday at noon, Parliament Square.")
    b = entry(
        "m2", source="sam", minutes=1, text="Join the march on Saturday at noon, Parliament Square."
    )
    assert len(merge([a, b], window=DAY)) == 2


def test_posts_further_apart_than_the_window_stay_apart():
    a = entry("m1", text="Join the march on Saturday at noon, Parliament Square.")
    b = entry("b1", platform="bluesky", minutes=25 * 60, text=a.summary)
    assert len(merge([a, b], window=DAY)) == 2
    assert len(merge([a, b], window=timedelta(hours=26))) == 1


def test_a_thread_on_one_feed_is_never_merged_into_one_post():
    # Three toots of one thread all link the same report; one Bluesky post links it too.
    html = '<p>Point {n}: see <a href="https://news.example/report">the report</a></p>'
    thread = [entry(f"m{n}", minutes=n, html=html.format(n=n), text=f"Point {n}") for n in range(3)]
    skeet = entry("b1", platform="bluesky", minutes=5, html=html.format(n=9), text="Point 9")
    posts = merge([*thread, skeet], window=DAY)
    assert len(posts) == 3
    assert sum(len(p.copies) for p in posts) == 1


def test_a_bridged_copy_is_never_the_primary_while_the_original_is_there():
    text = "Ward 7 has had no permanent sister for six months. Six months!"
    original = entry("m1", minutes=10, text=text)
    bridged = entry(
        "b1",
        platform="bluesky",
        feed="https://bsky.app/profile/sian.mastodon.example.ap.brid.gy/rss",
        link="https://bsky.app/profile/sian.mastodon.example.ap.brid.gy/post/3k1",
        text=text,
    )  # its clock says it came first
    [post] = merge([bridged, original], window=DAY, primary="earliest")
    assert post.entry.id == "m1"
    assert [a.label for a in also_on(post)] == ["Bluesky (bridged)"]


def test_a_bridgy_redirect_back_to_the_original_is_the_same_post():
    original = entry("b1", platform="bluesky", link="https://bsky.app/profile/sam.example/post/3k1")
    copy = entry(
        "m1",
        feed="https://bsky.brid.gy/@sam.example.rss",
        minutes=2,
        link="https://bsky.brid.gy/r/https://bsky.app/profile/sam.example/post/3k1",
        text="A completely different rendering of the text",
    )
    [post] = merge([original, copy], window=DAY)
    assert post.entry.id == "b1"


def test_shared_links_show_one_article_with_everyone_who_shared_it():
    html = (
        '<p>{who} says read <a href="https://news.example/nhs-report?utm_source={who}">this</a></p>'
    )
    shares = [
        entry(f"m{n}", source=who, minutes=n * 10, html=html.format(who=who), text=who)
        for n, who in enumerate(["sian", "sam", "fairpay"])
    ]
    alone = entry("m9", source="cymru", minutes=5, text="Something else entirely, about Wales.")
    assert len(merge([*shares, alone], window=DAY)) == 4  # off unless asked
    posts = merge([*shares, alone], window=DAY, shared_links=True)
    assert len(posts) == 2
    [shared] = [p for p in posts if p.shared]
    assert shared.entry.id == "m0"  # the earliest share
    assert [p.entry.source for p in shared.shared] == ["sam", "fairpay"]
    assert {e.id for e in shared.members} == {"m0", "m1", "m2"}


def test_the_articles_own_blog_post_is_shown_when_others_share_it():
    article = entry(
        "blog1",
        source="fairpay",
        platform="blog",
        minutes=60,
        title="Our petition passed 100,000",
        link="https://fairpay.example/news/petition",
    )
    share = entry(
        "m1",
        html='<p>Sign it: <a href="https://fairpay.example/news/petition/">petition</a></p>',
        text="Sign it",
    )
    [post] = merge([share, article], window=DAY, shared_links=True)
    assert post.entry.id == "blog1"
    assert [p.entry.id for p in post.shared] == ["m1"]


def test_earliest_seen_is_when_the_post_became_news():
    a = entry("m1", text="Join the march on Saturday at noon.", seen=T0 + timedelta(hours=5))
    b = entry("b1", platform="bluesky", minutes=1, text=a.summary, seen=T0 + timedelta(hours=2))
    [post] = merge([a, b], window=DAY)
    assert earliest_seen(post).id == "b1"


def test_names_are_joined_as_people_write_them():
    assert join_names(["A"]) == "A"
    assert join_names(["A", "B"]) == "A and B"
    assert join_names(["A", "B", "C"]) == "A, B and C"


def test_hostile_dotted_text_does_not_hang_the_comparison():
    """A regular expression that backtracks on "a.a.a.…/" would take hours on 200 KB;
    run it in a subprocess with a generous limit so a regression fails instead of hanging."""
    import subprocess
    import sys

    code = (
        "from aggregator.crosspost import normalise\n"
        "assert normalise('a.' * 100_000 + '/ end').endswith('end')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_merges_sharing_comparisons_work_out_each_entry_once_and_agree(monkeypatch):
    # A build merges overlapping sets of the same entries for many pages (issue 8).
    from aggregator import crosspost

    entries = [
        entry("m1", text="Twelve-hour shift, three nurses short. #NHS"),
        entry("b1", platform="bluesky", minutes=2, text="Twelve-hour shift, three nurses short."),
        entry("m2", minutes=90, text="Rally at the town hall on Saturday"),
    ]
    alone = shown(merge(entries, window=timedelta(hours=1)))
    worked_out = []
    original = crosspost._Seen.of.__func__

    def counting(cls, e):
        worked_out.append(e.id)
        return original(cls, e)

    monkeypatch.setattr(crosspost._Seen, "of", classmethod(counting))
    comparisons = crosspost.Comparisons()
    first = merge(entries, window=timedelta(hours=1), comparisons=comparisons)
    second = merge(entries[:2], window=timedelta(hours=1), comparisons=comparisons)
    assert shown(first) == alone == [("m2", []), ("m1", ["b1"])]
    assert shown(second) == [("m1", ["b1"])]
    assert sorted(worked_out) == ["b1", "m1", "m2"]
