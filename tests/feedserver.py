"""A real, scripted HTTP/1.1 server on 127.0.0.1 for tests that talk to the network.

Each test scripts what a path answers (`add`), points the code under test at
`url(path)`, and afterwards asserts what went over the wire (`requests`,
`count`, `max_in_flight`).  It is an ordinary `http.server.ThreadingHTTPServer`
on port 0 in a background thread, so the client side is the real httpx stack:
sockets, keep-alive, gzip, redirects and timeouts included.

What it does on purpose, like real feed servers:

- answers a conditional GET with 304 when If-None-Match (or, without it,
  If-Modified-Since) matches, as RFC 9110 section 13.2.2 orders the two;
- sends bodies gzipped, chunked (no Content-Length), late (`delay`) or one
  byte at a time (`drip`);
- redirects (`redirect_to`) with any 3xx status.

Every wait is bounded (`MAX_WAIT`) and interrupted by `close()`, and `close()`
shuts every open connection, so a test never hangs on this server and leaves
no thread or socket behind.

    with FeedServer() as server:
        server.add("/feed.xml", b"<rss/>", etag='"v1"')
        fetch(server.url("/feed.xml"))
        assert server.count("/feed.xml") == 1
"""

from __future__ import annotations

import gzip as gzip_module
import http.server
import socket
import threading
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.message import Message
from email.utils import format_datetime, parsedate_to_datetime
from http import HTTPStatus
from types import TracebackType
from urllib.parse import urlsplit

import httpx

# No single sleep, delay or drip may keep a handler busy longer than this.
MAX_WAIT = 10.0
# An idle keep-alive connection is dropped after this many seconds.
IDLE_TIMEOUT = 5.0
# Body bytes are written in pieces this big, so a client that hangs up early
# is noticed (and `bytes_sent` shows how far the server got).
WRITE_CHUNK = 16 * 1024
# A small send buffer keeps the kernel from absorbing megabytes the client
# never read, so `bytes_sent` is close to what the client actually took.
SEND_BUFFER = 64 * 1024


@dataclass
class Route:
    """What one path answers.  Replace it with `FeedServer.add` or `set_body`."""

    body: bytes
    content_type: str = "application/rss+xml; charset=utf-8"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    etag: str | None = None
    last_modified: str | None = None
    delay: float = 0.0
    gzip: bool = False
    chunked: bool = False
    redirect_to: str | None = None
    redirect_status: int = 301
    drip: float | None = None
    validators_on_304: bool = True


@dataclass
class RecordedRequest:
    """One request as the server received it, and how far the answer got."""

    method: str
    path: str  # without the query string
    query: str
    headers: httpx.Headers  # case-insensitive: headers.get("if-none-match")
    host: str  # from the Host header, without the port
    status: int | None = None  # what the server answered
    bytes_sent: int = 0  # body bytes written before the answer ended
    complete: bool = False  # False when the client hung up or the server gave up


