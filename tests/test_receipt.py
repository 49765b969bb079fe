"""Receipts (存证凭证): round trip, offline verification, one refusal per check."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from ledger.errors import (
    CheckpointSignatureError,
    InclusionProofError,
    MalformedReceiptError,
    ReceiptMismatchError,
    TreeSizeError,
    UnknownKeyError,
)
from ledger.hashing import SHA256
from ledger.log import MerkleLog
from ledger.note import Ed25519Signer
from ledger.receipt import Receipt, Verified, verify_receipt
from ledger.sqlite import SQLiteTreeStore

ORIGIN = "sifa.court/1101-0105"
WHEN = "2026-11-22T08:30:00Z"


def leaf(i: int) -> bytes:
    """A leaf as a node writes one: JSON naming its log, index, type and UTC time."""
    doc = {
        "origin": ORIGIN,
        "seq": i,
        "type": "DocumentUploaded",
        "time": WHEN,
        "body": {"case": "（2026）京0105民初123号"},
    }
    return json.dumps(doc, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


@pytest.fixture
def signer() -> Ed25519Signer:
    return Ed25519Signer(ORIGIN, bytes(range(32)))


@pytest.fixture
def log(tmp_path: Path, signer: Ed25519Signer) -> MerkleLog:
    log = MerkleLog(SQLiteTreeStore(tmp_path / "t.db"))
    log.append([leaf(i) for i in range(300)])
    log.sign_checkpoint(signer)
    return log


def _doc(receipt: Receipt) -> dict[str, object]:
    return json.loads(receipt.to_json())


def test_round_trip_and_verify(log: MerkleLog, signer: Ed25519Signer) -> None:
    receipt = log.receipt(123, WHEN)
    text = receipt.to_json()
    assert "（2026）京0105民初123号" not in text  # leaf data is base64, terms are in clear:
    assert '"存证编号": "sifa.court/1101-0105#123"' in text
    assert Receipt.from_json(text) == receipt
    assert Receipt.from_json(text.encode()) == receipt
    proved = verify_receipt(Receipt.from_json(text), [signer.verifier])
    assert (proved.origin, proved.checkpoint.size, proved.leaf_data) == (ORIGIN, 300, leaf(123))
    doc = _doc(receipt)
    assert (
        doc["terms"]
        == proved.terms
        == {
            "存证编号": f"{ORIGIN}#123",
            "区块高度": 300,
            "交易哈希": log.leaf_hash(123).hex(),
            "存证时间": WHEN,
        }
    )


def test_receipt_needs_a_checkpoint_covering_the_leaf(log: MerkleLog) -> None:
    log.append([b"late"])
    with pytest.raises(TreeSizeError):
        log.receipt(300, WHEN)


def _mutated(receipt: Receipt, **changes: object) -> Receipt:
    doc = _doc(receipt)
    for key, value in changes.items():
        if key in ("存证编号", "区块高度", "交易哈希", "存证时间"):
            doc["terms"][key] = value  # type: ignore[index]
        else:
            doc[key] = value
    return Receipt.from_json(json.dumps(doc, ensure_ascii=False))


def test_each_check_refuses(log: MerkleLog, signer: Ed25519Signer) -> None:
    receipt = log.receipt(123, WHEN)
    keys = [signer.verifier]
    doc = _doc(receipt)
    proof = list(doc["inclusion_proof"])  # type: ignore[call-overload]
    flipped = bytearray(base64.b64decode(proof[0]))
    flipped[0] ^= 1
    proof[0] = base64.b64encode(bytes(flipped)).decode()
    with pytest.raises(InclusionProofError):
        verify_receipt(_mutated(receipt, inclusion_proof=proof), keys)
    with pytest.raises(InclusionProofError):
        verify_receipt(_mutated(receipt, leaf_index=124, 存证编号=f"{ORIGIN}#124"), keys)
    for bit in range(10):
        with pytest.raises(ReceiptMismatchError):
            verify_receipt(_mutated(receipt, tree_size=300 ^ (1 << bit)), keys)
    # Leaf bytes changed (and 交易哈希 with them): no longer the leaf the checkpoint's tree holds.
    forged = leaf(123).replace(WHEN.encode(), b"2027-01-01T00:00:00Z")
    with pytest.raises(InclusionProofError):
        verify_receipt(_mutated(receipt, leaf_data=base64.b64encode(forged).decode(),
                                交易哈希=SHA256.leaf(forged).hex(), 存证时间="2027-01-01T00:00:00Z"), keys)  # fmt: skip
    # Each term edited alone: the receipt's claim is not what the verified bytes say.
    for term, value in [("存证编号", f"{ORIGIN}#9"), ("区块高度", 301), ("交易哈希", "00" * 32),
                        ("存证时间", "2026-11-22T08:30:01Z")]:  # fmt: skip
        with pytest.raises(ReceiptMismatchError) as caught:
            verify_receipt(_mutated(receipt, **{term: value}), keys)
        assert caught.value.detail == {"term": term} and term in caught.value.diagnostics()
    with pytest.raises(UnknownKeyError):
        verify_receipt(receipt, [Ed25519Signer(ORIGIN, bytes(32)).verifier])
    other = log.receipt(5, WHEN)
    spliced = receipt.checkpoint.replace("300\n", "301\n", 1)
    with pytest.raises(CheckpointSignatureError):
        verify_receipt(_mutated(other, checkpoint=spliced), keys)


def test_a_leaf_that_states_no_time_proves_no_recorded_time(tmp_path: Path, signer: Ed25519Signer) -> None:
    """存证时间 comes from the leaf: a proved leaf without a time cannot back one, whatever the receipt says."""
    log = MerkleLog(SQLiteTreeStore(tmp_path / "t.db"))
    log.append([b"not json", json.dumps({"type": "x"}).encode()])
    log.sign_checkpoint(signer)
    for index in (0, 1):
        seen = Verified()
        with pytest.raises(ReceiptMismatchError) as caught:
            verify_receipt(log.receipt(index, WHEN), [signer.verifier], seen=seen)
        assert caught.value.detail == {"term": "存证时间"}
        assert seen.checkpoint is not None and seen.receipt is None  # the checkpoint verified, no time did


@pytest.mark.parametrize(
    "broken",
    [
        lambda t: t[: len(t) // 2],  # truncated JSON
        lambda t: t.replace("sifa-receipt/1", "sifa-receipt/2"),
        lambda t: t.replace('"leaf_index"', '"leaf_idx"'),
        lambda t: t.replace('"存证时间": "2026-11-22T08:30:00Z"', '"存证时间": "2026-13-22T08:30:00Z"'),
        lambda t: t.replace('"存证时间": "2026-11-22T08:30:00Z"', '"存证时间": "yesterday"'),
        lambda t: t.replace('"leaf_index": 123', '"leaf_index": -123'),
        lambda t: t.replace('"leaf_index": 123', '"leaf_index": "123"'),
        lambda t: t.replace('"sha256"', '"md5"'),
        lambda t: "[]",
        lambda t: "\ufffe",
    ],
)
def test_malformed_receipts_refused(log: MerkleLog, broken) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(MalformedReceiptError):
        Receipt.from_json(broken(log.receipt(123, WHEN).to_json()))
