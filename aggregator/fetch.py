"""Fetching feeds over HTTP: FetchRequest -> FetchResult.

    FetchRequest --conditional GET, own redirects, size and time limits--> Fetched
                                                                         | NotModified
                                                                         | FetchFailed

What this module does: one polite, bounded HTTP conversation per feed.  It sends
the validators we kept (RFC 9110 section 13), follows redirects itself so it can
vet every hop, stops reading at `FetchLimits.max_bytes` and gives up after
`FetchLimits.total_timeout`, and says what went wrong in words an organiser can
act on.  At most `concurrency` feeds are fetched at once, and at most `per_host`
from any one server.

What it does not do: parse (parse.py), retry or decide when to poll again
(schedule.py), remember anything between runs (store.py), or log the per-feed
summary line (update.py does, once per feed).

Errors: a feed's own problem never raises.  httpx and OSError exceptions are
translated here, once, into an ErrorInfo (via a chained FetchError, see
errors.py) and returned as FetchFailed.  Anything else is a bug and propagates.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import ssl
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from http.cookiejar import CookieJar
from importlib import metadata
from types import TracebackType
from typing import Any, Self

import httpx

from .errors import FetchError
from .models import (
    ErrorInfo,
    Fetched,
    FetchFailed,
    FetchLimits,
    FetchRequest,
    FetchResult,
    NotModified,
    Validators,
)
from .transport import http_transport

log = logging.getLogger(__name__)

PACKAGE = "nhs-campaign-aggregator"

# Feeds first, then anything (a web page may name its feed: parse.py discovers it).
ACCEPT = (
    "application/atom+xml, application/rss+xml, application/feed+json, application/json;q=0.9, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.1"
)
# httpx decodes all three (brotli through the `brotli` package, httpx[brotli]).
ACCEPT_ENCODING = "gzip, deflate, br"

# Where _hide_location puts a redirect's Location header.
LOCATION = "x-aggregator-location"
SCHEMES = frozenset({"http", "https"})
# RFC 9110 section 15.4: 301 and 308 are permanent, 302, 303 and 307 are not.
REDIRECTS = frozenset({301, 302, 303, 307, 308})
PERMANENT_REDIRECTS = frozenset({301, 308})
# 203 is a 200 that a proxy transformed: still the feed.
CONTENT = frozenset({200, 203})
# Statuses whose Retry-After says when to come back (RFC 9110 section 10.2.3, RFC 6585).
RETRY_AFTER_STATUSES = frozenset({429, 503})


def user_agent(contact: str, base_url: str) -> str:
    """An honest User-Agent: who we are, where the aggregator lives and who to contact.

    Site owners who see us in their logs can find the campaign and its organiser
    instead of blocking an anonymous bot (RFC 9110 section 10.1.5).
    """
    try:
        version = metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:
        version = "0+unknown"
    # A header value cannot hold line breaks: collapse any whitespace.
    base_url, contact = (" ".join(text.split()) for text in (base_url, contact))
    details = "; ".join(part for part in (base_url and f"+{base_url}", contact) if part)
    return f"{PACKAGE}/{version} ({details})" if details else f"{PACKAGE}/{version}"


class _Cookies(httpx.Cookies):
    """httpx's cookie jar, which skips responses that set no cookie.

    httpx hands every response to the standard library's cookie jar, which
    copies all its headers into an email message before looking for
    Set-Cookie: about a tenth of the CPU of a 304 (issue 8).
    """

    def extract_cookies(self, response: httpx.Response) -> None:
        headers = response.headers
        if "set-cookie" in headers or "set-cookie2" in headers:
            super().extract_cookies(response)


class _Client(httpx.AsyncClient):
    """httpx's client with `_Cookies` for its cookie jar.

    Cookies a server sets are still kept and sent back, across a feed's
    redirects and to the same site later in the run, exactly as httpx does.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._jar = _Cookies()

    @property
    def cookies(self) -> httpx.Cookies:
        return self._jar

    @cookies.setter
    def cookies(
        self, cookies: httpx.Cookies | CookieJar | dict[str, str] | list[tuple[str, str]]
    ) -> None:
        self._jar = _Cookies(cookies)


