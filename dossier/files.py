"""The files a court's events name: what a backup must hold, what fixity re-hashes, what is not garbage."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from dossier.domain import Dossier

if TYPE_CHECKING:
    from dossier.application import DossierApp

PAGE = 1000
# Events whose files the node keeps, and the fields that name them (as dossier/audit.py reads them).
STORED_FILES = frozenset({"DocumentUploaded", "DocumentReceived", "Received", "Archived"})
KEPT = ("sha256", "package_sha256", "events_sha256", "checkpoint_sha256")


def referenced_files(app: DossierApp, after: int | None = None,
                     unreadable: list[int] | None = None) -> Iterator[tuple[str, str]]:  # fmt: skip
    """Every (sha256, dossier id) a stored event names as a file the node keeps, in event order
    (``after``: only events stored after that notification id).

    An event that does not decrypt or decode is skipped here (``sifa audit`` reports it), its
    notification id added to ``unreadable``."""
    while True:
        notes = app.recorder.select_notifications(start=after, limit=PAGE, inclusive_of_start=after is None)
        if not notes:
            return
        after = notes[-1].id
        for note in notes:
            if note.topic.rsplit(".", 1)[-1] not in STORED_FILES:
                continue
            try:
                event = app.mapper.to_domain_event(note)
            except Exception:
                if unreadable is not None:
                    unreadable.append(note.id)
                continue
            if not isinstance(event, Dossier.Event):
                continue
            for name in KEPT:
                sha = getattr(event, name, None)
                if isinstance(sha, str) and len(sha) == 64:
                    yield sha, str(note.originator_id)
