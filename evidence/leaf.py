"""The public leaf ``sifa-leaf/2``: built from one event (``build_leaf``), read in either version (``read_leaf``).

A ``sifa-leaf/2`` leaf is the RFC 8785 canonical JSON of exactly::

    {"format": "sifa-leaf/2", "origin", "seq", "position", "dossier" (opaque reference),
     "version", "type", "time", "prev", "files": [{"field", "sha256", "size"}, ...],
     "commitments": {"<path>": "<hex>", ...}}

Errors: ``MalformedLeafError`` (``malformed_leaf``, a ``ledger.errors.MalformedError``) for leaf
bytes that are not a readable leaf.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from json.encoder import encode_basestring  # json.dumps(text, ensure_ascii=False), without its set-up
from types import MappingProxyType
from typing import Any, Final

from evidence.canonical import SAFE_INT, canonical_json
from evidence.commitment import PERSONAL_RECORDS
from evidence.paths import check_shape, flatten
from evidence.salts import COMMIT_DOMAIN, SALT_BYTES, Digest, dossier_ref, leaf_order, salt_stream, sha256
from ledger import boundedjson
from ledger.errors import MalformedError

FORMAT: Final = "sifa-leaf/2"
FORMAT_V1: Final = "sifa-leaf/1"  # the envelope of dossier/envelope.py: no "format" key
# Body fields that hold the SHA-256 of a file, and the body field that holds its size (if any):
# they go to the leaf's clear "files", never to its commitments.
# A received copy's events and checkpoint files (events_sha256, checkpoint_sha256) are committed: their
# hashes can be recomputed from the sending court's public log, and would link the two courts' dossiers.
FILE_FIELDS: Final[Mapping[str, str | None]] = {
    "sha256": "size", "contract_sha256": None, "receipt_sha256": None, "package_sha256": None,
}  # fmt: skip
_SIZE_OF: Final = {size: field for field, size in FILE_FIELDS.items() if size is not None}
STORAGE_KEYS: Final = frozenset({"salts"})  # inside personal records: the v1 commitments' salts, not case data
LEAF_KEYS: Final = frozenset(
    {"format", "origin", "seq", "position", "dossier", "version", "type", "time", "prev", "files", "commitments"}
)
_HEX64 = re.compile(r"[0-9a-f]{64}")
_REF = re.compile(r"[0-9a-f]{32}")
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")


class MalformedLeafError(MalformedError):
    code = "malformed_leaf"


def committed_values(body: Mapping[str, Any]) -> dict[str, Any]:
    """The body's fields a leaf commits to, by path: all but named files (and personal records' salts)."""
    return _flat_committed(body) or flatten(_committed_fields(body))


def _scalar(v: Any) -> bool:
    t = type(v)
    return t is str or v is None or t is bool or (t is int and -SAFE_INT <= v <= SAFE_INT)


def _flat_committed(body: Mapping[str, Any]) -> dict[str, Any] | None:
    """``committed_values`` for the sealer's common case, without ``flatten``'s walk: every field a scalar
    under an identifier key, a personal record one non-empty object of such. None for anything else."""
    rest: dict[str, Any] = {}
    for key, value in body.items():
        if _named(key, value, body):
            continue
        if type(key) is not str or not key.isidentifier():
            return None
        if key in PERSONAL_RECORDS and type(value) is dict:
            n = 0
            for k, v in value.items():
                if k in STORAGE_KEYS:
                    continue
                if not (type(k) is str and k.isidentifier() and _scalar(v)):
                    return None
                rest[f"{key}/{k}"] = v
                n += 1
            if not n:
                return None
        elif _scalar(value):
            rest[key] = value
        else:
            return None
    return rest


def _named(key: str, value: Any, body: Mapping[str, Any]) -> bool:
    """Whether a body field is a named file's hash or size: in the leaf's clear ``files``, not committed."""
    return (key in FILE_FIELDS and value is not None) or (key in _SIZE_OF and body.get(_SIZE_OF[key]) is not None)


def _committed_fields(body: Mapping[str, Any]) -> dict[str, Any]:
    rest: dict[str, Any] = {}
    for key, value in body.items():
        if _named(key, value, body):
            continue
        if key in PERSONAL_RECORDS:
            value = [_unstored(r) for r in value] if isinstance(value, list) else _unstored(value)
        rest[key] = value
    return rest


def _unstored(record: Any) -> Any:
    return {k: v for k, v in record.items() if k not in STORAGE_KEYS} if isinstance(record, dict) else record


def named_files(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The leaf's ``files``: ``{"field", "sha256", "size"}`` for each file the body names, by field.

    Raises ValueError for a file field that is not a lower-case hex SHA-256, or a size that is no size.
    """
    files = []
    for field, size_field in FILE_FIELDS.items():
        sha = body.get(field)
        if sha is None:
            continue
        if not isinstance(sha, str) or not _HEX64.fullmatch(sha):
            raise ValueError(f"{field} is not a lower-case hex SHA-256")
        size = body.get(size_field) if size_field else None
        if size is not None and (type(size) is not int or not 0 <= size <= SAFE_INT):
            raise ValueError(f"{size_field} is not a size")
        files.append({"field": field, "sha256": sha, "size": size})
    return sorted(files, key=lambda f: f["field"])


