"""A lean HTTP/1.1 load generator: N keep-alive connections on one asyncio loop, one request in
flight on each. It spends far less CPU per request than a full client library, so on a small
machine the figure measures the server rather than the client."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from urllib.parse import urlsplit

# (client, i) -> (method, path, body[, extra headers]); the body is JSON unless the headers say otherwise
Request = Callable[[int, int], tuple[str, str, bytes] | tuple[str, str, bytes, dict[str, str]]]


async def _client(host: str, port: int, k: int, request: Request, headers: str, stop: float,
                  lat: list[float], ok: set[int]) -> None:  # fmt: skip
    reader, writer = await asyncio.open_connection(host, port)
    i = 0
    try:
        while time.monotonic() < stop:
            method, path, body, *more = request(k, i)
            i += 1
            extra = "".join(f"{name}: {value}\r\n" for h in more for name, value in h.items())
            if not extra:
                extra = "Content-Type: application/json\r\n"
            head = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\n{headers}{extra}Content-Length: {len(body)}\r\n\r\n"
            t = time.perf_counter()
            writer.write(head.encode() + body)
            got = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in got.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            data = await reader.readexactly(length)
            lat.append((time.perf_counter() - t) * 1e3)
            status = int(got[9:12])
            if status not in ok:
                raise RuntimeError(f"{status}: {data[:300]!r}")
    finally:
        writer.close()


def run(base: str, headers: dict[str, str], request: Request, clients: int, seconds: float,
        ok: frozenset[int] = frozenset({200, 201})) -> tuple[float, list[float]]:  # fmt: skip
    """Requests per second and every latency (ms) of ``clients`` concurrent connections."""
    url = urlsplit(base)
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    lat: list[float] = []

    async def main() -> float:
        stop = time.monotonic() + seconds
        t = time.perf_counter()
        await asyncio.gather(*(_client(url.hostname or "127.0.0.1", url.port or 80, k, request, extra, stop, lat,
                                       set(ok)) for k in range(clients)))  # fmt: skip
        return time.perf_counter() - t

    elapsed = asyncio.run(main())
    return len(lat) / elapsed, lat
