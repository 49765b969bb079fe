"""The leaf: RFC 8785 canonical JSON of one stored event's envelope.

    {"origin", "seq" (leaf index), "position" (event store notification id),
     "dossier", "version", "type", "time" (UTC), "prev" (leaf hash of the same
     dossier's previous event, hex, or null), "body" (personal data committed)}

``prev`` chains each dossier's leaves: holding the latest proved leaf of a
dossier proves every earlier one, none missing.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import rfc8785

from dossier.domain import Dossier

FILE_FIELDS = ("sha256", "contract_sha256", "receipt_sha256", "package_sha256")


def utc(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def envelope(origin: str, seq: int, position: int, event: Dossier.Event, prev: bytes | None) -> dict[str, Any]:
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
    return rfc8785.dumps(doc)


def file_hashes(body: dict[str, Any]) -> list[str]:
    """The SHA-256 values of files a leaf body names."""
    return [v for k, v in body.items() if k in FILE_FIELDS and isinstance(v, str) and v]


def read_leaf(data: bytes) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(data)
    return doc
