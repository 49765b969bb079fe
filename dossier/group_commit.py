"""Group commit: commands queue for one committer thread, which applies every queued command to its
aggregate (held in memory between batches) and saves them all in one transaction, so N callers
share one fsync. Each caller still gets its own result or its own error: a command that fails is
left out, and a conflict with another writer re-runs the batch one by one.

The engine knows aggregates only as things with a ``version``; the application gives it ``load``
(read one from the store: ``DossierNotFoundError`` fails that command alone) and ``save`` (record
some in one transaction: ``DossierConflictError`` when another writer got there first), and a
``background`` step it runs after each batch's callers have their answers (it returns whether it
has more to do, e.g. snapshots still due).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from uuid import UUID

from dossier.errors import DossierConflictError, DossierNotFoundError, EventStoreUnavailableError
from dossier.hot import HotSet, Versioned

A = TypeVar("A", bound=Versioned)
T = TypeVar("T")


@dataclass
class _Command(Generic[A]):
    ident: UUID
    fn: Callable[[A], Any]
    future: Future[Any] = field(default_factory=Future)
    result: Any = None
    error: BaseException | None = None
    done: bool = False


class GroupCommit(Generic[A]):
    """One committer thread (started on the first command) for an application's writes."""

    def __init__(self, load: Callable[[UUID], A], save: Callable[[Sequence[A]], None], hot: HotSet[A], *,
                 background: Callable[[], bool] = lambda: False, name: str = "sifa-commit") -> None:  # fmt: skip
        self.load, self.save, self.hot, self.background, self.name = load, save, hot, background, name
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
                while not self._queue and not self._more and not self._closing:
                    self._wake.wait()
                if not self._queue and self._closing:
                    return
                batch, self._queue = self._queue, []
            if batch:
                self._commit(batch)
                self.hot.trim()
                for cmd in batch:
                    if cmd.error is not None:
                        cmd.future.set_exception(cmd.error)
                    else:
                        cmd.future.set_result(cmd.result)
            self._more = self.background()

    def _commit(self, batch: list[_Command[A]], *, retry: bool = True) -> None:
        held: dict[UUID, tuple[A, list[_Command[A]]]] = {}
        try:
            for cmd in batch:
                self._apply(cmd, held)
            ready = [(a, cmds) for a, cmds in held.values() if cmds]
            try:
                if ready:
                    self.save([a for a, _ in ready])
            except DossierConflictError:  # another writer got there first: read afresh, one by one
                self._forget(held)
                if not retry:
                    raise
                for _, cmds in ready:
                    for cmd in cmds:
                        cmd.result, cmd.done = None, False
                        self._commit([cmd], retry=False)
        except Exception as exc:  # nothing of this batch was recorded
            self._forget(held)
            for cmd in batch:
                if not cmd.done and cmd.error is None:
                    cmd.error = exc
        finally:
            for cmd in batch:
                cmd.done = True

    def _forget(self, held: Mapping[UUID, object]) -> None:
        for ident in held:
            self.hot.pop(ident)

    def _writable(self, ident: UUID) -> A:
        """The aggregate commands write to: kept between batches (no copy, no re-read), only ever
        touched by the committer, forgotten whenever a save fails."""
        found = self.hot.take(ident)
        if found is None:
            found = self.load(ident)
            self.hot.put(ident, found)
        return found

    def _apply(self, cmd: _Command[A], held: dict[UUID, tuple[A, list[_Command[A]]]]) -> None:
        if cmd.ident not in held:
            try:
                held[cmd.ident] = (self._writable(cmd.ident), [])
            except DossierNotFoundError as exc:
                cmd.error = exc
                return
        aggregate, applied = held[cmd.ident]
        version = aggregate.version
        try:
            cmd.result = cmd.fn(aggregate)
        except Exception as exc:
            cmd.error = exc
            if aggregate.version != version:  # it failed half-way: rebuild the aggregate without it
                self.hot.pop(cmd.ident)
                held[cmd.ident] = (self._writable(cmd.ident), [])
                for earlier in applied:
                    self._apply(earlier, held)
            return
        applied.append(cmd)
