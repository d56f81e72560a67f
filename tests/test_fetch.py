"""fetch.py against a real loopback HTTP server: what goes over the wire.

Every test scripts feedserver.FeedServer, fetches through the real httpx stack
and asserts both the FetchResult and the requests the server recorded.  Limits
are kept tiny so slow-server tests end quickly; nothing asserts on speed.
"""

import asyncio
import gzip
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import brotli
import pytest
from feedserver import unused_port_url

from aggregator.fetch import Fetcher, _retry_after, fetch_all, user_agent
from aggregator.models import (
    Fetched,
    FetchFailed,
    FetchLimits,
    FetchRequest,
    NotModified,
    Validators,
)

RSS = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>T</title></channel></rss>"""
UA = "nhs-campaign-aggregator/test (+https://campaign.example.org/; organiser@example.org)"
LIMITS = FetchLimits(
    connect_timeout=2, read_timeout=2, total_timeout=5, max_redirects=5, per_host=2
)


def fetch(url, validators=None, limits=LIMITS, **kw):
    validators = validators or Validators()
    [result] = fetch_all([FetchRequest("k", url, validators)], limits, UA, **kw)
    return result


def failed(result, kind):
    assert isinstance(result, FetchFailed), result
    assert result.error.kind == kind, result.error
    assert result.error.message
    return result.error


# --------------------------------------------------------------------------- user agent


def test_user_agent_names_us_the_campaign_and_the_contact():
    ua = user_agent("organiser@example.org", "https://campaign.example.org/")
    assert ua.startswith("nhs-campaign-aggregator/")
    assert ua.endswith("(+https://campaign.example.org/; organiser@example.org)")


def test_user_agent_without_contact_and_with_line_breaks_stays_one_line():
    assert "\n" not in user_agent("a\r\nb", "https://x.example/")
    assert user_agent("", "https://x.example/").endswith("(+https://x.example/)")


def test_request_headers_are_honest_and_prefer_feeds(feed_server):
    result = fetch(feed_server.add("/feed.xml", RSS))
    assert isinstance(result, Fetched)
    [request] = feed_server.requests
    assert request.headers["user-agent"] == UA
    assert request.headers["accept"].startswith("application/atom+xml")
    assert "*/*;q=0.1" in request.headers["accept"]
    assert set(request.headers["accept-encoding"].replace(" ", "").split(",")) >= {
        "gzip",
        "deflate",
        "br",
    }
    assert "if-none-match" not in request.headers


# --------------------------------------------------------------------------- conditional GET


def test_etag_is_sent_back_and_304_means_not_modified(feed_server):
    url = feed_server.add("/feed.xml", RSS, etag='"v1"', headers={"Cache-Control": "max-age=600"})
    first = fetch(url)
    assert isinstance(first, Fetched)
    assert first.body == RSS
    assert first.validators == Validators(etag='"v1"')
    assert first.max_age == 600
    assert first.final_url == url
    assert first.permanent_redirect is None

    second = fetch(url, first.validators)
    assert isinstance(second, NotModified)
    assert second.validators == Validators(etag='"v1"')
    assert second.elapsed_ms >= 0
    first_request, second_request = feed_server.requests
    assert "if-none-match" not in first_request.headers
    assert second_request.headers["if-none-match"] == '"v1"'
    assert second_request.status == 304


def test_last_modified_is_sent_back_and_304_means_not_modified(feed_server):
    stamp = "Tue, 24 Nov 2026 12:00:00 GMT"
    url = feed_server.add("/feed.atom", RSS, last_modified=stamp)
    first = fetch(url)
    assert first.validators == Validators(last_modified=stamp)
    second = fetch(url, first.validators)
    assert isinstance(second, NotModified)
    assert feed_server.requests[1].headers["if-modified-since"] == stamp
    assert feed_server.requests[1].status == 304


def test_304_without_validators_keeps_the_old_ones(feed_server):
    url = feed_server.add("/feed.xml", RSS, etag='"v1"', validators_on_304=False)
    kept = Validators(etag='"v1"', last_modified="Tue, 24 Nov 2026 12:00:00 GMT")
    result = fetch(url, kept)
    assert isinstance(result, NotModified)
    assert result.validators == kept


def test_changed_feed_is_fetched_again_with_new_validators(feed_server):
    url = feed_server.add("/feed.xml", RSS, etag='"v1"')
    first = fetch(url)
    feed_server.set_body("/feed.xml", RSS + b"\n")
    second = fetch(url, first.validators)
    assert isinstance(second, Fetched)
    assert second.body == RSS + b"\n"
    assert second.validators.etag != '"v1"'


# --------------------------------------------------------------------------- bodies


def test_gzip_body_is_decoded(feed_server):
    url = feed_server.add("/feed.xml", RSS * 50, gzip=True)
    result = fetch(url)
    assert isinstance(result, Fetched)
    assert result.body == RSS * 50
    assert feed_server.requests[0].bytes_sent < len(RSS * 50)  # it went compressed


def test_brotli_body_is_decoded(feed_server):
    url = feed_server.add(
        "/feed.xml", brotli.compress(RSS * 50), headers={"Content-Encoding": "br"}
    )
    result = fetch(url)
    assert isinstance(result, Fetched)
    assert result.body == RSS * 50


def test_content_type_is_passed_on(feed_server):
    result = fetch(feed_server.add("/f.json", b"{}", content_type="application/feed+json"))
    assert result.content_type == "application/feed+json"


def test_streamed_body_is_cut_off_at_max_bytes(feed_server):
    body = b"x" * (5 * 1024 * 1024)
    url = feed_server.add("/huge.xml", body, chunked=True)  # no Content-Length to go by
    error = failed(fetch(url, limits=replace(LIMITS, max_bytes=10 * 1024)), "too_large")
    assert "10 KB limit (settings.fetch.max_bytes)" in error.message
    # The client hung up early: the server never got to send the whole body.
    [request] = feed_server.requests
    assert not request.complete
    assert request.bytes_sent < len(body)


def test_declared_length_over_max_bytes_is_refused_before_reading(feed_server):
    body = b"x" * (5 * 1024 * 1024)
    url = feed_server.add("/huge.xml", body)
    failed(fetch(url, limits=replace(LIMITS, max_bytes=10 * 1024)), "too_large")
    assert feed_server.requests[0].bytes_sent < len(body)


def test_max_bytes_counts_decompressed_bytes(feed_server):
    bomb = b"\0" * (2 * 1024 * 1024)  # compresses to about 2 KB
    url = feed_server.add("/bomb.xml", bomb, gzip=True)
    assert len(gzip.compress(bomb)) < 10 * 1024
    failed(fetch(url, limits=replace(LIMITS, max_bytes=10 * 1024)), "too_large")


def test_feed_at_exactly_max_bytes_is_accepted(feed_server):
    url = feed_server.add("/feed.xml", b"x" * 1024, chunked=True)
    result = fetch(url, limits=replace(LIMITS, max_bytes=1024))
    assert isinstance(result, Fetched)
    assert len(result.body) == 1024


# --------------------------------------------------------------------------- redirects


def test_chain_of_permanent_redirects_reports_the_new_address(feed_server):
    feed_server.add("/old", redirect_to="/older", redirect_status=301)
    feed_server.add("/older", redirect_to=feed_server.url("/new"), redirect_status=308)
    new = feed_server.add("/new", RSS)
    result = fetch(feed_server.url("/old"))
    assert isinstance(result, Fetched)
    assert result.url == feed_server.url("/old")
    assert result.final_url == new
    assert result.permanent_redirect == new
    assert [r.path for r in feed_server.requests] == ["/old", "/older", "/new"]


def test_a_cookie_set_by_a_redirect_is_sent_on_the_next_hop(feed_server):
    # Some sites set a session cookie on their redirect and want it back.
    feed_server.add(
        "/feed", redirect_to="/checked", redirect_status=302, headers={"Set-Cookie": "s=1; Path=/"}
    )
    feed_server.add("/checked", RSS)
    assert isinstance(fetch(feed_server.url("/feed")), Fetched)
    first, second = feed_server.requests
    assert "cookie" not in first.headers
    assert second.headers["cookie"] == "s=1"


def test_one_temporary_hop_means_no_permanent_redirect(feed_server):
    feed_server.add("/old", redirect_to="/moved", redirect_status=301)
    feed_server.add("/moved", redirect_to="/new", redirect_status=302)
    new = feed_server.add("/new", RSS)
    result = fetch(feed_server.url("/old"))
    assert isinstance(result, Fetched)
    assert result.final_url == new
    assert result.permanent_redirect is None


def test_302_is_followed_but_not_permanent(feed_server):
    feed_server.add("/feed", redirect_to="/today", redirect_status=302)
    feed_server.add("/today", RSS)
    result = fetch(feed_server.url("/feed"))
    assert isinstance(result, Fetched)
    assert result.final_url == feed_server.url("/today")
    assert result.permanent_redirect is None


def test_validators_go_with_every_hop_and_304_after_redirect(feed_server):
    feed_server.add("/old", redirect_to="/new", redirect_status=301)
    feed_server.add("/new", RSS, etag='"v1"')
    result = fetch(feed_server.url("/old"), Validators(etag='"v1"'))
    assert isinstance(result, NotModified)
    assert feed_server.requests[-1].headers["if-none-match"] == '"v1"'


def test_redirect_loop_is_reported(feed_server):
    feed_server.add("/a", redirect_to="/b", redirect_status=302)
    feed_server.add("/b", redirect_to="/a", redirect_status=302)
    error = failed(fetch(feed_server.url("/a")), "redirect_loop")
    assert "circle" in error.message
    assert feed_server.count("/a") == 1
    assert feed_server.count("/b") == 1


def test_too_many_redirects_are_not_followed(feed_server):
    for n in range(10):
        feed_server.add(f"/{n}", redirect_to=f"/{n + 1}", redirect_status=302)
    error = failed(fetch(feed_server.url("/0")), "too_many_redirects")
    assert "settings.fetch.max_redirects" in error.message
    assert len(feed_server.requests) == LIMITS.max_redirects + 1


@pytest.mark.parametrize(
    "location", ["file:///etc/passwd", "ftp://files.example/feed.xml", "javascript:alert(1)"]
)
def test_redirect_to_another_scheme_is_refused(feed_server, location):
    feed_server.add("/feed", redirect_to=location, redirect_status=301)
    error = failed(fetch(feed_server.url("/feed")), "bad_redirect")
    assert "http://" in error.message
    assert len(feed_server.requests) == 1


def test_address_that_is_not_http_is_refused_without_a_request():
    failed(fetch("file:///etc/passwd"), "bad_url")
    failed(fetch("not a url"), "bad_url")


# --------------------------------------------------------------------------- HTTP errors


@pytest.mark.parametrize(
    ("status", "words"),
    [
        (404, ["HTTP 404 Not Found", "does not exist", "feeds.yaml"]),
        (410, ["HTTP 410 Gone", "removed permanently", "Remove it from feeds.yaml"]),
        (500, ["HTTP 500 Internal Server Error", "usually temporary"]),
        (401, ["HTTP 401 Unauthorized", "login"]),
        (403, ["HTTP 403 Forbidden", "refused"]),
        (400, ["HTTP 400 Bad Request", "feeds.yaml"]),
    ],
)
def test_http_errors_say_what_happened_and_what_to_do(feed_server, status, words):
    kind = "gone" if status == 410 else "http"  # only 410 stops polling
    error = failed(fetch(feed_server.add("/feed.xml", b"oops", status=status)), kind)
    assert error.http_status == status
    assert error.retry_after is None
    for word in words:
        assert word in error.message
    assert "127.0.0.1" in error.message  # where


def test_unknown_path_is_a_404(feed_server):
    assert failed(fetch(feed_server.url("/nowhere")), "http").http_status == 404


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_seconds_is_reported(feed_server, status):
    url = feed_server.add("/feed.xml", b"", status=status, headers={"Retry-After": "120"})
    error = failed(fetch(url), "http")
    assert error.http_status == status
    assert error.retry_after == 120
    assert "2 minutes" in error.message


def test_retry_after_http_date_is_turned_into_seconds(feed_server):
    later = format_datetime(datetime.now(UTC) + timedelta(hours=1), usegmt=True)
    url = feed_server.add("/feed.xml", b"", status=503, headers={"Retry-After": later})
    error = failed(fetch(url), "http")
    assert 3500 <= error.retry_after <= 3600


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("0", 0),
        (" 30 ", 30),
        ("Wed, 25 Nov 2026 08:01:00 GMT", 60),
        ("Wed, 25 Nov 2026 07:00:00 GMT", 0),  # in the past
        ("soon", None),
        ("-5", None),
        (None, None),
    ],
)
def test_retry_after_parsing(value, seconds):
    now = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
    assert _retry_after(value, now) == seconds


# --------------------------------------------------------------------------- network trouble


def test_total_deadline_stops_a_dripping_server(feed_server):
    # Each byte arrives well inside the read timeout; only the total deadline ends it.
    url = feed_server.add("/slow.xml", RSS, drip=0.2)
    limits = replace(LIMITS, read_timeout=1, total_timeout=0.5)
    error = failed(fetch(url, limits=limits), "timeout")
    assert "0.5 seconds" in error.message
    assert not feed_server.requests[0].complete


def test_server_that_never_answers_times_out(feed_server):
    url = feed_server.add("/late.xml", RSS, delay=3)
    failed(fetch(url, limits=replace(LIMITS, read_timeout=0.3)), "timeout")


def test_closed_port_is_a_connection_error():
    error = failed(fetch(unused_port_url("/feed.xml")), "connect")
    assert "refused" in error.message


def test_unknown_host_is_a_dns_error():
    error = failed(fetch("http://no-such-host.invalid/feed.xml"), "dns")
    assert "'no-such-host.invalid'" in error.message


def test_garbled_answer_is_a_network_error(feed_server):
    url = feed_server.add("/feed.xml", b"not gzip at all", headers={"Content-Encoding": "gzip"})
    failed(fetch(url), "network")


def test_block_private_refuses_loopback_before_connecting(feed_server):
    url = feed_server.add("/feed.xml", RSS)
    error = failed(fetch(url, block_private=True), "blocked_address")
    assert "127.0.0.1" in error.message
    failed(
        fetch(feed_server.url("/feed.xml", host="localhost"), block_private=True), "blocked_address"
    )
    assert feed_server.requests == []


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0/",
        "http://224.0.0.1/",
    ],
)
def test_block_private_refuses_special_addresses(url):
    failed(fetch(url, block_private=True), "blocked_address")


def test_block_private_checks_every_redirect_hop(feed_server, monkeypatch):
    # Let loopback through (the test server lives there) but nothing link-local,
    # so the refusal can only come from checking the redirect's target.  The
    # metadata address is refused before any connection is attempted.
    monkeypatch.setattr("aggregator.fetch._is_private", lambda address: address.is_link_local)
    feed_server.add("/feed", redirect_to="http://169.254.169.254/latest/", redirect_status=302)
    error = failed(fetch(feed_server.url("/feed"), block_private=True), "blocked_address")
    assert "169.254.169.254" in error.message
    assert feed_server.count("/feed") == 1


def test_redirect_to_another_host_on_a_private_network_is_refused(feed_server, monkeypatch):
    # block_private_redirects lets the configured (loopback) server answer, but
    # not send us to another host on a private network.
    feed_server.add("/feed", redirect_to=feed_server.url("/x.xml", host="localhost"))
    feed_server.add("/x.xml", RSS)
    error = failed(fetch(feed_server.url("/feed"), block_private_redirects=True), "blocked_address")
    assert "localhost" in error.message
    assert feed_server.count("/x.xml") == 0


def test_redirect_on_the_feeds_own_host_is_followed_with_block_private_redirects(feed_server):
    feed_server.add("/feed", redirect_to="/x.xml")
    feed_server.add("/x.xml", RSS)
    result = fetch(feed_server.url("/feed"), block_private_redirects=True)
    assert isinstance(result, Fetched)
    assert result.body == RSS


def test_waiting_for_a_busy_hosts_slot_between_redirect_hops_is_not_counted(feed_server):
    # One connection per host: while the slow feed holds it (until its own
    # deadline), the redirected feed's second hop waits.  That wait is other
    # feeds' work, so it must not use up the redirected feed's deadline.
    feed_server.add("/moved", redirect_to="/feed.xml", redirect_status=302)
    feed_server.add("/feed.xml", RSS)
    feed_server.add("/slow.xml", RSS, delay=2)
    limits = replace(LIMITS, per_host=1, total_timeout=1)
    requests = [
        FetchRequest("moved", feed_server.url("/moved")),
        FetchRequest("slow", feed_server.url("/slow.xml")),
    ]
    moved, slow = fetch_all(requests, limits, UA)
    assert slow.error.kind == "timeout"
    assert isinstance(moved, Fetched), moved
    assert moved.body == RSS


# --------------------------------------------------------------------------- proxies


def _proxy_environment(monkeypatch, proxy, no_proxy=""):
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("HTTP_PROXY", proxy)
    if no_proxy:
        monkeypatch.setenv("NO_PROXY", no_proxy)


def test_http_proxy_from_the_environment_carries_the_request(feed_server, monkeypatch):
    # The loopback server answers as a proxy would: the feed's host is one it
    # could not have been reached at directly.
    feed_server.add("/feed.xml", RSS)
    _proxy_environment(monkeypatch, feed_server.base_url)
    result = fetch("http://feeds.example.invalid/feed.xml")
    assert isinstance(result, Fetched), result
    [request] = feed_server.requests
    assert request.host == "feeds.example.invalid"


def test_no_proxy_hosts_are_fetched_directly(feed_server, monkeypatch):
    feed_server.add("/feed.xml", RSS)
    _proxy_environment(monkeypatch, unused_port_url(), no_proxy="127.0.0.1")
    assert isinstance(fetch(feed_server.url("/feed.xml")), Fetched)


# --------------------------------------------------------------------------- many feeds


def test_fetch_many_returns_every_result(feed_server):
    requests = [
        FetchRequest(f"feed{n}", feed_server.add(f"/{n}.xml", RSS + str(n).encode()))
        for n in range(10)
    ]

    async def run():
        async with Fetcher(LIMITS, UA) as fetcher:
            return [r async for r in fetcher.fetch_many(requests)]

    results = asyncio.run(run())
    assert len(results) == 10
    assert {r.key for r in results} == {f"feed{n}" for n in range(10)}
    assert all(isinstance(r, Fetched) for r in results)
    assert all(r.body == RSS + r.key.removeprefix("feed").encode() for r in results)


def test_per_host_and_overall_limits_are_respected(feed_server):
    requests = []
    for n in range(8):
        for host in ("127.0.0.1", "localhost"):
            feed_server.add(f"/{n}.xml", RSS, delay=0.2)
            requests.append(FetchRequest(f"{host}{n}", feed_server.url(f"/{n}.xml", host=host)))
    limits = replace(LIMITS, per_host=2, concurrency=3)
    results = fetch_all(requests, limits, UA)
    assert all(isinstance(r, Fetched) for r in results)
    assert [r.key for r in results] == [r.key for r in requests]  # fetch_all keeps order
    assert feed_server.max_in_flight("127.0.0.1") <= 2
    assert feed_server.max_in_flight("localhost") <= 2
    assert feed_server.max_in_flight() <= 3
    # ...and the limits are limits, not a queue of one.
    assert feed_server.max_in_flight() >= 2


def test_one_failing_feed_does_not_stop_the_others(feed_server):
    requests = [
        FetchRequest("good1", feed_server.add("/good1.xml", RSS)),
        FetchRequest("gone", feed_server.add("/gone.xml", b"", status=410)),
        FetchRequest("refused", unused_port_url("/feed.xml")),
        FetchRequest("loop", feed_server.add("/loop", redirect_to="/loop", redirect_status=302)),
        FetchRequest("slow", feed_server.add("/slow.xml", RSS, drip=0.2)),
        FetchRequest("good2", feed_server.add("/good2.xml", RSS)),
    ]
    results = {r.key: r for r in fetch_all(requests, replace(LIMITS, total_timeout=0.5), UA)}
    assert isinstance(results["good1"], Fetched)
    assert isinstance(results["good2"], Fetched)
    assert results["gone"].error.kind == "gone"
    assert results["refused"].error.kind == "connect"
    assert results["loop"].error.kind == "redirect_loop"
    assert results["slow"].error.kind == "timeout"


def test_leaving_fetch_many_early_cancels_the_rest(feed_server):
    requests = [FetchRequest("fast", feed_server.add("/fast.xml", RSS))] + [
        FetchRequest(f"slow{n}", feed_server.add(f"/slow{n}.xml", RSS, delay=5)) for n in range(3)
    ]

    async def run():
        async with Fetcher(replace(LIMITS, per_host=4), UA) as fetcher:
            results = fetcher.fetch_many(requests)
            try:
                async for result in results:
                    return result
            finally:
                await results.aclose()

    result = asyncio.run(run())
    assert result.key == "fast"


def test_elapsed_ms_is_on_every_result(feed_server):
    results = fetch_all(
        [
            FetchRequest("ok", feed_server.add("/ok.xml", RSS)),
            FetchRequest("bad", feed_server.add("/bad.xml", b"", status=500)),
        ],
        LIMITS,
        UA,
    )
    assert all(isinstance(r.elapsed_ms, int) and r.elapsed_ms >= 0 for r in results)
