"""Dossier events that are private by default: in the leaf, only the fields a class names public are
in clear; every other field is a salted commitment (evidence/commitment.py), its salt kept in the
stored event (encrypted at rest) so that the court can disclose it to whoever may see it.

The 送达 and 执行 events (dossier/service.py, dossier/execution.py) are of this kind: amounts,
accounts, names, channels and reasons never enter the public log in clear.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from dossier.domain import Dossier
from evidence.commitment import commit, new_salt

_FRAME = frozenset({"originator_id", "originator_version", "timestamp", "originator_topic", "salts"})


def _text(value: Any) -> str:
    """The committed text of a field's value: its canonical JSON (sorted keys, UTF-8 as is)."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


class PrivateEvent(Dossier.Event):
    """A dossier event whose leaf shows only ``PUBLIC`` fields in clear."""

    PUBLIC: ClassVar[frozenset[str]] = frozenset()
    salts: dict[str, str]

    def leaf_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {}
        for key, value in vars(self).items():
            if key in _FRAME:
                continue
            body[key] = (
                value if key in self.PUBLIC else {"commitment": commit(_text(value), bytes.fromhex(self.salts[key]))}
            )
        return body


def trigger(d: Dossier, cls: type[PrivateEvent], **fields: Any) -> None:
    """Record a ``cls`` event on ``d`` with a fresh salt for each private field."""
    salts = {k: new_salt().hex() for k in fields if k not in cls.PUBLIC}
    d.trigger_event(cls, salts=salts, **fields)