@dataclass(frozen=True)
class _Redirect:
    status: int
    location: str


class Fetcher:
    """Fetches feeds through one pooled httpx.AsyncClient; use as `async with`.

    `block_private=True` refuses any URL (or redirect hop) whose host resolves to
    a loopback, private, link-local, reserved, multicast or unspecified address,
    for URLs that come from pages we do not control.  `block_private_redirects=True`
    does the same for a redirect hop to another host than the feed's own: the
    organiser chose the feed's server, not where its redirects lead (a public
    feed must not send us to 169.254.169.254).  `transport` replaces the
    network (for tests that need a mock; ours use a real loopback server).
    """

    def __init__(
        self,
        limits: FetchLimits,
        user_agent: str,
        *,
        block_private: bool = False,
        block_private_redirects: bool = False,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.limits = limits
        self.block_private = block_private
        self.block_private_redirects = block_private_redirects
        concurrency = max(1, limits.concurrency)
        self._client = _Client(
            headers={
                "User-Agent": user_agent,
                "Accept": ACCEPT,
                "Accept-Encoding": ACCEPT_ENCODING,
            },
            # connect/read bound each network wait; total_timeout (below) bounds
            # the whole feed, so a server dribbling a byte at a time cannot stay
            # just under the read timeout for ever.
            timeout=httpx.Timeout(
                connect=limits.connect_timeout,
                read=limits.read_timeout,
                write=limits.read_timeout,
                pool=limits.total_timeout,
            ),
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            follow_redirects=False,  # see _fetch: every hop is checked
            event_hooks={"response": [_hide_location]},
            # aiohttp under httpx, chosen by measurement (transport.py, issue 8).
            transport=transport if transport is not None else http_transport(concurrency),
        )
        # What build_request would add to every request, worked out once (issue 8).
        self._headers = self._client.headers.multi_items()
        self._timeout = self._client.timeout.as_dict()
        self._slots = asyncio.Semaphore(concurrency)
        per_host = max(1, limits.per_host)
        self._hosts: defaultdict[str, asyncio.Semaphore] = defaultdict(
            lambda: asyncio.Semaphore(per_host)
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def fetch(self, request: FetchRequest) -> FetchResult:
        """Fetch one feed.  Returns FetchFailed for anything the feed or network did."""
        clock = _Clock()
        try:
            return await self._fetch(request, clock)
        except FetchError as exc:
            return FetchFailed(request.key, request.url, exc.info, elapsed_ms=clock.ms())

    async def fetch_many(self, requests: Iterable[FetchRequest]) -> AsyncIterator[FetchResult]:
        """Fetch many feeds concurrently, yielding each result as it completes.

        Concurrency is bounded by the fetch slots, not here, so `fetch` calls made
        while this runs (feed discovery) share the same limits.  A bug in one
        fetch propagates and cancels the rest.
        """
        tasks = [asyncio.create_task(self.fetch(r), name=f"fetch {r.key}") for r in requests]
        try:
            for next_done in asyncio.as_completed(tasks):
                yield await next_done
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    # ------------------------------------------------------------------ one feed

    async def _fetch(self, request: FetchRequest, clock: _Clock) -> Fetched | NotModified:
        url = _checked_url(request.url, request.url, kind="bad_url")
        seen = {str(url)}
        first_host = url.host
        statuses: list[int] = []
        while True:
            # Slots are taken per hop, host first, so a feed waiting for a busy
            # host does not hold one of the overall slots meanwhile.  The total
            # deadline starts once the first hop has its slots, and a later hop's
            # wait for slots (other feeds' work, not this server's) is not counted.
            guard = (
                self.block_private
                or request.guard
                or (self.block_private_redirects and bool(statuses) and url.host != first_host)
            )
            queued = asyncio.get_running_loop().time()
            async with self._hosts[url.host], self._slots:
                clock.start(self.limits.total_timeout, queued_since=queued)
                try:
                    async with asyncio.timeout_at(clock.deadline):
                        outcome = await self._hop(request, url, guard)
                except TimeoutError as exc:
                    raise FetchError(request.url, self._timed_out(url)) from exc
            if not isinstance(outcome, _Redirect):
                return self._finish(request, outcome, url, statuses, clock)
            statuses.append(outcome.status)
            url = self._next_hop(request, url, outcome, seen, len(statuses))

    def _next_hop(
        self, request: FetchRequest, url: httpx.URL, redirect: _Redirect, seen: set[str], hops: int
    ) -> httpx.URL:
        try:
            target = url.join(redirect.location)
        except httpx.InvalidURL as exc:
            raise FetchError(request.url, _bad_redirect(url, redirect.location)) from exc
        target = _checked_url(request.url, str(target), kind="bad_redirect", source=url)
        log.debug(
            "event=redirect feed=%s status=%s from=%s to=%s",
            request.url,
            redirect.status,
            url,
            target,
        )
        if str(target) in seen:
            raise FetchError(
                request.url,
                ErrorInfo(
                    "redirect_loop",
                    f"The address redirects in a circle ({url} sends us back to {target}), so "
                    "there is no feed to read. Check the address in feeds.yaml in a browser; "
                    "the site may be misconfigured.",
                ),
            )
        if hops > self.limits.max_redirects:
            raise FetchError(
                request.url,
                ErrorInfo(
                    "too_many_redirects",
                    f"The address redirected more than {self.limits.max_redirects} times "
                    "(settings.fetch.max_redirects), so we stopped following it. Open it in a "
                    "browser and put the address you end up at in feeds.yaml.",
                ),
            )
        seen.add(str(target))
        return target

    async def _hop(
        self, request: FetchRequest, url: httpx.URL, guard: bool
    ) -> _Redirect | Fetched | NotModified:
        """One request: a redirect to follow, or the answer.  Raises FetchError.

        `guard` refuses a host on a private or local network before connecting.
        """
        try:
            if guard:
                await _refuse_private(request.url, url)
            response = await self._client.send(self._request(url, request.validators), stream=True)
            try:
                return await self._read(request, url, response)
            finally:
                await response.aclose()
        except (httpx.HTTPError, OSError) as exc:
            raise FetchError(request.url, _network_error(exc, url, self.limits)) from exc

    def _request(self, url: httpx.URL, validators: Validators) -> httpx.Request:
        """A conditional GET: what `client.build_request` makes, made cheaply.

        build_request merges the client's headers, cookies and settings into
        every request, a fifth of the CPU of a 304 (issue 8).  While no server
        has set a cookie, the merged headers and timeouts are the same every
        time; once one has, build_request adds the cookies as before.
        """
        conditional = _conditional_headers(validators)
        if self._client.cookies:
            return self._client.build_request("GET", url, headers=conditional)
        return httpx.Request(
            "GET",
            url,
            headers=[*self._headers, *conditional.items()],
            extensions={"timeout": self._timeout},
        )

    async def _read(
        self, request: FetchRequest, url: httpx.URL, response: httpx.Response
    ) -> _Redirect | Fetched | NotModified:
        status = response.status_code
        headers = response.headers
        if status in REDIRECTS and LOCATION in headers:
            return _Redirect(status, headers[LOCATION])
        if status == 304:
            # RFC 9111 section 4.3.4: a 304 updates what it sends, keeps the rest.
            old = request.validators
            validators = Validators(
                etag=headers.get("etag") or old.etag,
                last_modified=headers.get("last-modified") or old.last_modified,
            )
            return NotModified(request.key, request.url, validators, max_age=_max_age(headers))
        if status not in CONTENT:
            raise FetchError(request.url, _http_error(response, url))
        body = await self._read_body(request, url, response)
        return Fetched(
            key=request.key,
            url=request.url,
            final_url=str(url),
            body=body,
            content_type=headers.get("content-type"),
            validators=Validators(
                etag=headers.get("etag"), last_modified=headers.get("last-modified")
            ),
            http_status=status,
            max_age=_max_age(headers),
        )

    async def _read_body(
        self, request: FetchRequest, url: httpx.URL, response: httpx.Response
    ) -> bytes:
        """The decompressed body, refused as soon as it passes max_bytes.

        Counting decompressed bytes as they stream (not Content-Length, not the
        compressed size) is what keeps a small gzip bomb from filling memory.
        """
        limit = self.limits.max_bytes
        declared = response.headers.get("content-length", "")
        if (
            declared.isdigit()
            and int(declared) > limit
            and response.headers.get("content-encoding", "identity") == "identity"
        ):
            raise FetchError(request.url, _too_large(url, limit))
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > limit:
                raise FetchError(request.url, _too_large(url, limit))
            chunks.append(chunk)
        return b"".join(chunks)

    def _finish(
        self,
        request: FetchRequest,
        outcome: Fetched | NotModified,
        url: httpx.URL,
        statuses: list[int],
        clock: _Clock,
    ) -> Fetched | NotModified:
        elapsed = clock.ms()
        if isinstance(outcome, NotModified):
            return NotModified(
                outcome.key, outcome.url, outcome.validators, elapsed, outcome.max_age
            )
        # Only a chain made entirely of permanent redirects means "update
        # feeds.yaml"; one temporary hop means the old address stays right.
        permanent = bool(statuses) and all(s in PERMANENT_REDIRECTS for s in statuses)
        return Fetched(
            key=outcome.key,
            url=outcome.url,
            final_url=str(url),
            body=outcome.body,
            content_type=outcome.content_type,
            validators=outcome.validators,
            http_status=outcome.http_status,
            permanent_redirect=str(url) if permanent else None,
            elapsed_ms=elapsed,
            max_age=outcome.max_age,
        )

    def _timed_out(self, url: httpx.URL) -> ErrorInfo:
        return ErrorInfo(
            "timeout",
            f"The feed at {url.host} took longer than {_secs(self.limits.total_timeout)} "
            "to download (settings.fetch.total_timeout), so we gave up. The site may be slow "
            "or overloaded; we will try again later.",
        )


def fetch_all(
    requests: Iterable[FetchRequest],
    limits: FetchLimits,
    user_agent: str,
    *,
    block_private: bool = False,
    block_private_redirects: bool = False,
    transport: httpx.AsyncBaseTransport | None = None,
) -> list[FetchResult]:
    """Fetch feeds from synchronous code; results come in the order of `requests`."""

    async def run() -> list[FetchResult]:
        async with Fetcher(
            limits,
            user_agent,
            block_private=block_private,
            block_private_redirects=block_private_redirects,
            transport=transport,
        ) as fetcher:
            return list(await asyncio.gather(*(fetcher.fetch(r) for r in requests)))

    return asyncio.run(run())


# --------------------------------------------------------------------------- helpers


class _Clock:
    """When a feed's fetch started (its first hop got its slots) and its deadline."""

    def __init__(self) -> None:
        self.started: float | None = None
        self.deadline: float | None = None

    def start(self, total_timeout: float, *, queued_since: float) -> None:
        """Start the deadline (first hop), or move it on by the time spent queued."""
        now = asyncio.get_running_loop().time()
        if self.started is None or self.deadline is None:
            self.started = time.monotonic()
            self.deadline = now + total_timeout
        else:
            self.deadline += now - queued_since

    def ms(self) -> int:
        return 0 if self.started is None else round((time.monotonic() - self.started) * 1000)


async def _hide_location(response: httpx.Response) -> None:
    """Move Location out of httpx's sight; _fetch follows redirects itself.

    Even with follow_redirects=False, httpx builds the next request for every
    redirect, and raises on a Location it cannot turn into one (httpx 0.28:
    InvalidURL for "javascript:alert(1)") before we see the response.  Without
    the header it returns the 3xx as it is, and _checked_url judges the target.
    """
    headers = response.headers
    headers.pop(LOCATION, None)  # a server cannot pose as this hook
    if "location" in headers:
        headers[LOCATION] = headers.pop("location")


def _conditional_headers(validators: Validators) -> dict[str, str]:
    """RFC 9110 sections 13.1.2 and 13.1.3: send back exactly what the server gave us."""
    headers = {}
    if validators.etag:
        headers["If-None-Match"] = validators.etag
    if validators.last_modified:
        headers["If-Modified-Since"] = validators.last_modified
    return headers


def _checked_url(
    feed_url: str, text: str, *, kind: str, source: httpx.URL | None = None
) -> httpx.URL:
    """An http(s) URL with a host, or a FetchError saying why not.

    file:, ftp:, javascript: and data: addresses are refused: a feed (or a
    redirect a feed's server sends) must not make us read local files.
    """
    try:
        url = httpx.URL(text)
    except httpx.InvalidURL:
        url = None
    if url is not None and url.scheme in SCHEMES and url.host:
        return url
    if source is not None:
        info = _bad_redirect(source, text)
    else:
        info = ErrorInfo(
            kind,
            f"'{text}' is not a web address we can fetch: it must start with http:// or "
            "https:// and name a server. Check the address in feeds.yaml.",
        )
    raise FetchError(feed_url, info)


def _bad_redirect(source: httpx.URL, location: str) -> ErrorInfo:
    return ErrorInfo(
        "bad_redirect",
        f"The server at {source.host} redirected us to '{location[:200]}', which is not a "
        "web address we will follow (only http:// and https:// are). Check the address in "
        "feeds.yaml; the site may be misconfigured.",
    )


async def _refuse_private(feed_url: str, url: httpx.URL) -> None:
    """Refuse hosts on this machine's own networks (RFC 6890 special-purpose addresses).

    Resolving here and connecting in httpx are two lookups, so a hostile DNS
    server could answer differently the second time; this guards against
    mistakes and ordinary pages, not against DNS rebinding.
    """
    host = url.raw_host.decode("ascii")
    try:
        addresses = {ipaddress.ip_address(host)}
    except ValueError:
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(
            host, url.port or (443 if url.scheme == "https" else 80), type=socket.SOCK_STREAM
        )
        addresses = {ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos}
    for address in sorted(addresses, key=str):
        if _is_private(address):
            raise FetchError(
                feed_url,
                ErrorInfo(
                    "blocked_address",
                    f"The address {url} leads to {address}, a private or local network "
                    "address, which we do not fetch from for safety. Use the feed's public "
                    "address in feeds.yaml.",
                ),
            )


def _is_private(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return (
        address.is_private
        or address.is_loopback
        or address.is_link_local  # includes 169.254.169.254, cloud metadata
        or address.is_reserved
        or address.is_multicast
        or address.is_unspecified
        or not address.is_global
    )


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception and everything it was raised from or during, once each."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _network_error(exc: BaseException, url: httpx.URL, limits: FetchLimits) -> ErrorInfo:
    """Translate httpx's and the socket layer's exceptions into an organiser's words."""
    host = url.host
    causes = list(_causes(exc))
    if any(isinstance(c, socket.gaierror) for c in causes):
        return ErrorInfo(
            "dns",
            f"Could not find the server '{host}' — check the spelling of the address in "
            "feeds.yaml. If it is right, the site may have closed down or its domain expired.",
        )
    if isinstance(exc, httpx.TimeoutException) or any(isinstance(c, TimeoutError) for c in causes):
        which = "connect" if isinstance(exc, httpx.ConnectTimeout) else "answer"
        seconds = limits.connect_timeout if which == "connect" else limits.read_timeout
        return ErrorInfo(
            "timeout",
            f"The server at {host} did not {which} within {_secs(seconds)}. The site may "
            "be down or overloaded; we will try again later.",
        )
    tls = next((c for c in causes if isinstance(c, ssl.SSLError)), None)
    if tls is not None:
        reason = getattr(tls, "verify_message", None) or getattr(tls, "reason", None) or tls
        return ErrorInfo(
            "tls",
            f"The secure (https) connection to {host} failed ({reason}). The site's "
            "certificate may have expired or be misconfigured; tell the site's owner.",
        )
    if any(isinstance(c, ConnectionRefusedError) for c in causes):
        return ErrorInfo(
            "connect",
            f"The server at {host} refused the connection: nothing is answering at that "
            "address. The site may be down; we will try again later. If it stays down, "
            "check the address in feeds.yaml.",
        )
    if isinstance(exc, httpx.ConnectError | ConnectionError):
        return ErrorInfo(
            "connect",
            f"Could not connect to the server at {host} ({exc or type(exc).__name__}). The "
            "site or the network may be down; we will try again later.",
        )
    if isinstance(exc, httpx.DecodingError):
        return ErrorInfo(
            "network",
            f"The server at {host} sent a compressed feed that could not be decompressed. "
            "This is usually a fault on the site; we will try again later.",
        )
    return ErrorInfo(
        "network",
        f"The connection to {host} broke off or the server's answer was garbled "
        f"({exc or type(exc).__name__}). We will try again later.",
    )


def _http_error(response: httpx.Response, url: httpx.URL) -> ErrorInfo:
    status = response.status_code
    try:
        name = f"HTTP {status} {HTTPStatus(status).phrase}"
    except ValueError:
        name = f"HTTP {status} {response.reason_phrase}".rstrip()
    host = url.host
    retry_after = (
        _retry_after(response.headers.get("retry-after"))
        if status in RETRY_AFTER_STATUSES
        else None
    )
    if status == 404:
        message = (
            f"The server at {host} says this feed does not exist ({name}). Check the address "
            "in feeds.yaml — the site may have moved its feed."
        )
    elif status == 410:
        message = (
            f"The server at {host} says this feed has been removed permanently ({name}), "
            "so we have stopped polling it. Remove it from feeds.yaml, or replace it with "
            "the campaigner's new feed."
        )
    elif status == 401:
        message = (
            f"The feed at {host} needs a login ({name}). We can only follow public feeds: "
            "ask the campaigner for a public feed address, or remove it from feeds.yaml."
        )
    elif status == 403:
        message = (
            f"The server at {host} refused to let us read this feed ({name}). It may block "
            "automated readers or need a login; ask the site's owner to allow us, or remove "
            "the feed from feeds.yaml."
        )
    elif status == 429:
        wait = f"in {_duration(retry_after)}" if retry_after is not None else "later"
        message = (
            f"The server at {host} says we are asking too often ({name}). We will try "
            f"again {wait}; if this keeps happening, poll this source less often."
        )
    elif status >= 500:
        wait = f"in {_duration(retry_after)}" if retry_after is not None else "later"
        message = (
            f"The site's server at {host} had a problem ({name}). This is usually "
            f"temporary; we will try again {wait}."
        )
    elif status >= 400:
        message = (
            f"The server at {host} refused our request ({name}). Check the address in feeds.yaml."
        )
    else:
        message = (
            f"The server at {host} gave an answer we cannot use as a feed ({name}). Check "
            "the address in feeds.yaml in a browser."
        )
    # "gone" is the one error that stops polling (store.requests skips such feeds).
    kind = "gone" if status == 410 else "http"
    return ErrorInfo(kind, message, http_status=status, retry_after=retry_after)


def _retry_after(value: str | None, now: datetime | None = None) -> int | None:
    """Retry-After as seconds: delta-seconds or an HTTP-date (RFC 9110 section 10.2.3)."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return int(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # "-0000" in the date: RFC 9110 dates are GMT
        when = when.replace(tzinfo=UTC)
    seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return max(0, round(seconds))


def _max_age(headers: httpx.Headers) -> int | None:
    """Cache-Control max-age (RFC 9111 section 5.2.2.1): the server's "not before"."""
    for directive in headers.get("cache-control", "").split(","):
        name, _, value = directive.strip().partition("=")
        if name.lower() == "max-age" and value.strip('"').isdigit():
            return int(value.strip('"'))
    return None


def _too_large(url: httpx.URL, limit: int) -> ErrorInfo:
    return ErrorInfo(
        "too_large",
        f"The feed is larger than the {_size(limit)} limit (settings.fetch.max_bytes), so we "
        f"stopped downloading it from {url.host}. Ask the site to publish fewer or shorter "
        "posts in its feed, or raise the limit in feeds.yaml.",
    )


def _size(n: int) -> str:
    for unit, scale in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n} bytes"


def _secs(seconds: float) -> str:
    return f"{seconds:g} second" + ("" if seconds == 1 else "s")


def _duration(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} seconds"
    if seconds < 2 * 3600:
        return f"{round(seconds / 60)} minutes"
    return f"{round(seconds / 3600)} hours"
