"""The compact receipt: the same proof as a JSON receipt, in binary, small enough for one QR code.

A JSON receipt of a leaf in a log of 10⁹ leaves with three cosignatures is about 3.5 KB, mostly
base64 and the names of its fields. This form carries only the bytes the proof is made of — the
suite, the leaf index, the leaf's bytes, the proof hashes, the signed checkpoint note verbatim
(cosignatures included) and, optionally, the disclosures and the optional parts — and derives the
rest as the verifier does anyway: the origin and tree size from the checkpoint, the terms (存证编号,
区块高度, 交易哈希, 存证时间) from the checkpoint and the leaf. docs/receipt.md ("The compact form")
is the byte layout; every length is read, bounded and checked against the bytes that remain before
anything is sliced, and nothing may follow the last field.

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
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Final

from ledger import boundedjson
from ledger.checkpoint import Checkpoint
from ledger.errors import MalformedError, MalformedReceiptError
from ledger.hashing import Hasher
from ledger.note import MAX_NOTE_BYTES, Note
from ledger.receipt import MAX_DISCLOSURES, PARTS, Receipt, leaf_time
from ledger.suite import GM, SHA256_ED25519, Suite, suite_of_algorithms

MAGIC: Final = b"SIFR"  # cannot begin a JSON receipt ('{' or space) or a tlog-proof ("c2sp.org/")
VERSION: Final = 1
SUITES: Final[dict[int, Suite]] = {1: SHA256_ED25519, 2: GM}
FLAG_DISCLOSURES: Final = 0x01  # a sifa-receipt/2: the disclosures follow the checkpoint
FLAG_PARTS: Final = 0x02  # the optional parts (PARTS) follow, as one JSON object
MAX_LEAF: Final = 0xFFFF  # a tile entry's length prefix: no leaf of the log is longer (ledger.tiles)
MAX_PROOF: Final = 64  # hashes; a tree of 2⁶⁴ leaves needs no more
MAX_SALT: Final = 64
MAX_BYTES: Final = boundedjson.MAX_BYTES  # a whole compact receipt, as for a JSON one
HEADER: Final = len(MAGIC) + 3  # magic, version, suite, flags


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
        return boundedjson.loads(_text(raw, what))
    except ValueError as exc:
        raise MalformedReceiptError(f"compact receipt: {what} is not JSON: {exc}") from exc


def _sized(width: int, bound: int, value: bytes, what: str) -> bytes:
    if len(value) > bound:
        raise MalformedReceiptError(f"{what} is {len(value)} bytes long; a compact receipt holds at most {bound}")
    return len(value).to_bytes(width, "big") + value


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def pack(*, suite: Suite, leaf_index: int, leaf_data: bytes, inclusion_proof: Sequence[bytes], checkpoint: str,
         disclosures: Sequence[Mapping[str, Any]] | None = None,
         parts: Mapping[str, Any] | None = None) -> bytes:  # fmt: skip
    """The compact bytes of these fields, laid out as docs/receipt.md says. Checks only that each fits
    its field; ``to_compact`` is the checked way from a receipt. Raises MalformedReceiptError."""
    code = next((c for c, s in SUITES.items() if s == suite), None)
    if code is None:
        raise MalformedReceiptError(f"no compact code for the suite {suite.name}")
    if not 0 <= leaf_index < 1 << 64:
        raise MalformedReceiptError("leaf_index does not fit 64 bits")
    if len(inclusion_proof) > MAX_PROOF or any(len(h) != _hasher(suite).size for h in inclusion_proof):
        raise MalformedReceiptError(f"the inclusion proof must be at most {MAX_PROOF} hashes of the suite's size")
    flags = (FLAG_DISCLOSURES if disclosures is not None else 0) | (FLAG_PARTS if parts else 0)
    out = [MAGIC, bytes([VERSION, code, flags]), leaf_index.to_bytes(8, "big"),
           _sized(2, MAX_LEAF, leaf_data, "the leaf"), bytes([len(inclusion_proof)]), *inclusion_proof,
           _sized(4, MAX_NOTE_BYTES, checkpoint.encode(), "the checkpoint")]  # fmt: skip
    if disclosures is not None:
        if len(disclosures) > MAX_DISCLOSURES:
            raise MalformedReceiptError(f"more than {MAX_DISCLOSURES} disclosures")
        out.append(len(disclosures).to_bytes(2, "big"))
        for i, d in enumerate(disclosures):
            try:
                salt = base64.b64decode(d["salt"], validate=True)
            except (binascii.Error, ValueError, TypeError) as exc:
                raise MalformedReceiptError(f"disclosures[{i}]: the salt is not base64") from exc
            if base64.b64encode(salt).decode() != d["salt"]:  # what is read back must be what was written
                raise MalformedReceiptError(f"disclosures[{i}]: the salt is not canonical base64")
            out += [_sized(2, 0xFFFF, d["path"].encode(), f"disclosures[{i}] path"),
                    _sized(1, MAX_SALT, salt, f"disclosures[{i}] salt"),
                    _sized(4, MAX_BYTES, _dumps(d["value"]), f"disclosures[{i}] value")]  # fmt: skip
    if parts:
        if not set(parts) <= PARTS:
            raise MalformedReceiptError(f"unknown receipt parts {sorted(set(parts) - PARTS)}")
        out.append(_sized(4, MAX_BYTES, _dumps({k: parts[k] for k in sorted(parts)}), "the parts"))
    return b"".join(out)


def to_compact(receipt: Receipt) -> bytes:
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
                disclosures=receipt.disclosures, parts=receipt.parts)  # fmt: skip


def from_compact(data: bytes) -> Receipt:
    """Read a compact receipt (docs/receipt.md). Raises MalformedReceiptError: wrong magic, unknown
    version, suite or flag, a length beyond its bound or beyond the bytes that remain, bytes after the
    last field, text that is not UTF-8, a checkpoint that does not parse, a leaf that states no time."""
    if len(data) > MAX_BYTES:
        raise MalformedReceiptError(f"compact receipt is over {MAX_BYTES} bytes")
    if not data.startswith(MAGIC):
        raise MalformedReceiptError("not a compact sifa receipt (it does not begin with 'SIFR')")
    r = _Reader(data)
    r.take(len(MAGIC), "the magic")
    version, code, flags = r.take(3, "the header")
    if version != VERSION:
        raise MalformedReceiptError(f"unknown compact receipt version {version}; this reads version {VERSION}")
    if code not in SUITES:
        raise MalformedReceiptError(f"unknown suite code {code} in a compact receipt")
    if flags & ~(FLAG_DISCLOSURES | FLAG_PARTS):
        raise MalformedReceiptError(f"unknown flags {flags:#04x} in a compact receipt")
    suite = SUITES[code]
    index = r.uint(8, "the leaf index")
    leaf = r.sized(2, MAX_LEAF, "the leaf")
    count = r.uint(1, "the proof length")
    if count > MAX_PROOF:
        raise MalformedReceiptError(f"compact receipt: the inclusion proof has {count} hashes, more than {MAX_PROOF}")
    size = _hasher(suite).size
    proof = [r.take(size, f"proof hash {i}") for i in range(count)]
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
    if r.at != len(data):
        raise MalformedReceiptError(f"compact receipt has {len(data) - r.at} byte(s) after its last field")
    return _derive(suite, index, leaf, proof, checkpoint, disclosures, parts)


def _hasher(suite: Suite) -> Hasher:
    try:
        return suite.hasher()
    except KeyError as exc:  # SM3 unavailable here (no OpenSSL SM3, no gm extra)
        raise MalformedReceiptError(str(exc.args[0])) from exc


def _derive(suite: Suite, index: int, leaf: bytes, proof: Sequence[bytes], checkpoint: str,
            disclosures: Sequence[Mapping[str, Any]] | None, parts: Mapping[str, Any]) -> Receipt:  # fmt: skip
    """The receipt these bytes make, its origin, tree size and terms derived as a verifier derives them."""
    try:
        note = Note.from_text(checkpoint)
        signed = Checkpoint.from_text(note.text)
    except MalformedError as exc:
        raise MalformedReceiptError(f"compact receipt: unreadable checkpoint: {exc.diagnostics()}") from exc
    recorded_at = leaf_time(leaf)
    if recorded_at is None:
        raise MalformedReceiptError("the leaf states no UTC time: a compact receipt has no 存证时间 to give")
    receipt = Receipt.build(origin=signed.origin, leaf_index=index, leaf_data=leaf, inclusion_proof=proof,
                            checkpoint=signed, checkpoint_note=note, recorded_at=recorded_at, hasher=_hasher(suite),
                            parts=parts)  # fmt: skip
    # The note verbatim: a receipt's checkpoint is its text as signed and cosigned, byte for byte.
    receipt = replace(receipt, checkpoint=checkpoint)
    return receipt if disclosures is None else receipt.with_disclosures([dict(d) for d in disclosures])
