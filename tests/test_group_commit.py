"""Group commit: concurrent commands share one transaction, yet each keeps its own outcome."""

from __future__ import annotations

import hashlib
import threading
from concurrent.futures import Future
from typing import Any
from uuid import UUID, uuid4

import pytest

from dossier.application import DossierApp, Pending
from dossier.domain import Dossier
from dossier.errors import (
    DossierArchivedError,
    DossierNotFoundError,
    InvalidDossierInputError,
    UnknownDocumentError,
)
from tests.dossier_fixtures import Stack

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
    record = app._record

    def counted(batch: Any) -> Any:
        calls.append(len(batch.events))
        return record(batch)

    monkeypatch.setattr(app, "_record", counted)
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
    app = stack.app
    ds = _open(app, 5)
    for round_ in range(3):
        for i, d in enumerate(ds):
            assert _evidence(app, d, round_ * 10 + i).result(timeout=30) == round_ + 2
    held = sum(d.version for d in app._hot.values())
    assert held <= 12 and ds[-1] in app._hot  # the most recently written stay
    assert [app.get(d).version for d in ds] == [4] * 5  # forgetting loses nothing
