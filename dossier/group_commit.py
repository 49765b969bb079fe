"""Group commit: commands queue for one committer thread, which applies every queued command to its
aggregate (held in memory between batches) and saves them all in one transaction, so N callers
share one fsync. Each caller still gets its own result or its own error: a command that fails is
left out of the save.

Another writer (a worker of the same node, another host on the same database) may have saved one
of the batch's aggregates meanwhile: the save then conflicts as a whole (optimistic concurrency) and
the engine asks the store, aggregate by aggregate, what happened (``check``):

- ``Stored.FRESH``: nothing was stored past what it was read at: saved again with the others,
  still as one batch (at most ``SAVES`` saves per batch);
- ``Stored.MOVED``: another writer got there first: it is forgotten, and its commands alone go
  back to the queue (with those refused on what they had applied: the refusal rested on events never
  recorded), to be run again on the dossier read afresh in a later batch, after a random
  wait (``backoff``) so that two writers do not meet again in lock-step. A command that has
  conflicted ``RETRIES`` times fails with ``DossierConflictError``, nothing of it recorded;
- ``Stored.RECORDED``: what it would save is already there — an earlier try of this very save was
  recorded though its answer was lost (eventsourcing's ``insert_events`` retries on a dropped
  connection, and the retry then conflicts with itself): its commands are answered as done, never
  run again.

A save that fails for want of an answer (the store out of reach past the driver's own retries) may
have been recorded all the same: each of its aggregates is checked the same way once, and a recorded
one is answered as done; one that cannot be read is answered unknown (503), never "nothing recorded".

Why ask each aggregate rather than read the error: eventsourcing 9.5.6 raises ``IntegrityError``
with the driver's text, which on PostgreSQL names only the *first* duplicate key ("Key
(originator_id, originator_version)=(…, 7) already exists") and on SQLite none ("UNIQUE constraint
failed: stored_events.originator_id, stored_events.originator_version"). Hot dossiers written by
two workers are usually moved several at a time, and one read per aggregate of the batch (cheap,
no lock) finds all of them at once, and tells a moved one from one recorded by ourselves.

The engine knows aggregates only as things with a ``version``; the application gives it ``load``
(read one from the store: ``DossierNotFoundError`` fails that command alone), ``save`` (record
some in one transaction, keeping their pending events if it fails: ``DossierConflictError`` when
another writer got there first), ``check`` (above), ``refresh`` (apply to a held aggregate, in
place, the events other writers stored past it: for contended ones, above) and a ``background`` step it runs after each
batch's callers have their answers (it returns whether it has more to do, e.g. snapshots due).
"""

from __future__ import annotations

import enum
import itertools
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from uuid import UUID

from dossier.errors import DossierConflictError, DossierNotFoundError, EventStoreUnavailableError
from dossier.hot import HotSet, Versioned

A = TypeVar("A", bound=Versioned)
T = TypeVar("T")
# A command is run again at most RETRIES times after conflicts, then its caller hears
# DossierConflictError (HTTP 409 dossier_conflict). Before its n-th re-run it waits a random time in
# [0, min(BACKOFF_MOST, BACKOFF · 2ⁿ⁻¹)] s: at most 1.6 s in all, half that on average (besides the
# batches it runs in). A busy two-core host with two workers on ten hot dossiers saw 8 conflicts of
# one write at worst in 10 s (docs/capacity.md).
RETRIES = 20
BACKOFF, BACKOFF_MOST = 0.004, 0.1
SAVES = 3  # saves of one batch; what a third conflict leaves unsaved is run again in a later batch
# A dossier moved by another writer is "contended" for CONTENDED seconds: while it is, a batch first
# brings the copy it holds up to date (``refresh``: one read of the events past it), so that its save
# conflicts only with what was saved during the batch itself, not since the last one.
CONTENDED = 2.0
log = logging.getLogger(__name__)


class Stored(enum.Enum):
    """What the store holds past the version an aggregate was read at (after its save conflicted)."""

    FRESH = "fresh"  # nothing: its pending events can be saved as they are
    MOVED = "moved"  # another writer's events: read it again and run its commands again
    RECORDED = "recorded"  # its own pending events: an earlier try of the same save was recorded


def backoff(tries: int, rng: random.Random) -> float:
    """Seconds to wait before the ``tries``-th re-run of a command (full jitter, capped)."""
    return rng.uniform(0.0, min(BACKOFF_MOST, BACKOFF * 2 ** (tries - 1)))


@dataclass(eq=False)  # compared by identity: a command is one call
class _Command(Generic[A]):
    ident: UUID
    fn: Callable[[A], Any]
    future: Future[Any] = field(default_factory=Future)
    result: Any = None
    error: BaseException | None = None
    tries: int = 0  # conflicts so far
    not_before: float = 0.0  # monotonic time before which it is not run again
    running: bool = False  # taken into a batch: its caller can no longer cancel it
    order: int = field(default_factory=itertools.count().__next__)  # queue order, kept when run again


