"""How ``sifa serve`` runs uvicorn: HTTPS, keep-alive, and an HTTP protocol bounded against slow and
greedy clients.

uvicorn (0.54, httptools) bounds neither the time nor the size of a request's headers: a client
sending one header byte now and then held its connection for ever (3,000 such clients held 3,000
connections; ~22,000 exhausted the file descriptors and ``/healthz`` failed), and one sending headers
without end grew the node's memory. ``EdgeProtocol`` adds:

- a request's line and headers must arrive within ``SIFA_HEADER_TIMEOUT_SECONDS`` of the connection
  opening or of the request's first byte, else the connection is closed;
- they may hold at most ``SIFA_MAX_HEADER_BYTES``, else 431 and the connection is closed;
- beyond ``SIFA_MAX_CONNECTIONS`` open connections a request is answered 503 ``server_busy`` and its
  connection closed; a connection opened beyond the limit has one second to send its headers;
- a response finished before its request's body arrived (a refusal) leaves the client
  ``LINGER_SECONDS`` to send the rest, which is dropped unread; then the connection is closed (uvicorn
  would drop it for as long as the client sends it). Closing at once could reset the connection
  before a client still sending its body has read the answer.

Bodies are bounded by the app's edge (``api/edge.py``): credentials before bodies, sizes, pauses.
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
import ssl
import time
from dataclasses import dataclass
from typing import Any, ClassVar, cast

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from api.edge import BODY_IN
from api.node import NodeError, load_trust_file
from api.peers import check_urls, client_tls
from api.settings import Settings

log = logging.getLogger("sifa.server")
BUSY_HEADER_SECONDS = 1.0  # a connection opened beyond the limit: this long to say what it wants
LINGER_SECONDS = 5.0  # a refused request's body: this long to arrive (and be dropped)
FILES_BESIDES_CONNECTIONS = 256  # databases, blobs being read or written, the listening socket


@dataclass(frozen=True)
class Limits:
    header_timeout: float
    max_header_bytes: int
    max_connections: int


def _error_body(code: str, message: str) -> bytes:
    return json.dumps({"code": code, "message": message, "detail": None}).encode()  # api/errors.py's body


BUSY = _error_body("server_busy", "the node has too many connections open; try again shortly")
BUSY_HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BUSY)).encode()),
                (b"connection", b"close"), (b"retry-after", b"1")]  # fmt: skip


class EdgeProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the bounds of the module docstring. ``limits`` is set on the
    subclass ``protocol(settings)`` makes (uvicorn builds protocols from a class)."""

    limits: ClassVar[Limits]
    busy_warned: ClassVar[float] = -60.0

    def __init__(self, config: Config, server_state: ServerState, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:  # fmt: skip
        super().__init__(config, server_state, app_state, _loop)
        self._deadline: asyncio.TimerHandle | None = None
        self._reading_headers = True
        self._header_bytes = 0
        self._turns = 0  # headers or messages completed: a chunk that saw one was not all headers
        self._in_headers = False  # a request has begun and its headers are not all in
        self._lingering = False
        self._app = self.app
        self.app = self._busy_or_app

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        over = len(self.connections) > self.limits.max_connections
        self._arm(min(BUSY_HEADER_SECONDS, self.limits.header_timeout) if over else self.limits.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        reading, turns = self._reading_headers, self._turns
        super().data_received(data)
        # Counted when all of ``data`` was headers. A chunk that also ended a body and began the next
        # request's headers is not: the count is short by at most one read.
        if reading and self._reading_headers and turns == self._turns and not self.transport.is_closing():
            self._header_bytes += len(data)
            if self._header_bytes > self.limits.max_header_bytes:
                if self.cycle is None or self.cycle.response_complete:  # not in the middle of an answer
                    body = _error_body(
                        "headers_too_large",
                        f"a request's headers may have at most {self.limits.max_header_bytes} bytes",
                    )
                    self.transport.write(b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: "
                                         b"application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n%s"
                                         % (len(body), body))  # fmt: skip
                self.transport.close()
        # A request begun and not all headers in: their time starts (once). One that came whole in
        # this chunk, as nearly all do, never needs a timer.
        if self._in_headers and self._deadline is None and not self.transport.is_closing():
            self._arm(self.limits.header_timeout)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_headers = True

    def on_headers_complete(self) -> None:
        self._disarm()
        self._reading_headers, self._header_bytes, self._turns = False, 0, self._turns + 1
        self._in_headers = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        cast(dict[str, Any], self.scope)[BODY_IN] = True  # the edge (api/edge.py) need not wait for any of it
        super().on_message_complete()
        self._reading_headers, self._turns = True, self._turns + 1  # what comes next is the next request's
        if self._lingering:  # the refused request's body is all in: the connection is as good as new
            self._lingering = False
            self._disarm()

    def on_response_complete(self) -> None:
        cycle = self.cycle
        if cycle is not None and cycle.response_complete and cycle.more_body:  # answered before its body came
            self._lingering = True
            self._arm(LINGER_SECONDS)
        super().on_response_complete()

    async def _busy_or_app(self, scope: Any, receive: Any, send: Any) -> None:
        if len(self.connections) > self.limits.max_connections:
            self._warn_busy()
            await send({"type": "http.response.start", "status": 503, "headers": BUSY_HEADERS})
            await send({"type": "http.response.body", "body": BUSY})
            return
        await self._app(scope, receive, send)

    def _warn_busy(self) -> None:
        """At most once a minute: a flood of connections must not become a flood of log lines."""
        now = time.monotonic()
        if now - EdgeProtocol.busy_warned > 60:
            EdgeProtocol.busy_warned = now
            log.warning("more than %d connections are open: requests are answered 503 server_busy",
                        self.limits.max_connections)  # fmt: skip

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.close()


def protocol(settings: Settings) -> type[EdgeProtocol]:
    """``EdgeProtocol`` with the bounds ``settings`` name."""
    limits = Limits(settings.header_timeout_seconds, settings.max_header_bytes, settings.max_connections)
    return type("SifaProtocol", (EdgeProtocol,), {"limits": limits})


def check_serving(settings: Settings) -> None:
    """Refuse, before serving, what would fail later: a TLS key without its certificate, certificate,
    key or CA files that do not load, peer or witness URLs that are not https:// (nor on loopback).
    Raises NodeError, InsecurePeerUrlError."""
    if settings.tls_key is not None and settings.tls_cert is None:
        raise NodeError("SIFA_TLS_KEY is set without SIFA_TLS_CERT")
    try:
        if settings.tls_cert is not None:
            server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            server.load_cert_chain(settings.tls_cert, settings.tls_key)
        if settings.tls_ca is not None:
            client_tls(settings.tls_ca)
    except (ssl.SSLError, OSError) as exc:
        raise NodeError(f"the TLS certificate, key or CA (SIFA_TLS_*) does not load: {exc}") from None
    check_trust_files(settings)


def check_trust_files(settings: Settings) -> None:
    """The peers and witnesses files (SIFA_PEERS, SIFA_WITNESSES) read, and their URLs callable:
    https://, or http:// on loopback. Raises NodeError, InsecurePeerUrlError, PeerUnavailableError."""
    for path, what in ((settings.peers, "a peer court's node"), (settings.witnesses, "a witness's")):
        if path is not None:
            check_urls(load_trust_file(path), f"{path}: {what}")


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """The keyword arguments of ``uvicorn.run`` (or ``uvicorn.Config``) for a node."""
    tls = {}
    if settings.tls_cert is not None:  # a key in the certificate's file is found there
        tls = {"ssl_certfile": str(settings.tls_cert), "ssl_keyfile": settings.tls_key and str(settings.tls_key)}
    return {"host": settings.host, "port": settings.port, "http": protocol(settings),
            "timeout_keep_alive": settings.keep_alive_seconds, "access_log": settings.access_log, **tls}  # fmt: skip


def raise_open_files_limit(settings: Settings) -> int:
    """Raise this process's soft limit of open files to its hard limit (each connection is one file);
    the limit now. One below what ``settings.max_connections`` needs is logged."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as exc:  # e.g. macOS refuses more than OPEN_MAX
            log.warning("could not raise the open files limit from %d to %d: %s", soft, hard, exc)
    needed = settings.max_connections + FILES_BESIDES_CONNECTIONS
    if soft != resource.RLIM_INFINITY and soft < needed:
        log.warning("%d open files allowed, %d connections (SIFA_MAX_CONNECTIONS) need about %d", soft,
                    settings.max_connections, needed)  # fmt: skip
    return soft
