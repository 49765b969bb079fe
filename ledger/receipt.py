"""The receipt (存证凭证): one self-contained, offline-verifiable JSON document.

Formats ``sifa-receipt/1`` and ``sifa-receipt/2`` (the same, plus ``disclosures``: the values and
salts that open some of a ``sifa-leaf/2`` leaf's commitments); either may carry the optional PARTS
(trusted time, key history, a chain anchor), field by field in docs/receipt.md. ``Receipt.from_json``
is the only way in; ``verify_receipt`` checks it, steps numbered as in
docs/verification.md, and returns a ``VerifiedReceipt``: what the receipt proves, read
from the signed checkpoint and the proved leaf, never from the receipt's own terms.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Final

from ledger import boundedjson
from ledger.checkpoint import Checkpoint, open_checkpoint
from ledger.errors import MalformedError, MalformedReceiptError, ReceiptMismatchError
from ledger.hashing import SHA256, Hasher
from ledger.note import Note, Verifier
from ledger.proof import verify_inclusion
from ledger.suite import hasher_for_log, suite_of_algorithms, suite_of_hasher

FORMAT: Final = "sifa-receipt/1"
FORMAT_2: Final = "sifa-receipt/2"  # a receipt of a sifa-leaf/2 leaf: FORMAT's fields and "disclosures"
FORMATS: Final = (FORMAT, FORMAT_2)
MAX_DISCLOSURES: Final = 10_000  # more fields than a leaf of 65,535 bytes can commit to
TLOG_PROOF: Final = "c2sp.org/tlog-proof@v1"
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z")
_FIELDS: Final = {
    "format", "log", "leaf_index", "tree_size", "leaf_data", "inclusion_proof", "checkpoint", "terms",
}  # fmt: skip
_TERMS: Final = {"存证编号", "区块高度", "交易哈希", "存证时间"}
# Optional parts, each parsed and checked by its own module: "timestamp" (ledger/timestamp.py),
# "key_history" and "key_consistency" (ledger/keys.py), "anchor" (ledger/evm.py). A receipt without
# them is as before.
PARTS: Final = frozenset({"timestamp", "key_history", "key_consistency", "anchor"})


def record_id(origin: str, index: int) -> str:
    """存证编号: the log origin and the leaf index, e.g. ``sifa.court/1101-0105#42``."""
    return f"{origin}#{index}"