@dataclass(eq=False)
class _Group(Generic[A]):
    """One aggregate of a batch and the commands applied to it, in queue order; ``refused``: those that
    failed after some of them: their refusal may rest on those commands' events, which stand only if saved."""

    ident: UUID
    aggregate: A
    commands: list[_Command[A]]
    refused: list[_Command[A]] = field(default_factory=list)


class GroupCommit(Generic[A]):
    """One committer thread (started on the first command) for an application's writes."""

    def __init__(self, load: Callable[[UUID], A], save: Callable[[Sequence[A]], None], hot: HotSet[A], *,
                 check: Callable[[A], Stored], refresh: Callable[[A], None] = lambda _: None,
                 background: Callable[[], bool] = lambda: False, name: str = "sifa-commit",
                 seed: int | None = None) -> None:  # fmt: skip
        self.load, self.save, self.check, self.refresh, self.hot = load, save, check, refresh, hot
        self._contended: dict[UUID, float] = {}  # dossier -> when another writer last moved it (monotonic)
        self.background, self.name = background, name
        self._random = random.Random(seed)  # jitter only; workers seed theirs apart (os.urandom)
        self._queue: list[_Command[A]] = []
        self._wake = threading.Condition()
        self._committer: threading.Thread | None = None
        self._closing = False
        self._more = False  # the background step has more to do (committer thread only)

    def submit(self, ident: UUID, fn: Callable[[A], T]) -> Future[T]:
        """Queue ``fn`` to run on the aggregate ``ident`` in the next batch; its future."""
        cmd: _Command[A] = _Command(ident, fn)
        with self._wake:
            if self._closing:
                raise EventStoreUnavailableError("the node is shutting down; nothing was recorded")
            self._queue.append(cmd)
            if self._committer is None:
                self._committer = threading.Thread(target=self._loop, name=self.name, daemon=True)
                self._committer.start()
            self._wake.notify()
        return cmd.future

    def close(self) -> None:
        """Answer what is queued, then stop the committer (background work still due is dropped)."""
        with self._wake:
            self._closing = True
            self._wake.notify()
            committer = self._committer
        if committer is not None:
            committer.join()

    def _loop(self) -> None:
        while True:
            with self._wake:
                while True:
                    if self._closing and not self._queue:
                        return
                    batch, wait = self._take()
                    if batch or self._more:
                        break
                    self._wake.wait(wait)
            if batch:
                again = self._commit(batch)
                self.hot.trim()
                if again:
                    with self._wake:
                        self._queue[:0] = again  # ahead of what came since: they are older
                waiting = set(again)
                for cmd in batch:
                    if cmd in waiting:
                        continue
                    if cmd.error is not None:
                        cmd.future.set_exception(cmd.error)
                    else:
                        cmd.future.set_result(cmd.result)
            self._more = self.background()

    def _take(self) -> tuple[list[_Command[A]], float | None]:
        """The queued commands that may run now, and how long until another may (None: none waits).
        A command waiting out its backoff holds back the later ones for its aggregate (queue order)."""
        now = time.monotonic()
        batch: list[_Command[A]] = []
        later: list[_Command[A]] = []
        held: set[UUID] = set()
        for cmd in self._queue:
            if cmd.ident in held or (cmd.not_before > now and not self._closing):
                held.add(cmd.ident)
                later.append(cmd)
            elif cmd.running or cmd.future.set_running_or_notify_cancel():
                cmd.running = True  # from now on its caller hears its outcome, whatever it does meanwhile
                batch.append(cmd)
            # else its caller gave up before it ran (a cancelled request): it is not run, nothing to answer
        self._queue = later
        due = [c.not_before for c in later if c.not_before > now]
        return batch, (min(due) - now if due else None)

    def _commit(self, batch: list[_Command[A]]) -> list[_Command[A]]:
        """Apply and save the batch; each command gets its result or error, except those returned:
        to be run again (on their aggregate read afresh)."""
        held: dict[UUID, _Group[A]] = {}
        try:
            for cmd in batch:
                self._apply(cmd, held)
        except Exception as exc:  # the store does not answer: nothing of this batch is recorded
            for g in held.values():
                self.hot.pop(g.ident)
                for cmd in g.refused:  # refused on what is not recorded now
                    cmd.error = exc
            for cmd in batch:
                cmd.error = cmd.error or exc
            return []
        groups = [g for g in held.values() if g.commands]
        again: list[_Command[A]] = []
        try:
            for _ in range(SAVES):
                if not groups:
                    return again
                try:
                    self.save([g.aggregate for g in groups])
                    return again
                except DossierConflictError as exc:
                    groups = self._sort_out(groups, exc, again)
            for g in groups:  # conflicted SAVES times: run again later, as if moved
                self._rerun(g, DossierConflictError("the dossier kept changing meanwhile"), again)
            return again
        except Exception as exc:  # the store stopped answering: the last save may have been recorded all the same
            for g in groups:
                self.hot.pop(g.ident)
                error = self._unless_recorded(g, exc)
                if error is not None:  # else it was recorded: its commands keep their results
                    for cmd in (*g.commands, *g.refused):
                        cmd.error = error
            return again

    def _unless_recorded(self, group: _Group[A], exc: Exception) -> Exception | None:
        """After a save failed with ``exc``: None if the store holds the group's events all the same (it
        recorded them, the answer was lost); else the error to answer (saying so when even that is unknown)."""
        try:
            verdict = self.check(group.aggregate)
        except Exception as unknown:
            error = EventStoreUnavailableError("the event store stopped answering during this write; whether it "
                                               "was recorded is unknown: read the dossier before retrying")  # fmt: skip
            error.__cause__ = unknown
            return error
        return None if verdict is Stored.RECORDED else exc

    def _sort_out(self, groups: list[_Group[A]], exc: DossierConflictError,
                  again: list[_Command[A]]) -> list[_Group[A]]:  # fmt: skip
        """After a conflict: answer the recorded, queue the moved again; the fresh, to save again."""
        verdicts = [self.check(g.aggregate) for g in groups]  # may raise: then nothing was decided
        if all(v is Stored.FRESH for v in verdicts):  # moved and back?: nothing to place it on
            verdicts = [Stored.MOVED] * len(groups)
        fresh: list[_Group[A]] = []
        for g, verdict in zip(groups, verdicts, strict=True):
            if verdict is Stored.FRESH:
                fresh.append(g)
            elif verdict is Stored.RECORDED:
                self.hot.pop(g.ident)  # its pending events are stored: drop them with it, read it anew
            else:
                self._rerun(g, exc, again)
        return fresh

    def _rerun(self, group: _Group[A], exc: DossierConflictError, again: list[_Command[A]]) -> None:
        """Forget the group's aggregate; its commands run again after a backoff, or fail past RETRIES."""
        self.hot.pop(group.ident)
        now = time.monotonic()
        if len(self._contended) > self.hot.most:  # keep it within the hot set's bound
            self._contended = {k: t for k, t in self._contended.items() if t > now - CONTENDED}
        self._contended[group.ident] = now
        for cmd in sorted((*group.commands, *group.refused), key=lambda c: c.order):
            cmd.tries += 1
            cmd.result, cmd.error = None, None
            if cmd.tries > RETRIES:
                error = DossierConflictError(f"the dossier kept changing under {cmd.tries} tries of this write "
                                             "(other writers at the same time); nothing was recorded")  # fmt: skip
                error.__cause__ = exc
                cmd.error = error
                log.warning("a write to dossier %s conflicted %d times with other writers; answered 409", cmd.ident,
                            cmd.tries)  # fmt: skip
            else:
                cmd.not_before = now + backoff(cmd.tries, self._random)
                again.append(cmd)

    def _writable(self, ident: UUID) -> A:
        """The aggregate commands write to: kept between batches (no copy, no re-read), only ever
        touched by the committer, forgotten whenever a save fails."""
        found = self.hot.take(ident)
        if found is not None and self._contended.get(ident, -CONTENDED) > time.monotonic() - CONTENDED:
            try:
                self.refresh(found)
            except BaseException:  # half brought up to date: read it whole next time
                self.hot.pop(ident)
                raise
        if found is None:
            found = self.load(ident)
            self.hot.put(ident, found)
        return found

    def _apply(self, cmd: _Command[A], held: dict[UUID, _Group[A]]) -> None:
        if cmd.ident not in held:
            try:
                held[cmd.ident] = _Group(cmd.ident, self._writable(cmd.ident), [])
            except DossierNotFoundError as exc:
                cmd.error = exc
                return
        group = held[cmd.ident]
        version = group.aggregate.version
        try:
            cmd.result = cmd.fn(group.aggregate)
        except Exception as exc:
            cmd.error = exc
            if group.aggregate.version != version:  # it failed half-way: rebuild the aggregate without it
                self.hot.pop(cmd.ident)
                held[cmd.ident] = _Group(cmd.ident, self._writable(cmd.ident), [], group.refused)
                for earlier in group.commands:
                    self._apply(earlier, held)
            if held[cmd.ident].commands:  # refused on what this batch applied before it: stands if that is saved
                held[cmd.ident].refused.append(cmd)
            return
        group.commands.append(cmd)
