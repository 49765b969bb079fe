"""Selective disclosure: the public leaf ``sifa-leaf/2`` and the disclosures that open it.

A ``sifa-leaf/2`` leaf is the RFC 8785 canonical JSON of exactly::

    {"format": "sifa-leaf/2", "origin", "seq", "position", "dossier" (opaque reference),
     "version", "type", "time", "prev", "files": [{"field", "sha256", "size"}, ...],
     "commitments": {"<path>": "<hex>", ...}}

Every other field of the event body is flattened to ``/``-joined paths (RFC 6901 escaping,
list items by index) and each scalar is a salted commitment; a disclosure ``{"path", "value",
"salt"}`` opens one of them, and a holder can drop disclosures and still verify the rest (as
SD-JWT does for credentials). docs/privacy.md is the design; this module is pure (no I/O, no
clock) and imports only ``ledger``'s errors, so the lawyer's verifier (PyNaCl only) can use it.

Errors: ``DisclosureError`` (``disclosure_mismatch``, from ``evidence.commitment``) for a
disclosure that does not open its leaf; ``MalformedLeafError`` (``malformed_leaf``, a
``ledger.errors.MalformedError``) for leaf bytes that are not a readable leaf.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from json.encoder import encode_basestring  # json.dumps(text, ensure_ascii=False), without its set-up
from types import MappingProxyType
from typing import Any, Final, TypeVar

from evidence.commitment import PERSONAL_RECORDS, DisclosureError
from ledger import boundedjson
from ledger.errors import MalformedError

FORMAT: Final = "sifa-leaf/2"
FORMAT_V1: Final = "sifa-leaf/1"  # the envelope of dossier/envelope.py: no "format" key
COMMIT_DOMAIN: Final = b"sifa-commit/2\x00"
SALT_DOMAIN: Final = b"sifa-salt/1\x00"
REF_DOMAIN: Final = b"sifa-dossier-ref/1\x00"
SALT_BYTES: Final = 16
REF_BYTES: Final = 16
MIN_SECRET_BYTES: Final = 32
MAX_INDEX: Final = 100_000  # a list index beyond this in a path is refused (no event holds such lists)
# Body fields that hold the SHA-256 of a file, and the body field that holds its size (if any):
# they go to the leaf's clear "files", never to its commitments.
FILE_FIELDS: Final[Mapping[str, str | None]] = {
    "sha256": "size", "contract_sha256": None, "receipt_sha256": None, "package_sha256": None,
    "events_sha256": None, "checkpoint_sha256": None,
}  # fmt: skip
_SIZE_OF: Final = {size: field for field, size in FILE_FIELDS.items() if size is not None}
STORAGE_KEYS: Final = frozenset({"salts"})  # inside personal records: the v1 commitments' salts, not case data
ROLES: Final = ("staff", "receiving_court", "lawyer", "party", "public")
ACTOR_PATHS: Final = frozenset({"actor", "by"})  # principals' ids: who recorded or read
LEAF_KEYS: Final = frozenset(
    {"format", "origin", "seq", "position", "dossier", "version", "type", "time", "prev", "files", "commitments"}
)
_HEX64 = re.compile(r"[0-9a-f]{64}")
_REF = re.compile(r"[0-9a-f]{32}")
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")
_SAFE_INT = 2**53 - 1  # RFC 8785 §3.2.2.3: integers beyond IEEE-754 double precision are not portable

Digest = Callable[[bytes], bytes]


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


_DIGESTS: Final[Mapping[str, Digest]] = {"sha256": sha256}


def digest_named(name: str) -> Digest:
    """The commitment hash a log names (its receipts' ``log.hash``); raises ValueError for an unknown one."""
    try:
        return _DIGESTS[name]
    except KeyError:
        raise ValueError(f"no commitment hash named {name!r}") from None


class MalformedLeafError(MalformedError):
    code = "malformed_leaf"


# --- RFC 8785 for the values a leaf holds ---


def canonical_json(value: Any) -> bytes:
    """RFC 8785 bytes of a value built of str, int (|n| < 2^53), bool, None, lists and str-keyed objects.

    Raises ValueError for anything else (floats included: no leaf holds one) and for lone surrogates.
    """
    if _plain(value):  # code-point order is UTF-16 order: the stdlib's sorted, compact JSON is RFC 8785
        text = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    else:
        out: list[str] = []
        _write(value, out)
        text = "".join(out)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("a text holds a lone surrogate, which has no UTF-8 form") from None


def _plain(value: Any) -> bool:
    """Check the value's types; True unless an object key has a character beyond U+FFFF.

    Sorting keys by code point and by UTF-16 code unit (RFC 8785 §3.2.3) differ only there.
    ECMAScript's and Python's string escapes agree (both: \\b \\t \\n \\f \\r, \\u00xx lower case).
    """
    plain, stack = True, [value]
    while stack:
        v = stack.pop()
        if v is None or isinstance(v, (str, bool)):
            continue
        if isinstance(v, int):
            if not -_SAFE_INT <= v <= _SAFE_INT:
                raise ValueError(f"integer {v} is outside RFC 8785's exact range")
        elif isinstance(v, dict):
            for k in v:
                if not isinstance(k, str):
                    raise ValueError(f"object key {k!r} is not a text")
                if plain and not k.isascii() and max(map(ord, k)) > 0xFFFF:
                    plain = False
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
        else:
            raise ValueError(f"a leaf holds no {type(v).__name__}")
    return plain


def _write(v: Any, out: list[str]) -> None:
    if isinstance(v, dict):
        out.append("{")
        for i, k in enumerate(sorted(v, key=lambda k: k.encode("utf-16-be", "surrogatepass"))):
            out.append("," if i else "")
            out.append(json.dumps(k, ensure_ascii=False) + ":")
            _write(v[k], out)
        out.append("}")
    elif isinstance(v, list):
        out.append("[")
        for i, item in enumerate(v):
            out.append("," if i else "")
            _write(item, out)
        out.append("]")
    else:
        out.append(json.dumps(v, ensure_ascii=False))


# --- paths ---


def escape(key: str) -> str:
    # SPEC: RFC 6901 §3 "'~' needs to be encoded as '~0' and '/' needs to be encoded as '~1'"
    return key.replace("~", "~0").replace("/", "~1")


def unescape(segment: str) -> str:
    # SPEC: RFC 6901 §4 "first transforming any occurrence of '~1' to '/', and then ... '~0' to '~'"
    return segment.replace("~1", "/").replace("~0", "~")


def _index(segment: str) -> int | None:
    """The list index a path segment names (a decimal without leading zeroes), else None."""
    if segment.isascii() and segment.isdigit() and (segment == "0" or segment[0] != "0"):
        return int(segment)
    return None


def flatten(body: Mapping[str, Any]) -> dict[str, Any]:
    """Every scalar of ``body`` under its path; an empty list or object is a value under its own path.

    Raises ValueError for an object key that reads as a list index (``unflatten`` could not tell it
    from a list) or a value outside ``canonical_json``'s types.
    """
    out: dict[str, Any] = {}

    def walk(path: str, v: Any) -> None:
        if isinstance(v, dict) and v:
            for k, x in v.items():
                walk(f"{path}/{_key(k)}", x)
        elif isinstance(v, list) and v:
            for i, x in enumerate(v):
                walk(f"{path}/{i}", x)
        else:
            t = type(v)
            if not (t is str or v is None or t is bool or (t is int and -_SAFE_INT <= v <= _SAFE_INT)):
                _plain(v)  # an empty list or object passes; anything else raises
            out[path] = v

    for k, v in body.items():
        walk(_key(k), v)
    return out


def _key(k: Any) -> str:
    if not isinstance(k, str):
        raise ValueError(f"object key {k!r} is not a text")
    if _index(k) is not None:
        raise ValueError(f"object key {k!r} reads as a list index")
    return escape(k)


class _Node(dict[str, Any]):
    """An object or list being rebuilt by ``unflatten``."""


def unflatten(values: Mapping[str, Any], *, missing: Any = None) -> dict[str, Any]:
    """The nested object ``flatten`` was given, from some or all of its paths (for display).

    List items not given are ``missing``. Raises ValueError when paths disagree on the shape
    (a value where another path needs an object or list, a list index beside an object key).
    """
    root = _Node()
    for path, value in values.items():
        segments = [unescape(s) for s in path.split("/")]
        node = root
        for seg in segments[:-1]:
            child = node.setdefault(seg, _Node())
            if not isinstance(child, _Node):
                raise ValueError(f"path {path!r} goes through a value")
            node = child
        if segments[-1] in node:
            raise ValueError(f"path {path!r} is given twice or also holds other paths")
        node[segments[-1]] = value
    built = _build(root, missing)
    if not isinstance(built, dict):
        raise ValueError("the top level is an object, not a list")
    return built


def _build(node: _Node, missing: Any) -> dict[str, Any] | list[Any]:
    indices = [_index(k) for k in node]
    if node and all(i is not None for i in indices):
        top = max(i for i in indices if i is not None)
        if top > MAX_INDEX:
            raise ValueError(f"list index {top} is too large")
        items = [missing] * (top + 1)
        for k, i in zip(node, indices, strict=True):
            assert i is not None
            items[i] = _value(node[k], missing)
        return items
    if any(i is not None for i in indices):
        raise ValueError("a list index beside an object key")
    return {k: _value(v, missing) for k, v in node.items()}


def _value(v: Any, missing: Any) -> Any:
    if not isinstance(v, _Node):
        return v
    return _build(v, missing)


def check_shape(paths: Iterable[str]) -> None:
    """Raise ValueError unless ``paths`` are exactly what ``flatten`` makes of some object (lists dense)."""
    paths = list(paths)
    for path in paths:
        if any(escape(unescape(seg)) != seg for seg in path.split("/")):
            raise ValueError(f"path {path!r} is not escaped as RFC 6901 does")
    hole = object()
    stack: list[Any] = [unflatten(dict.fromkeys(paths, 0), missing=hole)]
    while stack:
        v = stack.pop()
        if v is hole:
            raise ValueError("a list misses an item")
        if isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)