def _b64(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise MalformedReceiptError(f"{what} must be a base64 string")
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise MalformedReceiptError(f"{what} is not standard base64") from exc


def _uint(value: Any, what: str) -> int:
    if type(value) is not int or value < 0:
        raise MalformedReceiptError(f"{what} must be a non-negative integer")
    return value


@dataclass(frozen=True, slots=True)
class Receipt:
    """A parsed receipt. Its fields are as they were written; ``verify_receipt`` judges them."""

    origin: str
    hash_algorithm: str
    signature_algorithm: str
    leaf_index: int
    tree_size: int
    leaf_data: bytes
    inclusion_proof: tuple[bytes, ...]
    checkpoint: str
    record_id: str
    height: int
    leaf_hash_hex: str
    recorded_at: str
    # sifa-receipt/2: each {"path", "value", "salt"} as written (evidence.disclosure checks them); None: /1
    disclosures: tuple[dict[str, Any], ...] | None = None
    parts: Mapping[str, Any] = field(default_factory=dict)  # PARTS present (either format), as JSON values

    def with_disclosures(self, disclosures: Sequence[dict[str, Any]]) -> Receipt:
        """The same receipt as ``sifa-receipt/2``, carrying ``disclosures`` (possibly none)."""
        return replace(self, disclosures=tuple(disclosures))

    @property
    def format(self) -> str:
        return FORMAT if self.disclosures is None else FORMAT_2

    @classmethod
    def build(
        cls,
        *,
        origin: str,
        leaf_index: int,
        leaf_data: bytes,
        inclusion_proof: Sequence[bytes],
        checkpoint: Checkpoint,
        checkpoint_note: Note,
        recorded_at: str,
        hasher: Hasher = SHA256,
        parts: Mapping[str, Any] | None = None,
    ) -> Receipt:
        """A receipt for one leaf; the reader-facing terms are derived, not given."""
        if not _TIME.fullmatch(recorded_at):
            raise MalformedReceiptError("存证时间 must be UTC, e.g. 2026-11-22T08:00:00Z")
        return cls(
            origin=origin,
            hash_algorithm=hasher.name,
            signature_algorithm=suite_of_hasher(hasher).signature,
            leaf_index=leaf_index,
            tree_size=checkpoint.size,
            leaf_data=leaf_data,
            inclusion_proof=tuple(inclusion_proof),
            checkpoint=checkpoint_note.to_text(),
            record_id=record_id(origin, leaf_index),
            height=checkpoint.size,
            leaf_hash_hex=hasher.leaf(leaf_data).hex(),
            recorded_at=recorded_at,
            parts=dict(parts or {}),
        )

    def to_dict(self) -> dict[str, Any]:
        doc = {
            "format": self.format,
            "log": {"origin": self.origin, "hash": self.hash_algorithm, "signature": self.signature_algorithm},
            "leaf_index": self.leaf_index,
            "tree_size": self.tree_size,
            "leaf_data": base64.b64encode(self.leaf_data).decode(),
            "inclusion_proof": [base64.b64encode(h).decode() for h in self.inclusion_proof],
            "checkpoint": self.checkpoint,
            "terms": {
                "存证编号": self.record_id,
                "区块高度": self.height,
                "交易哈希": self.leaf_hash_hex,
                "存证时间": self.recorded_at,
            },
            **{k: self.parts[k] for k in sorted(self.parts)},
        }
        if self.disclosures is not None:
            doc["disclosures"] = list(self.disclosures)
        return doc

    def to_tlog_proof(self) -> str:
        """The same proof as C2SP tlog-proof text (``.tlog-proof``), the leaf bytes as its ``extra``
        (no disclosures: a tlog-proof proves the public leaf only)."""
        lines = [TLOG_PROOF, f"extra {base64.b64encode(self.leaf_data).decode()}", f"index {self.leaf_index}",
                 *(base64.b64encode(h).decode() for h in self.inclusion_proof)]  # fmt: skip
        return "\n".join(lines) + "\n\n" + self.checkpoint

    @classmethod
    def from_tlog_proof(cls, text: str | bytes, hasher: Hasher = SHA256) -> Receipt:
        """Read C2SP tlog-proof text written by ``to_tlog_proof``. Raises MalformedReceiptError.

        The leaf's bytes travel as the proof's (unauthenticated) ``extra``: they are trusted only
        once hashed and proved included, like a JSON receipt's ``leaf_data``. The text does not name
        the log's suite: ``hasher`` is the one its trusted key names (``ledger.suite.hasher_for_log``).
        """
        try:
            text = text.decode("utf-8") if isinstance(text, bytes) else text
        except UnicodeDecodeError as exc:
            raise MalformedReceiptError("tlog-proof is not UTF-8") from exc
        head, sep, note = text.partition("\n\n")
        lines = head.split("\n")
        if not sep or lines[0] != TLOG_PROOF:
            raise MalformedReceiptError(f"not a {TLOG_PROOF} proof")
        if len(lines) < 3 or not lines[1].startswith("extra ") or not lines[2].startswith("index "):
            raise MalformedReceiptError("a sifa tlog-proof has 'extra <leaf bytes>' and 'index <n>' lines")
        index = lines[2][6:]
        if not index.isascii() or not index.isdigit() or (index != "0" and index.startswith("0")):
            raise MalformedReceiptError("index is not a decimal without leading zeroes")
        if len(lines) - 3 > 64:
            raise MalformedReceiptError("inclusion proof has more than 64 hashes")
        leaf = _b64(lines[1][6:], "extra")
        proof = [_b64(h, f"proof line {i}") for i, h in enumerate(lines[3:])]
        return cls.from_proof(int(index), leaf, proof, note, hasher, form="tlog-proof")

    @classmethod
    def from_proof(cls, index: int, leaf: bytes, proof: Sequence[bytes], note: str, hasher: Hasher, *, form: str,
                   parts: Mapping[str, Any] | None = None) -> Receipt:  # fmt: skip
        """The receipt a proof in another ``form`` (tlog-proof, compact) makes: its origin, tree size and
        time read from its checkpoint note and leaf, as a verifier reads them. Raises MalformedReceiptError."""
        try:
            parsed = Note.from_text(note)
            checkpoint = Checkpoint.from_text(parsed.text)
        except MalformedError as exc:
            raise MalformedReceiptError(f"{form}: unreadable checkpoint: {exc.diagnostics()}") from exc
        recorded_at = leaf_time(leaf)
        if recorded_at is None:
            raise MalformedReceiptError(f"the leaf states no UTC time: a {form} receipt has no 存证时间 to give")
        return cls.build(origin=checkpoint.origin, leaf_index=index, leaf_data=leaf, inclusion_proof=proof,
                         checkpoint=checkpoint, checkpoint_note=parsed, recorded_at=recorded_at, hasher=hasher,
                         parts=parts)  # fmt: skip

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes) -> Receipt:
        """Parse a receipt; every field is checked for type and form.

        Raises MalformedReceiptError (unknown format version included).
        """
        try:
            doc = boundedjson.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise MalformedReceiptError(f"receipt is not JSON: {exc}") from exc
        if not isinstance(doc, dict):
            raise MalformedReceiptError("receipt must be a JSON object")
        if doc.get("format") not in FORMATS:
            raise MalformedReceiptError(f"unknown receipt format {doc.get('format')!r}; this reads "
                                        f"{' and '.join(FORMATS)}")  # fmt: skip
        expected = _FIELDS if doc["format"] == FORMAT else _FIELDS | {"disclosures"}
        if not expected <= set(doc) <= expected | PARTS:
            missing, extra = expected - set(doc), set(doc) - expected - PARTS
            raise MalformedReceiptError(f"receipt fields: missing {sorted(missing)}, unknown {sorted(extra)}")
        log, terms = doc["log"], doc["terms"]
        if not isinstance(log, dict) or set(log) != {"origin", "hash", "signature"}:
            raise MalformedReceiptError("receipt 'log' must hold origin, hash and signature")
        if not all(isinstance(v, str) and v for v in log.values()):
            raise MalformedReceiptError("receipt 'log' values must be non-empty strings")
        if suite_of_algorithms(log["hash"], log["signature"]) is None:
            raise MalformedReceiptError(f"unsupported algorithms {log['hash']}/{log['signature']}")
        if not isinstance(terms, dict) or set(terms) != _TERMS:
            raise MalformedReceiptError(f"receipt 'terms' must hold exactly {sorted(_TERMS)}")
        proof = doc["inclusion_proof"]
        if not isinstance(proof, list) or len(proof) > 64:
            raise MalformedReceiptError("inclusion_proof must be a list of at most 64 hashes")
        if not isinstance(doc["checkpoint"], str):
            raise MalformedReceiptError("checkpoint must be the signed note text")
        for key in ("存证编号", "交易哈希", "存证时间"):
            if not isinstance(terms[key], str):
                raise MalformedReceiptError(f"{key} must be a string")
        if not _TIME.fullmatch(terms["存证时间"]):
            raise MalformedReceiptError("存证时间 must be UTC, e.g. 2026-11-22T08:00:00Z")
        try:
            datetime.fromisoformat(terms["存证时间"].replace("Z", "+00:00"))
        except ValueError as exc:
            raise MalformedReceiptError("存证时间 is not a real date and time") from exc
        return cls(
            origin=log["origin"],
            hash_algorithm=log["hash"],
            signature_algorithm=log["signature"],
            leaf_index=_uint(doc["leaf_index"], "leaf_index"),
            tree_size=_uint(doc["tree_size"], "tree_size"),
            leaf_data=_b64(doc["leaf_data"], "leaf_data"),
            inclusion_proof=tuple(_b64(h, f"inclusion_proof[{i}]") for i, h in enumerate(proof)),
            checkpoint=doc["checkpoint"],
            record_id=terms["存证编号"],
            height=_uint(terms["区块高度"], "区块高度"),
            leaf_hash_hex=terms["交易哈希"],
            recorded_at=terms["存证时间"],
            disclosures=None if doc["format"] == FORMAT else _disclosures(doc["disclosures"]),
            parts={k: doc[k] for k in PARTS if k in doc},
        )


