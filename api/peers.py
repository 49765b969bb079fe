"""Node-to-node requests: signed by the requesting court's log key, checked against the trust file,
sent over HTTPS (plain HTTP only on loopback).

A request carries five headers::

    Sifa-Origin:    sifa.court/1101-0200          the requesting court's log origin
    Sifa-To:        sifa.court/1101-0105          the log origin of the court it is sent to
    Sifa-Time:      1795420800                    Unix seconds, ASCII digits; accepted within ±window
    Sifa-Nonce:     32 hex digits                 never accepted twice within the window
    Sifa-Signature: base64 Ed25519 signature of

        sifa-request/v2\\n<origin>\\n<to>\\n<METHOD>\\n<path?query>\\n<sha256(body) hex>\\n<time>\\n<nonce>\\n

The message's first line keeps it apart from anything else the key signs (checkpoints are
signed notes whose first line is the origin). A request is refused when unsigned, from a court
not in the trust file, addressed to another court (a request captured on its way to one court
is no use at a third), outside the time window, with a bad signature, or replayed.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import http.client
import ipaddress
import re
import secrets
import socket
import sqlite3
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from api.node import COURT_CODE, ORIGIN_PREFIX
from api.principals import AuthError, Caller, ForbiddenError
from ledger import boundedjson
from ledger.errors import SifaError
from ledger.note import Signer, Verifier
from ledger.trust import Trust

PREFIX = "sifa-request/v2"  # v2: the recipient's origin is signed (v1 requests could be replayed to a third court)
WINDOW = 300  # seconds
_ORIGIN = re.compile(re.escape(ORIGIN_PREFIX) + f"({COURT_CODE.pattern})")  # origin_for's, read back
_NONCE = re.compile(r"[0-9a-f]{32}")
_TIME = re.compile(r"[0-9]{1,12}")  # ASCII only: str.isdigit() also takes "²", which int() refuses
LOOPBACK_NAMES = ("localhost",)


class UnsignedRequestError(AuthError):
    code = "request_unsigned"


class UnknownPeerError(AuthError):
    code = "peer_unknown"


class ExpiredRequestError(AuthError):
    code = "request_expired"


class BadRequestSignatureError(AuthError):
    code = "request_signature_invalid"


class ReplayedRequestError(AuthError):
    code = "request_replayed"


class MisaddressedRequestError(AuthError):
    """A signed request addressed to another court."""

    code = "request_misaddressed"


class InsecurePeerUrlError(SifaError):
    """A peer node's or witness's URL that is not https:// (and not on loopback)."""

    code = "peer_url_insecure"


class NotTransferredToYouError(ForbiddenError):
    """The calling court is not named by any transfer of the dossier."""

    code = "not_transferred"


class NotReceivedFromYouError(ForbiddenError):
    """The calling court is not the one this node received the dossier from (a file asked back for repair)."""

    code = "not_received"


class PeersNotConfiguredError(SifaError):
    code = "peers_not_configured"


class PeerUnavailableError(SifaError):
    code = "peer_unavailable"


class PeerRefusedError(SifaError):
    code = "peer_refused"


class PeerCertificateError(SifaError):
    """The peer's TLS certificate does not verify against this node's CA bundle."""

    code = "peer_certificate_invalid"


def court_of(origin: str) -> str:
    """The court code of a court log's origin (``sifa.court/1101-0105`` → ``1101-0105``)."""
    found = _ORIGIN.fullmatch(origin)
    if found is None:
        raise UnknownPeerError(f"{origin!r} is not a court log's origin")
    return found.group(1)


def request_message(origin: str, to: str, method: str, target: str, body_sha256: str, when: int,
                    nonce: str) -> bytes:  # fmt: skip
    return f"{PREFIX}\n{origin}\n{to}\n{method.upper()}\n{target}\n{body_sha256}\n{when}\n{nonce}\n".encode()


