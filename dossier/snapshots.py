"""When a dossier is snapshotted, and how much snapshotting the committer does between batches."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from uuid import UUID

from dossier.domain import Dossier

# Events between a dossier's snapshots while it is small: what a cold read replays at most (500 take
# ~10 ms here). A snapshot costs in proportion to the dossier, so most dossiers never need one.
SNAPSHOT_EVERY = 500
SNAPSHOT_BUDGET = 0.005  # seconds of snapshots the committer takes between two batches
log = logging.getLogger(__name__)


def snapshot_step(version: int) -> int:
    """Events between snapshots of a dossier at ``version``: SNAPSHOT_EVERY while it is small,
    doubling as it grows (never more than a quarter of its events). A snapshot costs in proportion
    to the dossier, so a fixed step made writing to a large dossier ever slower; this way it costs
    a bounded share per event, and a cold read replays at most that quarter."""
    step = SNAPSHOT_EVERY
    while step * 8 <= version:
        step *= 2
    return step


class DueSnapshots:
    """Dossiers due a snapshot, taken a few at a time after a batch's callers have their answers.

    A snapshot costs in proportion to its dossier, and dossiers written at the same pace come due
    together: taken all at once, they stalled every caller for as long. A dossier is snapshotted
    only while it is the one held for writing, every event of it recorded (a failed save forgets
    it; a snapshot must never hold an unrecorded event)."""

    def __init__(self, take: Callable[[Iterable[Dossier]], None], held: Callable[[UUID], Dossier | None]) -> None:
        self.take, self.held = take, held
        self._due: dict[UUID, Dossier] = {}  # committer thread only

    def add(self, dossiers: Iterable[Dossier]) -> None:
        self._due.update((d.id, d) for d in dossiers)

    def take_some(self) -> bool:
        """Take due snapshots for at most SNAPSHOT_BUDGET seconds; whether some are still due."""
        deadline = time.monotonic() + SNAPSHOT_BUDGET
        while self._due and time.monotonic() < deadline:
            ident, d = next(iter(self._due.items()))
            del self._due[ident]
            if self.held(ident) is d:
                self.take([d])
        return bool(self._due)