# --- derivations and commitments ---


def _dossier_text(dossier: uuid.UUID | str) -> bytes:
    return str(dossier if isinstance(dossier, uuid.UUID) else uuid.UUID(dossier)).encode("ascii")


def _check_secret(secret: bytes) -> None:
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"a node secret has at least {MIN_SECRET_BYTES} bytes")


def dossier_ref(secret: bytes, dossier: uuid.UUID | str) -> str:
    """A leaf's dossier reference: HMAC-SHA256(secret, "sifa-dossier-ref/1" 0x00 uuid)[:16], hex."""
    _check_secret(secret)
    return hmac.digest(secret, REF_DOMAIN + _dossier_text(dossier), "sha256")[:REF_BYTES].hex()


def derive_salt(secret: bytes, dossier: uuid.UUID | str, version: int, path: str) -> bytes:
    """The 16-byte salt of one field of one event:
    HMAC-SHA256(secret, "sifa-salt/1" 0x00 uuid 0x00 version 0x00 path)[:16]."""
    return _salter(secret, dossier, version)(path)


def _salter(secret: bytes, dossier: uuid.UUID | str, version: int) -> Callable[[str], bytes]:
    """``derive_salt`` for one event's fields.

    HMAC (RFC 2104) written out over hashlib: the inner state after the common prefix and the
    outer state are computed once per event, a field then costs two hash copies (three times
    faster than ``hmac.new(...).copy()`` on the sealing path). Tests check it against ``hmac``.
    """
    _check_secret(secret)
    if type(version) is not int or version < 0:
        raise ValueError("version is a non-negative integer")
    # SPEC: RFC 2104 §2 "H(K XOR opad, H(K XOR ipad, text))", keys longer than B=64 bytes hashed first
    key = (hashlib.sha256(secret).digest() if len(secret) > 64 else secret).ljust(64, b"\x00")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
    inner.update(b"%s%s\x00%d\x00" % (SALT_DOMAIN, _dossier_text(dossier), version))
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))

    def salt(path: str) -> bytes:
        i, o = inner.copy(), outer.copy()
        i.update(path.encode("utf-8"))
        o.update(i.digest())
        return o.digest()[:SALT_BYTES]

    return salt


