"""Group commit: concurrent commands share one transaction, yet each keeps its own outcome."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
from collections import Counter as Tally
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest

from dossier.application import DossierApp, Pending
from dossier.domain import Dossier
from dossier.errors import (
    DossierArchivedError,
    DossierConflictError,
    DossierNotFoundError,
    EventStoreUnavailableError,
    InvalidDossierInputError,
    UnknownDocumentError,
)
from tests.dossier_fixtures import Stack, make_stack

ACT = {"actor": "clerk:li", "role": "clerk"}
SUBMITTER = {"role": "原告", "name": "张三"}


def _open(app: DossierApp, n: int) -> list[UUID]:
    return [app.open_dossier(case_number_text=f"（2026）京0105民初{700 + i}号", case_type="民事", parties=[], **ACT)
            for i in range(n)]  # fmt: skip


def _evidence(app: DossierApp, d: UUID | str, i: int, **extra: Any) -> Future[int]:
    return app.submit_evidence.future(d, sha256=hashlib.sha256(b"%d" % i).hexdigest(), size=i, name=f"证据{i}.pdf",
                                      submitter=SUBMITTER, description="", **ACT, **extra)  # fmt: skip


class Held:
    """Holds the committer on its first command, so what is enqueued meanwhile forms one batch."""

    def __init__(self, app: DossierApp, d: UUID) -> None:
        self.entered, self.release = threading.Event(), threading.Event()
        self.first = _evidence(app, d, 10**6, guard=self._wait)
        assert self.entered.wait(10)

    def _wait(self, _: Dossier) -> None:
        self.entered.set()
        assert self.release.wait(10)

    def go(self) -> None:
        self.release.set()
        self.first.result(timeout=30)


def _count_transactions(app: DossierApp, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    put = app.events.put

    def counted(events: Any, **kwargs: Any) -> Any:
        calls.append(len(events))
        return put(events, **kwargs)

    monkeypatch.setattr(app.events, "put", counted)
    return calls


def test_one_transaction_per_batch_and_each_caller_its_own_error(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    app = stack.app
    a, b, c, closed = _open(app, 4)
    app.archive(closed, retention="30", package_sha256="0" * 64, **ACT)
    held = Held(app, a)
    transactions = _count_transactions(app, monkeypatch)

    def refuse(_: Dossier) -> None:
        raise PermissionError("not this one")

    good = [_evidence(app, d, i) for i, d in enumerate([a, b, c, a, b, c, a, a], start=1)]
    bad = {
        UnknownDocumentError: app.withdraw.future(b, document_id="nope", reason="错误", **ACT),
        PermissionError: _evidence(app, c, 50, guard=refuse),
        DossierNotFoundError: _evidence(app, uuid4(), 51),
        DossierArchivedError: _evidence(app, closed, 52),
    }
    with pytest.raises(InvalidDossierInputError):  # bad input is refused before it is queued
        app.submit_evidence.future(a, sha256="x", size=1, name="n", submitter=SUBMITTER, description="", **ACT)
    held.go()

    versions = [f.result(timeout=30) for f in good]
    for kind, future in bad.items():
        with pytest.raises(kind):
            future.result(timeout=30)
    # The held command went alone; all that queued behind it went in one transaction.
    assert transactions == [1, len(good)]
    assert versions == [3, 2, 2, 4, 3, 3, 5, 6]  # each dossier's versions follow on, in queue order
    for d, last in ((a, 6), (b, 3), (c, 3)):
        assert app.get(d).version == last
    stored = app.recorder.select_notifications(start=None, limit=1000)
    assert len(stored) == 4 + 1 + 1 + len(good)  # opens, archive, the held one, the good ones


def test_a_command_failing_half_way_leaves_nothing_and_spoils_nothing(stack: Stack) -> None:
    app = stack.app
    (d,) = _open(app, 1)
    held = Held(app, d)
    before = _evidence(app, d, 1)

    def half(dossier: Dossier) -> int:
        dossier.submit_evidence(evidence_id="half", sha256="1" * 64, size=1, name="半.pdf", submitter=SUBMITTER,
                                description="", **ACT)  # fmt: skip
        raise RuntimeError("failed after recording an event")

    broken = app.enqueue(Pending(d, half))
    after = _evidence(app, d, 2)
    held.go()
    assert (before.result(timeout=30), after.result(timeout=30)) == (3, 4)
    with pytest.raises(RuntimeError):
        broken.result(timeout=30)
    kept = app.get(d)
    assert kept.version == 4 and "half" not in kept.evidence
    assert len(list(app.repository.event_store.get(d))) == 4


def test_another_writer_meanwhile_is_caught_up_not_overwritten(stack: Stack) -> None:
    app = stack.app
    (d,) = _open(app, 1)
    assert (
        app.submit_evidence(d, sha256="a" * 64, size=1, name="一.pdf", submitter=SUBMITTER, description="", **ACT) == 2
    )  # fmt: skip  (d is now held in memory for writing)
    other = DossierApp(dict(app.env), app.blobs, app.courts, app.court)  # e.g. an admin CLI on the same store
    try:
        assert other.submit_evidence(d, sha256="b" * 64, size=1, name="二.pdf", submitter=SUBMITTER,
                                     description="", **ACT) == 3  # fmt: skip
    finally:
        other.close()
    assert app.submit_evidence(d, sha256="c" * 64, size=1, name="三.pdf", submitter=SUBMITTER, description="",
                               **ACT) == 4  # fmt: skip
    names = [e["name"] for e in app.get(d).evidence.values()]
    assert names == ["一.pdf", "二.pdf", "三.pdf"]


def test_dossiers_held_for_writing_stay_within_the_budget(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    import dossier.application as application

    monkeypatch.setattr(application, "HOT_EVENTS", 12)
    app = DossierApp(dict(stack.app.env), stack.app.blobs, stack.app.courts, stack.app.court)
    try:
        ds = _open(app, 5)
        for round_ in range(3):
            for i, d in enumerate(ds):
                assert _evidence(app, d, round_ * 10 + i).result(timeout=30) == round_ + 2
        held = sum(d.version for d in (app._hot.peek(i) for i in app._hot) if d is not None)
        assert held <= 12 and ds[-1] in app._hot  # the most recently written stays
        assert [app.get(d).version for d in ds] == [4] * 5  # forgetting loses nothing
    finally:
        app.close()


def test_snapshot_step_grows_with_the_dossier() -> None:
    from dossier.snapshots import SNAPSHOT_EVERY, snapshot_step

    assert [snapshot_step(v) for v in (1, 499, 3999, 4000, 8000, 10**6)] == [500, 500, 500, 1000, 2000, 128_000]
    for v in range(1, 200_000, 37):  # a cold read replays at most a quarter of a large dossier's events
        step = snapshot_step(v)
        assert step % SNAPSHOT_EVERY == 0 and step <= max(SNAPSHOT_EVERY, v // 4) and snapshot_step(v + step) >= step


def test_snapshots_are_taken_at_the_step_and_read_back_whole(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    import dossier.snapshots as snapshots

    monkeypatch.setattr(snapshots, "SNAPSHOT_EVERY", 100)  # the same rule at a test's size
    app = stack.app
    (d,) = _open(app, 1)
    for start in range(0, 1700, 100):  # many queued at once: batches that cross a step in the middle
        assert max(f.result(timeout=60) for f in [_evidence(app, d, start + i) for i in range(100)]) == start + 101
    assert _evidence(app, d, 10**5).result(timeout=30) == 1702  # a snapshot follows its batch's answers
    assert app.snapshots is not None
    versions = [s.originator_version for s in app.snapshots.get(d)]
    # A batch snapshots the dossier as recorded at its end, so a version may lie past the step it crossed.
    crossed = [v // 100 * 100 for v in versions]
    assert crossed == [100, 200, 300, 400, 500, 600, 700, 800, 1000, 1200, 1400, 1600]
    assert all(v - c < 100 for v, c in zip(versions, crossed, strict=True))
    cold = DossierApp(dict(app.env), app.blobs, app.courts, app.court)  # nothing cached: snapshot + the rest
    try:
        again = cold.get(d)
        assert again.version == 1702 and again.evidence == app.get(d).evidence
    finally:
        cold.close()


def test_a_snapshot_that_cannot_be_stored_fails_no_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Snapshots only speed up reads: when the store refuses them (a SQLite trigger, set through SQLite's
    own client), commands are still recorded and answered, and reads replay the events."""
    import dossier.snapshots as snapshots

    monkeypatch.setattr(snapshots, "SNAPSHOT_EVERY", 100)
    stack = make_stack("sqlite", tmp_path)
    try:
        app = stack.app
        (d,) = _open(app, 1)
        with sqlite3.connect(tmp_path / "events.sqlite") as db:
            db.execute("CREATE TRIGGER refuse BEFORE INSERT ON stored_snapshots "
                       "BEGIN SELECT RAISE(ABORT, 'no snapshots today'); END")  # fmt: skip
        assert [_evidence(app, d, i).result(timeout=30) for i in range(150)][-1] == 151  # crossed 100 meanwhile
        assert app.get(d).version == 151 and len(app.get(d).evidence) == 150
        assert len(list(app.repository.event_store.get(d))) == 151
        assert app.snapshots is not None and list(app.snapshots.get(d)) == []
    finally:
        stack.close()