def sign_request(signer: Signer, method: str, target: str, body: bytes = b"", *, to: str,
                 now: float | None = None) -> dict[str, str]:  # fmt: skip
    """The headers that sign one request to the court whose log origin is ``to``."""
    when, nonce = int(time.time() if now is None else now), secrets.token_hex(16)
    message = request_message(signer.name, to, method, target, hashlib.sha256(body).hexdigest(), when, nonce)
    return {"Sifa-Origin": signer.name, "Sifa-To": to, "Sifa-Time": str(when), "Sifa-Nonce": nonce,
            "Sifa-Signature": base64.b64encode(signer.sign(message)).decode()}  # fmt: skip


class NonceStore:
    """The nonces of accepted requests, each kept until its request could no longer be fresh, in a
    SQLite file (or in memory): a node restarted within the window still refuses a replay. The
    primary key makes claiming a nonce atomic, also between processes sharing the file."""

    def __init__(self, path: Path | None = None) -> None:
        self._db = sqlite3.connect(str(path) if path else ":memory:", check_same_thread=False, isolation_level=None,
                                   timeout=10)  # fmt: skip
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS nonces (nonce TEXT PRIMARY KEY, expires REAL NOT NULL)")
        self._lock = threading.Lock()
        self._claims = 0

    def claim(self, nonce: str, expires: float) -> bool:
        """True the first time a nonce is claimed (before it expires), False ever after."""
        with self._lock:
            self._claims += 1
            if self._claims % 1000 == 0:
                self._db.execute("DELETE FROM nonces WHERE expires < ?", (time.time(),))
            try:
                self._db.execute("INSERT INTO nonces VALUES (?, ?)", (nonce, expires))
            except sqlite3.IntegrityError:
                return False
            return True

    def close(self) -> None:
        self._db.close()


class PeerGate:
    """Checks signed requests to the court whose log origin is ``origin`` against the peers' log keys;
    remembers nonces for the window."""

    def __init__(self, peers: Trust | None, origin: str, window: int = WINDOW,
                 nonces: NonceStore | None = None) -> None:  # fmt: skip
        self.keys: dict[str, Verifier] = {k.name: k for k in (peers.logs if peers else [])}
        self.origin = origin
        self.window = window
        self.nonces = nonces or NonceStore()

    def check(self, method: str, target: str, body_sha256: str, headers: Mapping[str, str]) -> Caller:
        """The calling court, if the request is signed, addressed here, fresh and new. Raises an AuthError."""
        origin, to, when, nonce, signature = (headers.get(f"sifa-{h}") for h in ("origin", "to", "time", "nonce",
                                                                                  "signature"))  # fmt: skip
        if not (origin and to and when and nonce and signature):
            raise UnsignedRequestError("a node-to-node request must carry Sifa-Origin, -To, -Time, -Nonce and "
                                       "-Signature")  # fmt: skip
        key = self.keys.get(origin)
        if key is None:
            raise UnknownPeerError(f"court log {origin!r} is not in this node's trust file")
        if to != self.origin:
            raise MisaddressedRequestError(f"this request is addressed to {to!r}; this node is {self.origin}")
        if not _TIME.fullmatch(when):
            raise ExpiredRequestError("Sifa-Time is Unix seconds in ASCII digits")
        if abs(time.time() - int(when)) > self.window:
            raise ExpiredRequestError(f"the request's time is not within {self.window} s of this node's clock")
        if not _NONCE.fullmatch(nonce):
            raise UnsignedRequestError("Sifa-Nonce is 32 lower-case hex digits")
        try:
            sig = base64.b64decode(signature, validate=True)
        except (binascii.Error, ValueError):
            raise BadRequestSignatureError("Sifa-Signature is not base64") from None
        if not key.verify(request_message(origin, to, method, target, body_sha256, int(when), nonce), sig):
            raise BadRequestSignatureError(f"the signature is not {origin}'s over this request")
        if not self.nonces.claim(nonce, time.time() + 2 * self.window):
            raise ReplayedRequestError("this request was already received; a signed request is used once")
        court = court_of(origin)
        return Caller(id=origin, name=origin, role="court", court=court, dossiers=())


