"""Waiting until the log covers a dossier's events: one look, or one wait that holds no thread.

A node's sequencer may be another process (``sifa seal``), so there is nothing in this process to
be woken by: the wait looks again every POLL seconds. Each look is a store read in a worker thread;
between looks the wait is a timer on the event loop, so a request waiting for its receipt holds no
worker thread. After the timeout it gives up with the caller's error (NotSealedError: 503
``not_sealed_yet`` with ``Retry-After``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar
from uuid import UUID

from dossier.errors import NotSealedError

if TYPE_CHECKING:
    from dossier.sealer import Sealer

T = TypeVar("T")
POLL = 0.02  # seconds between looks


def covered(sealer: Sealer, dossier: UUID, version: int) -> tuple[list[int], str] | None:
    """The leaf indices of events 1..version and the note of a checkpoint covering them all (the
    newest with the witness quorum, if one does), or None while they are not all covered."""
    indices = sealer.log.find(f"dossier:{dossier}")[:version]
    kept = sealer.log.store.checkpoint()
    if len(indices) < version or kept is None or (indices and kept[0] <= indices[-1]):
        return None
    size = sealer.witnessed_size(indices[-1]) if indices else None
    chosen = sealer.log.store.checkpoint(size) if size is not None else kept
    assert chosen is not None
    return indices, chosen[1]


def not_sealed(version: int) -> NotSealedError:
    return NotSealedError(f"the dossier's events up to version {version} are not in a signed checkpoint yet; "
                          "try again in a moment")  # fmt: skip


def sealed(sealer: Sealer, dossier: UUID, version: int) -> tuple[list[int], str]:
    """``covered``, now. Raises NotSealedError when it is not."""
    found = covered(sealer, dossier, version)
    if found is None:
        raise not_sealed(version)
    return found


async def until(look: Callable[[], T | None], *, timeout: float, error: Callable[[], Exception]) -> T:
    """What ``look`` finds, once it finds something (looking every POLL seconds, each look in a worker
    thread, none held between looks). Raises ``error()`` after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        found = await asyncio.to_thread(look)
        if found is not None:
            return found
        if loop.time() >= deadline:
            raise error()
        await asyncio.sleep(POLL)


async def until_sealed(sealer: Sealer, dossier: UUID, version: int, timeout: float) -> tuple[list[int], str]:
    """``covered``, waited for up to ``timeout`` seconds. Raises NotSealedError."""
    return await until(lambda: covered(sealer, dossier, version), timeout=timeout, error=lambda: not_sealed(version))
