"""Dossier events that are private by default: nothing of them is in clear in the public log.

The 送达 and 执行 events (dossier/service.py, dossier/execution.py) are of this kind: amounts,
accounts, names, channels and reasons never enter the public log in clear. Their leaves are
``sifa-leaf/2`` (dossier/envelope.py) like every event's: each field but the named files is a
commitment under the node secret. ``PUBLIC`` names the fields a holder of the document may be told
(the service check). Events stored by an older sifa carry per-field ``salts`` of their own; no leaf
holds them (``envelope._NOT_IN_BODY``), so those events still load and seal as any other.
"""

from __future__ import annotations

from typing import Any, ClassVar

from dossier.domain import Dossier


class PrivateEvent(Dossier.Event):
    """A dossier event of a kind no reader outside the court sees in clear."""

    PUBLIC: ClassVar[frozenset[str]] = frozenset()


def trigger(d: Dossier, cls: type[PrivateEvent], **fields: Any) -> None:
    """Record a ``cls`` event on ``d``."""
    d.trigger_event(cls, **fields)