def test_a_cyclic_working_set_past_the_bound_still_hits(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """Writing round-robin to one dossier more than the hot set holds: least-recently-written eviction
    forgets each dossier just before its next command (every command a read); the policy must not."""
    import dossier.application as application

    monkeypatch.setattr(application, "HOT", 4)
    app = DossierApp(dict(stack.app.env), stack.app.blobs, stack.app.courts, stack.app.court)
    try:
        ds = _open(app, 5)
        reads: list[UUID | str] = []
        get = app.get

        def counted(dossier: UUID | str, *, copy: bool = True) -> Dossier:
            reads.append(dossier)
            return get(dossier, copy=copy)

        monkeypatch.setattr(app, "get", counted)
        commands = 0
        for round_ in range(8):
            for i, d in enumerate(ds):
                assert _evidence(app, d, round_ * 10 + i).result(timeout=30) == round_ + 2
                commands += 1
        assert commands - len(reads) > commands // 4  # hits: commands that found their dossier held
    finally:
        app.close()


class Counter:
    """The smallest aggregate the engine takes: a version, bumped by each command."""

    def __init__(self) -> None:
        self.version = 0


def test_the_engine_alone_one_save_per_batch_and_its_own_error_per_command() -> None:
    """dossier/group_commit.py with an in-memory store: what a batch saves, and what each caller hears."""
    from dossier.group_commit import GroupCommit, Stored
    from dossier.hot import HotSet

    known = {uuid4(): Counter() for _ in range(3)}
    saves: list[list[int]] = []
    gate, entered = threading.Event(), threading.Event()

    def load(ident: UUID) -> Counter:
        if ident not in known:
            raise DossierNotFoundError(f"no {ident}")
        return known[ident]

    def bump(c: Counter) -> int:
        c.version += 1
        return c.version

    def hold(c: Counter) -> int:
        entered.set()
        assert gate.wait(10)
        return bump(c)

    engine: GroupCommit[Counter] = GroupCommit(load, lambda cs: saves.append([c.version for c in cs]),
                                               HotSet(10, 1000), check=lambda c: Stored.MOVED)  # fmt: skip
    try:
        a, b, c = known
        first = engine.submit(a, hold)
        assert entered.wait(10)
        futures = [engine.submit(x, bump) for x in (a, b, a, c)]
        missing = engine.submit(uuid4(), bump)
        gate.set()
        assert first.result(10) == 1 and [f.result(10) for f in futures] == [2, 1, 3, 1]
        with pytest.raises(DossierNotFoundError):
            missing.result(10)
        assert saves == [[1], [3, 1, 1]]  # the held command alone, then one save for all behind it
    finally:
        engine.close()
    with pytest.raises(Exception, match="shutting down"):
        engine.submit(a, bump)


def test_random_eviction_keeps_hits_on_a_cycle_one_past_the_bound() -> None:
    from dossier.hot import HotSet

    hot: HotSet[Counter] = HotSet(4, 10**6)
    keys = [uuid4() for _ in range(5)]
    hits = 0
    for _ in range(40):
        for k in keys:
            if hot.take(k) is not None:
                hits += 1
            else:
                hot.put(k, Counter())
            hot.trim()
            assert len(hot) <= 4 and k in hot  # the one just written is never the one forgotten
    assert hits > 200 // 3


def test_the_hot_set_keeps_within_its_event_bound() -> None:
    from dossier.hot import HotSet

    hot: HotSet[Counter] = HotSet(100, 10)
    for _ in range(6):
        c = Counter()
        c.version = 3
        hot.put(uuid4(), c)
        hot.trim()
        assert sum(x.version for x in (hot.peek(k) for k in hot) if x is not None) <= 10
    assert len(hot) == 3


def test_saving_without_application_save_still_matches_the_installed_eventsourcing() -> None:
    """DossierApp saves a batch through the event store's public put() instead of Application.save
    (whose per-object protocol checks are slow and whose snapshots would stall the batch). That is
    right only while save() does no more than record, snapshot and notify (a no-op hook here): read
    against eventsourcing 9.5.6; a new version fails here until someone has read save() again."""
    import inspect
    import re
    from importlib.metadata import version

    from eventsourcing.application import Application

    assert version("eventsourcing") == "9.5.6"
    steps = re.findall(r"self\.(\w+)\(", inspect.getsource(Application.save))
    assert steps == ["_record", "_take_snapshots", "_notify", "notify"]
    record = inspect.getsource(Application._record)
    assert "self.events.put(" in record and "self.repository.cache.put(" in record
    assert DossierApp._notify is Application._notify and DossierApp.notify is Application.notify  # not overridden


class Item:
    """An aggregate of the engine tests below: its version, and the marks it has not saved yet."""

    def __init__(self, ident: UUID, version: int) -> None:
        self.id, self.version, self.pending = ident, version, list[str]()

    def write(self, mark: str) -> int:
        self.version += 1
        self.pending.append(mark)
        return self.version


class Shelf:
    """An in-memory event store with optimistic concurrency: one list of marks per aggregate. A save
    is one transaction; ``other`` writes as another worker would."""

    def __init__(self, n: int) -> None:
        self.marks: dict[UUID, list[str]] = {uuid4(): [] for _ in range(n)}
        self.saves: list[tuple[bool, list[UUID]]] = []  # (saved, whom), in order
        self.refreshed: list[UUID] = []

    def load(self, ident: UUID) -> Item:
        if ident not in self.marks:
            raise DossierNotFoundError(f"no {ident}")
        return Item(ident, len(self.marks[ident]))

    def save(self, items: Sequence[Item]) -> None:
        ok = all(len(self.marks[i.id]) == i.version - len(i.pending) for i in items)
        self.saves.append((ok, [i.id for i in items]))
        if not ok:
            raise DossierConflictError("moved")
        for i in items:
            self.marks[i.id] += i.pending
            i.pending = []

    def check(self, item: Item) -> Any:
        from dossier.group_commit import Stored

        base = item.version - len(item.pending)
        there = self.marks[item.id][base : base + len(item.pending)]
        return Stored.FRESH if not there else Stored.RECORDED if there == item.pending else Stored.MOVED

    def other(self, ident: UUID) -> None:
        self.marks[ident].append("other")

    def refresh(self, item: Item) -> None:
        self.refreshed.append(item.id)
        item.version = len(self.marks[item.id])


def _engine(shelf: Shelf, save: Any = None) -> Any:
    from dossier.group_commit import GroupCommit
    from dossier.hot import HotSet

    return GroupCommit(shelf.load, save or shelf.save, HotSet(100, 10**6), check=shelf.check, refresh=shelf.refresh,
                       seed=1)  # fmt: skip


def test_a_conflicting_batch_reruns_only_the_moved_and_saves_the_rest_as_one() -> None:
    """Five aggregates held for writing; another writer moves two of them; the next batch writes to all
    five. It conflicts once; the three unmoved are saved together as they are (not run again), the two
    moved are read again and their commands run again, once each."""
    shelf = Shelf(5)
    idents = list(shelf.marks)
    runs: Tally[str] = Tally()
    engine = _engine(shelf)
    gate, entered = threading.Event(), threading.Event()

    def write(mark: str) -> Any:
        def fn(item: Item) -> int:
            runs[mark] += 1
            return item.write(mark)

        return fn

    def hold(item: Item) -> int:
        entered.set()
        assert gate.wait(10)
        return item.write("held")

    try:
        assert [engine.submit(i, write(f"first{n}")).result(10) for n, i in enumerate(idents)] == [1] * 5
        first = engine.submit(idents[0], hold)
        assert entered.wait(10)
        shelf.other(idents[1])
        shelf.other(idents[3])
        shelf.saves.clear()
        futures = {f"w{n}": engine.submit(i, write(f"w{n}")) for n, i in enumerate(idents)}
        gate.set()
        assert first.result(10) == 2
        assert [f.result(10) for f in futures.values()] == [3, 3, 2, 3, 2]  # moved ones follow the other's
    finally:
        engine.close()
    assert shelf.saves[:3] == [(True, idents[:1]), (False, idents), (True, [idents[0], idents[2], idents[4]])]
    later = shelf.saves[3:]  # each after its own random wait: together, or one after the other
    assert all(ok for ok, _ in later) and sorted(i for _, w in later for i in w) == sorted([idents[1], idents[3]])
    assert dict(runs) == {**{f"first{n}": 1 for n in range(5)}, "w0": 1, "w1": 2, "w2": 1, "w3": 2, "w4": 1}
    assert [m.count("w1") + m.count("w3") for m in shelf.marks.values()] == [0, 1, 0, 1, 0]  # each once
    assert all(len(m) == len(set(m)) for m in shelf.marks.values())


def test_a_dossier_another_writer_moved_is_brought_up_to_date_before_its_next_batch() -> None:
    """Once another writer has moved a dossier, the engine reads the events past its copy before each
    batch (for a while): the next batch does not conflict on what was saved between batches. One not
    contended is not read (a single worker pays nothing)."""
    shelf = Shelf(2)
    hot, calm = shelf.marks
    engine = _engine(shelf)
    try:
        assert engine.submit(hot, lambda i: i.write("a")).result(10) == 1
        assert engine.submit(calm, lambda i: i.write("b")).result(10) == 1
        shelf.other(hot)
        assert engine.submit(hot, lambda i: i.write("c")).result(10) == 3  # conflicted, run again
        assert shelf.refreshed == []  # the moved copy was dropped and read whole, not refreshed
        shelf.other(hot)  # between two batches
        shelf.saves.clear()
        assert engine.submit(hot, lambda i: i.write("d")).result(10) == 5
        assert engine.submit(calm, lambda i: i.write("e")).result(10) == 2
    finally:
        engine.close()
    assert shelf.saves == [(True, [hot]), (True, [calm])]  # no conflict
    assert shelf.refreshed == [hot]


def test_a_save_recorded_though_its_answer_was_lost_is_not_run_again() -> None:
    """The save reaches the store, then the connection drops and the driver's retry meets its own rows
    (an IntegrityError): the command is answered as recorded, and run once."""
    shelf = Shelf(1)
    (ident,) = shelf.marks
    runs = []

    def lost_answer(items: Sequence[Item]) -> None:
        for i in items:
            shelf.marks[i.id] += i.pending
        raise DossierConflictError("a retried insert met its own rows")

    def fn(item: Item) -> int:
        runs.append(item.version)
        return item.write("once")

    engine = _engine(shelf, lost_answer)
    try:
        assert engine.submit(ident, fn).result(10) == 1
    finally:
        engine.close()
    assert runs == [0] and shelf.marks[ident] == ["once"]


def test_a_dossier_that_keeps_moving_gets_409_after_the_bound_with_nothing_recorded(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from dossier.group_commit import RETRIES

    shelf = Shelf(1)
    (ident,) = shelf.marks
    runs = []

    def always_moved(items: Sequence[Item]) -> None:
        for i in items:
            shelf.other(i.id)  # another writer gets there first, every time
        shelf.save(items)

    def fn(item: Item) -> int:
        runs.append(item.version)
        return item.write("mine")

    engine = _engine(shelf, always_moved)
    start = time.monotonic()
    try:
        with pytest.raises(DossierConflictError, match=f"{RETRIES + 1} tries"):
            engine.submit(ident, fn).result(30)
    finally:
        engine.close()
    assert len(runs) == RETRIES + 1 and runs == sorted(set(runs))  # each run on the dossier read afresh
    assert "mine" not in shelf.marks[ident]
    assert time.monotonic() - start < 5
    assert [r.getMessage() for r in caplog.records] == [
        f"a write to dossier {ident} conflicted {RETRIES + 1} times with other writers; answered 409"
    ]


def test_backoff_is_random_grows_and_is_capped() -> None:
    import random

    from dossier.group_commit import BACKOFF, BACKOFF_MOST, backoff

    rng = random.Random(7)
    for tries in (1, 3, 12):
        waits = [backoff(tries, rng) for _ in range(200)]
        most = min(BACKOFF_MOST, BACKOFF * 2 ** (tries - 1))
        assert all(0 <= w <= most for w in waits) and len(set(waits)) == 200  # no two writers in lock-step
        assert max(waits) > most / 2


def test_another_worker_moving_one_dossier_reruns_that_one_only(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """On the real event stores: a batch over three dossiers of which another writer (a second
    application on the same store, as a second worker) moved one between reads. One transaction
    conflicts; the other two dossiers' events go in the next as they are; the moved one's command runs
    again on the dossier read afresh. Each write is recorded once."""
    app = stack.app
    a, b, c, h = _open(app, 4)
    for i, d in enumerate((a, b, c)):  # now held for writing
        assert _evidence(app, d, i).result(timeout=30) == 2
    runs: Tally[UUID] = Tally()

    def counted(d: Dossier) -> None:
        runs[d.id] += 1

    held = Held(app, h)
    other = DossierApp(dict(app.env), app.blobs, app.courts, app.court)
    try:
        assert _evidence(other, b, 100).result(timeout=30) == 3
    finally:
        other.close()
    transactions = _count_transactions(app, monkeypatch)
    futures = [_evidence(app, d, 200 + i, guard=counted) for i, d in enumerate((a, b, c, a))]
    held.go()
    assert [f.result(timeout=30) for f in futures] == [3, 4, 3, 4]
    assert transactions == [1, 4, 3, 1]  # the held one; all (conflicted), a + c as they were, b run again
    assert runs == {a: 2, c: 1, b: 2}  # a's two commands once each, b's twice (the first run not saved)
    other = DossierApp(dict(app.env), app.blobs, app.courts, app.court)
    try:  # b is contended now: the copy held is brought up to date before the next batch
        assert _evidence(other, b, 101).result(timeout=30) == 5
    finally:
        other.close()
    assert _evidence(app, b, 300, guard=counted).result(timeout=30) == 6
    assert transactions[4:] == [1] and runs[b] == 3  # no conflict, run once
    for d, n in ((a, 4), (b, 6), (c, 3)):
        events = list(app.events.get(d))
        assert len(events) == n == app.get(d).version
        shas = [e.sha256 for e in events if type(e).__name__ == "EvidenceSubmitted"]
        assert len(shas) == len(set(shas))


def test_a_batch_recorded_though_the_driver_raised_is_answered_once(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """eventsourcing retries ``insert_events`` when the connection drops; if the first try had been
    committed, the retry meets its own rows and raises IntegrityError. The commands were recorded: they
    are answered as such, and not run again on the dossier read afresh (that would record them twice)."""
    from eventsourcing.persistence import IntegrityError

    app = stack.app
    a, b = _open(app, 2)
    put = app.events.put
    failed: list[int] = []

    def commit_then_lose_the_answer(events: Any, **kwargs: Any) -> Any:
        put(events, **kwargs)
        if len(events) == 3 and not failed:  # the batch, not the held command before it
            failed.append(len(events))
            raise IntegrityError("duplicate key value violates unique constraint (the retried insert)")
        return None

    held = Held(app, a)
    monkeypatch.setattr(app.events, "put", commit_then_lose_the_answer)
    futures = [_evidence(app, d, i) for i, d in enumerate((a, b, b), start=1)]
    held.go()
    assert [f.result(timeout=30) for f in futures] == [3, 2, 3] and failed == [3]
    for d, n in ((a, 3), (b, 3)):
        assert len(list(app.events.get(d))) == n == app.get(d).version


def test_a_caller_that_gives_up_before_its_batch_stops_no_one_else() -> None:
    """A waiting request may be cancelled (``asyncio.wrap_future`` cancels the command's future with its
    task: uvicorn cancels what is still waiting at the end of a graceful shutdown). A command cancelled
    before its batch is not run; the committer goes on answering every other caller, then and later."""
    shelf = Shelf(2)
    a, b = shelf.marks
    engine = _engine(shelf)
    gate, entered = threading.Event(), threading.Event()

    def hold(item: Item) -> int:
        entered.set()
        assert gate.wait(10)
        return item.write("held")

    try:
        first = engine.submit(a, hold)
        assert entered.wait(10)
        given_up = engine.submit(b, lambda i: i.write("given up"))
        same_batch = engine.submit(a, lambda i: i.write("same batch"))
        assert given_up.cancel()
        gate.set()
        assert first.result(10) == 1
        assert same_batch.result(10) == 2
        assert engine.submit(b, lambda i: i.write("later")).result(10) == 1
    finally:
        engine.close()
    assert shelf.marks == {a: ["held", "same batch"], b: ["later"]}  # the cancelled command ran nowhere


def test_a_second_upload_refused_for_the_first_is_run_again_when_the_first_is(stack: Stack) -> None:
    """Two uploads of one file in one batch: the second finds the first's document (not saved yet) and is
    refused as a copy of it. Another worker had moved the dossier: the save conflicts and the first runs
    again, as a new document. The second's refusal rested on a document never recorded: it must not be
    answered with it (the API would look that document up to answer it, and fail with a 500), but run
    again after the first, and then name the document that was recorded."""
    from api.uploads import DocumentExistsError, FirstCopy

    app = stack.app
    x, h = _open(app, 2)
    assert _evidence(app, x, 1).result(timeout=30) == 2  # x is held for writing
    held = Held(app, h)
    other = DossierApp(dict(app.env), app.blobs, app.courts, app.court)
    try:
        assert _evidence(other, x, 2).result(timeout=30) == 3  # another worker moves x
    finally:
        other.close()
    answers: list[Any] = []

    def upload() -> None:
        once = FirstCopy(str(x), "clerk", lambda _: None)
        try:
            answers.append(app.upload(x, once.wrap(iter([b"the same file"])), name="a.txt", media_type="text/plain",
                                      source="court", doc_type=None, guard=once.guard, **ACT))  # fmt: skip
        except DocumentExistsError as exc:
            answers.append(exc)

    threads = [threading.Thread(target=upload) for _ in range(2)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 10
    while len(app._commits._queue) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    held.go()
    for t in threads:
        t.join(30)
    recorded = app.get(x).documents
    assert len(recorded) == 1 and len(answers) == 2
    (first,) = [a for a in answers if isinstance(a, dict)]
    (copy,) = [a for a in answers if isinstance(a, DocumentExistsError)]
    assert first["document_id"] in recorded
    assert copy.detail["document_id"] == first["document_id"]  # the recorded one, not the one first tried


def test_another_writers_event_at_the_same_microsecond_is_not_taken_for_ours(stack: Stack) -> None:
    """Two workers (or hosts) write the same kind of event to one dossier at the same version, and their
    clocks read the same microsecond (a coarse clock makes it likely). The later save conflicts; what the
    store holds there is the other's, not this save recorded by an earlier try: the command runs again
    and is recorded; it is not answered as done with nothing of it stored."""
    app = stack.app
    (x,) = _open(app, 1)
    assert _evidence(app, x, 1).result(timeout=30) == 2  # x is held for writing
    other = DossierApp(dict(app.env), app.blobs, app.courts, app.court)

    def meanwhile(d: Dossier) -> None:  # runs in the committer, after this command's event is made
        (mine,) = d.pending_events
        theirs = other.get(x)
        theirs.trigger_event(type(mine), timestamp=mine.timestamp, evidence_id=uuid4().hex,
                             sha256=hashlib.sha256(b"theirs").hexdigest(), size=6, name="他方证据.pdf",
                             submitter=SUBMITTER, description="", **ACT)  # fmt: skip
        other._save(theirs)

    ours = hashlib.sha256(b"ours").hexdigest()
    calls: list[int] = []

    def record(d: Dossier) -> int:
        d.submit_evidence(evidence_id=uuid4().hex, sha256=ours, size=4, name="本方证据.pdf", submitter=SUBMITTER,
                          description="", **ACT)  # fmt: skip
        if not calls:
            calls.append(1)
            meanwhile(d)
        return d.version

    try:
        version = app.enqueue(Pending(x, record)).result(timeout=30)
    finally:
        other.close()
    stored = [e.sha256 for e in app.events.get(x) if type(e).__name__ == "EvidenceSubmitted"]
    assert ours in stored and version == 4


def _lose_the_answer(app: DossierApp, monkeypatch: pytest.MonkeyPatch, error: Exception, size: int) -> list[int]:
    """The store records the first save of ``size`` events, then its answer is lost: the driver raises
    ``error`` (its retry met its own rows: IntegrityError; or the store stayed out of reach past its
    retries: OperationalError)."""
    put = app.events.put
    lost: list[int] = []

    def recorded_then_lost(events: Any, **kwargs: Any) -> Any:
        put(events, **kwargs)
        if len(events) == size and not lost:
            lost.append(len(events))
            raise error
        return None

    monkeypatch.setattr(app.events, "put", recorded_then_lost)
    return lost


def test_a_dossier_opened_though_the_answer_was_lost_is_answered_opened(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Opening a dossier is one save of its first event. Recorded, its answer lost, the driver's retry meets
    the row it wrote: that is this very opening, not another's case already opened (409 dossier_exists)."""
    from eventsourcing.persistence import IntegrityError

    app = stack.app
    lost = _lose_the_answer(app, monkeypatch, IntegrityError("duplicate key value (the retried insert)"), 1)
    opened = app.open_dossier(case_number_text="（2026）京0105民初900号", case_type="民事", parties=[], **ACT)
    assert lost == [1] and app.get(opened).version == 1
    assert _evidence(app, opened, 1).result(timeout=30) == 2


def test_a_batch_recorded_though_the_store_then_stopped_answering_is_answered_recorded(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch reaches the store, then the connection drops and the driver's retries all fail (the store
    out of reach for longer than they last): it raises OperationalError. The store answers again by the
    time the engine asks: the commands were recorded, and are answered so (not 503 "nothing was
    recorded", which a client would retry, recording its evidence twice)."""
    from eventsourcing.persistence import OperationalError

    app = stack.app
    a, b = _open(app, 2)
    held = Held(app, a)
    lost = _lose_the_answer(app, monkeypatch, OperationalError("server closed the connection unexpectedly"), 3)
    futures = [_evidence(app, d, i) for i, d in enumerate((a, b, b), start=1)]
    held.go()
    assert [f.result(timeout=30) for f in futures] == [3, 2, 3] and lost == [3]
    for d, n in ((a, 3), (b, 3)):
        assert len(list(app.events.get(d))) == n == app.get(d).version


def test_a_write_whose_outcome_cannot_be_read_is_answered_unknown_not_unrecorded(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The save's answer is lost and the store cannot be read either: the caller is told that whether it
    was recorded is unknown (503), never that nothing was (it was)."""
    from eventsourcing.persistence import OperationalError

    app = stack.app
    (a,) = _open(app, 1)
    assert _evidence(app, a, 0).result(timeout=30) == 2  # held for writing: the next command reads nothing
    _lose_the_answer(app, monkeypatch, OperationalError("server closed the connection unexpectedly"), 1)
    get = app.events.get
    monkeypatch.setattr(app.events, "get", lambda *a, **k: (_ for _ in ()).throw(OperationalError("no answer")))
    with pytest.raises(EventStoreUnavailableError, match="whether it was recorded is unknown"):
        _evidence(app, a, 1).result(timeout=30)
    monkeypatch.setattr(app.events, "get", get)
    assert len(list(app.events.get(a))) == 3
