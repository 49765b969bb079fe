"""The leaf of one stored event: ``sifa-leaf/2`` (what the sealer writes), and ``sifa-leaf/1``.

``sifa-leaf/2`` (evidence/leaf.py, docs/privacy.md) carries in clear only the origin, the leaf
index, the event store position, an opaque dossier reference, the event's version, type and UTC
time, ``prev`` and the SHA-256 and size of the files the event names. Every other field of the
event — whatever event it is — is a salted commitment: privacy is the default, an event type
added later is covered without naming its fields anywhere (``leaf_v2``). Salts and the dossier
reference are keyed by the node secret (``api.node.load_leaf_secret``).

``sifa-leaf/1`` — the envelope ``{"origin", "seq", "position", "dossier", "version", "type",
"time", "prev", "body"}`` with the body in clear but party data committed — is what a node wrote
before; ``envelope`` still builds it, so that ``sifa audit`` can rebuild old leaves byte for byte.

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
from collections.abc import Iterable, Mapping
from typing import Any

import rfc8785

from dossier.domain import Dossier
from dossier.errors import InvalidDossierInputError
from dossier.fields import utc
from evidence.disclosure import Disclosure, disclosures_for, visible_paths
from evidence.leaf import FILE_FIELDS as LEAF_FILE_FIELDS
from evidence.leaf import FORMAT as LEAF_FORMAT
from evidence.leaf import build_leaf, committed_values, named_files
from evidence.salts import REF_BYTES
from ledger import boundedjson
from ledger.errors import LeafTooLargeError
from ledger.tiles import MAX_ENTRY_SIZE

__all__ = [
    "MAX_ENTRY_SIZE",
    "body_of",
    "check_fits",
    "envelope",
    "envelope_bytes",
    "leaf_bound",
    "leaf_bytes",
    "leaf_v2",
    "utc",
]

FILE_FIELDS = ("sha256", "contract_sha256", "receipt_sha256", "package_sha256")
# What the frame around a body may hold at most: an origin (a court's is "sifa.court/1101-0105",
# a signed-note key name of 20 bytes), an event type name, integers within JSON's exact range.
MAX_ORIGIN_BYTES = 255
MAX_TYPE_NAME = 64


# eventsourcing's own, and the per-field salts older private events were stored with (dossier/private.py)
_NOT_IN_BODY = frozenset({"originator_id", "originator_version", "timestamp", "originator_topic", "salts"})


def stored_body(event: Dossier.Event) -> dict[str, Any]:
    """Every field of a stored event but eventsourcing's own: what ``sifa-leaf/2`` commits to (or names
    as files), and what disclosures open. A retrieval of no one document has no ``document_id``."""
    return body_of(vars(event))


def body_of(fields: Mapping[str, Any]) -> dict[str, Any]:
    """``stored_body`` of an event's fields as stored (the sealer reads them without making the event)."""
    return {k: v for k, v in fields.items()
            if k not in _NOT_IN_BODY and not (k == "document_id" and v is None)}  # fmt: skip


def leaf_v2(origin: str, seq: int, position: int, event: Dossier.Event, prev: bytes | None, secret: bytes,
            body: dict[str, Any] | None = None) -> bytes:  # fmt: skip
    """The ``sifa-leaf/2`` bytes of one stored event (``body``: its ``stored_body``, if the caller has it).
    Raises ValueError for a body no leaf can hold (``check_fits`` refused such a command when accepted)."""
    return build_leaf(origin=origin, seq=seq, position=position, dossier=event.originator_id,
                      version=event.originator_version, type=type(event).__name__, time=utc(event.timestamp),
                      prev=prev, body=stored_body(event) if body is None else body, secret=secret)  # fmt: skip


def named_file_hashes(body: dict[str, Any]) -> list[str]:
    """The SHA-256 of every file a stored body names (what a ``sifa-leaf/2`` leaf shows in ``files``)."""
    return [v for k in LEAF_FILE_FIELDS if isinstance(v := body.get(k), str)]