def commitment(path: str, value: Any, salt: bytes, digest: Digest = sha256) -> str:
    """hex H("sifa-commit/2" 0x00 || salt || utf8(path) 0x00 || RFC8785(value)).

    The path is inside, so a disclosure cannot be moved to another field; canonical JSON holds no
    raw 0x00, so the input splits one way only. Raises ValueError for a salt that is not 16 bytes.
    """
    if len(salt) != SALT_BYTES:
        raise ValueError(f"a salt has {SALT_BYTES} bytes")
    # a text, the common case, skips canonical_json's walk
    data = encode_basestring(value).encode("utf-8") if type(value) is str else canonical_json(value)
    return digest(COMMIT_DOMAIN + salt + path.encode("utf-8") + b"\x00" + data).hex()


def committed_values(body: Mapping[str, Any]) -> dict[str, Any]:
    """The body's fields a leaf commits to, by path: all but named files (and personal records' salts)."""
    rest: dict[str, Any] = {}
    for key, value in body.items():
        if key in FILE_FIELDS and value is not None:
            continue
        if key in _SIZE_OF and body.get(_SIZE_OF[key]) is not None:
            continue
        if key in PERSONAL_RECORDS:
            value = [_unstored(r) for r in value] if isinstance(value, list) else _unstored(value)
        rest[key] = value
    return flatten(rest)


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
        if size is not None and (type(size) is not int or not 0 <= size <= _SAFE_INT):
            raise ValueError(f"{size_field} is not a size")
        files.append({"field": field, "sha256": sha, "size": size})
    return sorted(files, key=lambda f: f["field"])


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
    if any(isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= _SAFE_INT for n in (seq, position, version)):
        raise ValueError("seq, position and version are non-negative integers")
    if prev is not None and len(prev) != 32:
        raise ValueError("prev is a 32-byte leaf hash")
    salt = _salter(secret, dossier, version)
    doc = {
        "format": FORMAT,
        "origin": origin,
        "seq": seq,
        "position": position,
        "dossier": dossier_ref(secret, dossier),
        "version": version,
        "type": type,
        "time": time,
        "prev": prev.hex() if prev is not None else None,
        "files": named_files(body),
        "commitments": {p: commitment(p, v, salt(p), digest) for p, v in committed_values(body).items()},
    }
    return canonical_json(doc)


