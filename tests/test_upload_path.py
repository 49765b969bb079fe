"""The upload path: one pass over the bytes (hash, store, page count), one read of the dossier, and
the request body handed to the worker thread without polling."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any
from uuid import UUID

import pytest

from api.streaming import BUFFER, consume_in_thread
from dossier.domain import Dossier
from tests.dossier_fixtures import Stack, pdf_bytes

ACT = {"actor": "clerk:li", "role": "clerk"}


def test_a_pdf_is_stored_and_counted_in_one_pass_and_its_dossier_read_once(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = stack.app
    d = app.open_dossier(case_number_text="（2026）京0105民初900号", case_type="民事", parties=[], **ACT)
    reads: list[str] = []
    loads: list[UUID | str] = []
    read, get = app.blobs.read, app.get

    def counted_read(sha256: str, *args: Any, **kwargs: Any) -> Iterator[bytes]:
        reads.append(sha256)
        return read(sha256, *args, **kwargs)

    def counted_get(dossier: UUID | str, *, copy: bool = True) -> Dossier:
        loads.append(dossier)
        return get(dossier, copy=copy)

    monkeypatch.setattr(app.blobs, "read", counted_read)
    monkeypatch.setattr(app, "get", counted_get)
    for pages in (3, 5):
        body = pdf_bytes(pages)
        up = app.upload(d, iter([body[:100], body[100:]]), name="起诉状.pdf", media_type="application/pdf",
                        source="court", doc_type=None, **ACT)  # fmt: skip
        assert up["pages"] == pages and up["size"] == len(body)
        assert b"".join(read(up["sha256"])) == body
    assert reads == []  # counted from the bytes on their way in, never read back (on S3, a download)
    assert len(loads) == 3  # the first upload: its check and the committer's read; the second: its check


def _run(body: AsyncIterator[bytes], consume: Any) -> Any:
    return asyncio.run(consume_in_thread(body, consume))


async def _chunks(n: int, seen: list[int] | None = None, fail: BaseException | None = None) -> AsyncIterator[bytes]:
    for i in range(n):
        if seen is not None:
            seen.append(i)
        yield b"%d," % i
    if fail is not None:
        raise fail


def test_the_body_reaches_the_worker_in_order_with_back_pressure() -> None:
    seen: list[int] = []
    gate = threading.Event()
    ahead: list[int] = []

    def consume(chunks: Iterator[bytes]) -> bytes:
        assert gate.wait(10)
        ahead.append(len(seen))  # read before the worker took its first chunk
        return b"".join(chunks)

    async def main() -> bytes:
        loop = asyncio.get_running_loop()
        loop.call_later(0.2, gate.set)
        return await consume_in_thread(_chunks(1000, seen), consume)

    assert asyncio.run(main()) == b"".join(b"%d," % i for i in range(1000))
    assert ahead[0] <= BUFFER + 1  # the body waits for the worker: nothing piles up in memory


def test_a_body_cut_off_reaches_the_worker_as_an_error_and_is_raised_here() -> None:
    heard: list[BaseException] = []

    def consume(chunks: Iterator[bytes]) -> int:
        try:
            return sum(len(c) for c in chunks)
        except ConnectionAbortedError as exc:
            heard.append(exc)
            raise

    with pytest.raises(OSError, match="client went away"):
        _run(_chunks(20, fail=OSError("client went away")), consume)
    assert len(heard) == 1


def test_a_worker_that_refuses_stops_the_reading_and_its_error_is_the_answer() -> None:
    seen: list[int] = []

    def consume(chunks: Iterator[bytes]) -> None:
        next(chunks)
        raise PermissionError("not yours")

    with pytest.raises(PermissionError):
        _run(_chunks(10_000, seen), consume)
    assert len(seen) < 10_000  # the rest of the body was not read


def test_no_polling_between_the_loop_and_the_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    """A slow worker keeps the event loop waiting on the stream, never sleeping in a loop."""
    sleeps: list[float] = []
    real_sleep = asyncio.sleep

    async def counted(delay: float, *args: Any) -> Any:
        sleeps.append(delay)
        return await real_sleep(delay, *args)

    monkeypatch.setattr(asyncio, "sleep", counted)

    def consume(chunks: Iterator[bytes]) -> int:
        n = 0
        for c in chunks:
            threading.Event().wait(0.001)
            n += len(c)
        return n

    assert _run(_chunks(200), consume) == sum(len(b"%d," % i) for i in range(200))
    assert sleeps == []


def test_an_imported_file_is_handed_to_its_store_without_polling() -> None:
    """dossier/transfer.py's handoff: bounded, in order, and a store that stops wakes the reader at once."""
    from dossier.transfer import _Channel

    channel = _Channel(2)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.extend(channel))
    reader.start()
    assert all(channel.put(b"%d" % i) for i in range(50))
    channel.end()
    reader.join(10)
    assert got == [b"%d" % i for i in range(50)]

    stopped = _Channel(1)
    assert stopped.put(b"a")
    answer: list[bool] = []
    waiting = threading.Thread(target=lambda: answer.append(stopped.put(b"b")))  # full: waits for room
    waiting.start()
    threading.Event().wait(0.05)
    assert not answer
    stopped.close()  # the store gave up
    waiting.join(1)
    assert answer == [False]
