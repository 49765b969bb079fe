"""The leaf: RFC 8785 canonical JSON of one stored event's envelope.

    {"origin", "seq" (leaf index), "position" (event store notification id),
     "dossier", "version", "type", "time" (UTC), "prev" (leaf hash of the same
     dossier's previous event, hex, or null), "body" (personal data committed)}

``prev`` chains each dossier's leaves: holding the latest proved leaf of a
dossier proves every earlier one, none missing.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import rfc8785

from dossier.domain import Dossier

_ZERO = timedelta(0)
FILE_FIELDS = ("sha256", "contract_sha256", "receipt_sha256", "package_sha256")


def utc(ts: datetime) -> str:
    """``2026-11-22T08:30:00.123456Z``: always microseconds, always UTC."""
    if ts.utcoffset() != _ZERO:
        ts = ts.astimezone(UTC)
    return ts.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def envelope(origin: str, seq: int, position: int, event: Dossier.Event, prev: bytes | None) -> dict[str, Any]:
    """The envelope of one stored event (its ``body`` with personal data committed)."""
    return {
        "origin": origin,
        "seq": seq,
        "position": position,
        "dossier": str(event.originator_id),
        "version": event.originator_version,
        "type": type(event).__name__,
        "time": utc(event.timestamp),
        "prev": prev.hex() if prev is not None else None,
        "body": event.leaf_body(),
    }


def leaf_bytes(doc: dict[str, Any]) -> bytes:
    """RFC 8785 bytes of an envelope.

    For what an envelope holds — ASCII keys chosen by this code, strings,
    integers, booleans, null, lists and objects, never floats — RFC 8785 equals
    Python's sorted, compact, non-ASCII-preserving JSON (ECMAScript and Python
    escape strings alike; key order differs only for non-ASCII keys). That is
    5x faster than the general serializer; ``tests/test_envelope.py`` checks the
    two agree on random envelopes, and anything outside the subset falls back.
    """
    return canonical(doc, _plain(doc))


def canonical(doc: dict[str, Any], plain: bool) -> bytes:
    """RFC 8785 bytes; ``plain`` says the fast path's precondition was checked."""
    if not plain:  # a float, a big integer or a non-ASCII key: the general serializer
        return rfc8785.dumps(doc)
    return json.dumps(doc, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")


def _plain(value: Any) -> bool:
    stack = [value]
    while stack:
        v = stack.pop()
        t = type(v)
        if t is str or t is bool or v is None:
            continue
        if t is int:  # RFC 8785 allows only IEEE-754-safe integers
            if not -(2**53) < v < 2**53:
                return False
        elif t is dict:
            try:
                if not all(map(str.isascii, v)):
                    return False
            except TypeError:  # a key that is not a string
                return False
            stack.extend(v.values())
        elif t is list:
            stack.extend(v)
        else:
            return False
    return True


def envelope_bytes(doc: dict[str, Any]) -> bytes:
    """Leaf bytes of an envelope built by ``envelope``: only its body needs the fast-path check."""
    return canonical(doc, _plain(doc["body"]))  # the envelope's own keys and numbers are plain


def file_hashes(body: dict[str, Any]) -> list[str]:
    """The SHA-256 values of files a leaf body names."""
    return [v for k, v in body.items() if k in FILE_FIELDS and isinstance(v, str) and v]


def read_leaf(data: bytes) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(data)
    return doc
