"""The HTTP transport under fetch.py's httpx client: aiohttp's, chosen by measurement.

fetch.py speaks httpx; this module only decides what carries the bytes.  On the
benchmark of issue 8 (bench/RESULTS.md), httpx's default transport (httpcore on
anyio) costs several times more CPU per request than the same httpx client over
aiohttp's connection pool (httpx-aiohttp), and for an aggregator polling
thousands of feeds that are mostly unchanged, the per-request cost *is* the run
(encode/httpx#3215).

What this module adds to httpx-aiohttp: every error aiohttp raises becomes the
httpx exception that says what happened, with aiohttp's exception (and the
socket, DNS or TLS error under it) chained, so fetch.py's `_network_error` reads
it exactly as it reads httpx's own.  httpx-aiohttp 0.2 maps a refused
connection to ConnectTimeout and lets a few aiohttp errors through untranslated;
neither may reach fetch.py, where anything that is not an httpx error is a bug.

What it does not do: redirects, decompression, limits or timeouts beyond the
per-socket ones httpx passes down; fetch.py and httpx do those as before.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from functools import cache

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

__all__ = ["FeedTransport", "http_transport"]


def _translate(exc: BaseException) -> httpx.TransportError:
    """The httpx exception for an aiohttp one (the caller chains the original)."""
    message = str(exc) or type(exc).__name__
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(message)
    if isinstance(exc, aiohttp.ServerTimeoutError | TimeoutError):
        return httpx.ReadTimeout(message)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return httpx.ConnectError(message)
    if isinstance(exc, aiohttp.InvalidURL):
        return httpx.UnsupportedProtocol(message)
    if isinstance(
        exc,
        aiohttp.ClientResponseError | aiohttp.ClientPayloadError | aiohttp.ServerDisconnectedError,
    ):
        return httpx.RemoteProtocolError(message)
    return httpx.ReadError(message)


def _origin(exc: BaseException) -> BaseException | None:
    """The aiohttp error behind `exc`, if `exc` came from aiohttp (directly or mapped)."""
    if isinstance(exc, aiohttp.ClientError):
        return exc
    cause = exc.__cause__
    if isinstance(exc, httpx.HTTPError) and isinstance(cause, aiohttp.ClientError | TimeoutError):
        return cause
    return None


class _Stream(httpx.AsyncByteStream):
    """The response body, with errors while reading it translated too."""

    def __init__(self, inner: httpx.AsyncByteStream) -> None:
        self.inner = inner

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self.inner:
                yield chunk
        except Exception as exc:
            origin = _origin(exc)
            if origin is None:
                raise
            raise _translate(origin) from origin

    async def aclose(self) -> None:
        try:
            await self.inner.aclose()
        except Exception as exc:
            origin = _origin(exc)
            if origin is None:
                raise
            raise _translate(origin) from origin


class FeedTransport(AiohttpTransport):
    """httpx-aiohttp's transport with every aiohttp error turned into the right httpx one."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = await super().handle_async_request(request)
        except Exception as exc:
            origin = _origin(exc)
            if origin is None:
                raise
            raise _translate(origin) from origin
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _Stream(response.stream)
        return response


def http_transport(connections: int) -> httpx.AsyncBaseTransport:
    """The transport fetch.py's client uses: at most `connections` open at once.

    Like httpx's own transport it verifies certificates against certifi's list
    and honours HTTP(S)_PROXY / NO_PROXY; cookies are left to httpx (aiohttp's
    session keeps none, or they would be sent twice).
    """
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    tls = _tls_context()

    def session() -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=connections, keepalive_timeout=limits.keepalive_expiry, ssl=tls
        )
        return aiohttp.ClientSession(
            connector=connector, trust_env=True, cookie_jar=aiohttp.DummyCookieJar()
        )

    return FeedTransport(verify=tls, limits=limits, client=session)


@cache
def _tls_context() -> ssl.SSLContext:
    """One certificate-verifying TLS context per process, shared by every client.

    Loading certifi's list takes about 50 ms; an update opens two clients, and
    `aggregator run` opens them every cycle (issue 8).
    """
    return httpx.create_ssl_context()
