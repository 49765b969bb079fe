"""The leaf: RFC 8785 canonical JSON of one stored event's envelope.

    {"origin", "seq" (leaf index), "position" (event store notification id),
     "dossier", "version", "type", "time" (UTC), "prev" (leaf hash of the same
     dossier's previous event, hex, or null), "body" (personal data committed)}

``prev`` chains each dossier's leaves: holding the latest proved leaf of a
dossier proves every earlier one, none missing.

A leaf holds at most 65,535 bytes (``ledger.tiles.MAX_ENTRY_SIZE``; c2sp.org/tlog-tiles
entry bundles prefix each entry with a 16-bit length). An event whose leaf could be larger
would stop the log at that event, for good, so ``check_fits`` refuses the command that makes
it when the command is accepted, before anything is recorded.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable
from typing import Any

import rfc8785

from dossier.domain import Dossier
from dossier.errors import InvalidDossierInputError
from dossier.fields import utc
from ledger import boundedjson
from ledger.errors import LeafTooLargeError
from ledger.tiles import MAX_ENTRY_SIZE

__all__ = ["MAX_ENTRY_SIZE", "check_fits", "envelope", "envelope_bytes", "leaf_bound", "leaf_bytes", "utc"]

FILE_FIELDS = ("sha256", "contract_sha256", "receipt_sha256", "package_sha256")
# What the frame around a body may hold at most: an origin (a court's is "sifa.court/1101-0105",
# a signed-note key name of 20 bytes), an event type name, integers within JSON's exact range.
MAX_ORIGIN_BYTES = 255
MAX_TYPE_NAME = 64


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
    doc: dict[str, Any] = boundedjson.loads(data)
    return doc


def _frame_bytes() -> int:
    """Bytes of an envelope around its body, each of its own fields at the largest it can be."""
    big = 2**53 - 1
    worst = {"origin": "o" * MAX_ORIGIN_BYTES, "seq": big, "position": big, "dossier": str(uuid.UUID(int=0)),
             "version": big, "type": "T" * MAX_TYPE_NAME, "time": "9999-12-31T23:59:59.999999Z", "prev": "0" * 64,
             "body": {}}  # fmt: skip
    return len(canonical(worst, True)) - len(b"{}")


FRAME_BYTES = _frame_bytes()


def leaf_bound(event: Dossier.Event) -> int:
    """The most bytes ``event``'s leaf can have, whatever its origin, position and ``prev``.

    First a quick over-estimate from the event's own fields; only an event it cannot clear (a
    large one) has its body committed and serialised. Raises InvalidDossierInputError when the
    body cannot be written as a leaf at all.
    """
    rough = FRAME_BYTES + _rough_fields(event)
    if rough <= MAX_ENTRY_SIZE:
        return rough
    body = event.leaf_body()
    try:
        return FRAME_BYTES + len(canonical(body, _plain(body)))
    except (UnicodeEncodeError, ValueError, TypeError) as exc:  # a surrogate, a float RFC 8785 refuses, ...
        raise InvalidDossierInputError(f"a {type(event).__name__} event cannot be written as a leaf: {exc}") from None


def _rough_fields(event: Dossier.Event) -> int:
    """At least the canonical bytes of ``event``'s leaf body, without building it.

    A stored party record holds its salts and values where the leaf holds commitments of the
    salts' size, so the record over-estimates its commitment. Anything this cannot bound (a float,
    an integer outside JSON's exact range, a lone surrogate) counts as too large, so that the exact
    path decides.
    """
    return 2 + sum(_rough(k) + 2 + _rough(v) for k, v in vars(event).items() if k not in _NOT_IN_BODY)


_NOT_IN_BODY = frozenset({"originator_id", "originator_version", "timestamp", "originator_topic"})
_SURROGATE = re.compile("[\ud800-\udfff]")


def _rough(value: Any) -> int:
    t = type(value)
    if t is str:  # at most 6 bytes a character (\u00XX; 4-byte UTF-8 is less), and the quotes
        return 2 + 6 * len(value) if value.isascii() or not _SURROGATE.search(value) else MAX_ENTRY_SIZE
    if t is bool or value is None:
        return 5
    if t is int:
        return 17 if -(2**53) < value < 2**53 else MAX_ENTRY_SIZE
    if t is dict:
        return 2 + sum(_rough(k) + 2 + _rough(v) for k, v in value.items())
    if t is list:
        return 2 + sum(1 + _rough(v) for v in value)
    return MAX_ENTRY_SIZE


def check_fits(events: Iterable[object]) -> None:
    """Return None when every (dossier) event's leaf fits in the log; raise LeafTooLargeError."""
    for event in events:
        assert isinstance(event, Dossier.Event), f"not a dossier event: {event!r}"
        size = leaf_bound(event)
        if size > MAX_ENTRY_SIZE:
            raise LeafTooLargeError(
                f"this would record a {type(event).__name__} event of up to {size} bytes; a leaf of the log holds "
                f"at most {MAX_ENTRY_SIZE}: nothing was recorded (fewer parties or shorter texts fit)",
                bytes=size, limit=MAX_ENTRY_SIZE)  # fmt: skip
