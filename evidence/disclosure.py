"""Selective disclosure: the public leaf ``sifa-leaf/2`` and the disclosures that open it.

A ``sifa-leaf/2`` leaf is the RFC 8785 canonical JSON of exactly::

    {"format": "sifa-leaf/2", "origin", "seq", "position", "dossier" (opaque reference),
     "version", "type", "time", "prev", "files": [{"field", "sha256", "size"}, ...],
     "commitments": {"<path>": "<hex>", ...}}

Every other field of the event body is flattened to ``/``-joined paths (RFC 6901 escaping,
list items by index) and each scalar is a salted commitment; a disclosure ``{"path", "value",
"salt"}`` opens one of them, and a holder can drop disclosures and still verify the rest (as
SD-JWT does for credentials). docs/privacy.md is the design. The format is split in modules:
``canonical`` (RFC 8785), ``paths`` (flattening), ``salts`` (node-secret derivations, commitments),
``leaf`` (building and reading leaves), ``labels`` (labels, visibility) and this one (disclosures);
this one re-exports them. All are pure (no I/O, no clock) and import only ``ledger``'s errors, so the
lawyer's verifier (PyNaCl only) can use them.

Errors: ``DisclosureError`` (``disclosure_mismatch``, from ``evidence.commitment``) for a
disclosure that does not open its leaf; ``MalformedLeafError`` (``malformed_leaf``, a
``ledger.errors.MalformedError``) for leaf bytes that are not a readable leaf.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from evidence.canonical import canonical_json
from evidence.commitment import DisclosureError
from evidence.labels import ACTOR_PATHS, LABELS, ROLES, TYPE_LABELS, label, pattern, visible_paths
from evidence.leaf import (
    FILE_FIELDS,
    FORMAT,
    FORMAT_V1,
    LEAF_KEYS,
    STORAGE_KEYS,
    FileRef,
    LeafView,
    MalformedLeafError,
    build_leaf,
    committed_values,
    named_files,
    read_leaf,
)
from evidence.paths import check_shape, escape, flatten, unescape, unflatten
from evidence.salts import (
    SALT_BYTES,
    Digest,
    commitment,
    digest_named,
    dossier_ref,
    event_key,
    event_salts,
    leaf_order,
    salt_stream,
    sha256,
)

__all__ = [
    "ACTOR_PATHS", "FILE_FIELDS", "FORMAT", "FORMAT_V1", "LABELS", "LEAF_KEYS", "ROLES", "STORAGE_KEYS", "TYPE_LABELS",
    "Digest", "Disclosure", "DisclosureError", "FileRef", "LeafView", "MalformedLeafError", "build_leaf",
    "canonical_json", "check_shape", "commitment", "committed_values", "digest_named", "disclosures_for",
    "dossier_ref", "escape", "event_key", "event_salts", "flatten", "label", "leaf_order", "named_files", "pattern",
    "read_leaf", "redact", "salt_stream", "unescape", "unflatten", "verify_disclosures", "visible_paths",
]  # fmt: skip


@dataclass(frozen=True, slots=True)
class Disclosure:
    """One opened field: its path, its value and the salt of its commitment."""

    path: str
    value: Any
    salt: bytes

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "value": self.value, "salt": base64.b64encode(self.salt).decode("ascii")}

    @classmethod
    def from_json(cls, doc: Any) -> Disclosure:
        """Read ``{"path", "value", "salt" (base64)}``; raises DisclosureError naming what is wrong."""
        if isinstance(doc, Disclosure):
            return doc
        path = doc.get("path") if isinstance(doc, dict) else None
        if not isinstance(doc, dict) or set(doc) != {"path", "value", "salt"} or not isinstance(path, str):
            raise DisclosureError("a disclosure is exactly {path, value, salt}", path=path)
        try:
            salt = base64.b64decode(doc["salt"].encode("ascii"), validate=True)
        except (AttributeError, binascii.Error, UnicodeEncodeError):  # not a text, not base64
            salt = b""
        if len(salt) != SALT_BYTES:
            raise DisclosureError(f"disclosure of {path!r}: the salt is not {SALT_BYTES} bytes of base64", path=path)
        return cls(path, doc["value"], salt)


def disclosures_for(body: Mapping[str, Any], *, secret: bytes, dossier: uuid.UUID | str, version: int,
                    paths: Iterable[str] | None = None) -> list[Disclosure]:  # fmt: skip
    """Disclosures of an event's committed fields (all, or ``paths``), by path.

    Raises ValueError for a path the event's leaf does not commit to.
    """
    values = committed_values(body)
    chosen = sorted(values) if paths is None else sorted(set(paths))
    unknown = [p for p in chosen if p not in values]
    if unknown:
        raise ValueError(f"the leaf commits to no field {unknown[0]!r}")
    salts = event_salts(secret, dossier, version, values)  # a salt depends on its place among all the paths
    return [Disclosure(p, values[p], salts[p]) for p in chosen]


def verify_disclosures(leaf: LeafView | Mapping[str, Any], disclosures: Iterable[Disclosure | Mapping[str, Any]],
                       digest: Digest = sha256) -> dict[str, Any]:  # fmt: skip
    """The verified path → value map; raises DisclosureError (``detail["path"]``) for a disclosure
    that does not open the leaf's commitment of its path, names a path the leaf lacks, or repeats one."""
    commitments = leaf.commitments if isinstance(leaf, LeafView) else leaf.get("commitments")
    fmt = leaf.format if isinstance(leaf, LeafView) else leaf.get("format")
    out: dict[str, Any] = {}
    for raw in disclosures:
        d = Disclosure.from_json(raw)
        if fmt != FORMAT or not isinstance(commitments, Mapping):
            raise DisclosureError(f"a {fmt or FORMAT_V1} leaf has no per-field commitments", path=d.path)
        if d.path in out:
            raise DisclosureError(f"field {d.path!r} is disclosed twice", path=d.path)
        expected = commitments.get(d.path)
        if not isinstance(expected, str):
            raise DisclosureError(f"the leaf commits to no field {d.path!r}", path=d.path)
        try:
            got = commitment(d.path, d.value, d.salt, digest)
        except ValueError:
            got = ""
        if not hmac.compare_digest(got, expected):
            raise DisclosureError(f"the disclosed {d.path!r} does not open its commitment in the leaf", path=d.path)
        out[d.path] = d.value
    return out


D = TypeVar("D", Disclosure, Mapping[str, Any])


def redact(disclosures: Sequence[D], keep: Iterable[str], *, event_type: str | None = None) -> list[D]:
    """Only the disclosures whose path, wildcard pattern (``parties/*/name``) or label (文件名) is in ``keep``."""
    wanted = set(keep)

    def kept(d: D) -> bool:
        path = d.path if isinstance(d, Disclosure) else d.get("path")
        if not isinstance(path, str):
            return False
        return bool({path, pattern(path), label(path, event_type)} & wanted)

    return [d for d in disclosures if kept(d)]