@dataclass
class PeerStream:
    """A peer's streamed answer; ``read`` raises OSError when the stream is cut."""

    response: http.client.HTTPResponse
    connection: http.client.HTTPConnection
    cutter: threading.Timer | None = None  # ``send``'s deadline: cuts the connection when it passes

    @property
    def status(self) -> int:
        return self.response.status

    @property
    def media_type(self) -> str:
        return self.response.headers.get("Content-Type", "")

    def read(self, n: int = -1) -> bytes:
        if n < 0:  # http.client would read the rest whole
            raise ValueError("PeerStream.read needs a bound: a peer's stream is never read whole")
        try:
            return self.response.read(n)
        except (http.client.HTTPException, OSError) as exc:
            raise OSError(f"the peer's stream was cut: {exc}") from None

    def read1(self, n: int) -> bytes:
        """At most ``n`` bytes, from at most one read of the socket: what has arrived, without waiting
        for all ``n`` (a caller keeping a deadline sees a trickle as it comes)."""
        try:
            return self.response.read1(n)
        except (http.client.HTTPException, OSError) as exc:
            raise OSError(f"the peer's stream was cut: {exc}") from None

    def close(self) -> None:
        if self.cutter is not None:
            self.cutter.cancel()
        self.connection.close()


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost: a connection that never leaves the machine."""
    if host.lower().rstrip(".") in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str, what: str) -> None:
    """A peer node's or witness's URL: https://, or http:// on loopback, with a host and a port (if
    any) of 1 to 65535. Raises PeerUnavailableError (a URL that cannot be called: a bad port, a
    broken bracket, spaces), InsecurePeerUrlError (no host, or not https:// off loopback)."""
    if not isinstance(url, str) or not url.isprintable() or any(c.isspace() for c in url):
        raise PeerUnavailableError(f"{what} URL {url!r} is not a URL (spaces or control characters)")
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port  # ValueError: not a number, or outside 0..65535
    except ValueError as exc:
        raise PeerUnavailableError(f"{what} URL {url!r} is not a URL that can be called: {exc}") from None
    if port == 0:
        raise PeerUnavailableError(f"{what} URL {url!r} is not a URL that can be called: port 0")
    if host and (parts.scheme == "https" or (parts.scheme == "http" and is_loopback(host))):
        return
    raise InsecurePeerUrlError(f"{what} URL {url!r} must be https:// (plain http:// only on loopback: 127.0.0.0/8, "
                               "::1, localhost)")  # fmt: skip


def check_urls(trust: Trust, what: str) -> None:
    """Every node and witness URL of a trust file (``what`` names it in the refusal)."""
    for url in [*trust.log_urls.values(), *trust.urls.values()]:
        check_url(url, what)


def client_tls(ca: Path | None) -> ssl.SSLContext:
    """How this node checks a peer node's or witness's certificate: against the CA bundle ``ca``
    (PEM; only those CAs), else the system's store."""
    return ssl.create_default_context(cafile=str(ca) if ca else None)


def fetcher(signer: Signer, ca: Path | None) -> Callable[..., PeerStream]:
    """``peer_get`` as this node calls it: signed with ``signer``, certificates checked against ``ca``."""
    tls = client_tls(ca)

    def fetch(base_url: str, target: str, *, to: str, deadline: float | None = None) -> PeerStream:
        return peer_get(base_url, target, signer, to=to, tls=tls, deadline=deadline)

    return fetch


def _cut(conn: http.client.HTTPConnection) -> None:
    """End a connection another thread may be blocked reading: its reads then see the end of the stream."""
    sock = conn.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _cutter(conn: http.client.HTTPConnection, at: float) -> threading.Timer:
    """A timer cutting ``conn`` at ``at`` (a ``time.monotonic()`` value), started."""
    timer = threading.Timer(max(0.0, at - time.monotonic()), _cut, (conn,))
    timer.daemon = True
    timer.start()
    return timer


def send(method: str, url: str, *, what: str, headers: Mapping[str, str] | None = None, body: bytes | None = None,
         tls: ssl.SSLContext | None = None, timeout: float = 60.0,
         deadline: float | None = None) -> PeerStream:  # fmt: skip
    """The node's one HTTP client, for every request it sends another node or a witness: ``method``
    ``url`` (https://, or http:// on loopback only), the answer's body left to stream (the caller
    closes it). ``what`` names the other side in a refusal; ``tls``: how its certificate is checked
    (default: the system's store). ``timeout`` bounds each read of the socket, and the wait for the
    answer's status line and headers as a whole; ``deadline`` (a ``time.monotonic()`` value), if given,
    the whole exchange, headers and body. Past either the connection is cut, however the other side
    trickles (endless ``100 Continue`` answers, headers a byte at a time). Raises InsecurePeerUrlError,
    PeerCertificateError, PeerUnavailableError; any status is an answer."""
    check_url(url, what)
    parts = urlsplit(url)
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(parts.hostname or "", parts.port, timeout=timeout,
                                           context=tls or client_tls(None))  # fmt: skip
    else:
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    now = time.monotonic()
    heard_by = now + timeout if deadline is None else min(deadline, now + timeout)  # the status line and headers
    cutter: threading.Timer | None = None
    try:
        conn.timeout = max(0.001, min(timeout, heard_by - now))  # connecting, too
        conn.connect()
        cutter = _cutter(conn, heard_by)
        conn.request(method, target, body=body, headers=dict(headers or {}))
        response = conn.getresponse()
        cutter.cancel()
        cutter = None if deadline is None else _cutter(conn, deadline)
    except ssl.SSLCertVerificationError as exc:
        if cutter is not None:
            cutter.cancel()
        conn.close()
        raise PeerCertificateError(f"{what} {url}'s certificate does not verify against this node's CA "
                                   f"bundle (SIFA_TLS_CA): {exc.verify_message}") from None  # fmt: skip
    except (OSError, http.client.HTTPException, ValueError) as exc:  # ValueError: a URL http.client refuses
        if cutter is not None:
            cutter.cancel()
        conn.close()
        late = time.monotonic() >= heard_by
        raise PeerUnavailableError(f"{what} {url} does not answer{' in time' if late else ''}: {exc}") from None
    return PeerStream(response, conn, cutter)


def peer_get(base_url: str, target: str, signer: Signer, *, to: str, tls: ssl.SSLContext | None = None,
             timeout: float = 60.0, deadline: float | None = None) -> PeerStream:  # fmt: skip
    """A signed GET to the node of the court whose log origin is ``to``; the body is left to stream.
    ``tls``: how its certificate is checked (default: the system's store); ``deadline``: as ``send``'s.
    Raises InsecurePeerUrlError,
    PeerUnavailableError, PeerCertificateError, PeerRefusedError (carrying the peer's error code and
    message)."""
    check_url(base_url, f"the peer court {to}'s")
    path = urlsplit(base_url).path.rstrip("/") + target
    answer = send("GET", base_url.rstrip("/") + target, what="the peer", tls=tls, timeout=timeout,
                  deadline=deadline, headers=sign_request(signer, "GET", path, to=to))  # fmt: skip
    if answer.status != 200:
        body = _error(answer.read(64 << 10))
        answer.close()
        raise PeerRefusedError(f"the peer refused ({answer.status} {body.get('code')}): {body.get('message')}",
                               peer_status=answer.status, peer_code=body.get("code"))  # fmt: skip
    return answer


def _error(data: bytes) -> dict[str, Any]:
    try:
        doc = boundedjson.loads(data)
        return doc if isinstance(doc, dict) else {}
    except ValueError:
        return {"message": data[:200].decode("utf-8", "replace")}


class ChunkReader:
    """A file-like ``read(n)`` over an iterator of byte chunks (a request body). Like a socket's,
    a read returns at most ``n`` bytes and at most one chunk (never gluing chunks together); b"" is
    the end. A read must say how much: the body is untrusted, its rest is never joined in memory."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._buf = memoryview(b"")

    def read(self, n: int = -1) -> bytes:
        if n < 0:
            raise ValueError("ChunkReader.read needs a bound: the rest of a request body is never read whole")
        while not self._buf:
            chunk = next(self._chunks, None)
            if chunk is None:
                return b""
            self._buf = memoryview(chunk)
        piece, self._buf = self._buf[:n], self._buf[n:]
        return bytes(piece)