def _disclosures(value: Any) -> tuple[dict[str, Any], ...]:
    """The shape of ``disclosures``: a list of ``{"path", "value", "salt"}`` (what they open is the
    verifier's to check, against the proved leaf)."""
    if not isinstance(value, list) or len(value) > MAX_DISCLOSURES:
        raise MalformedReceiptError(f"disclosures must be a list of at most {MAX_DISCLOSURES}")
    for i, d in enumerate(value):
        if not isinstance(d, dict) or set(d) != {"path", "value", "salt"} or not isinstance(d["path"], str) \
                or not isinstance(d["salt"], str):  # fmt: skip
            raise MalformedReceiptError(f"disclosures[{i}] must be {{path, value, salt}}, path and salt strings")
    return tuple(value)


@dataclass(frozen=True, slots=True)
class VerifiedReceipt:
    """What a receipt proves, every value read from verified bytes: the signed checkpoint (log
    origin, tree size) and the leaf proved included in it (index, bytes, hash, the time it states)."""

    checkpoint: Checkpoint
    leaf_index: int
    leaf_data: bytes
    leaf_hash: bytes
    recorded_at: str

    @property
    def origin(self) -> str:
        return self.checkpoint.origin

    @property
    def terms(self) -> dict[str, Any]:
        """存证编号, 区块高度, 交易哈希, 存证时间 as the verified bytes state them."""
        return {
            "存证编号": record_id(self.origin, self.leaf_index),
            "区块高度": self.checkpoint.size,
            "交易哈希": self.leaf_hash.hex(),
            "存证时间": self.recorded_at,
        }


