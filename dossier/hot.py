"""The dossiers held in memory for writing, within a bound of dossiers and of events.

Eviction is random among the dossiers not written in the latest batch. Least-recently-written
eviction, the obvious choice, misses on every command when the working set cycles through one
dossier more than the bound (each is forgotten just before it is written again); random eviction
degrades gently instead: on a cycle of ``bound + 1`` most commands still find their dossier held.
The generator is seeded per set, so a run is reproducible; nothing here is security-relevant.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Generic, Protocol, TypeVar
from uuid import UUID


class Versioned(Protocol):
    @property
    def version(self) -> int: ...


A = TypeVar("A", bound=Versioned)


class HotSet(Generic[A]):
    """At most ``most`` aggregates, ``most_events`` events in all (their state grows with their
    history). Touched by one thread only (the committer): no lock."""

    def __init__(self, most: int, most_events: int, *, seed: int = 0) -> None:
        self.most, self.most_events = most, most_events
        self._held: dict[UUID, A] = {}
        self._recent: set[UUID] = set()  # written since the last trim: spared by it
        self._random = random.Random(seed)

    def __len__(self) -> int:
        return len(self._held)

    def __contains__(self, ident: object) -> bool:
        return ident in self._held

    def __iter__(self) -> Iterator[UUID]:
        return iter(list(self._held))

    def peek(self, ident: UUID) -> A | None:
        """The aggregate held under ``ident``, without marking it written."""
        return self._held.get(ident)

    def take(self, ident: UUID) -> A | None:
        """The aggregate held under ``ident``, marked as written in this batch."""
        found = self._held.get(ident)
        if found is not None:
            self._recent.add(ident)
        return found

    def put(self, ident: UUID, aggregate: A) -> None:
        self._held[ident] = aggregate
        self._recent.add(ident)

    def pop(self, ident: UUID) -> A | None:
        self._recent.discard(ident)
        return self._held.pop(ident, None)

    def trim(self) -> None:
        """Forget aggregates until within both bounds: random ones not written since the last trim,
        then (if those were not enough) random ones of those too."""
        spared, self._recent = self._recent, set()
        total = sum(a.version for a in self._held.values())
        if len(self._held) <= self.most and total <= self.most_events:
            return
        for pool in ([k for k in self._held if k not in spared], [k for k in self._held if k in spared]):
            while pool and (len(self._held) > self.most or total > self.most_events):
                at = self._random.randrange(len(pool))
                pool[at], pool[-1] = pool[-1], pool[at]
                total -= self._held.pop(pool.pop()).version