_PATHS: dict[str, tuple[bytes, str]] = {}  # a path's UTF-8 with its 0x00, and its key in the leaf
_PATHS_KEPT = 4096  # events' paths are their field names and a few list items: a bounded set in practice


def _path_parts(path: str) -> tuple[bytes, str]:
    try:
        parts = (path.encode() + b"\x00", f'{encode_basestring(path)}:"')
    except UnicodeEncodeError:
        raise ValueError("a text holds a lone surrogate, which has no UTF-8 form") from None
    if len(_PATHS) < _PATHS_KEPT:
        _PATHS[path] = parts
    return parts


def build_leaf(*, origin: str, seq: int, position: int, dossier: uuid.UUID | str, version: int, type: str,
               time: str, prev: bytes | None, body: Mapping[str, Any], secret: bytes,
               digest: Digest = sha256) -> bytes:  # fmt: skip
    """The ``sifa-leaf/2`` bytes of one event (``time`` as ``2026-11-22T08:30:00.000000Z``).

    Raises ValueError for a field outside its form (the node builds leaves from its own events).
    """
    if not _TIME.fullmatch(time):
        raise ValueError("time is UTC with microseconds and Z")
    if not isinstance(origin, str) or not isinstance(type, str):
        raise ValueError("origin and type are texts")
    if not (seq.__class__ is int and position.__class__ is int and version.__class__ is int) or not (
        0 <= seq <= SAFE_INT and 0 <= position <= SAFE_INT and 0 <= version <= SAFE_INT
    ):  # fmt: skip
        raise ValueError("seq, position and version are non-negative integers")
    if prev is not None and len(prev) != 32:
        raise ValueError("prev is a 32-byte leaf hash")
    values = committed_values(body)
    order = leaf_order(values)
    stream = salt_stream(secret, dossier, version, len(order))
    new = hashlib.sha256 if digest is sha256 else None
    pieces: list[str] = []
    at = 0
    for p in order:
        # commitment(path, value, salt), written out: the sealer's hot loop (tests compare it with it)
        v = values[p]
        t = v.__class__
        text = (encode_basestring(v) if t is str else "null" if v is None else ("true" if v else "false")
                if t is bool else str(v) if t is int else "[]" if t is list else "{}")  # fmt: skip
        head, key = _PATHS.get(p) or _path_parts(p)
        try:
            message = COMMIT_DOMAIN + stream[at : at + SALT_BYTES] + head + text.encode()
        except UnicodeEncodeError:
            raise ValueError("a text holds a lone surrogate, which has no UTF-8 form") from None
        at += SALT_BYTES
        pieces.append(key + (new(message).hexdigest() if new is not None else digest(message).hex()) + '"')
    ref = dossier_ref(secret, dossier)
    files = named_files(body)
    # Every value is a text, an integer checked above, null or hex, the files checked by named_files,
    # the commitments in the leaf's order (leaf_order): written out in RFC 8785 order by hand.
    # Tests compare it with rfc8785.
    out = ['{"commitments":{', ",".join(pieces), f'}},"dossier":"{ref}","files":[',
           ",".join(f'{{"field":"{f["field"]}","sha256":"{f["sha256"]}","size":'
                    f'{"null" if f["size"] is None else f["size"]}}}' for f in files),
           f'],"format":"{FORMAT}","origin":{encode_basestring(origin)},"position":{position},"prev":',
           "null" if prev is None else f'"{prev.hex()}"',
           f',"seq":{seq},"time":"{time}","type":{encode_basestring(type)},"version":{version}}}']  # fmt: skip
    try:
        return "".join(out).encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("a text holds a lone surrogate, which has no UTF-8 form") from None


@dataclass(frozen=True, slots=True)
class FileRef:
    field: str
    sha256: str
    size: int | None


@dataclass(frozen=True, slots=True)
class LeafView:
    """A read leaf of either version. ``commitments`` is empty for v1, ``body`` None for v2;
    a v1 leaf's envelope fields are None where an old (test or example) leaf lacks them."""

    format: str
    origin: str | None
    seq: int | None
    position: int | None
    dossier: str | None
    version: int | None
    type: str | None
    time: str | None
    prev: str | None
    files: tuple[FileRef, ...]
    commitments: Mapping[str, str]
    body: Mapping[str, Any] | None