# --- disclosures ---


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
    salt = _salter(secret, dossier, version)
    return [Disclosure(p, values[p], salt(p)) for p in chosen]


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


# --- labels: what a verifier prints for a path ---


def pattern(path: str) -> str:
    """The path with list indices wildcarded: ``parties/0/name`` → ``parties/*/name``."""
    return "/".join("*" if _index(s) is not None else s for s in path.split("/"))


_PERSON = {"role": "诉讼地位", "kind": "主体类型", "name": "姓名", "id_number": "证件号码", "phone": "联系电话",
           "address": "地址"}  # fmt: skip
_CATALOGUE = {"volume": "卷别", "category": "类别", "order": "顺序号", "title": "题名", "pages": "页数",
              "auto": "自动编目"}  # fmt: skip
LABELS: Final[Mapping[str, str]] = {
    "court": "立案法院", "case_number": "案号", "case_type": "案件类型",
    "parties": "当事人", "submitter": "提交人", "recipient": "受送达人",  # when empty
    **{f"parties/*/{k}": f"当事人{v}" for k, v in _PERSON.items()},
    **{f"submitter/{k}": f"提交人{v}" for k, v in _PERSON.items()},
    **{f"recipient/{k}": f"受送达人{v}" for k, v in _PERSON.items()},
    "actor": "操作人", "role": "操作角色",
    "document_id": "文书编号", "evidence_id": "证据编号", "name": "文件名", "media_type": "文件格式",
    "source": "来源", "doc_type": "文书类型", "pages": "页数", "size": "文件大小",
    **_CATALOGUE, **{f"catalogue/{k}": f"编目{v}" for k, v in _CATALOGUE.items()}, "catalogue": "编目",
    "reason": "事由", "description": "说明",
    "channel": "送达方式", "sent_at": "发送时间", "delivered_at": "送达时间", "read_at": "查阅时间",
    "signed_at": "签订时间", "to_court": "接收法院", "kind": "移送类型",
    "by_court": "接收法院", "from_court": "移送法院", "from_origin": "原法院日志", "dossier_version": "原卷宗版本",
    "checkpoint_size": "原检查点大小", "checkpoint_root": "原检查点根哈希", "first_leaf": "原首叶序号",
    "last_leaf": "原末叶序号", "last_leaf_hash": "原末叶哈希", "files": "文件数", "total_bytes": "总字节数",
    "original_leaf": "原叶序号", "retention": "保管期限", "by": "调阅人",
    # a file field is committed only when it names no file (null)
    "sha256": "文件哈希", "contract_sha256": "合同文件哈希", "receipt_sha256": "送达回证哈希",
    "package_sha256": "归档包哈希", "events_sha256": "原事件包哈希", "checkpoint_sha256": "原检查点文件哈希",
}  # fmt: skip
TYPE_LABELS: Final[Mapping[tuple[str, str], str]] = {
    ("DocumentWithdrawn", "reason"): "理由",
    ("Retrieved", "by_court"): "调阅法院",
    ("ContractRegistered", "parties/*/role"): "合同当事人角色",
    ("ContractRegistered", "parties/*/name"): "合同当事人姓名",
}


def label(path: str, event_type: str | None = None) -> str | None:
    """The Chinese label a verifier prints for a path (of an event of ``event_type``), or None."""
    p = pattern(path)
    if event_type is not None and (event_type, p) in TYPE_LABELS:
        return TYPE_LABELS[(event_type, p)]
    return LABELS.get(p)


# --- who may open what ---


def visible_paths(role: str, values: Mapping[str, Any], *, secondary: bool = False,
                  principal: str | None = None) -> frozenset[str]:  # fmt: skip
    """The paths of one event (``values``: its committed path → value) that ``role`` may be shown.

    staff and a receiving court: all; a lawyer or party: none of an event about a 副卷 document
    (``secondary``), else all but other principals' ids (``actor``, ``by`` not equal to
    ``principal``); public: none. Raises ValueError for an unknown role.
    """
    if role not in ROLES:
        raise ValueError(f"role is one of {ROLES}")
    if role in ("staff", "receiving_court"):
        return frozenset(values)
    if role == "public" or secondary:
        return frozenset()
    own = principal is not None
    return frozenset(p for p, v in values.items() if p not in ACTOR_PATHS or (own and v == principal))


# --- reading either leaf version ---


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
