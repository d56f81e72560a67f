"""The HTTP transport under fetch.py's httpx client: aiohttp's, chosen by measurement.

fetch.py speaks httpx; this module only decides what carries the bytes.  On the
benchmark of issue 8 (bench/RESULTS.md), httpx's default transport (httpcore on
anyio) costs several times more CPU per request than the same httpx client over
aiohttp's connection pool (httpx-aiohttp), and for an aggregator polling
thousands of feeds that are mostly unchanged, the per-request cost *is* the run
(encode/httpx#3215).

What this module adds to aiohttp: the httpx transport interface (what
httpx-aiohttp provides, written out here because it is the whole per-request
cost of a run of 304s, issue 8), and every error aiohttp raises becomes the
httpx exception that says what happened, with aiohttp's exception (and the
socket, DNS or TLS error under it) chained, so fetch.py's `_network_error` reads
it exactly as it reads httpx's own.  Anything that is not an httpx error is a
bug in fetch.py, so no aiohttp error may get through untranslated.

What it does not do: redirects, decompression, limits or timeouts beyond the
per-socket ones httpx passes down; fetch.py and httpx do those as before.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from functools import cache
from urllib.request import proxy_bypass

import aiohttp
import httpx
from aiohttp.helpers import ProxyInfo, proxies_from_env

__all__ = ["FeedTransport", "http_transport"]

# Seconds an idle connection stays open for the next request (httpx's default).
KEEPALIVE = 5.0


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


class _Stream(httpx.AsyncByteStream):
    """aiohttp's response body as httpx reads it, with errors while reading translated."""

    CHUNK = 16 * 1024

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self.response.content.iter_chunked(self.CHUNK):
                yield chunk
        except aiohttp.ClientError as exc:
            raise _translate(exc) from exc

    async def aclose(self) -> None:
        try:
            self.response.release()
            await self.response.wait_for_close()
        except aiohttp.ClientError as exc:
            raise _translate(exc) from exc


class FeedTransport(httpx.AsyncBaseTransport):
    """httpx requests carried by one aiohttp session, every aiohttp error an httpx one.

    What httpx-aiohttp's transport does, minus what costs CPU on every request
    of a run of 304s (issue 8): aiohttp's `trust_env` looks up the proxy (and
    reads ~/.netrc) in a thread for every request, so the proxy settings are
    read from the environment once, when the session opens, instead.  Logins
    in ~/.netrc are not sent to feed servers, as with httpx's own transport.
    """

    def __init__(self, connections: int, tls: ssl.SSLContext, keepalive: float | None) -> None:
        self._connections = connections
        self._tls = tls
        self._keepalive = keepalive
        self._session: aiohttp.ClientSession | None = None
        self._proxies: dict[str, ProxyInfo] = {}
        self._timeouts: dict[tuple[float | None, ...], aiohttp.ClientTimeout] = {}

    def _open(self) -> aiohttp.ClientSession:
        """The session, opened inside the event loop on the first request."""
        self._proxies = proxies_from_env()
        connector = aiohttp.TCPConnector(
            limit=self._connections, keepalive_timeout=self._keepalive, ssl=self._tls
        )
        self._session = aiohttp.ClientSession(
            connector=connector, cookie_jar=aiohttp.DummyCookieJar()
        )
        return self._session

    def _proxy(self, url: httpx.URL) -> ProxyInfo | None:
        """HTTP(S)_PROXY for this URL's scheme, unless NO_PROXY names its host."""
        proxy = self._proxies.get(url.scheme)
        if proxy is None or proxy_bypass(url.host):
            return None
        return proxy

    def _timeout(self, request: httpx.Request) -> aiohttp.ClientTimeout:
        """httpx's per-socket timeouts as aiohttp's; one object per distinct setting."""
        given = request.extensions.get("timeout", {})
        key = (given.get("connect"), given.get("read"), given.get("pool"))
        timeout = self._timeouts.get(key)
        if timeout is None:
            timeout = aiohttp.ClientTimeout(sock_connect=key[0], sock_read=key[1], connect=key[2])
            self._timeouts[key] = timeout
        return timeout

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._session or self._open()
        data: bytes | httpx.AsyncByteStream | None
        try:
            data = request.content or None
        except httpx.RequestNotRead:
            assert isinstance(request.stream, httpx.AsyncByteStream)
            data = request.stream
            request.headers.pop("transfer-encoding", None)  # aiohttp frames the body
        proxy = self._proxy(request.url)
        try:
            response = await session.request(
                request.method,
                str(request.url),
                headers=request.headers.multi_items(),
                data=data,
                allow_redirects=False,  # fetch.py follows them, vetting every hop
                auto_decompress=False,  # httpx decodes, counting decoded bytes
                timeout=self._timeout(request),
                server_hostname=request.extensions.get("sni_hostname"),
                proxy=proxy.proxy if proxy else None,
                proxy_auth=proxy.proxy_auth if proxy else None,
            )
        except aiohttp.ClientError as exc:
            raise _translate(exc) from exc
        extensions: dict[str, object] = {"http_version": b"HTTP/1.1"}
        if response.reason:
            extensions["reason_phrase"] = response.reason.encode()
        return httpx.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=_Stream(response),
            request=request,
            extensions=extensions,
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def http_transport(connections: int) -> httpx.AsyncBaseTransport:
    """The transport fetch.py's client uses: at most `connections` open at once.

    Like httpx's own transport it verifies certificates against certifi's list
    and honours HTTP(S)_PROXY / NO_PROXY; cookies are left to httpx (aiohttp's
    session keeps none, or they would be sent twice).
    """
    return FeedTransport(connections, _tls_context(), KEEPALIVE)


@cache
def _tls_context() -> ssl.SSLContext:
    """One certificate-verifying TLS context per process, shared by every client.

    Loading certifi's list takes about 50 ms; an update opens two clients, and
    `aggregator run` opens them every cycle (issue 8).
    """
    return httpx.create_ssl_context()