def read_leaf(data: bytes) -> LeafView:
    """Read leaf bytes of ``sifa-leaf/2`` (strictly: canonical, exact fields) or ``sifa-leaf/1``.

    Raises MalformedLeafError naming the first thing that is not a leaf.
    """
    try:
        doc = boundedjson.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedLeafError(f"the leaf is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise MalformedLeafError("a leaf is a JSON object")
    if "format" not in doc:
        return _read_v1(doc)
    if doc["format"] != FORMAT:
        raise MalformedLeafError(f"unknown leaf format {doc['format']!r}; this reads {FORMAT} and {FORMAT_V1}")
    if set(doc) != LEAF_KEYS:
        raise MalformedLeafError(f"a {FORMAT} leaf holds exactly {sorted(LEAF_KEYS)}")
    _want(doc, "origin", str, required=True)
    for key in ("seq", "position", "version"):
        _want(doc, key, int, required=True)
    _want(doc, "type", str, required=True)
    if not isinstance(doc["dossier"], str) or not _REF.fullmatch(doc["dossier"]):
        raise MalformedLeafError("dossier is a 32-digit hex reference")
    if not isinstance(doc["time"], str) or not _TIME.fullmatch(doc["time"]):
        raise MalformedLeafError("time is UTC with microseconds and Z")
    if doc["prev"] is not None and (not isinstance(doc["prev"], str) or not _HEX64.fullmatch(doc["prev"])):
        raise MalformedLeafError("prev is a hex leaf hash or null")
    files = _files(doc["files"])
    commitments = doc["commitments"]
    if not isinstance(commitments, dict) or not all(isinstance(v, str) and _HEX64.fullmatch(v)
                                                    for v in commitments.values()):  # fmt: skip
        raise MalformedLeafError("commitments map paths to hex hashes")
    if {f.field for f in files} & set(commitments):
        raise MalformedLeafError("a field is both a named file and a commitment")
    try:
        check_shape(commitments)
    except ValueError as exc:
        raise MalformedLeafError(f"the leaf's commitments are not one event's fields: {exc}") from None
    try:
        canonical = canonical_json(doc) == data
    except ValueError:
        canonical = False
    if not canonical:
        raise MalformedLeafError(f"a {FORMAT} leaf is RFC 8785 canonical JSON")
    return LeafView(FORMAT, doc["origin"], doc["seq"], doc["position"], doc["dossier"], doc["version"], doc["type"],
                    doc["time"], doc["prev"], files, MappingProxyType(commitments), None)  # fmt: skip


def _want(doc: Mapping[str, Any], key: str, kind: type, *, required: bool) -> Any:
    v = doc.get(key)
    if v is None and not required:
        return None
    if not isinstance(v, kind) or isinstance(v, bool) or (isinstance(v, int) and v < 0):
        raise MalformedLeafError(f"the leaf's {key} is not a {'non-negative integer' if kind is int else 'text'}")
    return v


def _files(raw: Any) -> tuple[FileRef, ...]:
    if not isinstance(raw, list):
        raise MalformedLeafError("files is a list")
    out = []
    for f in raw:
        if not isinstance(f, dict) or set(f) != {"field", "sha256", "size"} or f["field"] not in FILE_FIELDS:
            raise MalformedLeafError("a file is {field, sha256, size}, field one of the file fields")
        if not isinstance(f["sha256"], str) or not _HEX64.fullmatch(f["sha256"]):
            raise MalformedLeafError("a file's sha256 is lower-case hex")
        if f["size"] is not None and (type(f["size"]) is not int or f["size"] < 0 or not FILE_FIELDS[f["field"]]):
            raise MalformedLeafError("a file's size is a non-negative integer, or null where its event has none")
        out.append(FileRef(f["field"], f["sha256"], f["size"]))
    if [f.field for f in out] != sorted({f.field for f in out}):
        raise MalformedLeafError("files are sorted by field, each field once")
    return tuple(out)


_NONE: Final[Mapping[str, str]] = MappingProxyType({})


def _read_v1(doc: dict[str, Any]) -> LeafView:
    body = doc.get("body")
    if body is not None and not isinstance(body, dict):
        raise MalformedLeafError("a leaf's body is an object")
    files = []
    for field, size_field in FILE_FIELDS.items():
        sha = (body or {}).get(field)
        if isinstance(sha, str) and sha:
            size = (body or {}).get(size_field) if size_field else None
            files.append(FileRef(field, sha.lower(), size if type(size) is int and size >= 0 else None))
    prev = doc.get("prev")
    if prev is not None and not isinstance(prev, str):
        raise MalformedLeafError("prev is a hex leaf hash or null")
    return LeafView(FORMAT_V1, _want(doc, "origin", str, required=False), _want(doc, "seq", int, required=False),
                    _want(doc, "position", int, required=False), _want(doc, "dossier", str, required=False),
                    _want(doc, "version", int, required=False), _want(doc, "type", str, required=False),
                    _want(doc, "time", str, required=False), prev, tuple(files), _NONE, body)  # fmt: skip
