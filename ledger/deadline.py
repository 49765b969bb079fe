"""An HTTP POST with one total deadline: connecting, sending, the answer's headers and its body all
count against it, so a server that drips one byte a second cannot hold the caller for longer than
``timeout`` seconds (a per-read socket timeout alone would never fire). Used where sifa asks a
server it does not control: a TSA (api/tsa.py), a chain's node (verifier/chain.py).
"""

from __future__ import annotations

import http.client
import io
import ssl
import time
import urllib.parse
from typing import Any


class DeadlineError(OSError):
    """The server did not answer in time (an OSError: the caller treats it as unreachable)."""


class _Reader(io.RawIOBase):
    def __init__(self, sock: Any, deadline: float) -> None:
        self.sock, self.deadline = sock, deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise DeadlineError("the server did not answer within the deadline")
        self.sock.settimeout(left)
        try:
            return int(self.sock.recv_into(buffer))
        except TimeoutError as exc:
            raise DeadlineError("the server did not answer within the deadline") from exc


class _Socket:
    """The connection's socket, whose reads stop at the deadline."""

    def __init__(self, sock: Any, deadline: float) -> None:
        self._sock, self._deadline = sock, deadline

    def makefile(self, mode: str, *args: Any, **kwargs: Any) -> Any:
        return io.BufferedReader(_Reader(self._sock, self._deadline))

    def close(self) -> None:
        """Left to ``post``: the answer is still being read from it when http.client lets go."""

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def check_url(url: str) -> urllib.parse.SplitResult:
    """An http(s) URL with a host; raises ValueError for anything else (file:, no scheme, …)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r} is not an http:// or https:// URL")
    parts.port  # noqa: B018 -- raises ValueError for a port that is no number
    return parts


def post(url: str, body: bytes, headers: dict[str, str], *, timeout: float, max_bytes: int,
         context: ssl.SSLContext | None = None) -> tuple[int, str, bytes]:  # fmt: skip
    """POST ``body``; return the status, the Content-Type and at most ``max_bytes`` of the answer.
    Raises OSError (DeadlineError past ``timeout`` seconds in all) or ValueError (a bad URL)."""
    parts = check_url(url)
    deadline = time.monotonic() + timeout
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(parts.hostname or "", parts.port, timeout=timeout, context=context)
    else:
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)
    real = None
    try:
        conn.connect()
        real = conn.sock
        conn.sock = _Socket(real, deadline)
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        out = bytearray()
        while len(out) < max_bytes:
            chunk = response.read1(min(65536, max_bytes - len(out)))
            if not chunk:
                break
            out += chunk
        return response.status, response.getheader("Content-Type", "") or "", bytes(out)
    except http.client.HTTPException as exc:
        raise OSError(f"HTTP: {exc}") from exc
    finally:
        conn.close()
        if real is not None:
            real.close()
