"""The compact receipt: the same proof as a JSON receipt, in binary, small enough for one QR code.

A JSON receipt of a leaf in a log of 10⁹ leaves with three cosignatures is about 5 KB, mostly
base64 and the names of its fields (docs/capacity.md). This form carries only the bytes the proof is made of — the
suite, the leaf index, the leaf's bytes, the proof hashes, the signed checkpoint note verbatim
(cosignatures included) and, optionally, the disclosures and the optional parts — and derives the
rest as the verifier does anyway: the origin and tree size from the checkpoint, the terms (存证编号,
区块高度, 交易哈希, 存证时间) from the checkpoint and the leaf. All after the proof hashes may be one raw
DEFLATE stream (the leaf is hex-heavy JSON: 1,039 bytes deflate to about 640), inflated by the
standard library's zlib and never past 1 MiB. docs/receipt.md ("The compact form") is the byte
layout; every length is read, bounded and checked against the bytes that remain before anything is
sliced, and nothing may follow the last field.

``to_compact`` writes one from a ``Receipt`` and refuses a receipt whose stated terms, origin or
tree size are not the ones its bytes give (a compact receipt states none, so writing it would
silently replace what the JSON claims). ``from_compact`` is the only way in and returns the same
``Receipt`` that ``Receipt.from_json`` returns for the JSON receipt it came from: nothing is lost.
Both raise ``MalformedReceiptError``. Pure: bytes in, bytes out.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Final

from ledger import boundedjson
from ledger.errors import MalformedReceiptError
from ledger.hashing import Hasher
from ledger.note import MAX_NOTE_BYTES
from ledger.receipt import MAX_DISCLOSURES, PARTS, Receipt
from ledger.suite import GM, SHA256_ED25519, Suite, suite_of_algorithms

MAGIC: Final = b"SIFR"  # cannot begin a JSON receipt ('{' or space) or a tlog-proof ("c2sp.org/")
VERSION: Final = 1
SUITES: Final[dict[int, Suite]] = {1: SHA256_ED25519, 2: GM}
FLAG_DISCLOSURES: Final = 0x01  # a sifa-receipt/2: the disclosures follow the checkpoint
FLAG_PARTS: Final = 0x02  # the optional parts (PARTS) follow, as one JSON object
FLAG_DEFLATED: Final = 0x04  # the body (all after the proof) is one raw DEFLATE stream (RFC 1951)
MAX_INFLATED: Final = 1 << 20  # what a deflated body may inflate to; a larger body is written as it is
MAX_LEAF: Final = 0xFFFF  # a tile entry's length prefix: no leaf of the log is longer (ledger.tiles)
MAX_PROOF: Final = 64  # hashes; a tree of 2⁶⁴ leaves needs no more
MAX_SALT: Final = 64
MAX_BYTES: Final = boundedjson.MAX_BYTES  # a whole compact receipt, as for a JSON one


class _Reader:
    """Reads fields off the front of ``data``; every length is checked before a slice is taken."""

    def __init__(self, data: bytes) -> None:
        self.data = memoryview(data)
        self.at = 0

    def take(self, n: int, what: str) -> bytes:
        if n > len(self.data) - self.at:
            raise MalformedReceiptError(f"compact receipt is truncated: {what} needs {n} bytes, "
                                        f"{len(self.data) - self.at} remain")  # fmt: skip
        out = bytes(self.data[self.at : self.at + n])
        self.at += n
        return out

    def uint(self, width: int, what: str) -> int:
        return int.from_bytes(self.take(width, what), "big")

    def sized(self, width: int, bound: int, what: str) -> bytes:
        """A field prefixed by its length (``width`` bytes, big-endian), at most ``bound`` bytes long."""
        n = self.uint(width, f"the length of {what}")
        if n > bound:
            raise MalformedReceiptError(f"compact receipt: {what} is {n} bytes long, more than {bound}")
        return self.take(n, what)


def _text(raw: bytes, what: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedReceiptError(f"compact receipt: {what} is not UTF-8") from exc


def _json(raw: bytes, what: str) -> Any:
    try:
        value = boundedjson.loads(_text(raw, what))
    except ValueError as exc:
        raise MalformedReceiptError(f"compact receipt: {what} is not JSON: {exc}") from exc
    _dumps(value, f"compact receipt: {what}")  # an escaped lone surrogate, NaN, Infinity: no receipt can hold them
    return value


def _utf8(text: str, what: str) -> bytes:
    try:
        return text.encode()
    except UnicodeEncodeError as exc:
        raise MalformedReceiptError(f"{what} holds a lone surrogate (not UTF-8 text)") from exc


def _sized(width: int, bound: int, value: bytes, what: str) -> bytes:
    if len(value) > bound:
        raise MalformedReceiptError(f"{what} is {len(value)} bytes long; a compact receipt holds at most {bound}")
    return len(value).to_bytes(width, "big") + value


def _dumps(value: Any, what: str) -> bytes:
    """``value`` as JSON text in UTF-8, as ``_json`` reads it back. Raises MalformedReceiptError (NaN,
    Infinity, a lone surrogate: not JSON, nor UTF-8, and never a value a leaf commits to)."""
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except ValueError as exc:
        raise MalformedReceiptError(f"{what} is not JSON: {exc}") from exc
    return _utf8(text, what)


def pack(*, suite: Suite, leaf_index: int, leaf_data: bytes, inclusion_proof: Sequence[bytes], checkpoint: str,
         disclosures: Sequence[Mapping[str, Any]] | None = None, parts: Mapping[str, Any] | None = None,
         deflate: bool | None = None) -> bytes:  # fmt: skip
    """The compact bytes of these fields, laid out as docs/receipt.md says; the body deflated when that
    is smaller (``deflate`` None), or as ``deflate`` says. Checks only that each field fits; ``to_compact``
    is the checked way from a receipt. Raises MalformedReceiptError."""
    code = next((c for c, s in SUITES.items() if s == suite), None)
    if code is None:
        raise MalformedReceiptError(f"no compact code for the suite {suite.name}")
    if not 0 <= leaf_index < 1 << 64:
        raise MalformedReceiptError("leaf_index does not fit 64 bits")
    if len(inclusion_proof) > MAX_PROOF or any(len(h) != _hasher(suite).size for h in inclusion_proof):
        raise MalformedReceiptError(f"the inclusion proof must be at most {MAX_PROOF} hashes of the suite's size")
    body = [leaf_index.to_bytes(8, "big"), _sized(2, MAX_LEAF, leaf_data, "the leaf"),
            _sized(4, MAX_NOTE_BYTES, _utf8(checkpoint, "the checkpoint"), "the checkpoint")]  # fmt: skip
    if disclosures is not None:
        if len(disclosures) > MAX_DISCLOSURES:
            raise MalformedReceiptError(f"more than {MAX_DISCLOSURES} disclosures")
        body.append(len(disclosures).to_bytes(2, "big"))
        for i, d in enumerate(disclosures):
            try:
                salt = base64.b64decode(d["salt"], validate=True)
            except (binascii.Error, ValueError, TypeError) as exc:
                raise MalformedReceiptError(f"disclosures[{i}]: the salt is not base64") from exc
            if base64.b64encode(salt).decode() != d["salt"]:  # what is read back must be what was written
                raise MalformedReceiptError(f"disclosures[{i}]: the salt is not canonical base64")
            path, value = f"disclosures[{i}] path", f"disclosures[{i}] value"
            body += [_sized(2, 0xFFFF, _utf8(d["path"], path), path),
                     _sized(1, MAX_SALT, salt, f"disclosures[{i}] salt"),
                     _sized(4, MAX_BYTES, _dumps(d["value"], value), value)]  # fmt: skip
    if parts:
        if not set(parts) <= PARTS:
            raise MalformedReceiptError(f"unknown receipt parts {sorted(set(parts) - PARTS)}")
        body.append(_sized(4, MAX_BYTES, _dumps({k: parts[k] for k in sorted(parts)}, "the parts"), "the parts"))
    raw = b"".join(body)
    squeezed = None
    if deflate is not False and len(raw) <= MAX_INFLATED:
        z = zlib.compressobj(9, zlib.DEFLATED, -15, 9)  # raw DEFLATE (RFC 1951): no zlib header, no checksum
        squeezed = z.compress(raw) + z.flush()
        if deflate is None and len(squeezed) >= len(raw):
            squeezed = None
    elif deflate:
        raise MalformedReceiptError(f"a body over {MAX_INFLATED} bytes is not deflated")
    flags = (FLAG_DISCLOSURES if disclosures is not None else 0) | (FLAG_PARTS if parts else 0)
    flags |= FLAG_DEFLATED if squeezed is not None else 0
    head = [MAGIC, bytes([VERSION, code, flags, len(inclusion_proof)]), *inclusion_proof]
    return b"".join([*head, raw if squeezed is None else squeezed])


def to_compact(receipt: Receipt, *, deflate: bool | None = None) -> bytes:
    """The compact form of ``receipt``. Raises MalformedReceiptError when the receipt states an origin,
    tree size, algorithm or term that its checkpoint and leaf do not give (the compact form states
    none: they would be lost), or a field that does not fit (a leaf over 65,535 bytes)."""
    suite = suite_of_algorithms(receipt.hash_algorithm, receipt.signature_algorithm)
    if suite is None:
        raise MalformedReceiptError(f"unsupported algorithms {receipt.hash_algorithm}/{receipt.signature_algorithm}")
    derived = _derive(suite, receipt.leaf_index, receipt.leaf_data, receipt.inclusion_proof, receipt.checkpoint,
                      receipt.disclosures, receipt.parts)  # fmt: skip
    for what, stated, given in (
        ("log origin", receipt.origin, derived.origin),
        ("tree_size", receipt.tree_size, derived.tree_size),
        ("存证编号", receipt.record_id, derived.record_id),
        ("区块高度", receipt.height, derived.height),
        ("交易哈希", receipt.leaf_hash_hex, derived.leaf_hash_hex),
        ("存证时间", receipt.recorded_at, derived.recorded_at),
    ):
        if stated != given:
            raise MalformedReceiptError(
                f"the receipt's {what} is not the one its checkpoint and leaf give; a compact receipt states none "
                "of its own, so it cannot be made from this one"
            )
    return pack(suite=suite, leaf_index=receipt.leaf_index, leaf_data=receipt.leaf_data,
                inclusion_proof=receipt.inclusion_proof, checkpoint=receipt.checkpoint,
                disclosures=receipt.disclosures, parts=receipt.parts, deflate=deflate)  # fmt: skip


def from_compact(data: bytes) -> Receipt:
    """Read a compact receipt (docs/receipt.md). Raises MalformedReceiptError: wrong magic, unknown
    version, suite or flag, a length beyond its bound or beyond the bytes that remain, a body that does
    not inflate (or inflates past its bound), bytes after the last field, text that is not UTF-8, a
    checkpoint that does not parse, a leaf that states no time."""
    if len(data) > MAX_BYTES:
        raise MalformedReceiptError(f"compact receipt is over {MAX_BYTES} bytes")
    if not data.startswith(MAGIC):
        raise MalformedReceiptError("not a compact sifa receipt (it does not begin with 'SIFR')")
    head = _Reader(data)
    head.take(len(MAGIC), "the magic")
    version, code, flags = head.take(3, "the header")
    if version != VERSION:
        raise MalformedReceiptError(f"unknown compact receipt version {version}; this reads version {VERSION}")
    if code not in SUITES:
        raise MalformedReceiptError(f"unknown suite code {code} in a compact receipt")
    if flags & ~(FLAG_DISCLOSURES | FLAG_PARTS | FLAG_DEFLATED):
        raise MalformedReceiptError(f"unknown flags {flags:#04x} in a compact receipt")
    suite = SUITES[code]
    count = head.uint(1, "the proof length")
    if count > MAX_PROOF:
        raise MalformedReceiptError(f"compact receipt: the inclusion proof has {count} hashes, more than {MAX_PROOF}")
    size = _hasher(suite).size
    proof = [head.take(size, f"proof hash {i}") for i in range(count)]
    body = bytes(head.data[head.at :])
    r = _Reader(_inflate(body) if flags & FLAG_DEFLATED else body)
    index = r.uint(8, "the leaf index")
    leaf = r.sized(2, MAX_LEAF, "the leaf")
    checkpoint = _text(r.sized(4, MAX_NOTE_BYTES, "the checkpoint"), "the checkpoint")
    disclosures: list[dict[str, Any]] | None = None
    if flags & FLAG_DISCLOSURES:
        n = r.uint(2, "the number of disclosures")
        if n > MAX_DISCLOSURES:
            raise MalformedReceiptError(f"compact receipt: {n} disclosures, more than {MAX_DISCLOSURES}")
        disclosures = []
        for i in range(n):
            path = _text(r.sized(2, 0xFFFF, f"disclosures[{i}] path"), f"disclosures[{i}] path")
            salt = base64.b64encode(r.sized(1, MAX_SALT, f"disclosures[{i}] salt")).decode()
            value = _json(r.sized(4, MAX_BYTES, f"disclosures[{i}] value"), f"disclosures[{i}] value")
            disclosures.append({"path": path, "value": value, "salt": salt})
    parts: dict[str, Any] = {}
    if flags & FLAG_PARTS:
        parts_doc = _json(r.sized(4, MAX_BYTES, "the parts"), "the parts")
        if not isinstance(parts_doc, dict) or not parts_doc or not set(parts_doc) <= PARTS:
            raise MalformedReceiptError(f"compact receipt: the parts must be a non-empty object of {sorted(PARTS)}")
        parts = parts_doc
    if r.at != len(r.data):
        raise MalformedReceiptError(f"compact receipt has {len(r.data) - r.at} byte(s) after its last field")
    return _derive(suite, index, leaf, proof, checkpoint, disclosures, parts)


def _inflate(body: bytes) -> bytes:
    """The body a raw DEFLATE stream holds, at most MAX_INFLATED bytes, the stream ending with the file."""
    z = zlib.decompressobj(-15)
    try:
        out = z.decompress(body, MAX_INFLATED + 1)  # never more than the bound, whatever the stream says
    except zlib.error as exc:
        raise MalformedReceiptError(f"compact receipt: the body is not a DEFLATE stream ({exc})") from exc
    if len(out) > MAX_INFLATED:
        raise MalformedReceiptError(f"compact receipt: the body inflates to more than {MAX_INFLATED} bytes")
    if not z.eof:
        raise MalformedReceiptError("compact receipt is truncated: its DEFLATE stream does not end")
    if z.unused_data:
        raise MalformedReceiptError(f"compact receipt has {len(z.unused_data)} byte(s) after its DEFLATE stream")
    return out


def _hasher(suite: Suite) -> Hasher:
    try:
        return suite.hasher()
    except KeyError as exc:  # SM3 unavailable here (no OpenSSL SM3, no gm extra)
        raise MalformedReceiptError(str(exc.args[0])) from exc


def _derive(suite: Suite, index: int, leaf: bytes, proof: Sequence[bytes], checkpoint: str,
            disclosures: Sequence[Mapping[str, Any]] | None, parts: Mapping[str, Any]) -> Receipt:  # fmt: skip
    """The receipt these bytes make, its origin, tree size and terms derived as a verifier derives them."""
    receipt = Receipt.from_proof(index, leaf, proof, checkpoint, _hasher(suite), form="compact", parts=parts)
    # The note verbatim: a receipt's checkpoint is its text as signed and cosigned, byte for byte.
    receipt = replace(receipt, checkpoint=checkpoint)
    return receipt if disclosures is None else receipt.with_disclosures([dict(d) for d in disclosures])
