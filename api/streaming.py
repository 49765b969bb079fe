"""Hand a request body, as it arrives, to a synchronous consumer in a worker thread.

The event loop sends chunks into an anyio memory object stream (a few chunks of buffer: back
pressure on the client when the consumer is slower); the worker blocks on it through
``anyio.from_thread`` until chunks come or the body ends. Nothing polls.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import TypeVar

import anyio
import anyio.from_thread
import anyio.lowlevel

from ledger.errors import SifaError

T = TypeVar("T")
BUFFER = 8  # chunks in flight between the event loop and the worker


class TooManyUploadsError(SifaError):
    """A principal already has as many uploads in flight as it may."""

    code = "too_many_uploads"
    retry_after = 5


class BodySlots:
    """The uploads in flight: at most ``per_holder`` a principal, their bodies consumed by threads of their
    own (at most ``threads``), so slow senders never hold the threads every other request needs.
    Used on the event loop only: no lock."""

    def __init__(self, per_holder: int, threads: int) -> None:
        self.per_holder = per_holder
        self.held: dict[str, int] = {}
        self.executor = ThreadPoolExecutor(threads, thread_name_prefix="sifa-body")

    @contextlib.contextmanager
    def hold(self, holder: str) -> Iterator[None]:
        """One upload's slot for ``holder``. Raises TooManyUploadsError when it holds all of its own."""
        count = self.held.get(holder, 0)
        if count >= self.per_holder:
            raise TooManyUploadsError(f"at most {self.per_holder} uploads at once a credential; wait for one to end")
        self.held[holder] = count + 1
        try:
            yield
        finally:
            if self.held[holder] == 1:
                del self.held[holder]
            else:
                self.held[holder] -= 1

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


async def consume_in_thread(
    body: AsyncIterator[bytes], consume: Callable[[Iterator[bytes]], T], executor: Executor | None = None
) -> T:
    """``consume(chunks)`` run in a worker thread while ``body`` is read; its result or its error.

    A body that fails (cut off, too large) reaches ``consume`` as ``ConnectionAbortedError`` and the
    body's own error is raised here once ``consume`` has stopped. A consumer that stops early (it
    refused the request) stops the reading; its error is the answer. ``executor``: where ``consume`` runs
    (None: the event loop's default)."""
    send, receive = anyio.create_memory_object_stream[bytes](BUFFER)
    token = anyio.lowlevel.current_token()
    cut_off = threading.Event()

    async def ready() -> list[bytes]:
        """The next chunk and any others already buffered (one crossing for several); [] at the end."""
        try:
            got = [await receive.receive()]
        except anyio.EndOfStream:
            return []
        while True:
            try:
                got.append(receive.receive_nowait())
            except (anyio.WouldBlock, anyio.EndOfStream):
                return got

    def chunks() -> Iterator[bytes]:
        while got := anyio.from_thread.run(ready, token=token):
            yield from got
        if cut_off.is_set():
            raise ConnectionAbortedError("the upload was cut off")

    def work() -> T:
        try:
            return consume(chunks())
        finally:
            anyio.from_thread.run_sync(receive.close, token=token)

    consumer = asyncio.get_running_loop().run_in_executor(executor, work)
    try:
        async for chunk in body:
            try:
                await send.send(chunk)
            except anyio.BrokenResourceError:  # the consumer stopped: its outcome is the answer
                break
    except BaseException:
        cut_off.set()
        send.close()
        await asyncio.gather(consumer, return_exceptions=True)
        raise
    send.close()
    return await consumer