def disclosures_of(event: Dossier.Event, secret: bytes, *, role: str, principal: str | None = None,
                   secondary: bool = False) -> list[Disclosure]:  # fmt: skip
    """The disclosures of one stored event that ``role`` may be shown (evidence.labels.visible_paths):
    staff and a receiving court all, a lawyer or party all but other principals' ids and nothing of a
    副卷 event (``secondary``), the public none."""
    body = stored_body(event)
    paths = visible_paths(role, committed_values(body), secondary=secondary, principal=principal)
    return disclosures_for(body, secret=secret, dossier=event.originator_id, version=event.originator_version,
                           paths=paths)  # fmt: skip


def is_v2(leaf: bytes) -> bool:
    """Whether stored leaf bytes are ``sifa-leaf/2``: canonical JSON whose first key is ``commitments``
    (a ``sifa-leaf/1`` envelope's is ``body``)."""
    return leaf.startswith(b'{"commitments":')


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
    """Bytes of a ``sifa-leaf/2`` leaf without files or commitments, each field at the largest it can be."""
    big = 2**53 - 1
    worst = {"format": LEAF_FORMAT, "origin": "o" * MAX_ORIGIN_BYTES, "seq": big, "position": big,
             "dossier": "0" * (2 * REF_BYTES), "version": big, "type": "T" * MAX_TYPE_NAME,
             "time": "9999-12-31T23:59:59.999999Z", "prev": "0" * 64, "files": [], "commitments": {}}  # fmt: skip
    return len(canonical(worst, True))


FRAME_BYTES = _frame_bytes()
# A file entry at its largest: {"field":"<longest file field>","sha256":"<64>","size":<2^53-1>}, and its comma.
FILE_BYTES = len(canonical({"field": max(LEAF_FILE_FIELDS, key=len), "sha256": "0" * 64, "size": 2**53 - 1}, True)) + 1
COMMITMENT_BYTES = 64 + 2 + 1 + 1  # the quoted hex, the colon and the comma around a path
_SURROGATE = re.compile("[\ud800-\udfff]")


def leaf_bound(event: Dossier.Event) -> int:
    """The most bytes ``event``'s ``sifa-leaf/2`` leaf can have, whatever its origin, position and ``prev``.

    A commitment has one size whatever its value, so the bound depends on the event's paths, not its
    texts. Raises InvalidDossierInputError when the body cannot be written as a leaf at all.
    """
    body = stored_body(event)
    try:
        files = named_files(body)
        paths = committed_values(body)
    except ValueError as exc:  # a float, an integer outside JSON's exact range, a key that reads as an index
        raise InvalidDossierInputError(f"a {type(event).__name__} event cannot be written as a leaf: {exc}") from None
    size = FRAME_BYTES + FILE_BYTES * len(files)
    for path, value in paths.items():
        if (type(value) is str and not value.isascii() and _SURROGATE.search(value)) or _SURROGATE.search(path):
            raise InvalidDossierInputError(f"a {type(event).__name__} event cannot be written as a leaf: "
                                           "a text holds a lone surrogate")  # fmt: skip
        size += COMMITMENT_BYTES + len(json.dumps(path))  # \u escapes: at least the UTF-8 bytes
    return size


def check_fits(events: Iterable[object]) -> None:
    """Return None when every (dossier) event's leaf fits in the log; raise LeafTooLargeError."""
    for event in events:
        assert isinstance(event, Dossier.Event), f"not a dossier event: {event!r}"
        size = leaf_bound(event)
        if size > MAX_ENTRY_SIZE:
            raise LeafTooLargeError(
                f"this would record a {type(event).__name__} event of up to {size} bytes; a leaf of the log holds "
                f"at most {MAX_ENTRY_SIZE}: nothing was recorded (fewer parties or fields fit)",
                bytes=size, limit=MAX_ENTRY_SIZE)  # fmt: skip