class _HTTPServer(http.server.ThreadingHTTPServer):
    # Handler threads are joined by server_close(); close() first makes sure
    # each of them ends promptly.
    daemon_threads = False
    block_on_close = True

    def __init__(self, owner: FeedServer) -> None:
        self.owner = owner
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: object, client_address: object) -> None:
        # A client hanging up mid-answer is what several tests do on purpose.
        self.owner._handler_errors += 1


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like real servers
    timeout = IDLE_TIMEOUT
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
        self.server.owner._opened(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.server.owner._closed(self.connection)

    def do_GET(self) -> None:
        self.server.owner._answer(self, head=False)

    def do_HEAD(self) -> None:
        self.server.owner._answer(self, head=True)

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet: tests assert on `requests`, not on a log


class FeedServer:
    """A scripted loopback HTTP server; see the module docstring."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._routes: dict[str, Route] = {}
        self._requests: list[RecordedRequest] = []
        self._in_flight: Counter[str] = Counter()
        self._max_in_flight: Counter[str] = Counter()
        self._connections: set[socket.socket] = set()
        self._handler_errors = 0
        self._httpd = _HTTPServer(self)
        self.port: int = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"feedserver:{self.port}",
            daemon=True,
        )
        self._thread.start()

    # ------------------------------------------------------------------ scripting

    def add(
        self,
        path: str,
        body: bytes = b"",
        *,
        content_type: str = "application/rss+xml; charset=utf-8",
        status: int = 200,
        headers: dict[str, str] | None = None,
        etag: str | None = None,
        last_modified: str | None = None,
        delay: float = 0.0,
        gzip: bool = False,
        chunked: bool = False,
        redirect_to: str | None = None,
        redirect_status: int = 301,
        drip: float | None = None,
        validators_on_304: bool = True,
    ) -> str:
        """Script what `path` answers (replacing any earlier script); return its URL.

        `redirect_to` may be absolute or relative (sent as the Location as
        given).  `delay` waits before answering; `drip` sends the body one byte
        every `drip` seconds.  `chunked` leaves out Content-Length, as servers
        that stream do.  `validators_on_304=False` answers 304 without ETag and
        Last-Modified, which some servers do.
        """
        route = Route(
            body=body,
            content_type=content_type,
            status=status,
            headers=dict(headers or {}),
            etag=etag,
            last_modified=last_modified,
            delay=delay,
            gzip=gzip,
            chunked=chunked,
            redirect_to=redirect_to,
            redirect_status=redirect_status,
            drip=drip,
            validators_on_304=validators_on_304,
        )
        with self._lock:
            self._routes[path] = route
        return self.url(path)

    def set_body(
        self,
        path: str,
        body: bytes,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
    ) -> None:
        """Change a feed between runs, as a site does when it publishes.

        Validators change with it, so a conditional GET now gets the new body:
        the given ones, or else a new ETag and a later Last-Modified derived
        from the old ones (only those the route already had).
        """
        with self._lock:
            route = self._routes[path]
            new_etag = etag
            if new_etag is None and route.etag is not None:
                new_etag = _next_etag(route.etag)
            new_modified = last_modified
            if new_modified is None and route.last_modified is not None:
                new_modified = _later(route.last_modified)
            self._routes[path] = replace(
                route, body=body, etag=new_etag, last_modified=new_modified
            )

    # ------------------------------------------------------------------ inspecting

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str, *, host: str = "127.0.0.1") -> str:
        """The URL of `path`.  `host="localhost"` reaches the same server under
        another host name (for per-host limits)."""
        return f"http://{host}:{self.port}{path}"

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, in arrival order (a copy)."""
        with self._lock:
            return list(self._requests)

    def count(self, path: str) -> int:
        """How many requests `path` received (query strings ignored)."""
        with self._lock:
            return sum(1 for r in self._requests if r.path == path)

    def max_in_flight(self, host: str | None = None) -> int:
        """The most requests answered at the same time, for one host name or all.

        A request counts from when its headers arrived until just before the
        last byte of its answer is written, so a client can never see its
        answer complete while the server still counts it.
        """
        with self._lock:
            return self._max_in_flight["*" if host is None else host]

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Stop serving, end every wait and connection, and join every thread."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._httpd.shutdown()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._httpd.server_close()
        self._thread.join(timeout=MAX_WAIT)

    def __enter__(self) -> FeedServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ serving

    def _opened(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.add(conn)

    def _closed(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.discard(conn)

    def _answer(self, handler: _Handler, *, head: bool) -> None:
        parts = urlsplit(handler.path)
        host = (handler.headers.get("Host") or "").rsplit(":", 1)[0]
        record = RecordedRequest(
            method=handler.command,
            path=parts.path,
            query=parts.query,
            headers=httpx.Headers(list(handler.headers.items())),
            host=host,
        )
        with self._lock:
            self._requests.append(record)
            route = self._routes.get(handler.path) or self._routes.get(parts.path)
            for key in (host, "*"):
                self._in_flight[key] += 1
                self._max_in_flight[key] = max(self._max_in_flight[key], self._in_flight[key])
        exchange = _Exchange(self, handler, record, host, head=head)
        try:
            if route is None:
                exchange.send(404, {"Content-Type": "text/plain"}, b"no such path\n")
            else:
                self._answer_route(exchange, route)
        except OSError:
            # The client hung up (or close() shut the socket): nothing to answer.
            handler.close_connection = True
        finally:
            exchange.done()

    def _answer_route(self, exchange: _Exchange, route: Route) -> None:
        if route.delay and self._stop.wait(min(route.delay, MAX_WAIT)):
            exchange.handler.close_connection = True
            return
        if route.redirect_to is not None:
            headers = {"Location": route.redirect_to, **route.headers}
            exchange.send(route.redirect_status, headers, b"")
            return
        validators = {}
        if route.etag is not None:
            validators["ETag"] = route.etag
        if route.last_modified is not None:
            validators["Last-Modified"] = route.last_modified
        if route.status == 200 and _not_modified(route, exchange.handler.headers):
            exchange.send(304, validators if route.validators_on_304 else {}, b"")
            return
        headers = {"Content-Type": route.content_type, **validators}
        body = route.body
        if route.gzip:
            body = gzip_module.compress(body)
            headers["Content-Encoding"] = "gzip"
        headers.update(route.headers)
        exchange.send(route.status, headers, body, chunked=route.chunked, drip=route.drip)


class _Exchange:
    """Writing one answer, counting it in flight until just before its last byte."""

    def __init__(
        self,
        server: FeedServer,
        handler: _Handler,
        record: RecordedRequest,
        host: str,
        *,
        head: bool,
    ) -> None:
        self.server = server
        self.handler = handler
        self.record = record
        self.host = host
        self.head = head
        self._counted = True

    def done(self) -> None:
        """No longer in flight (idempotent)."""
        if not self._counted:
            return
        self._counted = False
        with self.server._lock:
            for key in (self.host, "*"):
                self.server._in_flight[key] -= 1

    def send(
        self,
        status: int,
        headers: dict[str, str],
        body: bytes,
        *,
        chunked: bool = False,
        drip: float | None = None,
    ) -> None:
        handler = self.handler
        self.record.status = status
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Status"
        handler.send_response_only(status, phrase)
        handler.send_header("Date", format_datetime(datetime.now(UTC), usegmt=True))
        for name, value in headers.items():
            handler.send_header(name, value)
        has_body = not self.head and status not in (204, 304) and status >= 200
        if chunked and has_body:
            handler.send_header("Transfer-Encoding", "chunked")
        elif status != 304:
            handler.send_header("Content-Length", str(len(body)))
        if not has_body or not body and not chunked:
            self.done()
            handler.end_headers()
            self.record.complete = True
            return
        handler.end_headers()
        pieces = _pieces(body, 1 if drip else WRITE_CHUNK)
        waited = 0.0
        for index, piece in enumerate(pieces):
            if not piece:
                continue  # an empty chunk would end a chunked body early
            if drip and index:
                waited += drip
                if waited > MAX_WAIT or self.server._stop.wait(drip):
                    handler.close_connection = True
                    return
            last = index == len(pieces) - 1
            if last and not chunked:
                self.done()
            handler.wfile.write(_frame(piece) if chunked else piece)
            self.record.bytes_sent += len(piece)
        if chunked:
            self.done()
            handler.wfile.write(b"0\r\n\r\n")
        handler.wfile.flush()
        self.record.complete = True


def _pieces(body: bytes, size: int) -> list[bytes]:
    return [body[i : i + size] for i in range(0, len(body), size)] or [b""]


def _frame(piece: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(piece), piece)


def _etag_value(tag: str) -> str:
    # RFC 9110 section 8.8.3.2: If-None-Match uses the weak comparison.
    return tag.strip().removeprefix("W/")


def _not_modified(route: Route, request_headers: Message) -> bool:
    """RFC 9110 section 13.2.2: If-None-Match first; If-Modified-Since only without it."""
    if_none_match = request_headers.get("If-None-Match")
    if if_none_match is not None:
        if route.etag is None:
            return False
        tags = [_etag_value(t) for t in if_none_match.split(",")]
        return "*" in tags or _etag_value(route.etag) in tags
    if_modified_since = request_headers.get("If-Modified-Since")
    if if_modified_since is None or route.last_modified is None:
        return False
    try:
        return parsedate_to_datetime(route.last_modified) <= parsedate_to_datetime(
            if_modified_since
        )
    except (TypeError, ValueError):
        return route.last_modified == if_modified_since


def _next_etag(tag: str) -> str:
    weak = tag.startswith("W/")
    inner = tag.removeprefix("W/").strip('"')
    return f'{"W/" if weak else ""}"{inner}+"'


def _later(last_modified: str) -> str:
    try:
        old = parsedate_to_datetime(last_modified)
    except (TypeError, ValueError):
        old = datetime.now(UTC)
    new = max(datetime.now(UTC).replace(microsecond=0), old + timedelta(seconds=1))
    return format_datetime(new.astimezone(UTC), usegmt=True)


def unused_port_url(path: str = "/") -> str:
    """A loopback URL on which nothing listens (connection refused).

    The port was free a moment ago; another process could take it in between,
    which on a test machine is rare enough to accept.
    """
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"