@dataclass
class Verified:
    """What passed so far, for a caller that reports a failure: the checkpoint once its signature
    verified, the receipt's facts once its leaf is proved included (before its terms are compared)."""

    checkpoint: Checkpoint | None = None
    receipt: VerifiedReceipt | None = None


def leaf_time(leaf_data: bytes) -> str | None:
    """The UTC time a sifa leaf (JSON object) states in its ``time`` field; None if it states none."""
    try:
        doc = boundedjson.loads(leaf_data)
    except (ValueError, UnicodeDecodeError):
        return None
    when = doc.get("time") if isinstance(doc, dict) else None
    return when if isinstance(when, str) and _TIME.fullmatch(when) else None


def verify_receipt(
    receipt: Receipt, log_keys: Sequence[Verifier], hasher: Hasher | None = None, *, seen: Verified | None = None
) -> VerifiedReceipt:
    """Check a receipt offline against trusted log keys; return what it proves.

    Every value returned is read from verified bytes; every term the receipt states is compared
    with it. ``seen`` (optional) is filled as the steps pass, so that a caller can say what was
    verified before a failure. Raises a VerificationError subclass naming the first check that
    failed (ReceiptMismatchError carries the ``term`` that disagrees), or a MalformedError for an
    unreadable checkpoint.
    """
    seen = seen if seen is not None else Verified()
    # Step 1: the checkpoint is signed by a trusted key of the log it names.
    checkpoint, _ = open_checkpoint(receipt.checkpoint, log_keys)
    seen.checkpoint = checkpoint
    # The tree hash is the one the trusted log key names (ledger.suite), never the receipt's say-so;
    # a receipt that names another suite than its log's is refused, not silently re-read.
    hasher = hasher or hasher_for_log(checkpoint.origin, log_keys)
    if (receipt.hash_algorithm, receipt.signature_algorithm) != (hasher.name, suite_of_hasher(hasher).signature):
        raise ReceiptMismatchError(
            f"the receipt names {receipt.hash_algorithm}/{receipt.signature_algorithm}; "
            f"the log {checkpoint.origin} is {hasher.name}"
        )
    # Step 2: the receipt speaks of that log and that tree size.
    if checkpoint.origin != receipt.origin:
        raise ReceiptMismatchError(
            f"the receipt names log {receipt.origin!r}; its checkpoint is of {checkpoint.origin}"
        )
    if checkpoint.size != receipt.tree_size:
        raise ReceiptMismatchError(f"the receipt's tree_size is not the size its checkpoint signs ({checkpoint.size})")
    # Step 3: the leaf is in the tree the checkpoint signs. From here on its bytes are verified.
    leaf_hash = hasher.leaf(receipt.leaf_data)
    verify_inclusion(
        hasher, receipt.leaf_index, receipt.tree_size, leaf_hash, receipt.inclusion_proof, checkpoint.root_hash
    )
    recorded_at = leaf_time(receipt.leaf_data)
    if recorded_at is None:
        raise ReceiptMismatchError("the proved leaf states no UTC time: 存证时间 cannot be verified", term="存证时间")
    verified = VerifiedReceipt(checkpoint, receipt.leaf_index, receipt.leaf_data, leaf_hash, recorded_at)
    seen.receipt = verified
    # Step 4: each reader-facing term is what the verified bytes say.
    claimed = {"存证编号": receipt.record_id, "区块高度": receipt.height, "交易哈希": receipt.leaf_hash_hex,
               "存证时间": receipt.recorded_at}  # fmt: skip
    for term, value in verified.terms.items():
        if claimed[term] != value:
            raise ReceiptMismatchError(f"the receipt's {term} is not {_SOURCE[term]}", term=term)
    return verified


_SOURCE: Final = {
    "存证编号": "the signed log's origin and the proved leaf's index",
    "区块高度": "the tree size the checkpoint signs",
    "交易哈希": "the hash of the proved leaf",
    "存证时间": "the time the proved leaf states",
}
