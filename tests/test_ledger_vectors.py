"""Known answers: RFC 6962 roots and the transparency-dev/merkle golden proofs."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from ledger.errors import ConsistencyProofError, InclusionProofError
from ledger.hashing import SHA256
from ledger.log import MerkleLog
from ledger.proof import verify_consistency, verify_inclusion
from ledger.sqlite import SQLiteTreeStore

VECTORS = Path(__file__).parent / "vectors"
GOLDEN = VECTORS / "transparency-dev-merkle"
RFC = json.loads((VECTORS / "rfc6962" / "roots.json").read_text())
LEAVES = [bytes.fromhex(x) for x in RFC["leaves_hex"]]


def _cases(kind: str) -> list[Path]:
    return sorted((GOLDEN / kind).rglob("*.json"))


def _b64(s: str) -> bytes:
    return base64.b64decode(s)


@pytest.fixture
def rfc_log(tmp_path: Path) -> MerkleLog:
    log = MerkleLog(SQLiteTreeStore(tmp_path / "t.db"))
    for leaf in LEAVES:  # one batch per leaf: every size is a committed state
        log.append([leaf])
    return log


def test_rfc6962_roots_of_every_size(rfc_log: MerkleLog) -> None:
    for size, want in enumerate(RFC["roots_hex"], start=1):
        assert rfc_log.root(size).hex() == want
    assert rfc_log.root(8).hex().startswith("5dc9da79") and rfc_log.root(8).hex().endswith("4328")


def test_empty_tree_root(tmp_path: Path) -> None:
    log = MerkleLog(SQLiteTreeStore(tmp_path / "e.db"))
    assert log.root().hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


@pytest.mark.parametrize("case", _cases("inclusion"), ids=lambda p: str(p.relative_to(GOLDEN)))
def test_golden_inclusion(case: Path) -> None:
    c = json.loads(case.read_text())
    args = (SHA256, c["leafIdx"], c["treeSize"], _b64(c["leafHash"]), [_b64(p) for p in c["proof"] or []])
    if c["wantErr"]:
        with pytest.raises(InclusionProofError):
            verify_inclusion(*args, _b64(c["root"]))
    else:
        verify_inclusion(*args, _b64(c["root"]))


@pytest.mark.parametrize("case", _cases("consistency"), ids=lambda p: str(p.relative_to(GOLDEN)))
def test_golden_consistency(case: Path) -> None:
    c = json.loads(case.read_text())
    args = (SHA256, c["size1"], c["size2"], _b64(c["root1"]), _b64(c["root2"]), [_b64(p) for p in c["proof"] or []])
    if c["wantErr"]:
        with pytest.raises(ConsistencyProofError):
            verify_consistency(*args)
    else:
        verify_consistency(*args)


def _happy(kind: str) -> list[dict[str, object]]:
    return [json.loads(p.read_text()) for p in _cases(kind) if p.name == "happy-path.json"]


def test_store_produces_the_golden_inclusion_proofs(rfc_log: MerkleLog) -> None:
    happy = _happy("inclusion")
    assert len(happy) >= 4
    for c in happy:
        proof = rfc_log.inclusion_proof(int(c["leafIdx"]), int(c["treeSize"]))  # type: ignore[call-overload]
        assert [base64.b64encode(h).decode() for h in proof] == (c["proof"] or [])
        assert base64.b64encode(rfc_log.root(int(c["treeSize"]))).decode() == c["root"]  # type: ignore[call-overload]


def test_store_produces_the_golden_consistency_proofs(rfc_log: MerkleLog) -> None:
    happy = [c for c in _happy("consistency") if 0 < int(c["size1"]) < int(c["size2"])]  # type: ignore[call-overload]
    assert len(happy) >= 3
    for c in happy:
        proof = rfc_log.consistency_proof(int(c["size1"]), int(c["size2"]))  # type: ignore[call-overload]
        assert [base64.b64encode(h).decode() for h in proof] == c["proof"]
